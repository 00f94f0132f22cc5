//! Identity lifecycle (issue 19): who invited whom, invites that die with their
//! creator's authority, and the failure counts that sign-in throttling decides on.

use raxx_core::audit::AuditEvent;
use raxx_core::promotion::InviteLine;
use raxx_core::throttle::{Failures, WINDOW_MS};
use sqlx::AnyConnection;

use crate::{AuditTx, Result, Store, now_ms};

/// How far an invite line is followed (a loop in the data cannot make it run away).
const MAX_INVITE_DEPTH: usize = 64;

/// `id` and the operators who brought it in, nearest first, read inside a transaction.
pub async fn invite_line(conn: &mut AnyConnection, id: i64) -> Result<InviteLine> {
    let mut inviters = Vec::new();
    let mut at = id;
    while inviters.len() < MAX_INVITE_DEPTH {
        let by: Option<Option<i64>> =
            sqlx::query_scalar("SELECT invited_by FROM console_admins WHERE id = $1")
                .bind(at)
                .fetch_optional(&mut *conn)
                .await?;
        match by.flatten() {
            Some(b) if b != id && !inviters.contains(&b) => {
                inviters.push(b);
                at = b;
            }
            _ => break,
        }
    }
    Ok(InviteLine { id, inviters })
}

impl Store {
    /// Who invited operator `id` (`None`: bootstrap, config or a login link).
    pub async fn invited_by(&self, id: i64) -> Result<Option<i64>> {
        let by: Option<Option<i64>> =
            sqlx::query_scalar("SELECT invited_by FROM console_admins WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(by.flatten())
    }

    /// Failed attempts for `account` and from `source` over the last hour.
    pub async fn auth_failures(&self, account: &str, source: &str) -> Result<Failures> {
        let since = now_ms() - WINDOW_MS;
        let account_source: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_auth_failures WHERE account = $1 AND source = $2 AND at >= $3",
        )
        .bind(account)
        .bind(source)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let by_source: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_auth_failures WHERE source = $1 AND at >= $2",
        )
        .bind(source)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let by_account: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_auth_failures WHERE account = $1 AND at >= $2",
        )
        .bind(account)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(Failures {
            account_source,
            source: by_source,
            account_elsewhere: by_account - account_source,
        })
    }

    /// Record a failed attempt by nobody (an unknown account, a bad assertion, a refusal
    /// of the throttle) without flooding the chain: its count for the throttle, and its
    /// audit row aggregated per (interval, source, route, reason) by
    /// [`Store::audit_anon_refusal`] (the first in full, the rest as one summary row).
    pub async fn count_auth_failure(
        &self,
        account: &str,
        d: &crate::anon_denials::AnonDenial<'_>,
        first: AuditEvent,
    ) -> Result<()> {
        let now = now_ms();
        let source = d.source.unwrap_or("unknown");
        sqlx::query("DELETE FROM console_auth_failures WHERE at < $1")
            .bind(now - WINDOW_MS)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO console_auth_failures (account, source, at) VALUES ($1, $2, $3)")
            .bind(account)
            .bind(source)
            .bind(now)
            .execute(&self.pool)
            .await?;
        self.audit_anon_refusal(d, first).await?;
        Ok(())
    }

    /// Record a failed sign-in or enrolment attempt and its audit row, in one transaction;
    /// counts older than the window are dropped on the way.
    pub async fn audit_auth_failure(
        &self,
        account: &str,
        source: &str,
        event: AuditEvent,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM console_auth_failures WHERE at < $1")
            .bind(now - WINDOW_MS)
            .execute(tx.conn())
            .await?;
        sqlx::query("INSERT INTO console_auth_failures (account, source, at) VALUES ($1, $2, $3)")
            .bind(account)
            .bind(source)
            .bind(now)
            .execute(tx.conn())
            .await?;
        tx.record(event).await?;
        tx.commit().await
    }
}

impl AuditTx {
    /// Record who invited a new operator.
    pub async fn set_invited_by(&mut self, admin_id: i64, by: i64) -> Result<()> {
        sqlx::query("UPDATE console_admins SET invited_by = $1 WHERE id = $2")
            .bind(by)
            .bind(admin_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Whether `email` has a pending invite, read inside this transaction.
    pub async fn has_pending_invite(&mut self, email: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_invites WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(raxx_core::config::normalise_email(email))
        .bind(now_ms())
        .fetch_one(self.conn())
        .await?;
        Ok(n > 0)
    }

    /// Revoke every pending invite `creator` made; returns their ids.
    pub async fn revoke_pending_invites_by(&mut self, creator: i64) -> Result<Vec<i64>> {
        let now = now_ms();
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE console_invites SET revoked_at = $1 WHERE created_by = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 RETURNING id",
        )
        .bind(now)
        .bind(creator)
        .fetch_all(self.conn())
        .await?;
        Ok(ids)
    }
}

/// What a login link is now, read without changing it (opening a link changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginLinkState {
    Valid { email: String, expires_at: i64 },
    Used { email: String, used_at: i64 },
    Expired { email: String },
    Unknown,
}

impl Store {
    pub async fn login_link_state(&self, token: &str) -> Result<LoginLinkState> {
        use sqlx::Row;
        let row = sqlx::query(
            "SELECT email, expires_at, used_at FROM console_login_links WHERE token_hash = $1",
        )
        .bind(raxx_core::opaque::hash_token(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(LoginLinkState::Unknown);
        };
        let email: String = row.try_get("email")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        Ok(match used_at {
            Some(used_at) => LoginLinkState::Used { email, used_at },
            None if now_ms() >= expires_at => LoginLinkState::Expired { email },
            None => LoginLinkState::Valid { email, expires_at },
        })
    }
}
