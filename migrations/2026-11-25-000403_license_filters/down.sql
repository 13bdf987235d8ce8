DROP INDEX licenses_expires_at_idx;
DROP INDEX licenses_status_idx;
