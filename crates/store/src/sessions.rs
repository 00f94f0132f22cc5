//! Server-side sessions (SPEC §3): the cookie holds an opaque token, the table its
//! SHA-256. A session is valid only on the console of its `selected_env`.

use raxx_core::Env;
use raxx_core::opaque::{hash_token, new_token};
use raxx_core::rbac::{EnvScope, Grant, Role};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::admins::Admin;
use crate::{AuditTx, Result, Store, StoreError, now_ms};

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub id: String,
    pub admin_id: i64,
    pub selected_env: String,
    #[serde(skip)]
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

pub use raxx_core::session::{SessionPolicy, SessionRejection};

fn session(row: &AnyRow) -> Result<Session> {
    Ok(Session {
        id: row.try_get("id")?,
        admin_id: row.try_get("admin_id")?,
        selected_env: row.try_get("selected_env")?,
        csrf_token: row.try_get("csrf_token")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
    })
}

/// How often a session's `last_seen_at` is written.
const TOUCH_EVERY_MS: i64 = 5_000;

/// Session id → when this process last touched it.
static TOUCHED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, i64>>> =
    std::sync::LazyLock::new(Default::default);

/// Whether this request should write the touch: not when another request of this process
/// did within [`TOUCH_EVERY_MS`]. Other instances may touch too; that is harmless.
fn claim_touch(session_id: &str, now: i64) -> bool {
    let Ok(mut touched) = TOUCHED.lock() else {
        return true;
    };
    if touched
        .get(session_id)
        .is_some_and(|at| now - at < TOUCH_EVERY_MS)
    {
        return false;
    }
    if touched.len() >= 10_000 {
        touched.retain(|_, at| now - *at < TOUCH_EVERY_MS);
    }
    touched.insert(session_id.to_owned(), now);
    true
}

/// A signed-in request: the session, its operator and the operator's grants.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    pub admin: Admin,
    pub grants: Vec<Grant>,
}

const ADMIN_COLS: &str = "a.email, a.display_name, a.disabled, a.created_at AS admin_created_at";

const COLS: &str = "s.id, s.admin_id, s.selected_env, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, s.user_agent, s.ip";

impl Store {
    /// Look a cookie token up; on success the session's `last_seen_at` moves forward.
    pub async fn session_by_token(
        &self,
        token: &str,
        policy: SessionPolicy,
    ) -> Result<std::result::Result<(Session, Admin), SessionRejection>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS}, {ADMIN_COLS} FROM console_sessions s JOIN console_admins a ON a.id = s.admin_id WHERE s.token_hash = $1"
        )))
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Err(SessionRejection::Unknown));
        };
        self.accept(&row, policy).await
    }

    /// [`Store::session_by_token`] and the operator's grants, in one round trip: what the
    /// gate needs for every signed-in request.
    pub async fn signed_in(
        &self,
        token: &str,
        policy: SessionPolicy,
    ) -> Result<std::result::Result<SignedIn, SessionRejection>> {
        // One row per grant (one row with NULL grant columns when there is none).
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS}, {ADMIN_COLS}, r.group_name AS grant_group, r.role AS grant_role, r.env_scope AS grant_scope
             FROM console_sessions s JOIN console_admins a ON a.id = s.admin_id
             LEFT JOIN console_group_members m ON m.email = a.email
             LEFT JOIN console_admin_group_roles r ON r.group_name = m.group_name
             WHERE s.token_hash = $1"
        )))
        .bind(hash_token(token))
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(Err(SessionRejection::Unknown));
        };
        let (session, admin) = match self.accept(first, policy).await? {
            Ok(ok) => ok,
            Err(why) => return Ok(Err(why)),
        };
        let mut grants = Vec::with_capacity(rows.len());
        for r in &rows {
            let (Some(group), Some(role), Some(scope)) = (
                r.try_get::<Option<String>, _>("grant_group")?,
                r.try_get::<Option<String>, _>("grant_role")?,
                r.try_get::<Option<String>, _>("grant_scope")?,
            ) else {
                continue;
            };
            grants.push(Grant {
                group,
                role: role.parse::<Role>().map_err(StoreError::Invalid)?,
                env_scope: scope.parse::<EnvScope>().map_err(StoreError::Invalid)?,
            });
        }
        Ok(Ok(SignedIn {
            session,
            admin,
            grants,
        }))
    }

    /// Check a looked-up session row against the policy and this console's env, and
    /// touch it when due.
    async fn accept(
        &self,
        row: &AnyRow,
        policy: SessionPolicy,
    ) -> Result<std::result::Result<(Session, Admin), SessionRejection>> {
        let s = session(row)?;
        let admin = Admin {
            id: s.admin_id,
            email: row.try_get("email")?,
            display_name: row.try_get("display_name")?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            created_at: row.try_get("admin_created_at")?,
        };
        let now = now_ms();
        let facts = raxx_core::session::SessionFacts {
            selected_env: &s.selected_env,
            revoked_at: s.revoked_at,
            expires_at: s.expires_at,
            last_seen_at: s.last_seen_at,
            operator_disabled: admin.disabled,
        };
        if let Err(r) = raxx_core::session::judge(&facts, self.env, policy, now) {
            return Ok(Err(r));
        }
        // Touch at most every few seconds: an idle timeout does not need millisecond accuracy.
        // Of a burst of requests that all find the session due, only the first touches
        // (`claim_touch`): on SQLite the others would queue behind one writer for nothing.
        if now - s.last_seen_at > TOUCH_EVERY_MS && claim_touch(&s.id, now) {
            let touched = sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(&s.id)
                .execute(&self.pool)
                .await;
            // The touch is bookkeeping for the idle timeout: a read-only database, or a
            // busy SQLite writer under a burst of requests from one session, must not fail
            // the request (the next request touches again).
            if let Err(e) = touched {
                tracing::debug!(error = %e, session = %s.id, "last_seen_at not updated");
            }
        }
        Ok(Ok((
            Session {
                last_seen_at: now,
                ..s
            },
            admin,
        )))
    }

    pub async fn session_by_id(&self, id: &str) -> Result<Option<Session>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_sessions s WHERE s.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session).transpose()
    }

    /// Live sessions of this env (of one operator, or everyone's), newest first.
    pub async fn live_sessions(&self, admin_id: Option<i64>) -> Result<Vec<(Session, String)>> {
        let now = now_ms();
        let sql = format!(
            "SELECT {COLS}, a.email FROM console_sessions s JOIN console_admins a ON a.id = s.admin_id
             WHERE s.revoked_at IS NULL AND s.expires_at > $1 AND s.selected_env = $2 {} ORDER BY s.created_at DESC LIMIT 500",
            if admin_id.is_some() { "AND s.admin_id = $3" } else { "" }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(self.env.as_str());
        if let Some(id) = admin_id {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((session(r)?, r.try_get::<String, _>("email")?)))
            .collect()
    }
}

