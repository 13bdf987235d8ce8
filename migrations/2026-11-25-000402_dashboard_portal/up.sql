-- Seller accounts for the dashboard; passwords as argon2id PHC strings.
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_idx ON users (lower(email));

-- Signed-in browsers: a seller (user_id) or a buyer in the portal (buyer_email).
-- Only the SHA-256 of the cookie's token is stored.
CREATE TABLE web_sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    buyer_email  text CHECK (length(buyer_email) BETWEEN 3 AND 320),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CONSTRAINT web_sessions_one_kind CHECK ((user_id IS NULL) <> (buyer_email IS NULL))
);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

-- Failed sign-ins and sign-in link requests, by email and by client address, for throttling.
CREATE TABLE login_attempts (
    id        bigserial PRIMARY KEY,
    key       text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_key_idx ON login_attempts (key, at);

-- Single-use, short-lived portal sign-in links; only the token's SHA-256 is stored.
CREATE TABLE portal_links (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    email        text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);

-- The outbox also carries portal sign-in links. The link travels in `link_url` only
-- until the email is sent (or given up), then it is wiped.
ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_kind_check;
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_kind_check CHECK (kind IN ('license_keys', 'portal_link'));
ALTER TABLE email_outbox ADD COLUMN link_url text;
CREATE INDEX email_outbox_status_idx ON email_outbox (status, created_at) WHERE status IN ('pending', 'failed');

-- The dashboard's search: keys by any part (trigram), emails by prefix, Stripe ids.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX licenses_key_trgm_idx ON licenses USING gin (key gin_trgm_ops);
CREATE INDEX licenses_email_prefix_idx ON licenses (lower(email) text_pattern_ops);
CREATE INDEX licenses_customer_idx ON licenses (stripe_customer_id) WHERE stripe_customer_id IS NOT NULL;
CREATE INDEX licenses_session_idx ON licenses (stripe_checkout_session_id) WHERE stripe_checkout_session_id IS NOT NULL;
-- The overview's activations per day.
CREATE INDEX activations_created_at_idx ON activations (created_at);
CREATE INDEX stripe_events_received_at_idx ON stripe_events (received_at);
