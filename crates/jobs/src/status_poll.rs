//! `status-poll`: GET every configured check whose interval has passed and record what it
//! found (SPEC §10). Default: every 30 s; each check is polled at most once per its
//! `interval_seconds` ("run now" polls them all).
//!
//! - ok: the expected status, in under half the timeout;
//! - degraded: the expected status but slower than half the timeout, or another 2xx/3xx
//!   status when a 2xx/3xx was expected (it answers, but not as configured);
//! - down: no answer within the timeout, no connection, an answer that is not HTTP, or
//!   any other status.
//!
//! Redirects are not followed (a 302 is what the check sees). A check whose app belongs
//! to the other env is refused by the write gate and audited `denied`.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use raxx_core::audit::Outcome;
use raxx_core::config::CheckConfig;
use raxx_core::rbac::Resource;
use raxx_store::checks::{CheckResult, CheckStatus};
use raxx_store::jobs::RunKind;
use raxx_store::now_ms;

use crate::{Job, JobCtx, JobError, JobFuture, JobReport};

pub struct StatusPoll;

impl Job for StatusPoll {
    fn name(&self) -> &'static str {
        "status-poll"
    }
    fn default_schedule(&self) -> &'static str {
        "*/30 * * * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Job
    }
    fn lease(&self) -> Duration {
        Duration::from_secs(120)
    }
    fn run(&self, ctx: JobCtx) -> JobFuture {
        Box::pin(run(ctx))
    }
}

/// The verdict on one answer (or failure) of a check. Pure; table-tested below.
pub fn classify(
    expect: u16,
    timeout_ms: u64,
    answer: Result<u16, String>,
    latency_ms: i64,
) -> (CheckStatus, Option<String>) {
    let redirect_or_success = |s: u16| (200..400).contains(&s);
    match answer {
        Err(e) => (CheckStatus::Down, Some(e)),
        Ok(s) if s == expect => {
            let slow = (timeout_ms / 2) as i64;
            if latency_ms > slow {
                (
                    CheckStatus::Degraded,
                    Some(format!(
                        "slow: {latency_ms} ms, over half the {timeout_ms} ms timeout"
                    )),
                )
            } else {
                (CheckStatus::Ok, None)
            }
        }
        Ok(s) if redirect_or_success(s) && redirect_or_success(expect) => (
            CheckStatus::Degraded,
            Some(format!("answered {s}, expected {expect}")),
        ),
        Ok(s) => (
            CheckStatus::Down,
            Some(format!("answered {s}, expected {expect}")),
        ),
    }
}

fn describe(e: &reqwest::Error, timeout_ms: u64) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout_ms} ms");
    }
    let mut text = if e.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed (the answer may not be HTTP)".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut depth = 0;
    while let Some(s) = source {
        if depth == 2 {
            break;
        }
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
        depth += 1;
    }
    text
}

/// GET one check. Never panics and never outlives its timeout by more than a second.
pub async fn poll(app: &str, check: &CheckConfig) -> CheckResult {
    let timeout_ms = check.timeout_ms.clamp(50, 60_000);
    let timeout = Duration::from_millis(timeout_ms);
    let started = Instant::now();
    let answer = match raxx_providers::http_client_builder(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Err(e) => Err(format!("cannot build an HTTP client: {e}")),
        Ok(client) => {
            match tokio::time::timeout(
                timeout + Duration::from_secs(1),
                client.get(&check.url).send(),
            )
            .await
            {
                Err(_) => Err(format!("no answer within {timeout_ms} ms")),
                Ok(Err(e)) => Err(describe(&e.without_url(), timeout_ms)),
                Ok(Ok(resp)) => Ok(resp.status().as_u16()),
            }
        }
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let http_status = answer.as_ref().ok().map(|s| i64::from(*s));
    let (status, error) = classify(check.expect_status, timeout_ms, answer, latency_ms);
    CheckResult {
        app: app.to_string(),
        check: check.name.clone(),
        at: now_ms(),
        status,
        http_status,
        latency_ms,
        error,
    }
}

async fn run(ctx: JobCtx) -> Result<JobReport, JobError> {
    let state = ctx.state.clone();
    let store = &state.store;
    let latest = store.latest_check_results().await?;
    let now = now_ms();
    let mut refused = Vec::new();
    let mut due = Vec::new();
    for app in &state.cfg.config.apps {
        for check in &app.checks {
            let target_env = check.env.unwrap_or(app.env);
            let target = format!("{}/{}", app.name, check.name);
            if let Err(r) = ctx
                .authorize(target_env, "check", &target, Some(&app.name))
                .await
            {
                refused.push(r.0);
                continue;
            }
            let last = latest
                .iter()
                .find(|r| r.app == app.name && r.check == check.name);
            // A second of slack so a 30 s interval polled by a 30 s schedule never skips.
            let interval_ms = (check.interval_seconds as i64 * 1000 - 1000).max(0);
            if ctx.kind == RunKind::Schedule && last.is_some_and(|l| now - l.at < interval_ms) {
                continue;
            }
            due.push((app.name.clone(), check.clone()));
        }
    }
    let results = join_all(due.iter().map(|(app, check)| poll(app, check))).await;
    let changes: Vec<(&CheckResult, CheckStatus)> = results
        .iter()
        .filter_map(|r| {
            latest
                .iter()
                .find(|l| l.app == r.app && l.check == r.check)
                .filter(|l| l.status != r.status)
                .map(|l| (r, l.status))
        })
        .collect();
    if changes.is_empty() {
        store.insert_check_results(&results).await?;
    } else {
        // A check changing state is audited, with the results that show it.
        let mut tx = store.begin().await?;
        tx.insert_check_results(&results).await?;
        for (r, from) in &changes {
            let mut event = ctx
                .event("status.change", Outcome::Allowed)
                .target("check", format!("{}/{}", r.app, r.check))
                .app(r.app.clone())
                .with("from", from.as_str())
                .with("to", r.status.as_str())
                .with("latency_ms", r.latency_ms)
                .with("http_status", r.http_status);
            if let Some(e) = &r.error {
                event = event.reason(e.clone());
            }
            tx.record(event).await?;
        }
        tx.commit().await?;
    }
    let count = |s: CheckStatus| results.iter().filter(|r| r.status == s).count();
    Ok(JobReport {
        message: format!(
            "polled {} check(s): {} ok, {} degraded, {} down; {} state change(s)",
            results.len(),
            count(CheckStatus::Ok),
            count(CheckStatus::Degraded),
            count(CheckStatus::Down),
            changes.len()
        ),
        refused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_by_status_and_speed() {
        use CheckStatus::{Degraded, Down};
        const UP: CheckStatus = CheckStatus::Ok;
        let cases: &[(u16, Result<u16, String>, i64, CheckStatus)] = &[
            (200, Ok(200), 10, UP),
            (200, Ok(200), 1000, UP),
            (200, Ok(200), 1001, Degraded),
            (200, Ok(204), 10, Degraded),
            (200, Ok(302), 10, Degraded),
            (204, Ok(200), 10, Degraded),
            (200, Ok(404), 10, Down),
            (200, Ok(500), 10, Down),
            (200, Ok(101), 10, Down),
            (503, Ok(503), 10, UP),
            (503, Ok(200), 10, Down),
            (200, Err("no answer within 2000 ms".into()), 2000, Down),
        ];
        for (expect, answer, ms, want) in cases {
            let (got, why) = classify(*expect, 2000, answer.clone(), *ms);
            assert_eq!(got, *want, "expect {expect}, answer {answer:?}, {ms} ms");
            assert_eq!(why.is_none(), got == UP, "{why:?}");
        }
    }
}
