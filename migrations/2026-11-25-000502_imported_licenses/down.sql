DELETE FROM licenses WHERE source = 'import';
DROP INDEX licenses_key_upper_unique;
ALTER TABLE licenses
    DROP CONSTRAINT licenses_import_unique,
    DROP CONSTRAINT licenses_import_check,
    DROP CONSTRAINT licenses_stripe_source_check,
    DROP CONSTRAINT licenses_key_check,
    DROP CONSTRAINT licenses_source_check,
    DROP COLUMN import_id,
    DROP COLUMN import_source;
ALTER TABLE licenses
    ADD CONSTRAINT licenses_source_check CHECK (source IN ('stripe', 'manual')),
    ADD CONSTRAINT licenses_key_check CHECK (key ~ '^([A-Z0-9]{1,16}-)?[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$'),
    ADD CONSTRAINT licenses_stripe_source_check CHECK (
        source = 'manual'
        OR (stripe_checkout_session_id IS NOT NULL AND stripe_line_item_id IS NOT NULL AND stripe_line_item_seq IS NOT NULL)
    );
