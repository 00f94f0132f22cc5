-- raxx-console foundation schema (PostgreSQL). Kept in step with ../sqlite/0001_foundation.sql.
-- Times are unix milliseconds (UTC) in BIGINT columns on both backends.

CREATE TABLE console_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE console_admins (
    id           BIGSERIAL PRIMARY KEY,
    email        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    disabled     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);

CREATE TABLE console_passkeys (
    id           BIGSERIAL PRIMARY KEY,
    admin_id     BIGINT NOT NULL REFERENCES console_admins(id),
    cred_id      TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    passkey      TEXT NOT NULL,
    counter      BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX console_passkeys_admin ON console_passkeys(admin_id);

CREATE TABLE console_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    admin_id     BIGINT NOT NULL REFERENCES console_admins(id),
    selected_env TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    user_agent   TEXT,
    ip           TEXT
);
CREATE INDEX console_sessions_admin ON console_sessions(admin_id);

CREATE TABLE console_groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE console_roles (
    name TEXT PRIMARY KEY
);

CREATE TABLE console_admin_group_roles (
    group_name TEXT NOT NULL REFERENCES console_groups(name),
    role       TEXT NOT NULL REFERENCES console_roles(name),
    env_scope  TEXT NOT NULL CHECK (env_scope IN ('staging', 'prod', 'any')),
    source     TEXT NOT NULL DEFAULT 'seed',
    PRIMARY KEY (group_name, role, env_scope)
);

-- Membership is by (case-folded) email, so config can name operators who have not
-- registered yet. source: config | invite | bootstrap | ui.
CREATE TABLE console_group_members (
    group_name TEXT NOT NULL REFERENCES console_groups(name),
    email      TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_name, email)
);
CREATE INDEX console_group_members_email ON console_group_members(email);

-- WebAuthn ceremony state, server-side, short TTL, single use.
CREATE TABLE console_ceremonies (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    email      TEXT,
    state      TEXT NOT NULL,
    context    TEXT NOT NULL DEFAULT '{}',
    expires_at BIGINT NOT NULL
);

CREATE TABLE console_login_links (
    token_hash TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE console_invites (
    id          BIGSERIAL PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    group_name  TEXT NOT NULL REFERENCES console_groups(name),
    created_by  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    revoked_at  BIGINT
);

CREATE TABLE console_audit_log (
    id          BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    session_id  TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    target_app  TEXT,
    outcome     TEXT NOT NULL,
    reason      TEXT,
    context     TEXT NOT NULL,
    request_id  TEXT,
    ip          TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX console_audit_actor ON console_audit_log(actor, id);
CREATE INDEX console_audit_action ON console_audit_log(action, id);
CREATE INDEX console_audit_outcome ON console_audit_log(outcome, id);
CREATE INDEX console_audit_target ON console_audit_log(target_id, id);
CREATE INDEX console_audit_at ON console_audit_log(at);

-- One row: the chain head. Every audited transaction locks it first, which serialises
-- chain writers across connections and instances.
CREATE TABLE console_audit_head (
    one       BIGINT PRIMARY KEY CHECK (one = 1),
    last_id   BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO console_audit_head (one, last_id, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
