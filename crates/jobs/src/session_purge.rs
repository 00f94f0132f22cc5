//! `session-purge` (hourly by default): delete session rows that ended more than a day
//! ago (expired or revoked). Sessions are this console's own, so the target is its env.
//! Audited as `session.purge` with the count, when there was something to purge.

use raxx_core::audit::Outcome;
use raxx_core::rbac::Resource;
use raxx_store::now_ms;

use crate::{Job, JobCtx, JobError, JobFuture, JobReport};

/// How long an ended session row is kept (for the sessions page and investigations).
pub const KEEP_ENDED_MS: i64 = 86_400_000;

pub struct SessionPurge;

impl Job for SessionPurge {
    fn name(&self) -> &'static str {
        "session-purge"
    }
    fn default_schedule(&self) -> &'static str {
        "0 0 * * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Session
    }
    fn run(&self, ctx: JobCtx) -> JobFuture {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: JobCtx) -> Result<JobReport, JobError> {
    let env = ctx.state.env();
    if let Err(r) = ctx.authorize_run("sessions", env.as_str()).await {
        return Ok(JobReport {
            message: "nothing purged".into(),
            refused: vec![r.0],
        });
    }
    let cutoff = now_ms() - KEEP_ENDED_MS;
    let mut tx = ctx.state.store.begin().await?;
    let n = tx.purge_sessions_before(cutoff).await?;
    if n == 0 {
        tx.rollback().await?;
        return Ok(JobReport::ok("no ended sessions to purge"));
    }
    tx.record(
        ctx.event("session.purge", Outcome::Allowed)
            .with("purged", n as i64)
            .with("ended_before", cutoff),
    )
    .await?;
    tx.commit().await?;
    Ok(JobReport::ok(format!("{n} ended session(s) purged")))
}
