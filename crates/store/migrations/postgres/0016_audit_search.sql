-- Audit log search (issue 17). Targets are filtered as `type id`; free text reads the
-- action, target and reason as one string (crates/store/src/audit.rs AUDIT_SEARCH_TEXT),
-- answered by a trigram index where the pg_trgm extension may be created (it is a trusted
-- extension since PostgreSQL 13, and offered by the managed services). Where it may not,
-- the console still starts and free text scans the log in id order.
CREATE INDEX console_audit_target_type ON console_audit_log(target_type, target_id, id);
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX console_audit_search ON console_audit_log USING gin (
        (action || ' ' || COALESCE(target_type, '') || ' ' || COALESCE(target_id, '') || ' ' || COALESCE(reason, '')) gin_trgm_ops
    );
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): audit free-text search scans the log', SQLERRM;
END
$$;
