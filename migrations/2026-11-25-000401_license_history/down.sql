DROP TABLE license_history;
DROP FUNCTION license_history_append_only();
