-- Passkeys belong to their operator (SPEC §3, issue 19): a signed-in operator adds a passkey
-- only after a fresh assertion (a step-up, bound to the session, short-lived), and every
-- passkey added or removed is shown to its owner until they acknowledge it.
-- Kept in step with ../postgres/0009_passkeys.sql.

-- One pending step-up per session: set by a fresh passkey assertion, taken (deleted) by the
-- registration it allows. Stale rows are ignored (created_at) and removed when replaced.
CREATE TABLE console_passkey_stepups (
    session_id TEXT PRIMARY KEY,
    admin_id   BIGINT NOT NULL REFERENCES console_admins(id),
    created_at BIGINT NOT NULL
);

-- "A new passkey was added on …" / "a passkey was removed on …": no passkey material, only
-- the name the owner gave it and who made the change.
CREATE TABLE console_passkey_notices (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id     BIGINT NOT NULL REFERENCES console_admins(id),
    kind         TEXT NOT NULL CHECK (kind IN ('added', 'removed')),
    passkey_name TEXT NOT NULL,
    by_admin_id  BIGINT,
    created_at   BIGINT NOT NULL,
    seen_at      BIGINT
);
CREATE INDEX console_passkey_notices_admin ON console_passkey_notices(admin_id, seen_at);
