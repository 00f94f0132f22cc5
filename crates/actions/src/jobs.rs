//! The scheduled jobs as operators drive them: a run requested by hand, which the scheduler
//! (`raxx-jobs`) claims on its next tick.

use raxx_core::audit::Outcome;
use raxx_core::jobs::JOB_NAMES;

use crate::actor::Caller;
use crate::console::Console;
use crate::error::{Error, Result};

/// Queue a run of `name` for the scheduler, audited with the operator as actor.
pub async fn run_now(state: &Console, ctx: &Caller, name: &str) -> Result<i64> {
    if !JOB_NAMES.contains(&name) {
        return Err(Error::NotFound(format!(
            "job `{name}` (the jobs are {})",
            JOB_NAMES.join(", ")
        )));
    }
    let mut tx = state.store.begin().await?;
    let id = tx.request_job_run(name, &ctx.actor).await?;
    tx.record(
        ctx.event("job.run_now", Outcome::Allowed)
            .target("job", name)
            .with("request", id),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}
