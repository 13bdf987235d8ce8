-- Licenses moved over from another service (`licensd import`) keep their original key
-- strings: only they may hold a key that is not in licensd's own format. Each is keyed
-- by the source it came from and its id there, so re-running an import changes nothing.
ALTER TABLE licenses
    DROP CONSTRAINT licenses_key_check,
    DROP CONSTRAINT licenses_source_check,
    DROP CONSTRAINT licenses_stripe_source_check;
ALTER TABLE licenses
    ADD COLUMN import_source text CHECK (import_source ~ '^[a-z0-9_-]{1,32}$'),
    ADD COLUMN import_id text CHECK (length(import_id) BETWEEN 1 AND 255),
    ADD CONSTRAINT licenses_source_check CHECK (source IN ('stripe', 'manual', 'import')),
    ADD CONSTRAINT licenses_key_check CHECK (
        CASE WHEN source = 'import'
            -- printable ASCII without spaces, as the source issued it
            THEN key ~ '^[\x21-\x7E]{1,255}$'
            ELSE key ~ '^([A-Z0-9]{1,16}-)?[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$'
        END),
    ADD CONSTRAINT licenses_stripe_source_check CHECK (
        source <> 'stripe'
        OR (stripe_checkout_session_id IS NOT NULL AND stripe_line_item_id IS NOT NULL AND stripe_line_item_seq IS NOT NULL)
    ),
    ADD CONSTRAINT licenses_import_check CHECK (
        (source = 'import') = (import_source IS NOT NULL AND import_id IS NOT NULL)
    ),
    ADD CONSTRAINT licenses_import_unique UNIQUE (import_source, import_id);
-- Look-ups ignore case: one key per spelling, whatever its case.
CREATE UNIQUE INDEX licenses_key_upper_unique ON licenses (upper(key));
