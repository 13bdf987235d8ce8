-- Every change to what validate reads (a license, an activation, a product) notifies
-- channel "licensd_cache" from the same transaction, so each instance's in-process
-- validate cache drops the entry when the change commits, whoever made it (API, admin,
-- CLI, Stripe webhook, a future import, or psql). Payloads: 'l:<license id>' or
-- 'p:<product id>'. Postgres folds identical payloads of one transaction into one.
CREATE FUNCTION licensd_cache_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_ record;
BEGIN
    IF TG_OP = 'DELETE' THEN row_ := OLD; ELSE row_ := NEW; END IF;
    IF TG_TABLE_NAME = 'licenses' THEN
        PERFORM pg_notify('licensd_cache', 'l:' || row_.id);
    ELSIF TG_TABLE_NAME = 'activations' THEN
        PERFORM pg_notify('licensd_cache', 'l:' || row_.license_id);
    ELSIF TG_TABLE_NAME = 'products' THEN
        PERFORM pg_notify('licensd_cache', 'p:' || row_.id);
    END IF;
    RETURN NULL;
END;
$$;

-- A new license needs no notification: unknown keys are never cached.
CREATE TRIGGER licenses_cache_notify AFTER UPDATE OR DELETE ON licenses
    FOR EACH ROW EXECUTE FUNCTION licensd_cache_notify();
CREATE TRIGGER activations_cache_notify AFTER INSERT OR UPDATE OR DELETE ON activations
    FOR EACH ROW EXECUTE FUNCTION licensd_cache_notify();
CREATE TRIGGER products_cache_notify AFTER UPDATE OR DELETE ON products
    FOR EACH ROW EXECUTE FUNCTION licensd_cache_notify();
