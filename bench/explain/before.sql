-- The validate statement before issue 14 (diesel's SQL for find_for_check), as a generic
-- prepared plan: diesel prepares it once and binds NULL for "no fingerprint / no id".
SET plan_cache_mode = force_generic_plan;
PREPARE v(text, text, uuid) AS
SELECT l.*, p.*, a.* FROM licenses l JOIN products p ON l.product_id = p.id
LEFT JOIN activations a ON a.license_id = l.id AND (a.fingerprint = $2 OR a.id = $3)
WHERE l.key = $1 LIMIT 1;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE v(bench_key(42), NULL, NULL);
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE v(bench_key(42), 'dev-3', NULL);
