//! The scheduler on SQLite and PostgreSQL: one run per tick across instances, a
//! panicking job, bad cron, shutdown at a safe point, "run now".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use raxx_actions::Console;
use raxx_core::Env;
use raxx_core::rbac::Resource;
use raxx_jobs::{Job, JobCtx, JobFuture, JobReport, Scheduler};
use raxx_store::Store;
use raxx_store::jobs::{RunKind, RunOutcome};
use raxx_testkit::TestConsole;

/// Counts its runs; optionally takes a while.
struct Counter {
    name: &'static str,
    schedule: &'static str,
    hits: Arc<AtomicUsize>,
    delay: Duration,
}

impl Job for Counter {
    fn name(&self) -> &'static str {
        self.name
    }
    fn default_schedule(&self) -> &'static str {
        self.schedule
    }
    fn resource(&self) -> Resource {
        Resource::Job
    }
    fn run(&self, _ctx: JobCtx) -> JobFuture {
        let hits = self.hits.clone();
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            hits.fetch_add(1, Ordering::SeqCst);
            Ok(JobReport::ok("counted"))
        })
    }
}

fn counter(
    name: &'static str,
    schedule: &'static str,
    delay_ms: u64,
) -> (Arc<Counter>, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    (
        Arc::new(Counter {
            name,
            schedule,
            hits: hits.clone(),
            delay: Duration::from_millis(delay_ms),
        }),
        hits,
    )
}

struct Panicker;

impl Job for Panicker {
    fn name(&self) -> &'static str {
        "panicker"
    }
    fn default_schedule(&self) -> &'static str {
        "* * * * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Job
    }
    fn run(&self, _ctx: JobCtx) -> JobFuture {
        Box::pin(async move {
            tokio::task::yield_now().await;
            panic!("boom");
        })
    }
}

/// Never finishes on its own.
struct Sleeper {
    lease: Duration,
}

impl Job for Sleeper {
    fn name(&self) -> &'static str {
        "sleeper"
    }
    fn default_schedule(&self) -> &'static str {
        "* * * * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Job
    }
    fn lease(&self) -> Duration {
        self.lease
    }
    fn run(&self, _ctx: JobCtx) -> JobFuture {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(JobReport::ok("woke up"))
        })
    }
}

