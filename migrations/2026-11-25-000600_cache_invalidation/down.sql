DROP TRIGGER products_cache_notify ON products;
DROP TRIGGER activations_cache_notify ON activations;
DROP TRIGGER licenses_cache_notify ON licenses;
DROP FUNCTION licensd_cache_notify();
