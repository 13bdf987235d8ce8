-- Seats that heal themselves (heartbeat leases), entitlements, what happens at
-- expiry, and the subscription state Stripe reports. Expand only: every new column
-- has a default, so running instances of the previous version keep working.

-- Seconds a device stays alive after it was last seen; NULL: until deactivated.
ALTER TABLE products ADD COLUMN heartbeat_seconds integer CHECK (heartbeat_seconds BETWEEN 10 AND 31536000);
-- Feature codes the product's licenses carry.
ALTER TABLE products ADD COLUMN entitlements text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(entitlements) <= 100 AND array_position(entitlements, NULL) IS NULL);
-- At expiry: refuse (revoke_access), or keep access to versions released up to the
-- paid date (maintain_access, like Keygen's MAINTAIN_ACCESS).
ALTER TABLE products ADD COLUMN expiry_behavior text NOT NULL DEFAULT 'revoke_access'
    CHECK (expiry_behavior IN ('revoke_access', 'maintain_access'));
-- Whether offline license files may outlive the heartbeat lease they were issued under.
ALTER TABLE products ADD COLUMN offline_allowed boolean NOT NULL DEFAULT false;

-- Per-license overrides: NULL takes the product's value; heartbeat 0 means no lease.
ALTER TABLE licenses ADD COLUMN heartbeat_seconds integer
    CHECK (heartbeat_seconds = 0 OR heartbeat_seconds BETWEEN 10 AND 31536000);
ALTER TABLE licenses ADD COLUMN entitlements text[]
    CHECK (cardinality(entitlements) <= 100 AND array_position(entitlements, NULL) IS NULL);

-- The subscription as Stripe last reported it. `subscription_state_at` is the
-- `created` time of the event (or the time of the API read) the state came from:
-- an older event never overwrites a newer state, whatever order they arrive in.
ALTER TABLE licenses ADD COLUMN subscription_status text CHECK (length(subscription_status) <= 64);
ALTER TABLE licenses ADD COLUMN subscription_state_at timestamptz;
ALTER TABLE licenses ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false;
-- While past_due or unpaid: the end of the payment grace; validate answers PAST_DUE after it.
ALTER TABLE licenses ADD COLUMN past_due_until timestamptz;

-- The activate path reclaims dead seats of one license: find them by last_seen_at.
CREATE INDEX activations_license_last_seen_idx ON activations (license_id, last_seen_at);
