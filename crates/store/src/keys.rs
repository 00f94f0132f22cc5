//! App API keys. The secret is shown once; the table keeps its SHA-256.

use raxx_core::gate::KeyKind;
use raxx_core::secret::{hash_token, new_token};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AuditTx, Result, Store, StoreError, now_ms};

#[derive(Debug, Clone, Serialize)]
pub struct AppKey {
    pub id: i64,
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

const COLS: &str =
    "id, app, kind, name, created_at, created_by, rotated_from, grace_until, revoked_at";

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
}

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
        rotated_from: Option<i64>,
        now: i64,
    ) -> Result<(String, i64)> {
        let secret = new_token(match kind {
            KeyKind::Client => "rxc_",
            KeyKind::Deploy => "rxd_",
            KeyKind::Read => "rxr_",
        });
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO console_app_keys (app, kind, name, secret_hash, created_at, created_by, rotated_from) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(app)
        .bind(kind.as_str())
        .bind(name)
        .bind(hash_token(&secret))
        .bind(now)
        .bind(created_by)
        .bind(rotated_from)
        .fetch_one(self.conn())
        .await?;
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
            .insert_app_key(&old.app, old.kind, &old.name, rotated_by, Some(id), now)
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
