-- Change notifications for the console's in-memory caches (crates/store/src/changes.rs).
-- Any statement that changes a table a cache reads notifies channel `raxx_changes` with the
-- table's name; PostgreSQL delivers it when (and only if) the transaction commits, to every
-- instance LISTENing (one notification per table per transaction).
--   console_app_keys                   -> API key verification (api_key_by_secret)
--   console_flag_apps, console_flags   -> OFREP / flag state (flag_revision, flag_state)

CREATE OR REPLACE FUNCTION raxx_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('raxx_changes', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER console_app_keys_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON console_app_keys
    FOR EACH STATEMENT EXECUTE FUNCTION raxx_notify_change();

CREATE TRIGGER console_flag_apps_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON console_flag_apps
    FOR EACH STATEMENT EXECUTE FUNCTION raxx_notify_change();

CREATE TRIGGER console_flags_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON console_flags
    FOR EACH STATEMENT EXECUTE FUNCTION raxx_notify_change();
