-- A token keeps its id across rotations (SPEC §8, issue 17). An app key token is a
-- lineage of versions in console_app_keys: each row is one version (one secret), and
-- token_id is the id of the lineage's first row, which is the token's id (`key:<token_id>`).
-- Rotation adds a version with the same token_id; `rotate` and `revoke-previous` name the
-- token, never a version.
ALTER TABLE console_app_keys ADD COLUMN token_id BIGINT;

-- Existing lineages: follow rotated_from back to the first key.
WITH RECURSIVE lineage(id, root) AS (
    SELECT id, id FROM console_app_keys WHERE rotated_from IS NULL
    UNION ALL
    SELECT k.id, l.root FROM console_app_keys k JOIN lineage l ON k.rotated_from = l.id
)
UPDATE console_app_keys
SET token_id = (SELECT root FROM lineage WHERE lineage.id = console_app_keys.id);
UPDATE console_app_keys SET token_id = id WHERE token_id IS NULL;

CREATE INDEX console_app_keys_token ON console_app_keys(token_id);

-- "Last used" per key version: bookkeeping flushed in batches from the verified-key cache
-- (crates/web/src/keycache.rs), never a write per request and never audited. Its own table,
-- so a flush does not notify the key cache's change signal (0008 triggers watch
-- console_app_keys, not this table).
CREATE TABLE console_app_key_usage (
    key_id       BIGINT PRIMARY KEY,
    last_used_at BIGINT NOT NULL
);