impl AuditTx {
    /// A new session with a fresh token (every login gets a new one). Returns the
    /// plaintext token for the cookie; only its hash is stored.
    pub async fn create_session(
        &mut self,
        admin_id: i64,
        env: Env,
        policy: SessionPolicy,
        user_agent: Option<&str>,
        ip: Option<&str>,
    ) -> Result<(String, Session)> {
        let token = new_token("rxs_");
        let now = now_ms();
        let s = Session {
            id: uuid::Uuid::new_v4().to_string(),
            admin_id,
            selected_env: env.as_str().to_string(),
            csrf_token: new_token(""),
            created_at: now,
            last_seen_at: now,
            expires_at: now + policy.absolute_ms,
            revoked_at: None,
            user_agent: user_agent.map(|u| u.chars().take(300).collect()),
            ip: ip.map(str::to_string),
        };
        sqlx::query(
            "INSERT INTO console_sessions (id, token_hash, admin_id, selected_env, csrf_token, created_at, last_seen_at, expires_at, user_agent, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&s.id)
        .bind(hash_token(&token))
        .bind(admin_id)
        .bind(&s.selected_env)
        .bind(&s.csrf_token)
        .bind(now)
        .bind(now)
        .bind(s.expires_at)
        .bind(&s.user_agent)
        .bind(&s.ip)
        .execute(self.conn())
        .await?;
        Ok((token, s))
    }

    pub async fn revoke_session(&mut self, id: &str) -> Result<()> {
        let n = sqlx::query(
            "UPDATE console_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(self.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("live session {id}")));
        }
        Ok(())
    }

    pub async fn revoke_sessions_of(&mut self, admin_id: i64) -> Result<u64> {
        Ok(sqlx::query("UPDATE console_sessions SET revoked_at = $1 WHERE admin_id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(admin_id)
            .execute(self.conn())
            .await?
            .rows_affected())
    }

    /// Delete sessions that ended more than a day ago (the `session-purge` job).
    pub async fn purge_sessions_before(&mut self, cutoff: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)")
            .bind(cutoff)
            .execute(self.conn())
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::claim_touch;

    #[test]
    fn only_the_first_of_a_burst_claims_the_touch() {
        let id = "claim-touch-test-session";
        assert!(claim_touch(id, 1_000_000));
        assert!(!claim_touch(id, 1_000_001));
        assert!(!claim_touch(id, 1_004_999));
        assert!(claim_touch(id, 1_005_000), "due again after the interval");
        assert!(claim_touch("claim-touch-other-session", 1_005_001));
    }
}
