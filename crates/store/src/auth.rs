//! Sign-in plumbing: WebAuthn ceremony state, break-glass login links, invites.
//! Every token here is stored as its SHA-256 and is single use.

use raxx_core::opaque::{hash_token, new_token};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AuditTx, Result, Store, StoreError, now_ms};

/// Login links live 10 minutes (SPEC §3).
pub const LOGIN_LINK_TTL_MS: i64 = 10 * 60_000;
/// Invites live 72 hours.
pub const INVITE_TTL_MS: i64 = 72 * 3_600_000;
/// WebAuthn ceremonies must finish within 5 minutes.
pub const CEREMONY_TTL_MS: i64 = 5 * 60_000;

#[derive(Debug, Clone)]
pub struct Ceremony {
    pub kind: String,
    pub email: Option<String>,
    pub state: String,
    pub context: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invite {
    pub id: i64,
    pub email: String,
    pub group_name: String,
    pub created_by: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The start of the [`StoreError::Conflict`] message of a second pending invite for one
/// address (the unique index `console_invites_one_pending`).
pub const PENDING_INVITE_CONFLICT: &str = "a pending invite exists for this address";

impl Invite {
    pub fn state(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.accepted_at.is_some() {
            "accepted"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "pending"
        }
    }
}

fn invite(r: &AnyRow) -> Result<Invite> {
    Ok(Invite {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        group_name: r.try_get("group_name")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        accepted_at: r.try_get("accepted_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const INVITE_COLS: &str =
    "id, email, group_name, created_by, created_at, expires_at, accepted_at, revoked_at";

impl Store {
    /// Keep a ceremony's server-side state; returns its id (which the browser echoes).
    pub async fn put_ceremony(
        &self,
        kind: &str,
        email: Option<&str>,
        state: &str,
        context: &serde_json::Value,
    ) -> Result<String> {
        let id = new_token("");
        sqlx::query("DELETE FROM console_ceremonies WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO console_ceremonies (id, kind, email, state, context, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(kind)
            .bind(email)
            .bind(state)
            .bind(context.to_string())
            .bind(now_ms() + CEREMONY_TTL_MS)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Take (and delete) a ceremony; `None` when unknown, expired or already used.
    pub async fn take_ceremony(&self, id: &str, kind: &str) -> Result<Option<Ceremony>> {
        let row = sqlx::query(
            "DELETE FROM console_ceremonies WHERE id = $1 AND kind = $2 RETURNING email, state, context, expires_at",
        )
        .bind(id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if now_ms() >= expires_at {
            return Ok(None);
        }
        let context: String = row.try_get("context")?;
        Ok(Some(Ceremony {
            kind: kind.to_string(),
            email: row.try_get("email")?,
            state: row.try_get("state")?,
            context: serde_json::from_str(&context).unwrap_or_default(),
        }))
    }

    pub async fn invites(&self) -> Result<Vec<Invite>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLS} FROM console_invites ORDER BY id DESC LIMIT 200"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invite).collect()
    }

    /// A usable (pending, unexpired) invite by its token.
    /// The invite a link's token names, in whatever state it is (used, revoked, expired):
    /// so the invite page can say which and what to do.
    pub async fn invite_by_token_any_state(&self, token: &str) -> Result<Option<Invite>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLS} FROM console_invites WHERE token_hash = $1"
        )))
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invite).transpose()
    }

    pub async fn invite_by_token(&self, token: &str) -> Result<Option<Invite>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITE_COLS} FROM console_invites WHERE token_hash = $1"
        )))
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await?;
        let now = now_ms();
        Ok(row
            .as_ref()
            .map(invite)
            .transpose()?
            .filter(|i| i.state(now) == "pending"))
    }
}

impl AuditTx {
    /// A one-time login link token for `email`, valid 10 minutes.
    pub async fn create_login_link(&mut self, email: &str) -> Result<String> {
        let token = new_token("rxl_");
        let now = now_ms();
        sqlx::query("INSERT INTO console_login_links (token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash_token(&token))
            .bind(raxx_core::config::normalise_email(email))
            .bind(now)
            .bind(now + LOGIN_LINK_TTL_MS)
            .execute(self.conn())
            .await?;
        Ok(token)
    }

    /// Use a login link: returns its email once; `None` if unknown, used or expired.
    pub async fn consume_login_link(&mut self, token: &str) -> Result<Option<String>> {
        let now = now_ms();
        Ok(sqlx::query_scalar(
            "UPDATE console_login_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING email",
        )
        .bind(now)
        .bind(hash_token(token))
        .fetch_optional(self.conn())
        .await?)
    }

    pub async fn create_invite(
        &mut self,
        email: &str,
        group: &str,
        created_by: i64,
    ) -> Result<(String, i64)> {
        let token = new_token("rxi_");
        let now = now_ms();
        let email = raxx_core::config::normalise_email(email);
        // An unused invite that expired no longer holds its address (it still reads
        // "expired"): the unique index `console_invites_one_pending` is over the others.
        sqlx::query(
            "UPDATE console_invites SET closed_at = $1 WHERE email = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND closed_at IS NULL AND expires_at <= $1",
        )
        .bind(now)
        .bind(&email)
        .execute(self.conn())
        .await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO console_invites (token_hash, email, group_name, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(hash_token(&token))
        .bind(&email)
        .bind(group)
        .bind(created_by)
        .bind(now)
        .bind(now + INVITE_TTL_MS)
        .fetch_one(self.conn())
        .await;
        match inserted {
            Ok(id) => Ok((token, id)),
            // Another pending invite for this address (a concurrent request won the race):
            // the database refuses the second, whatever the caller's check saw.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("{PENDING_INVITE_CONFLICT}: {email}"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn revoke_invite(&mut self, id: i64) -> Result<Invite> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE console_invites SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND accepted_at IS NULL RETURNING {INVITE_COLS}"
        )))
        .bind(now_ms())
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref()
            .map(invite)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("pending invite {id}")))
    }

    /// Mark an invite accepted, once, by its token's hash. Returns it, or `None` if it
    /// is no longer pending.
    pub async fn accept_invite(&mut self, token_hash: &str) -> Result<Option<Invite>> {
        let now = now_ms();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE console_invites SET accepted_at = $1 WHERE token_hash = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 RETURNING {INVITE_COLS}"
        )))
        .bind(now)
        .bind(token_hash)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(invite).transpose()
    }
}
