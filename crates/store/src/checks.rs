//! Status check results (SPEC §10): written by the `status-poll` job, read by the grid.
//!
//! Results are telemetry, like a session's `last_seen_at`: one row per poll, kept for a
//! week. What is audited is a check *changing* state, recorded in the same transaction as
//! the results that show the change ([`AuditTx::insert_check_results`]).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{AuditTx, Result, Store, StoreError};

/// What one poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    /// Answered, but slower than half the timeout or with another 2xx/3xx status.
    Degraded,
    /// No answer in time, no connection, not HTTP, or an unexpected status.
    Down,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Degraded => "degraded",
            CheckStatus::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Option<CheckStatus> {
        match s {
            "ok" => Some(CheckStatus::Ok),
            "degraded" => Some(CheckStatus::Degraded),
            "down" => Some(CheckStatus::Down),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub app: String,
    pub check: String,
    /// Unix milliseconds, UTC.
    pub at: i64,
    pub status: CheckStatus,
    pub http_status: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

fn result(row: &AnyRow) -> Result<CheckResult> {
    let status: String = row.try_get("status")?;
    Ok(CheckResult {
        app: row.try_get("app")?,
        check: row.try_get("check_name")?,
        at: row.try_get("at")?,
        status: CheckStatus::parse(&status)
            .ok_or_else(|| StoreError::Invalid(format!("bad check status `{status}`")))?,
        http_status: row.try_get("http_status")?,
        latency_ms: row.try_get("latency_ms")?,
        error: row.try_get("error")?,
    })
}

const COLS: &str = "app, check_name, at, status, http_status, latency_ms, error";

async fn insert(conn: &mut AnyConnection, results: &[CheckResult]) -> Result<()> {
    for r in results {
        sqlx::query(
            "INSERT INTO console_check_results (app, check_name, at, status, http_status, latency_ms, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.app)
        .bind(&r.check)
        .bind(r.at)
        .bind(r.status.as_str())
        .bind(r.http_status)
        .bind(r.latency_ms)
        .bind(r.error.as_deref().map(|e| e.chars().take(500).collect::<String>()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Record poll results that change no check's state (telemetry; see the module doc).
    pub async fn insert_check_results(&self, results: &[CheckResult]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert(&mut tx, results).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest result of every (app, check) that has one.
    pub async fn latest_check_results(&self) -> Result<Vec<CheckResult>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_check_results WHERE id IN
               (SELECT MAX(id) FROM console_check_results GROUP BY app, check_name)
             ORDER BY app, check_name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(result).collect()
    }

    /// The newest `limit` results of one check, newest first.
    pub async fn check_results(
        &self,
        app: &str,
        check: &str,
        limit: u32,
    ) -> Result<Vec<CheckResult>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_check_results WHERE app = $1 AND check_name = $2
             ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        )))
        .bind(app)
        .bind(check)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(result).collect()
    }

    /// Every result of one check since `since` (unix ms), oldest first, at most `limit`
    /// (the newest ones when there are more).
    pub async fn check_results_since(
        &self,
        app: &str,
        check: &str,
        since: i64,
        limit: u32,
    ) -> Result<Vec<CheckResult>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_check_results WHERE app = $1 AND check_name = $2 AND at >= $3
             ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 50_000)
        )))
        .bind(app)
        .bind(check)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows.iter().map(result).collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    /// When a check entered its `current` state: the first result after the newest result
    /// in another state (or its first result ever).
    pub async fn check_last_change(
        &self,
        app: &str,
        check: &str,
        current: CheckStatus,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(at) FROM console_check_results WHERE app = $1 AND check_name = $2 AND id >
               COALESCE((SELECT MAX(id) FROM console_check_results WHERE app = $1 AND check_name = $2 AND status <> $3), 0)",
        )
        .bind(app)
        .bind(check)
        .bind(current.as_str())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Drop results older than `before` (unix ms). Returns how many went.
    pub async fn prune_check_results(&self, before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM console_check_results WHERE at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

impl AuditTx {
    /// Record poll results inside an audited transaction (when a check changed state and
    /// the change is recorded with them).
    pub async fn insert_check_results(&mut self, results: &[CheckResult]) -> Result<()> {
        insert(self.conn(), results).await
    }
}
