-- licensd schema. Every invariant the service relies on is a constraint here,
-- so it holds across any number of server processes sharing the database.

CREATE TABLE products (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    max_activations integer CHECK (max_activations >= 0),
    duration_days   integer CHECK (duration_days > 0),
    key_prefix      text CHECK (key_prefix ~ '^[A-Z0-9]{1,16}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A Stripe price belongs to exactly one product: the price id is the key.
CREATE TABLE product_prices (
    stripe_price_id text PRIMARY KEY CHECK (length(stripe_price_id) BETWEEN 1 AND 255),
    product_id      uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE
);
CREATE INDEX product_prices_product_id_idx ON product_prices (product_id);

CREATE TABLE licenses (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key                         text NOT NULL UNIQUE CHECK (key ~ '^([A-Z0-9]{1,16}-)?[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$'),
    product_id                  uuid NOT NULL REFERENCES products (id),
    status                      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    email                       text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    customer_name               text,
    max_activations             integer CHECK (max_activations >= 0),
    -- Kept in step with the activations table in the same transaction; the
    -- conditional UPDATE on this column is what enforces the seat limit.
    activations_count           integer NOT NULL DEFAULT 0 CHECK (activations_count >= 0),
    expires_at                  timestamptz,
    source                      text NOT NULL CHECK (source IN ('stripe', 'manual')),
    stripe_checkout_session_id  text,
    stripe_line_item_id         text,
    -- Position of this license within its line item's quantity (0-based).
    stripe_line_item_seq        integer,
    stripe_payment_intent_id    text,
    stripe_customer_id          text,
    stripe_subscription_id      text,
    metadata                    jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT licenses_stripe_source_check CHECK (
        source = 'manual'
        OR (stripe_checkout_session_id IS NOT NULL AND stripe_line_item_id IS NOT NULL AND stripe_line_item_seq IS NOT NULL)
    ),
    -- A checkout session's line item is minted once, whatever events arrive.
    CONSTRAINT licenses_stripe_line_item_unique UNIQUE (stripe_checkout_session_id, stripe_line_item_id, stripe_line_item_seq)
);
CREATE INDEX licenses_product_id_idx ON licenses (product_id, created_at);
CREATE INDEX licenses_email_idx ON licenses (lower(email));
CREATE INDEX licenses_payment_intent_idx ON licenses (stripe_payment_intent_id) WHERE stripe_payment_intent_id IS NOT NULL;
CREATE INDEX licenses_subscription_idx ON licenses (stripe_subscription_id) WHERE stripe_subscription_id IS NOT NULL;
CREATE INDEX licenses_created_at_idx ON licenses (created_at, id);

CREATE TABLE activations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    license_id   uuid NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    fingerprint  text NOT NULL CHECK (length(fingerprint) BETWEEN 1 AND 255),
    name         text CHECK (length(name) <= 255),
    ip           text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT activations_license_fingerprint_unique UNIQUE (license_id, fingerprint)
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- The idempotency record of Stripe webhooks: one row per event id, ever.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    event_type  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL,
    payload     jsonb NOT NULL
);

-- One row per email, written in the same transaction as the change that causes it.
CREATE TABLE email_outbox (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL CHECK (kind IN ('license_keys')),
    recipient       text NOT NULL,
    license_ids     uuid[] NOT NULL CHECK (cardinality(license_ids) > 0),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- While 'sending', the claim expires at this time so a crashed worker's row is retried.
    locked_until    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CONSTRAINT email_outbox_sent_check CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX email_outbox_license_ids_idx ON email_outbox USING gin (license_ids);
