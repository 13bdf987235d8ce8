-- Every change to a license, with who made it and the values before and after.
-- Append-only: a trigger refuses UPDATE and DELETE, so the record cannot be rewritten.
CREATE TABLE license_history (
    id          bigserial PRIMARY KEY,
    license_id  uuid NOT NULL REFERENCES licenses (id),
    -- user: a dashboard user (actor = email); api_token: an admin token (actor = its name);
    -- portal: the buyer in the portal (actor = email); app: the customer software (actor = the API);
    -- stripe: a webhook event (actor = event id); cli: the seller's shell; system: the server itself.
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'api_token', 'portal', 'app', 'stripe', 'cli', 'system')),
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 320),
    action      text NOT NULL CHECK (action ~ '^[a-z_]{1,64}$'),
    before      jsonb,
    after       jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX license_history_license_idx ON license_history (license_id, id);

CREATE FUNCTION license_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'license_history is append-only';
END
$$;
CREATE TRIGGER license_history_append_only
    BEFORE UPDATE OR DELETE ON license_history
    FOR EACH ROW EXECUTE FUNCTION license_history_append_only();
