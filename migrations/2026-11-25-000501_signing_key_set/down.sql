-- Back to one row: keep the current key only.
DELETE FROM signing_keys WHERE status <> 'current';
UPDATE signing_keys SET id = 1;
DROP INDEX signing_keys_one_current;
ALTER TABLE signing_keys
    DROP CONSTRAINT signing_keys_seed_unique,
    DROP CONSTRAINT signing_keys_retired_check,
    DROP COLUMN retired_at,
    DROP COLUMN status;
ALTER TABLE signing_keys ALTER COLUMN id DROP IDENTITY;
ALTER TABLE signing_keys ALTER COLUMN id TYPE smallint;
ALTER TABLE signing_keys ALTER COLUMN id SET DEFAULT 1;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_id_check CHECK (id = 1);
