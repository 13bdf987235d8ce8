DROP TABLE stripe_reversals;
