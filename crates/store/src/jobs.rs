//! Scheduled jobs' bookkeeping (SPEC §10): the lease that makes each tick run once across
//! instances, the runs, the "run now" requests and the schedules the running schedulers
//! publish for the jobs page.
//!
//! Leases, runs and published schedules are coordination records, written straight to the
//! pool like a session's `last_seen_at`; what a job *changes* goes through [`AuditTx`], and
//! so does an operator's "run now" request ([`AuditTx::request_job_run`]).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AuditTx, Result, Store, StoreError, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Schedule,
    Manual,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Schedule => "schedule",
            RunKind::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Running,
    Ok,
    Failed,
    /// The write gate refused (part of) what the job wanted to do.
    Refused,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<RunOutcome> {
        match s {
            "running" => Some(RunOutcome::Running),
            "ok" => Some(RunOutcome::Ok),
            "failed" => Some(RunOutcome::Failed),
            "refused" => Some(RunOutcome::Refused),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    /// The scheduled tick (unix ms), or the request time of a manual run.
    pub tick: i64,
    pub kind: RunKind,
    pub holder: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub outcome: RunOutcome,
    pub message: String,
}

fn run(row: &AnyRow) -> Result<JobRun> {
    let kind: String = row.try_get("run_kind")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(JobRun {
        id: row.try_get("id")?,
        job: row.try_get("job")?,
        tick: row.try_get("tick")?,
        kind: if kind == "manual" {
            RunKind::Manual
        } else {
            RunKind::Schedule
        },
        holder: row.try_get("holder")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
        outcome: RunOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::Invalid(format!("bad run outcome `{outcome}`")))?,
        message: row.try_get("message")?,
    })
}

const RUN_COLS: &str =
    "id, job, tick, run_kind, holder, started_at, finished_at, duration_ms, outcome, message";

/// A tick's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub job: String,
    pub tick: i64,
    pub holder: String,
    pub acquired_at: i64,
    pub expires_at: i64,
    pub released_at: Option<i64>,
}

/// What a running scheduler plans for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedSchedule {
    pub job: String,
    pub schedule: String,
    pub enabled: bool,
    pub next_run_at: Option<i64>,
    pub holder: String,
    pub updated_at: i64,
}

/// An operator's unclaimed "run now".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRequest {
    pub id: i64,
    pub job: String,
    pub requested_at: i64,
    pub requested_by: String,
}

