-- A subscription checkout applies the subscription events that arrived before it:
-- find them by the subscription's id in the stored payload.
CREATE INDEX stripe_events_subscription_idx ON stripe_events ((payload->'data'->'object'->>'id'))
    WHERE event_type LIKE 'customer.subscription.%';
