-- Audit log search (issue 17). Targets are filtered as `type id`. Free text on SQLite
-- scans the log in id order (PostgreSQL has a trigram index; see its 0016).
CREATE INDEX console_audit_target_type ON console_audit_log(target_type, target_id, id);
