-- Refunds and disputes as Stripe reported them, by the object that reported them (a
-- charge for a refund, a dispute for a dispute). Stripe does not order events, so a
-- refund can arrive before the checkout that mints its license: minting looks here,
-- in its own transaction, and applies what it finds.
CREATE TABLE stripe_reversals (
    source_id          text PRIMARY KEY,
    payment_intent_id  text,
    -- The subscription whose invoice the payment paid (charge -> invoice -> subscription).
    subscription_id    text,
    -- 'suspend' (dispute open) may later become 'reinstate' or 'revoke'; those two are final.
    action             text NOT NULL CHECK (action IN ('revoke', 'suspend', 'reinstate')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (payment_intent_id IS NOT NULL OR subscription_id IS NOT NULL)
);
CREATE INDEX stripe_reversals_payment_intent_idx ON stripe_reversals (payment_intent_id) WHERE payment_intent_id IS NOT NULL;
CREATE INDEX stripe_reversals_subscription_idx ON stripe_reversals (subscription_id) WHERE subscription_id IS NOT NULL;
