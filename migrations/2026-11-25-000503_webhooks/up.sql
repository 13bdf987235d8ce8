-- Webhooks to the seller: endpoints, and an outbox of deliveries written in the same
-- transaction as the change they announce.
CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    url             text NOT NULL CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2000),
    -- Needed to sign each delivery, so kept as given (like LICENSD_STRIPE_WEBHOOK_SECRETS);
    -- shown once at creation, never logged, never returned after.
    secret          text NOT NULL CHECK (length(secret) >= 16),
    -- The secret before the last rotation: deliveries carry a signature under each.
    previous_secret text,
    -- Event types delivered; empty: all.
    event_types     text[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Order of writing: deliveries of one license go out in this order.
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL CHECK (event_type IN ('license.created', 'license.updated',
                        'activation.created', 'activation.deleted', 'email.failed')),
    license_id      uuid,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CONSTRAINT webhook_deliveries_delivered_check CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
    CONSTRAINT webhook_deliveries_event_unique UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_license_idx ON webhook_deliveries (endpoint_id, license_id, seq) WHERE status = 'pending';
