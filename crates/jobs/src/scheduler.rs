//! The scheduler: one tokio loop per console process.
//!
//! Every instance computes the same ticks from the same cron expressions. For each due
//! tick it tries to INSERT the lease row `(job, tick)`; the primary key lets exactly one
//! instance's INSERT land (`ON CONFLICT DO NOTHING`), and only that instance runs the tick.
//! Missed ticks (the process was down or busy) are skipped, not caught up.
//!
//! Each run is spawned on its own task and watched by a supervisor that records the run
//! (`ok`, `failed` — including a panic — or `refused`) and releases the lease. A run is
//! stopped when its lease expires, and at shutdown after a short grace (never past the
//! lease): the job's writes are transactions, so stopping one at an await point rolls its
//! open transaction back.
//!
//! "Run now" requests (queued by the jobs page) are claimed by whichever scheduler sees
//! them first (`UPDATE … WHERE claimed_by IS NULL`) and run as manual runs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use raxx_actions::Console;
use raxx_store::jobs::{PublishedSchedule, RunKind, RunOutcome};
use raxx_store::{Store, now_ms};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use crate::schedule::{JobSchedule, ScheduleError, resolve};
use crate::{Job, JobCtx, JobError, JobFuture, JobReport, builtin_jobs};

/// Check results are kept a week; leases, runs and claimed requests a month.
const CHECK_RETENTION_MS: i64 = 7 * 86_400_000;
const JOB_RETENTION_MS: i64 = 30 * 86_400_000;

pub struct Scheduler {
    state: Console,
    jobs: Vec<JobSchedule>,
    holder: String,
    /// How often the loop looks for "run now" requests (and its longest sleep).
    poll: Duration,
    /// How long a run may keep going after shutdown starts (never past its lease).
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("holder", &self.holder)
            .field("jobs", &self.jobs)
            .finish()
    }
}

/// A running scheduler; [`SchedulerHandle::stop`] ends it at a safe point.
pub struct SchedulerHandle {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
    holder: String,
}

impl SchedulerHandle {
    /// Stop taking ticks, let running jobs finish (up to the grace, never past their
    /// lease), record them and release their leases, then return.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.join.await {
            tracing::error!(error = %e, "the scheduler loop ended abnormally");
        }
        tracing::info!(holder = %self.holder, "scheduler stopped");
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }
}

fn new_holder() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[..8])
}

impl Scheduler {
    /// The console's jobs with their schedules from `[jobs]`. A schedule that does not
    /// parse is a start-up error naming the job.
    pub fn from_config(state: Console) -> Result<Scheduler, ScheduleError> {
        Scheduler::with_jobs(state, builtin_jobs())
    }

    /// Any set of jobs (tests add their own), scheduled by `[jobs]` or their defaults.
    pub fn with_jobs(state: Console, jobs: Vec<Arc<dyn Job>>) -> Result<Scheduler, ScheduleError> {
        let jobs = resolve(&jobs, &state.cfg.config.jobs)?;
        Ok(Scheduler {
            state,
            jobs,
            holder: new_holder(),
            poll: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
        })
    }

    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn schedules(&self) -> &[JobSchedule] {
        &self.jobs
    }

    fn store(&self) -> &Store {
        &self.state.store
    }

    /// Start the loop on the current runtime.
    pub fn spawn(self) -> SchedulerHandle {
        let (stop, rx) = watch::channel(false);
        let holder = self.holder.clone();
        tracing::info!(%holder, jobs = self.jobs.len(), "scheduler started");
        let join = tokio::spawn(Arc::new(self).run_loop(rx));
        SchedulerHandle { stop, join, holder }
    }

