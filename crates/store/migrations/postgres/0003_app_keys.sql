-- App API keys (SPEC §8): client keys for OFREP, deploy keys for flags apply, read keys
-- for the prod console's staging source. Only the SHA-256 of a secret is stored.
-- A rotated key keeps working until grace_until; revoked_at ends it at once.
CREATE TABLE console_app_keys (
    id           BIGSERIAL PRIMARY KEY,
    app          TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('client', 'deploy', 'read')),
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    created_by   TEXT NOT NULL,
    rotated_from BIGINT,
    grace_until  BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX console_app_keys_app ON console_app_keys(app, kind);
