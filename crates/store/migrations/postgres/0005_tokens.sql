-- Provider tokens (SPEC §8): the `[[apps.tokens]]` of a provider other than `local`,
-- synced from config, with the authorization ids a rotation moves. Never a token value.
-- App keys (provider `local`) stay in console_app_keys; the inventory joins both.
CREATE TABLE console_provider_tokens (
    id                        BIGSERIAL PRIMARY KEY,
    app                       TEXT NOT NULL,
    name                      TEXT NOT NULL,
    provider                  TEXT NOT NULL,
    -- The authorization in use now; config seeds it, rotations move it.
    authorization_id          TEXT,
    -- The config's authorization_id when last adopted: a changed config value is adopted.
    config_authorization_id   TEXT,
    -- The authorization a rotation replaced; deleted at previous_grace_until or on demand.
    previous_authorization_id TEXT,
    previous_grace_until      BIGINT,
    created_at                BIGINT NOT NULL,
    rotated_at                BIGINT,
    rotated_by                TEXT,
    max_age_days              BIGINT,
    -- 'active', or 'removed' once the token left the config.
    state                     TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'removed')),
    -- A rotation or revocation in flight holds this lease, so two never race.
    busy_until                BIGINT,
    -- The last failed provider call (step and reason, never a secret), until one succeeds.
    last_error                TEXT,
    UNIQUE (app, name)
);
