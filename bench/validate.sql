-- pgbench custom script: the exact statement licensd's validate runs on a miss (diesel's SQL
-- for db::licenses::find_for_check without a device: no activation rows are read), on a
-- random seeded key. Run with -M prepared (diesel caches it as a prepared statement) and
-- -D n=ROWS.
\set i random(1, :n)
SELECT "licenses"."id", "licenses"."key", "licenses"."product_id", "licenses"."status", "licenses"."email", "licenses"."customer_name", "licenses"."max_activations", "licenses"."activations_count", "licenses"."expires_at", "licenses"."source", "licenses"."stripe_checkout_session_id", "licenses"."stripe_line_item_id", "licenses"."stripe_line_item_seq", "licenses"."stripe_payment_intent_id", "licenses"."stripe_customer_id", "licenses"."stripe_subscription_id", "licenses"."metadata", "licenses"."created_at", "licenses"."updated_at", "products"."id", "products"."slug", "products"."name", "products"."max_activations", "products"."duration_days", "products"."key_prefix", "products"."created_at", "products"."updated_at" FROM ("licenses" INNER JOIN "products" ON ("licenses"."product_id" = "products"."id")) WHERE ("licenses"."key" = bench_key(:i)) LIMIT 1;
