-- pgbench custom script: Postgres's ceiling for what validate needs, a prepared point read
-- of a license by key joined to its product, over a hot set of :hot keys (default 64).
-- Run with -M prepared -D hot=64.
\set i random(1, :hot)
SELECT l.id, l.status, l.expires_at, l.max_activations, l.activations_count, p.id, p.slug
FROM licenses l JOIN products p ON p.id = l.product_id WHERE l.key = bench_key(:i);
