//! raxx-console's scheduled jobs (SPEC §10).
//!
//! - [`schedule`]: cron expressions from `[jobs.<name>]`, the defaults, start-up refusals.
//! - [`scheduler`]: the tokio loop; a lease per (job, tick) so several instances on one
//!   PostgreSQL run each tick once; every run recorded; a panicking job is a failed run.
//! - [`context`]: what a run gets — its `system:<job>` principal and the write gate.
//! - One file per job: [`status_poll`], [`token_rotation_sweep`], [`promotion_expiry`],
//!   [`session_purge`], [`audit_digest`], [`notify_delivery`].

pub mod audit_digest;
pub mod checkpoints;
pub mod context;
pub mod notify_delivery;
pub mod promotion_expiry;
pub mod schedule;
pub mod scheduler;
pub mod session_purge;
pub mod status_poll;
pub mod token_rotation_sweep;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use raxx_core::rbac::Resource;

pub use context::{JobCtx, Refusal, system_roles};
pub use schedule::{JobSchedule, ScheduleError};
pub use scheduler::{Scheduler, SchedulerHandle};

/// What a run reports: one line for the jobs page, and the writes the gate refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    pub message: String,
    pub refused: Vec<String>,
}

impl JobReport {
    pub fn ok(message: impl Into<String>) -> Self {
        JobReport {
            message: message.into(),
            refused: Vec::new(),
        }
    }
}

/// A run that failed (the scheduler records it and carries on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl From<raxx_store::StoreError> for JobError {
    fn from(e: raxx_store::StoreError) -> Self {
        JobError(e.to_string())
    }
}

impl From<raxx_actions::Error> for JobError {
    fn from(e: raxx_actions::Error) -> Self {
        JobError(e.to_string())
    }
}

pub type JobFuture = Pin<Box<dyn Future<Output = Result<JobReport, JobError>> + Send>>;

/// One kind of job. Implementations live one per file.
pub trait Job: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Used when `[jobs.<name>]` does not set `schedule`.
    fn default_schedule(&self) -> &'static str;
    /// The resource the job writes: its system roles and every gate check name it.
    fn resource(&self) -> Resource;
    /// How long a run may hold its tick's lease before it is stopped.
    fn lease(&self) -> Duration {
        Duration::from_secs(600)
    }
    fn run(&self, ctx: JobCtx) -> JobFuture;
}

/// The console's jobs, in the order the jobs page lists them.
pub fn builtin_jobs() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(status_poll::StatusPoll),
        Arc::new(token_rotation_sweep::TokenRotationSweep),
        Arc::new(promotion_expiry::PromotionExpiry),
        Arc::new(session_purge::SessionPurge),
        Arc::new(audit_digest::AuditDigest),
        Arc::new(notify_delivery::NotifyDelivery),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_jobs_are_the_ones_the_jobs_page_lists() {
        let names: Vec<_> = builtin_jobs().iter().map(|j| j.name()).collect();
        assert_eq!(names, raxx_core::jobs::JOB_NAMES);
        for job in builtin_jobs() {
            schedule::parse_cron(job.default_schedule())
                .unwrap_or_else(|e| panic!("{}: {e}", job.name()));
        }
    }
}
