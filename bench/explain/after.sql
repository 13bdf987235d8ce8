-- The validate statements after issue 14 (db::licenses::find_for_check): no activation
-- rows without a device; an index lookup on (license_id, fingerprint) with one.
SET plan_cache_mode = force_generic_plan;
PREPARE v0(text) AS
SELECT l.*, p.* FROM licenses l JOIN products p ON l.product_id = p.id
WHERE l.key = $1 LIMIT 1;
PREPARE vf(text, text) AS
SELECT l.*, p.*, a.* FROM licenses l JOIN products p ON l.product_id = p.id
LEFT JOIN activations a ON a.license_id = l.id AND a.fingerprint = $2
WHERE l.key = $1 LIMIT 1;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE v0(bench_key(42));
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE vf(bench_key(42), 'dev-3');
