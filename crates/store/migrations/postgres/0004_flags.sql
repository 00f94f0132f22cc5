-- Feature flags (SPEC §7), PostgreSQL. Kept in step with ../sqlite/0004_flags.sql.
-- Definitions are the flag's storage JSON (raxx_core::flags::Flag). Versions are per flag
-- and never reused: a removed and re-added flag continues after its highest version.

-- The live flag state of each app of this console's env.
CREATE TABLE console_flags (
    app        TEXT NOT NULL,
    flag_key   TEXT NOT NULL,
    definition TEXT NOT NULL,
    version    BIGINT NOT NULL,
    enabled    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (app, flag_key)
);

-- Every change of every flag. definition is NULL when the change removed the flag.
CREATE TABLE console_flag_history (
    id           BIGSERIAL PRIMARY KEY,
    app          TEXT NOT NULL,
    flag_key     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    definition   TEXT,
    changed_by   TEXT NOT NULL,
    changed_at   BIGINT NOT NULL,
    via          TEXT NOT NULL CHECK (via IN ('apply', 'promotion', 'kill')),
    promotion_id BIGINT,
    reason       TEXT
);
CREATE INDEX console_flag_history_flag ON console_flag_history(app, flag_key, id);

-- One row per app: `revision` grows with every change of the app's flags (the OFREP
-- cache's cheap "has anything changed?" check); the last applied flags file (staging).
CREATE TABLE console_flag_apps (
    app             TEXT PRIMARY KEY,
    revision        BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    last_file       TEXT,
    last_file_diff  TEXT,
    last_file_at    BIGINT,
    last_file_by    TEXT
);

-- Prod promotions. flags: JSON list of {key, new, base_version}; content_hash binds them.
CREATE TABLE console_flag_promotions (
    id              BIGSERIAL PRIMARY KEY,
    target_app      TEXT NOT NULL,
    requested_by    BIGINT NOT NULL,
    reason          TEXT NOT NULL,
    flags           TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'applied', 'rejected', 'stale', 'expired')),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    decided_by      BIGINT,
    decided_at      BIGINT,
    decision_reason TEXT,
    applied_at      BIGINT
);
CREATE INDEX console_flag_promotions_status ON console_flag_promotions(status, target_app, id);

-- An approval is bound to the content it approved and the prod versions it was based on.
CREATE TABLE console_flag_approvals (
    id            BIGSERIAL PRIMARY KEY,
    promotion_id  BIGINT NOT NULL UNIQUE REFERENCES console_flag_promotions(id),
    approved_by   BIGINT NOT NULL,
    content_hash  TEXT NOT NULL,
    base_versions TEXT NOT NULL,
    approved_at   BIGINT NOT NULL
);