impl Store {
    /// Try to take the lease of `(job, tick)`. Exactly one caller, on any instance, gets
    /// `true`: the primary key makes every other INSERT a no-op.
    pub async fn try_acquire_lease(
        &self,
        job: &str,
        tick: i64,
        holder: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO console_job_leases (job, tick, holder, acquired_at, expires_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job, tick) DO NOTHING",
        )
        .bind(job)
        .bind(tick)
        .bind(holder)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Mark a lease released (its run finished or was stopped).
    pub async fn release_lease(&self, job: &str, tick: i64, holder: &str) -> Result<()> {
        sqlx::query(
            "UPDATE console_job_leases SET released_at = $1 WHERE job = $2 AND tick = $3 AND holder = $4 AND released_at IS NULL",
        )
        .bind(now_ms())
        .bind(job)
        .bind(tick)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn lease(&self, job: &str, tick: i64) -> Result<Option<Lease>> {
        let row = sqlx::query(
            "SELECT job, tick, holder, acquired_at, expires_at, released_at FROM console_job_leases WHERE job = $1 AND tick = $2",
        )
        .bind(job)
        .bind(tick)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Lease {
                job: r.try_get("job")?,
                tick: r.try_get("tick")?,
                holder: r.try_get("holder")?,
                acquired_at: r.try_get("acquired_at")?,
                expires_at: r.try_get("expires_at")?,
                released_at: r.try_get("released_at")?,
            })
        })
        .transpose()
    }

    /// Leases that were never released (for tests and diagnostics).
    pub async fn unreleased_leases(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM console_job_leases WHERE released_at IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Record that a run started; returns its id.
    pub async fn start_job_run(
        &self,
        job: &str,
        tick: i64,
        kind: RunKind,
        holder: &str,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO console_job_runs (job, tick, run_kind, holder, started_at, outcome, message)
             VALUES ($1, $2, $3, $4, $5, 'running', '') RETURNING id",
        )
        .bind(job)
        .bind(tick)
        .bind(kind.as_str())
        .bind(holder)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Record how a run ended.
    pub async fn finish_job_run(&self, id: i64, outcome: RunOutcome, message: &str) -> Result<()> {
        let now = now_ms();
        let message: String = message.chars().take(2000).collect();
        let mut tx = self.pool.begin().await?;
        let job: Option<String> = sqlx::query_scalar(
            "UPDATE console_job_runs SET finished_at = $1, duration_ms = $1 - started_at, outcome = $2, message = $3 WHERE id = $4 RETURNING job",
        )
        .bind(now)
        .bind(outcome.as_str())
        .bind(message.clone())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        // A failed run is notified (`job.failing`), in the transaction that records it.
        if outcome == RunOutcome::Failed
            && let (Some(job), Some(rules)) = (job, self.notify_rules())
        {
            let mut n = raxx_core::notify::Notification::new(
                "job.failing",
                format!("Job {job} failed: {message}"),
            );
            n.link = Some(format!("{}/jobs", rules.origin));
            n.target_type = Some("job".into());
            n.target_id = Some(job);
            crate::notify::enqueue_in(&mut tx, &rules, &n).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs, newest first, of one job or of all.
    pub async fn job_runs(&self, job: Option<&str>, limit: u32) -> Result<Vec<JobRun>> {
        let limit = limit.clamp(1, 500);
        let rows = match job {
            Some(job) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {RUN_COLS} FROM console_job_runs WHERE job = $1 ORDER BY id DESC LIMIT {limit}"
                )))
                .bind(job)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {RUN_COLS} FROM console_job_runs ORDER BY id DESC LIMIT {limit}"
                )))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(run).collect()
    }

    /// The newest run of every job that has run.
    pub async fn last_job_runs(&self) -> Result<Vec<JobRun>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLS} FROM console_job_runs WHERE id IN (SELECT MAX(id) FROM console_job_runs GROUP BY job)"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run).collect()
    }

    /// A scheduler says what it plans for a job (every instance writes the same thing).
    pub async fn publish_job_schedule(&self, s: &PublishedSchedule) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_job_schedules (job, schedule, enabled, next_run_at, holder, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (job) DO UPDATE SET schedule = excluded.schedule, enabled = excluded.enabled,
               next_run_at = excluded.next_run_at, holder = excluded.holder, updated_at = excluded.updated_at",
        )
        .bind(&s.job)
        .bind(&s.schedule)
        .bind(i64::from(s.enabled))
        .bind(s.next_run_at)
        .bind(&s.holder)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn job_schedules(&self) -> Result<Vec<PublishedSchedule>> {
        let rows = sqlx::query(
            "SELECT job, schedule, enabled, next_run_at, holder, updated_at FROM console_job_schedules ORDER BY job",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PublishedSchedule {
                    job: r.try_get("job")?,
                    schedule: r.try_get("schedule")?,
                    enabled: r.try_get::<i64, _>("enabled")? != 0,
                    next_run_at: r.try_get("next_run_at")?,
                    holder: r.try_get("holder")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// "Run now" requests no scheduler has claimed yet, oldest first.
    pub async fn open_job_requests(&self) -> Result<Vec<JobRequest>> {
        let rows = sqlx::query(
            "SELECT id, job, requested_at, requested_by FROM console_job_requests WHERE claimed_by IS NULL ORDER BY id LIMIT 50",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobRequest {
                    id: r.try_get("id")?,
                    job: r.try_get("job")?,
                    requested_at: r.try_get("requested_at")?,
                    requested_by: r.try_get("requested_by")?,
                })
            })
            .collect()
    }

    /// Claim a request; exactly one scheduler gets `true`.
    pub async fn claim_job_request(&self, id: i64, holder: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE console_job_requests SET claimed_by = $1, claimed_at = $2 WHERE id = $3 AND claimed_by IS NULL",
        )
        .bind(holder)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn link_job_request(&self, id: i64, run_id: i64) -> Result<()> {
        sqlx::query("UPDATE console_job_requests SET run_id = $1 WHERE id = $2")
            .bind(run_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Unclaimed requests per job (the jobs page shows them as queued).
    pub async fn queued_job_requests(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT job, COUNT(*) AS n FROM console_job_requests WHERE claimed_by IS NULL GROUP BY job",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("job")?, r.try_get("n")?)))
            .collect()
    }

    /// Forget leases, runs and claimed requests older than `before` (unix ms).
    pub async fn prune_job_history(&self, before: i64) -> Result<u64> {
        let mut n = 0;
        for sql in [
            "DELETE FROM console_job_leases WHERE tick < $1",
            "DELETE FROM console_job_runs WHERE started_at < $1 AND outcome <> 'running'",
            "DELETE FROM console_job_requests WHERE requested_at < $1 AND claimed_by IS NOT NULL",
        ] {
            n += sqlx::query(sql)
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}

impl AuditTx {
    /// Queue a "run now" for any instance's scheduler to claim; returns the request id.
    pub async fn request_job_run(&mut self, job: &str, requested_by: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO console_job_requests (job, requested_at, requested_by) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(job)
        .bind(now_ms())
        .bind(requested_by)
        .fetch_one(self.conn())
        .await?)
    }
}