    /// Run one tick of one job now, if this instance wins its lease; waits for the run.
    /// `None` when another instance (or an earlier call) holds the tick. For tests and
    /// operations; the loop does the same for every due tick.
    pub async fn run_tick(
        &self,
        name: &str,
        tick: i64,
    ) -> Result<Option<(RunOutcome, String)>, JobError> {
        let js = self
            .jobs
            .iter()
            .find(|j| j.job.name() == name)
            .ok_or_else(|| JobError(format!("no job `{name}`")))?;
        let (_stop, rx) = watch::channel(false);
        let mut set = JoinSet::new();
        let Some(run_id) = self
            .start(&mut set, js, tick, RunKind::Schedule, &rx)
            .await?
        else {
            return Ok(None);
        };
        while set.join_next().await.is_some() {}
        let run = self
            .store()
            .job_runs(Some(name), 20)
            .await?
            .into_iter()
            .find(|r| r.id == run_id)
            .ok_or_else(|| JobError(format!("run {run_id} vanished")))?;
        Ok(Some((run.outcome, run.message)))
    }

    async fn run_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut inflight = JoinSet::new();
        let now = Utc::now();
        let mut next: Vec<Option<DateTime<Utc>>> =
            self.jobs.iter().map(|j| j.next_after(now)).collect();
        for (js, n) in self.jobs.iter().zip(&next) {
            self.publish(js, *n).await;
        }
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let now = Utc::now();
            for (i, js) in self.jobs.iter().enumerate() {
                let Some(due) = next[i].filter(|d| *d <= now) else {
                    continue;
                };
                if js.enabled
                    && let Err(e) = self
                        .start(
                            &mut inflight,
                            js,
                            due.timestamp_millis(),
                            RunKind::Schedule,
                            &stop,
                        )
                        .await
                {
                    tracing::warn!(job = js.job.name(), error = %e, "could not start a scheduled run");
                }
                next[i] = js.next_after(now);
                self.publish(js, next[i]).await;
            }
            self.claim_requests(&mut inflight, &stop).await;
            while let Some(done) = inflight.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a run supervisor ended abnormally");
                }
            }
            if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                last_prune = Some(tokio::time::Instant::now());
                self.prune().await;
            }
            let until_due = next
                .iter()
                .flatten()
                .min()
                .and_then(|t| (*t - Utc::now()).to_std().ok())
                .unwrap_or(Duration::ZERO);
            let nap = until_due.min(self.poll).max(Duration::from_millis(5));
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        // A safe point: no new runs; running ones finish or are stopped, recorded and released.
        while let Some(done) = inflight.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a run supervisor ended abnormally");
            }
        }
    }

    async fn publish(&self, js: &JobSchedule, next: Option<DateTime<Utc>>) {
        let row = PublishedSchedule {
            job: js.job.name().to_string(),
            schedule: js.expr.clone(),
            enabled: js.enabled,
            next_run_at: next.filter(|_| js.enabled).map(|t| t.timestamp_millis()),
            holder: self.holder.clone(),
            updated_at: now_ms(),
        };
        if let Err(e) = self.store().publish_job_schedule(&row).await {
            tracing::warn!(job = js.job.name(), error = %e, "could not publish the schedule");
        }
    }

    async fn prune(&self) {
        let now = now_ms();
        if let Err(e) = self
            .store()
            .prune_check_results(now - CHECK_RETENTION_MS)
            .await
        {
            tracing::warn!(error = %e, "could not prune old check results");
        }
        if let Err(e) = self.store().prune_job_history(now - JOB_RETENTION_MS).await {
            tracing::warn!(error = %e, "could not prune old job history");
        }
    }

    async fn claim_requests(&self, set: &mut JoinSet<()>, stop: &watch::Receiver<bool>) {
        let requests = match self.store().open_job_requests().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not read run-now requests");
                return;
            }
        };
        for req in requests {
            let Some(js) = self.jobs.iter().find(|j| j.job.name() == req.job) else {
                continue;
            };
            match self.store().claim_job_request(req.id, &self.holder).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim a run-now request");
                    continue;
                }
            }
            match self
                .start(set, js, req.requested_at, RunKind::Manual, stop)
                .await
            {
                Ok(Some(run_id)) => {
                    if let Err(e) = self.store().link_job_request(req.id, run_id).await {
                        tracing::warn!(error = %e, "could not link a request to its run");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = %req.job, error = %e, "could not start a manual run")
                }
            }
        }
    }

    /// Take the lease (scheduled runs), record the run, spawn it under a supervisor.
    async fn start(
        &self,
        set: &mut JoinSet<()>,
        js: &JobSchedule,
        tick: i64,
        kind: RunKind,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<i64>, JobError> {
        let name = js.job.name();
        let lease_ms = i64::try_from(js.job.lease().as_millis()).unwrap_or(i64::MAX / 2);
        let expires_at = tick.max(now_ms()) + lease_ms;
        let store = self.store().clone();
        if kind == RunKind::Schedule
            && !store
                .try_acquire_lease(name, tick, &self.holder, expires_at)
                .await?
        {
            return Ok(None);
        }
        let run_id = match store.start_job_run(name, tick, kind, &self.holder).await {
            Ok(id) => id,
            Err(e) => {
                if kind == RunKind::Schedule {
                    let _ = store.release_lease(name, tick, &self.holder).await;
                }
                return Err(e.into());
            }
        };
        let mut ctx = JobCtx::new(self.state.clone(), name, js.job.resource(), tick, kind);
        ctx.webhook_url = js.webhook_url.clone();
        let run = Supervised {
            store,
            job: name,
            tick,
            kind,
            holder: self.holder.clone(),
            run_id,
            deadline_ms: expires_at,
            lease: js.job.lease(),
            grace: self.shutdown_grace,
        };
        set.spawn(run.supervise(js.job.run(ctx), stop.clone()));
        Ok(Some(run_id))
    }
}

