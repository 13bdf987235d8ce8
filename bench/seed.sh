#!/usr/bin/env bash
# Seeds a benchmark database with N licenses in one INSERT ... SELECT, indexes built after.
#   bench/seed.sh licensd_bench_1m 1000000
# Keys are bench_key(i) (md5-derived, valid licensd keys, random order in the index), so
# wrk (via a keys file) and pgbench (via the same SQL function) look up the same rows.
# Prints the time each step took. Needs: psql, a built licensd binary (for migrations).
set -euo pipefail
DB=${1:?database name, e.g. licensd_bench_1m}
N=${2:?number of licenses}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LICENSD=${LICENSD:-$ROOT/target/release/licensd}
[ -x "$LICENSD" ] || LICENSD=$ROOT/target/debug/licensd
psql_db() { psql "$PGURL/$DB" -v ON_ERROR_STOP=1 -qAt "$@"; }
t() { local s=$(date +%s.%N); "$@"; printf '  %-28s %6.1f s\n' "$STEP" "$(echo "$(date +%s.%N) - $s" | bc)"; }

psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
psql "$PGURL/postgres" -qc "CREATE DATABASE $DB"
echo "seeding $DB with $N licenses"
STEP="migrate" t env DATABASE_URL="$PGURL/$DB" LICENSD_LOG=warn "$LICENSD" migrate >/dev/null

psql_db <<'SQL'
CREATE FUNCTION bench_key(i bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT upper(substr(h, 1, 5) || '-' || substr(h, 6, 5) || '-' || substr(h, 11, 5) || '-' ||
               substr(h, 16, 5) || '-' || substr(h, 21, 5))
  FROM md5(i::text) AS h
$$;
INSERT INTO products (id, slug, name, max_activations)
VALUES ('00000000-0000-0000-0000-00000000be01', 'bench', 'Bench App', NULL);
SQL

# Drop the secondary indexes and constraints' indexes for the bulk load; rebuilt below.
psql_db <<'SQL'
ALTER TABLE activations DROP CONSTRAINT activations_license_id_fkey;
ALTER TABLE licenses DROP CONSTRAINT licenses_product_id_fkey;
ALTER TABLE licenses DROP CONSTRAINT licenses_key_key;
ALTER TABLE licenses DROP CONSTRAINT licenses_stripe_line_item_unique;
ALTER TABLE licenses DROP CONSTRAINT licenses_pkey CASCADE;
DROP INDEX licenses_product_id_idx, licenses_email_idx, licenses_payment_intent_idx,
           licenses_subscription_idx, licenses_created_at_idx,
           licenses_key_trgm_idx, licenses_email_prefix_idx, licenses_customer_idx, licenses_session_idx;
SQL

STEP="insert $N rows" t psql_db -c "
INSERT INTO licenses (key, product_id, email, customer_name, max_activations, source, metadata,
                      stripe_checkout_session_id, stripe_line_item_id, stripe_line_item_seq,
                      stripe_payment_intent_id, stripe_customer_id, stripe_subscription_id)
SELECT bench_key(i), '00000000-0000-0000-0000-00000000be01', 'buyer' || i || '@example.com',
       'Buyer ' || i, NULL, CASE WHEN i % 10 = 0 THEN 'stripe' ELSE 'manual' END, '{}'::jsonb,
       -- every tenth license sold through Stripe, every twentieth on a subscription
       CASE WHEN i % 10 = 0 THEN 'cs_bench_' || i END, CASE WHEN i % 10 = 0 THEN 'li_bench_' || i END,
       CASE WHEN i % 10 = 0 THEN 0 END, CASE WHEN i % 10 = 0 THEN 'pi_bench_' || i END,
       CASE WHEN i % 10 = 0 THEN 'cus_bench_' || i END, CASE WHEN i % 20 = 0 THEN 'sub_bench_' || i END
FROM generate_series(1, $N) AS i"

STEP="primary key" t psql_db -c "ALTER TABLE licenses ADD CONSTRAINT licenses_pkey PRIMARY KEY (id)"
STEP="unique key index" t psql_db -c "ALTER TABLE licenses ADD CONSTRAINT licenses_key_key UNIQUE (key)"
STEP="other indexes" t psql_db <<'SQL'
ALTER TABLE licenses ADD CONSTRAINT licenses_stripe_line_item_unique
  UNIQUE (stripe_checkout_session_id, stripe_line_item_id, stripe_line_item_seq);
CREATE INDEX licenses_product_id_idx ON licenses (product_id, created_at);
CREATE INDEX licenses_email_idx ON licenses (lower(email));
CREATE INDEX licenses_payment_intent_idx ON licenses (stripe_payment_intent_id) WHERE stripe_payment_intent_id IS NOT NULL;
CREATE INDEX licenses_subscription_idx ON licenses (stripe_subscription_id) WHERE stripe_subscription_id IS NOT NULL;
CREATE INDEX licenses_created_at_idx ON licenses (created_at, id);
CREATE INDEX licenses_key_trgm_idx ON licenses USING gin (key gin_trgm_ops);
CREATE INDEX licenses_email_prefix_idx ON licenses (lower(email) text_pattern_ops);
CREATE INDEX licenses_customer_idx ON licenses (stripe_customer_id) WHERE stripe_customer_id IS NOT NULL;
CREATE INDEX licenses_session_idx ON licenses (stripe_checkout_session_id) WHERE stripe_checkout_session_id IS NOT NULL;
ALTER TABLE license_history ADD CONSTRAINT license_history_license_id_fkey FOREIGN KEY (license_id) REFERENCES licenses (id);
ALTER TABLE licenses ADD CONSTRAINT licenses_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id);
ALTER TABLE activations ADD CONSTRAINT activations_license_id_fkey FOREIGN KEY (license_id) REFERENCES licenses (id) ON DELETE CASCADE;
SQL
STEP="vacuum analyze" t psql_db -c "VACUUM ANALYZE licenses"
psql_db -c "SELECT 'rows: ' || count(*) || ', table+indexes: ' || pg_size_pretty(pg_total_relation_size('licenses')) FROM licenses"
