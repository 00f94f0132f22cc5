-- Nothing to create on SQLite: other processes' changes to the file are seen through
-- `PRAGMA data_version` (crates/store/src/changes.rs). This file keeps the two migration
-- folders' names in step with postgres/0008_change_notify.sql.
SELECT 1;
