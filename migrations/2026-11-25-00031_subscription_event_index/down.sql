DROP INDEX IF EXISTS stripe_events_subscription_idx;
