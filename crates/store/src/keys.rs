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
        let secret = new_token(match kind {
            KeyKind::Client => "rxc_",
            KeyKind::Deploy => "rxd_",
            KeyKind::Read => "rxr_",
        });
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO console_app_keys (app, kind, name, secret_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(app)
        .bind(kind.as_str())
        .bind(name)
        .bind(hash_token(&secret))
        .bind(now_ms())
        .bind(created_by)
        .fetch_one(self.conn())
        .await?;
        Ok((secret, id))
    }
}
