//! App API keys. The secret is shown once; the table keeps its SHA-256.
//!
//! A key *token* keeps its id across rotations (SPEC §8): each row of `console_app_keys`
//! is one *version* (one secret), and `token_id` names the token (the id of its first
//! version). The `*_token` functions act on a token; the others on one version.

use std::collections::HashMap;

use raxx_core::gate::KeyKind;
use raxx_core::opaque::{hash_token, new_token};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AuditTx, Result, Store, StoreError, now_ms};

#[derive(Debug, Clone, Serialize)]
pub struct AppKey {
    /// This version's row.
    pub id: i64,
    /// The token this version belongs to (`key:<token_id>`), the same across rotations.
    pub token_id: i64,
    pub app: String,
    pub kind: KeyKind,
    pub name: String,
    pub created_at: i64,
    pub created_by: String,
    pub rotated_from: Option<i64>,
    pub grace_until: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl AppKey {
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.grace_until.is_none_or(|g| g > now)
    }
}

fn app_key(r: &AnyRow) -> Result<AppKey> {
    let kind: String = r.try_get("kind")?;
    Ok(AppKey {
        id: r.try_get("id")?,
        token_id: r.try_get("token_id")?,
        app: r.try_get("app")?,
        kind: kind.parse().map_err(StoreError::Invalid)?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        rotated_from: r.try_get("rotated_from")?,
        grace_until: r.try_get("grace_until")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const COLS: &str = "id, COALESCE(token_id, id) AS token_id, app, kind, name, created_at, created_by, rotated_from, grace_until, revoked_at";

impl Store {
    /// A live key by its secret (revoked keys and keys past their grace period are not).
    pub async fn api_key_by_secret(&self, secret: &str) -> Result<Option<AppKey>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_app_keys WHERE secret_hash = $1"
        )))
        .bind(hash_token(secret))
        .fetch_optional(&self.pool)
        .await?;
        let now = now_ms();
        Ok(row
            .as_ref()
            .map(app_key)
            .transpose()?
            .filter(|k| k.is_live(now)))
    }

    pub async fn app_key(&self, id: i64) -> Result<Option<AppKey>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_app_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(app_key).transpose()
    }

    /// Keys rotated away from whose grace period has ended but that are not marked
    /// revoked yet (the rotation sweep marks them).
    pub async fn app_keys_past_grace(&self, now: i64) -> Result<Vec<AppKey>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_app_keys WHERE revoked_at IS NULL AND grace_until IS NOT NULL AND grace_until <= $1 ORDER BY id"
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_key).collect()
    }

    pub async fn app_keys(&self, app: Option<&str>) -> Result<Vec<AppKey>> {
        let rows = match app {
            Some(app) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLS} FROM console_app_keys WHERE app = $1 ORDER BY id"
                )))
                .bind(app)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLS} FROM console_app_keys ORDER BY app, id"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(app_key).collect()
    }

    /// Every version of the token `key:<token_id>`, oldest first (empty: no such token).
    pub async fn app_key_versions(&self, token_id: i64) -> Result<Vec<AppKey>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_app_keys WHERE COALESCE(token_id, id) = $1 ORDER BY id"
        )))
        .bind(token_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_key).collect()
    }

    /// When each key version was last used (by version id), as last flushed.
    pub async fn app_key_last_used(&self) -> Result<HashMap<i64, i64>> {
        let rows = sqlx::query("SELECT key_id, last_used_at FROM console_app_key_usage")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key_id")?, r.try_get("last_used_at")?)))
            .collect()
    }

    /// Record when key versions were last used: `(version id, at)` pairs, in one
    /// statement per [`USAGE_BATCH`]. Bookkeeping (like a session's `last_seen_at`): no
    /// audit row, and a later time never goes backwards.
    pub async fn record_key_uses(&self, uses: &[(i64, i64)]) -> Result<()> {
        for chunk in uses.chunks(USAGE_BATCH) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO console_app_key_usage (key_id, last_used_at) VALUES {} \
                 ON CONFLICT (key_id) DO UPDATE SET last_used_at = CASE \
                 WHEN excluded.last_used_at > console_app_key_usage.last_used_at \
                 THEN excluded.last_used_at ELSE console_app_key_usage.last_used_at END",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, at) in chunk {
                q = q.bind(*id).bind(*at);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// Most key versions one usage statement writes.
pub const USAGE_BATCH: usize = 200;

impl AuditTx {
    /// Issue a key; returns the secret (shown once) and the key's id.
    pub async fn create_app_key(
        &mut self,
        app: &str,
        kind: KeyKind,
        name: &str,
        created_by: &str,
    ) -> Result<(String, i64)> {
        self.insert_app_key(app, kind, name, created_by, None, now_ms())
            .await
    }

    async fn insert_app_key(
        &mut self,
        app: &str,
        kind: KeyKind,
        name: &str,
        created_by: &str,
        rotated_from: Option<(i64, i64)>,
        now: i64,
    ) -> Result<(String, i64)> {
        // rotated_from: (the version replaced, its token); a new token is its own first version.
        let secret = new_token(match kind {
            KeyKind::Client => "rxc_",
            KeyKind::Deploy => "rxd_",
            KeyKind::Read => "rxr_",
        });
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO console_app_keys (app, kind, name, secret_hash, created_at, created_by, rotated_from, token_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(app)
        .bind(kind.as_str())
        .bind(name)
        .bind(hash_token(&secret))
        .bind(now)
        .bind(created_by)
        .bind(rotated_from.map(|(version, _)| version))
        .bind(rotated_from.map(|(_, token)| token))
        .fetch_one(self.conn())
        .await?;
        if rotated_from.is_none() {
            sqlx::query("UPDATE console_app_keys SET token_id = id WHERE id = $1")
                .bind(id)
                .execute(self.conn())
                .await?;
        }
        Ok((secret, id))
    }

    async fn app_key_in_tx(&mut self, id: i64) -> Result<AppKey> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_app_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref()
            .map(app_key)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("key:{id}")))
    }

    /// Dual-phase rotation (SPEC §8): a new key of the same app, kind and name works at
    /// once; key `id` keeps working until `grace_until` (`grace_until <= now` ends it
    /// now). Returns the new secret (shown once) and the new key. Refuses a key that was
    /// already rotated or revoked, and one whose own predecessor is still in its grace
    /// period (one previous key at a time).
    pub async fn rotate_app_key(
        &mut self,
        id: i64,
        grace_until: i64,
        rotated_by: &str,
        now: i64,
    ) -> Result<(String, AppKey)> {
        let old = self.app_key_in_tx(id).await?;
        if old.revoked_at.is_some() || old.grace_until.is_some() {
            return Err(StoreError::Conflict(format!(
                "key:{id} was already rotated or revoked; rotate the key that replaced it"
            )));
        }
        if let Some(prev) = old.rotated_from {
            let prev = self.app_key_in_tx(prev).await?;
            if prev.is_live(now) {
                return Err(StoreError::Conflict(format!(
                    "the previous key of key:{id} (key:{}) is still in its grace period; revoke it first (revoke-previous) or wait until it ends",
                    prev.id
                )));
            }
        }
        let ends_now = grace_until <= now;
        let done = sqlx::query(
            "UPDATE console_app_keys SET grace_until = $1, revoked_at = $2 WHERE id = $3 AND revoked_at IS NULL AND grace_until IS NULL",
        )
        .bind(grace_until.max(now))
        .bind(ends_now.then_some(now))
        .bind(id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "key:{id} changed while it was being rotated"
            )));
        }
        let (secret, new_id) = self
            .insert_app_key(
                &old.app,
                old.kind,
                &old.name,
                rotated_by,
                Some((id, old.token_id)),
                now,
            )
            .await?;
        let new = self.app_key_in_tx(new_id).await?;
        Ok((secret, new))
    }

    /// End the grace period of the key that key `id` replaced, now. Returns that
    /// previous key. `Conflict` when there is no previous key still working.
    pub async fn revoke_previous_app_key(&mut self, id: i64, now: i64) -> Result<AppKey> {
        let key = self.app_key_in_tx(id).await?;
        let previous = match key.rotated_from {
            Some(prev) => Some(self.app_key_in_tx(prev).await?),
            None => None,
        };
        let Some(previous) = previous.filter(|p| p.is_live(now)) else {
            return Err(StoreError::Conflict(format!(
                "key:{id} has no previous key in its grace period"
            )));
        };
        sqlx::query(
            "UPDATE console_app_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(previous.id)
        .execute(self.conn())
        .await?;
        Ok(AppKey {
            revoked_at: Some(now),
            ..previous
        })
    }

    /// The versions of token `key:<token_id>` inside this transaction, oldest first.
    async fn versions_in_tx(&mut self, token_id: i64) -> Result<Vec<AppKey>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_app_keys WHERE COALESCE(token_id, id) = $1 ORDER BY id"
        )))
        .bind(token_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(app_key).collect()
    }

    /// Rotate the token `key:<token_id>` (dual-phase, SPEC §8): its current version keeps
    /// working until `grace_until`, a new version works at once, and the token keeps its
    /// id. Returns the new secret (shown once), the new version and its number (1 for a
    /// token's first version, one more per rotation). `NotFound` when the
    /// token does not exist (or `token_id` names a later version, not a token);
    /// `Conflict` while a previous version is still in its grace period (one at a time)
    /// or when no version is current.
    pub async fn rotate_app_key_token(
        &mut self,
        token_id: i64,
        grace_until: i64,
        rotated_by: &str,
        now: i64,
    ) -> Result<(String, AppKey, usize)> {
        let versions = self.token_versions(token_id).await?;
        if let Some(previous) = versions
            .iter()
            .find(|v| v.grace_until.is_some() && v.is_live(now))
        {
            return Err(StoreError::Conflict(format!(
                "the previous version of key:{token_id} (created {}) is still in its grace period; revoke it first (revoke-previous) or wait until it ends",
                previous.created_at
            )));
        }
        let Some(current) = versions
            .iter()
            .rev()
            .find(|v| v.revoked_at.is_none() && v.grace_until.is_none())
        else {
            return Err(StoreError::Conflict(format!(
                "key:{token_id} has no current version to rotate (every version was revoked)"
            )));
        };
        let (secret, new) = self
            .rotate_app_key(current.id, grace_until, rotated_by, now)
            .await?;
        Ok((secret, new, versions.len() + 1))
    }

    /// End the grace period of the previous version of token `key:<token_id>` now.
    /// Returns that version. `Conflict` when no previous version is still working.
    pub async fn revoke_previous_app_key_token(
        &mut self,
        token_id: i64,
        now: i64,
    ) -> Result<AppKey> {
        let versions = self.token_versions(token_id).await?;
        let Some(previous) = versions
            .into_iter()
            .find(|v| v.grace_until.is_some() && v.is_live(now))
        else {
            return Err(StoreError::Conflict(format!(
                "key:{token_id} has no previous version in its grace period"
            )));
        };
        let done = sqlx::query(
            "UPDATE console_app_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(previous.id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "the previous version of key:{token_id} changed while it was being revoked"
            )));
        }
        Ok(AppKey {
            revoked_at: Some(now),
            ..previous
        })
    }

    /// The versions of a token, refusing an id that is not a token's.
    async fn token_versions(&mut self, token_id: i64) -> Result<Vec<AppKey>> {
        let versions = self.versions_in_tx(token_id).await?;
        if versions.is_empty() {
            return Err(StoreError::NotFound(format!("key:{token_id}")));
        }
        Ok(versions)
    }

    /// Mark a key whose grace period ended as revoked (at the end of its grace period),
    /// so the inventory need not recompute it. `false` when it needed no marking.
    pub async fn finish_app_key_grace(&mut self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE console_app_keys SET revoked_at = grace_until WHERE id = $1 AND revoked_at IS NULL AND grace_until IS NOT NULL AND grace_until <= $2",
        )
        .bind(id)
        .bind(now)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