/// A second instance: its own pool on the same database, same config.
async fn second_instance(console: &TestConsole, url: &str) -> Console {
    let store = Store::connect(url, console.env())
        .await
        .expect("second pool");
    Console::new((*console.state.cfg).clone(), store, None).expect("second state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_the_same_tick_run_it_once() {
    raxx_testkit::each_backend!(|url| {
        let console = TestConsole::start(Env::Staging, &url, "").await;
        let other = second_instance(&console, &url).await;
        let (job, hits) = counter("count", "* * * * * *", 20);
        let a = Scheduler::with_jobs(console.state.console(), vec![job.clone()]).unwrap();
        let b = Scheduler::with_jobs(other, vec![job]).unwrap();
        let base = 1_800_000_000_000i64;
        for i in 0..12 {
            let tick = base + i * 1000;
            let (ra, rb) = tokio::join!(a.run_tick("count", tick), b.run_tick("count", tick));
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            assert!(ra.is_some() ^ rb.is_some(), "tick {i}: {ra:?} / {rb:?}");
            // The same instance asking again does not run it twice either.
            assert!(a.run_tick("count", tick).await.unwrap().is_none());
        }
        assert_eq!(hits.load(Ordering::SeqCst), 12);
        let runs = console.store().job_runs(Some("count"), 100).await.unwrap();
        assert_eq!(runs.len(), 12);
        assert!(
            runs.iter()
                .all(|r| r.outcome == RunOutcome::Ok && r.duration_ms.is_some())
        );
        assert_eq!(console.store().unreleased_leases().await.unwrap(), 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_running_schedulers_share_every_tick_once() {
    raxx_testkit::each_backend!(|url| {
        let console = TestConsole::start(Env::Staging, &url, "").await;
        let other = second_instance(&console, &url).await;
        let (job, hits) = counter("count", "* * * * * *", 30);
        let a = Scheduler::with_jobs(console.state.console(), vec![job.clone()])
            .unwrap()
            .spawn();
        let b = Scheduler::with_jobs(other, vec![job]).unwrap().spawn();
        tokio::time::sleep(Duration::from_millis(3600)).await;
        a.stop().await;
        b.stop().await;
        let runs = console.store().job_runs(Some("count"), 100).await.unwrap();
        assert!(runs.len() >= 3, "{} runs", runs.len());
        let mut ticks: Vec<i64> = runs.iter().map(|r| r.tick).collect();
        ticks.sort();
        ticks.dedup();
        assert_eq!(ticks.len(), runs.len(), "a tick ran twice: {runs:?}");
        assert_eq!(hits.load(Ordering::SeqCst), runs.len());
        assert!(
            ticks.iter().all(|t| t % 1000 == 0),
            "ticks are whole seconds"
        );
        assert_eq!(console.store().unreleased_leases().await.unwrap(), 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_job_is_recorded_failed_and_the_loop_keeps_going() {
    raxx_testkit::each_backend!(|url| {
        let console = TestConsole::start(Env::Staging, &url, "").await;
        let (job, hits) = counter("count", "* * * * * *", 0);
        let s = Scheduler::with_jobs(console.state.console(), vec![Arc::new(Panicker), job])
            .unwrap()
            .spawn();
        tokio::time::sleep(Duration::from_millis(3300)).await;
        s.stop().await;
        let panics = console
            .store()
            .job_runs(Some("panicker"), 100)
            .await
            .unwrap();
        assert!(
            panics.len() >= 2,
            "the loop stopped after a panic: {panics:?}"
        );
        for r in &panics {
            assert_eq!(r.outcome, RunOutcome::Failed);
            assert_eq!(r.message, "panicked: boom");
        }
        let first_panic = panics.iter().map(|r| r.tick).min().unwrap();
        let counted = console.store().job_runs(Some("count"), 100).await.unwrap();
        assert!(
            counted.iter().any(|r| r.tick > first_panic),
            "nothing ran after the panic"
        );
        assert_eq!(hits.load(Ordering::SeqCst), counted.len());
        assert_eq!(console.store().unreleased_leases().await.unwrap(), 0);
    });
}

#[tokio::test]
async fn a_bad_cron_is_a_start_up_error_naming_the_job() {
    let console = TestConsole::start(
        Env::Staging,
        &raxx_testkit::sqlite_url(),
        "[jobs.session-purge]\nschedule = \"every other tuesday\"\n",
    )
    .await;
    let err = Scheduler::from_config(console.state.console())
        .unwrap_err()
        .to_string();
    assert!(err.contains("[jobs.session-purge]"), "{err}");
    assert!(err.contains("every other tuesday"), "{err}");
    assert!(!err.contains('\n'));
    let ok = TestConsole::start(
        Env::Staging,
        &raxx_testkit::sqlite_url(),
        "[jobs.session-purge]\nschedule = \"15 * * * *\"\n[jobs.audit-digest]\nschedule = \"0 0 7 * * *\"\nenabled = false\n",
    )
    .await;
    let s = Scheduler::from_config(ok.state.console()).unwrap();
    let purge = s
        .schedules()
        .iter()
        .find(|j| j.job.name() == "session-purge")
        .unwrap();
    assert_eq!(purge.expr, "15 * * * *");
    let digest = s
        .schedules()
        .iter()
        .find(|j| j.job.name() == "audit-digest")
        .unwrap();
    assert!(!digest.enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_ends_runs_at_a_safe_point_and_holds_no_lease() {
    raxx_testkit::each_backend!(|url| {
        let console = TestConsole::start(Env::Staging, &url, "").await;
        // A run that outlives its lease is stopped when the lease expires.
        let s = Scheduler::with_jobs(
            console.state.console(),
            vec![Arc::new(Sleeper {
                lease: Duration::from_millis(800),
            })],
        )
        .unwrap();
        let tick = raxx_store::now_ms();
        let started = std::time::Instant::now();
        let (outcome, message) = s.run_tick("sleeper", tick).await.unwrap().unwrap();
        assert_eq!(outcome, RunOutcome::Failed);
        assert!(message.contains("ran past its lease"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let lease = console
            .store()
            .lease("sleeper", tick)
            .await
            .unwrap()
            .unwrap();
        assert!(
            lease
                .released_at
                .is_some_and(|r| r <= lease.expires_at + 1000),
            "{lease:?}"
        );

        // At shutdown a running job gets the grace period, then is stopped and recorded.
        let h = Scheduler::with_jobs(
            console.state.console(),
            vec![Arc::new(Sleeper {
                lease: Duration::from_secs(60),
            })],
        )
        .unwrap()
        .with_shutdown_grace(Duration::from_millis(200))
        .spawn();
        let mut waited = 0;
        while console
            .store()
            .job_runs(Some("sleeper"), 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.outcome != RunOutcome::Running)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += 1;
            assert!(waited < 50, "the sleeper never started");
        }
        let stopping = std::time::Instant::now();
        h.stop().await;
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "stop waited {:?}",
            stopping.elapsed()
        );
        let runs = console.store().job_runs(Some("sleeper"), 10).await.unwrap();
        assert!(
            runs.iter().all(|r| r.outcome != RunOutcome::Running),
            "{runs:?}"
        );
        assert!(
            runs.iter()
                .any(|r| r.message == "stopped at shutdown before it finished"),
            "{runs:?}"
        );
        assert_eq!(console.store().unreleased_leases().await.unwrap(), 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_now_is_claimed_by_one_instance_and_runs_once() {
    raxx_testkit::each_backend!(|url| {
        let console = TestConsole::start(Env::Staging, &url, "").await;
        let other = second_instance(&console, &url).await;
        let qa = console.operator("qa@raxx.test", &["staging-admins"]).await;
        let a = Scheduler::from_config(console.state.console())
            .unwrap()
            .with_poll(Duration::from_millis(100))
            .spawn();
        let b = Scheduler::from_config(other)
            .unwrap()
            .with_poll(Duration::from_millis(100))
            .spawn();
        let resp = console
            .as_operator(&qa)
            .post("/api/v1/jobs/session-purge/run")
            .await;
        assert_eq!(resp.status().as_u16(), 202);
        let mut manual = Vec::new();
        for _ in 0..50 {
            manual = console
                .store()
                .job_runs(Some("session-purge"), 10)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.kind == RunKind::Manual && r.outcome != RunOutcome::Running)
                .collect();
            if !manual.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let all_manual: Vec<_> = console
            .store()
            .job_runs(Some("session-purge"), 10)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == RunKind::Manual)
            .collect();
        assert_eq!(all_manual.len(), 1, "{all_manual:?}");
        assert_eq!(manual[0].outcome, RunOutcome::Ok, "{manual:?}");
        assert!(
            console
                .store()
                .queued_job_requests()
                .await
                .unwrap()
                .is_empty()
        );

        // The jobs API shows the published schedule, next run and last run.
        let resp = console.as_reader(&qa).get("/api/v1/jobs").await;
        let v: serde_json::Value = resp.json().await.unwrap();
        let purge = v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == "session-purge")
            .unwrap()
            .clone();
        assert_eq!(purge["schedule"], "0 0 * * * *");
        assert!(
            purge["next_run_at"]
                .as_i64()
                .is_some_and(|t| t > raxx_store::now_ms()),
            "{purge}"
        );
        assert_eq!(purge["last_run"]["outcome"], "ok");
        assert_eq!(purge["last_run"]["kind"], "manual");
        a.stop().await;
        b.stop().await;
        assert_eq!(console.store().unreleased_leases().await.unwrap(), 0);
    });
}
