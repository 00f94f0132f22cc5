-- Issue 19, identity. Kept in step with ../postgres/0010_identity.sql.
-- Who invited each operator (NULL: bootstrap, config or a login link). Two-person review
-- refuses an approver in the requester's invite line (crates/core/src/promotion.rs).
ALTER TABLE console_admins ADD COLUMN invited_by BIGINT;

-- Failed sign-in and enrolment attempts, counted per (account, source), per source and
-- per account for throttling (crates/core/src/throttle.rs). Only failures that were
-- answered are recorded (a throttled attempt is not), so one source adds at most a few
-- hundred rows an hour; rows older than an hour are deleted as new ones arrive.
CREATE TABLE console_auth_failures (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    source  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX console_auth_failures_account ON console_auth_failures(account, at);
CREATE INDEX console_auth_failures_source ON console_auth_failures(source, at);
CREATE INDEX console_auth_failures_at ON console_auth_failures(at);