/// One run being watched.
struct Supervised {
    store: Store,
    job: &'static str,
    tick: i64,
    kind: RunKind,
    holder: String,
    run_id: i64,
    /// The lease's expiry (unix ms): the run is stopped here at the latest.
    deadline_ms: i64,
    lease: Duration,
    grace: Duration,
}

impl Supervised {
    async fn supervise(self, run: JobFuture, mut stop: watch::Receiver<bool>) {
        let started = tokio::time::Instant::now();
        let mut handle = tokio::spawn(run);
        let left = Duration::from_millis(u64::try_from(self.deadline_ms - now_ms()).unwrap_or(0));
        let deadline = tokio::time::sleep(left);
        let grace = self.grace;
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(grace).await;
        };
        let (outcome, message) = tokio::select! {
            res = &mut handle => judge(res),
            _ = deadline => {
                handle.abort();
                let _ = (&mut handle).await;
                (RunOutcome::Failed, format!("ran past its lease ({} s) and was stopped", self.lease.as_secs()))
            }
            _ = shutdown => {
                handle.abort();
                let _ = (&mut handle).await;
                (RunOutcome::Failed, "stopped at shutdown before it finished".to_string())
            }
        };
        tracing::info!(
            job = self.job,
            run = self.run_id,
            outcome = outcome.as_str(),
            ms = started.elapsed().as_millis() as u64,
            "job run finished"
        );
        raxx_actions::metrics::job_run(self.job, outcome.as_str());
        if let Err(e) = self
            .store
            .finish_job_run(self.run_id, outcome, &message)
            .await
        {
            tracing::error!(job = self.job, error = %e, "could not record a run's outcome");
        }
        if self.kind == RunKind::Schedule
            && let Err(e) = self
                .store
                .release_lease(self.job, self.tick, &self.holder)
                .await
        {
            tracing::warn!(job = self.job, error = %e, "could not release a lease (it expires on its own)");
        }
    }
}

fn judge(res: Result<Result<JobReport, JobError>, JoinError>) -> (RunOutcome, String) {
    match res {
        Ok(Ok(report)) if report.refused.is_empty() => (RunOutcome::Ok, report.message),
        Ok(Ok(report)) => (
            RunOutcome::Refused,
            format!(
                "{}; refused by the write gate: {}",
                report.message,
                report.refused.join("; ")
            ),
        ),
        Ok(Err(e)) => (RunOutcome::Failed, e.0),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            (RunOutcome::Failed, format!("panicked: {text}"))
        }
        Err(_) => (RunOutcome::Failed, "cancelled".into()),
    }
}
