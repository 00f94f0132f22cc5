-- Signed checkpoints of the audit chain (SPEC §6, docs/audit.md): each one is an Ed25519
-- signature, by a key the database never holds, over (env, seq, last_id, last_hash, rows,
-- at). Written under the chain head lock, so instances never write two with one seq.
-- They are also emitted outside (log line, webhook); `audit verify --public-key` checks them.
CREATE TABLE console_audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    env       TEXT NOT NULL,
    last_id   BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    row_count BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);
