//! An operator's own passkeys (SPEC §3 "Passkeys belong to their operator"): the step-up a
//! fresh assertion grants, renaming and removing, and the notices that tell the owner about
//! every passkey added or removed. No passkey material leaves this module except to the
//! WebAuthn code that verifies it.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::admins::StoredPasskey;
use crate::{AuditTx, Result, Store, now_ms};

/// A step-up (a fresh passkey assertion in this session) allows one passkey registration
/// that starts within 5 minutes.
pub const STEPUP_TTL_MS: i64 = 5 * 60_000;

/// A passkey as its owner sees it: no key material.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyInfo {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&StoredPasskey> for PasskeyInfo {
    fn from(p: &StoredPasskey) -> Self {
        PasskeyInfo {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// "A new passkey was added on …" / "a passkey was removed on …", until acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyNotice {
    pub id: i64,
    /// `added` or `removed`.
    pub kind: String,
    pub passkey_name: String,
    /// Who made the change, when it was not the owner (an administrator's removal).
    pub by_admin_id: Option<i64>,
    pub created_at: i64,
}

fn stored(r: &AnyRow) -> Result<StoredPasskey> {
    Ok(StoredPasskey {
        id: r.try_get("id")?,
        admin_id: r.try_get("admin_id")?,
        cred_id: r.try_get("cred_id")?,
        name: r.try_get("name")?,
        passkey: r.try_get("passkey")?,
        counter: r.try_get("counter")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

const PASSKEY_COLS: &str =
    "id, admin_id, cred_id, name, passkey, counter, created_at, last_used_at";

impl Store {
    pub async fn passkey_by_id(&self, id: i64) -> Result<Option<StoredPasskey>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASSKEY_COLS} FROM console_passkeys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored).transpose()
    }

    pub async fn passkey_by_cred(&self, cred_id: &str) -> Result<Option<StoredPasskey>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PASSKEY_COLS} FROM console_passkeys WHERE cred_id = $1"
        )))
        .bind(cred_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored).transpose()
    }

    /// Does `session_id` hold an unexpired step-up for `admin_id`?
    pub async fn stepup_fresh(&self, session_id: &str, admin_id: i64) -> Result<bool> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM console_passkey_stepups WHERE session_id = $1 AND admin_id = $2",
        )
        .bind(session_id)
        .bind(admin_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(at.is_some_and(|t| now_ms() - t < STEPUP_TTL_MS))
    }

    /// The owner's notices not yet acknowledged, oldest first.
    pub async fn passkey_notices(&self, admin_id: i64) -> Result<Vec<PasskeyNotice>> {
        let rows = sqlx::query(
            "SELECT id, kind, passkey_name, by_admin_id, created_at FROM console_passkey_notices WHERE admin_id = $1 AND seen_at IS NULL ORDER BY id LIMIT 50",
        )
        .bind(admin_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PasskeyNotice {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    passkey_name: r.try_get("passkey_name")?,
                    by_admin_id: r.try_get("by_admin_id")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }
}

impl AuditTx {
    /// Grant `session_id` a step-up (replacing any earlier one).
    pub async fn put_stepup(&mut self, session_id: &str, admin_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM console_passkey_stepups WHERE session_id = $1 OR created_at < $2")
            .bind(session_id)
            .bind(now_ms() - STEPUP_TTL_MS)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO console_passkey_stepups (session_id, admin_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(session_id)
        .bind(admin_id)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Use a step-up once: `true` if `session_id` held an unexpired one for `admin_id`.
    pub async fn take_stepup(&mut self, session_id: &str, admin_id: i64) -> Result<bool> {
        let at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM console_passkey_stepups WHERE session_id = $1 AND admin_id = $2 RETURNING created_at",
        )
        .bind(session_id)
        .bind(admin_id)
        .fetch_optional(self.conn())
        .await?;
        Ok(at.is_some_and(|t| now_ms() - t < STEPUP_TTL_MS))
    }

    pub async fn passkey_id_by_cred(&mut self, cred_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT id FROM console_passkeys WHERE cred_id = $1")
                .bind(cred_id)
                .fetch_one(self.conn())
                .await?,
        )
    }

    pub async fn passkey_count(&mut self, admin_id: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM console_passkeys WHERE admin_id = $1")
                .bind(admin_id)
                .fetch_one(self.conn())
                .await?,
        )
    }

    /// Rename a passkey of `admin_id`; returns the old name, `None` if it is not theirs.
    pub async fn rename_passkey(
        &mut self,
        id: i64,
        admin_id: i64,
        name: &str,
    ) -> Result<Option<String>> {
        let old: Option<String> =
            sqlx::query_scalar("SELECT name FROM console_passkeys WHERE id = $1 AND admin_id = $2")
                .bind(id)
                .bind(admin_id)
                .fetch_optional(self.conn())
                .await?;
        if old.is_some() {
            sqlx::query("UPDATE console_passkeys SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(self.conn())
                .await?;
        }
        Ok(old)
    }

    /// Delete a passkey; returns it (for its name and owner), `None` if unknown.
    pub async fn delete_passkey(&mut self, id: i64) -> Result<Option<StoredPasskey>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM console_passkeys WHERE id = $1 RETURNING {PASSKEY_COLS}"
        )))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(stored).transpose()
    }

    pub async fn add_passkey_notice(
        &mut self,
        admin_id: i64,
        kind: &str,
        passkey_name: &str,
        by_admin_id: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_passkey_notices (admin_id, kind, passkey_name, by_admin_id, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(admin_id)
        .bind(kind)
        .bind(passkey_name)
        .bind(by_admin_id)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Mark every notice of `admin_id` seen; returns how many were pending.
    pub async fn ack_passkey_notices(&mut self, admin_id: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE console_passkey_notices SET seen_at = $1 WHERE admin_id = $2 AND seen_at IS NULL",
        )
        .bind(now_ms())
        .bind(admin_id)
        .execute(self.conn())
        .await?
        .rows_affected())
    }
}
