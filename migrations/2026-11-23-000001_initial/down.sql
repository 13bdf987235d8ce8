DROP TABLE email_outbox;
DROP TABLE stripe_events;
DROP TABLE api_keys;
DROP TABLE activations;
DROP TABLE licenses;
DROP TABLE product_prices;
DROP TABLE products;
