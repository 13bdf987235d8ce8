-- The dashboard's status filter: the rare statuses by an index of their own (newest
-- first), and expired licenses by their expiry.
CREATE INDEX licenses_status_idx ON licenses (status, created_at, id) WHERE status <> 'active';
CREATE INDEX licenses_expires_at_idx ON licenses (expires_at) WHERE expires_at IS NOT NULL;
