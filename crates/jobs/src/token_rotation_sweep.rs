//! `token-rotation-sweep` (hourly by default): ends grace periods that are over, rotates
//! provider tokens past their max age, and leaves reminders for tokens a person must
//! rotate (SPEC §8). The work is `raxx_actions::tokens::rotation_sweep`, which puts every
//! token it touches through the write gate as `system:token-rotation-sweep`; this job
//! first passes the gate for the sweep itself (its target: this console's env).

use std::time::Duration;

use raxx_core::rbac::Resource;

use crate::{Job, JobCtx, JobError, JobFuture, JobReport};

pub struct TokenRotationSweep;

impl Job for TokenRotationSweep {
    fn name(&self) -> &'static str {
        "token-rotation-sweep"
    }
    fn default_schedule(&self) -> &'static str {
        "0 0 * * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Token
    }
    fn lease(&self) -> Duration {
        Duration::from_secs(900)
    }
    fn run(&self, ctx: JobCtx) -> JobFuture {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: JobCtx) -> Result<JobReport, JobError> {
    let env = ctx.state.env();
    if let Err(r) = ctx.authorize_run("tokens", env.as_str()).await {
        return Ok(JobReport {
            message: "nothing swept".into(),
            refused: vec![r.0],
        });
    }
    let report = raxx_actions::tokens::rotation_sweep(&ctx.state, &ctx.actor()).await?;
    if report.has_failures() {
        return Err(JobError(format!(
            "{}: {}",
            report.summary(),
            report.failures.join("; ")
        )));
    }
    Ok(JobReport::ok(report.summary()))
}
