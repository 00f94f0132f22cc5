//! `notify-delivery` (every 10 seconds by default): sends the notifications waiting in the
//! outbox (issue 16 item 5) to their `[[notify]]` targets, outside any request and any
//! transaction. A failed attempt (no answer in 10 s, or a status that is not 2xx) is tried
//! again after a back-off (10 s, doubling, at most an hour; given up after 8 attempts).
//! Every attempt is audited (`notify.deliver`: outcome, status code, the target's scheme and
//! host — never the URL's path or query, which often is the secret). Rows are claimed with
//! a conditional update, so several consoles on one database send each once.

use std::time::Duration;

use raxx_actions::Console;
use raxx_core::audit::Outcome;
use raxx_core::config::redacted_url;
use raxx_core::rbac::Resource;
use raxx_store::notify::{Attempt, OutboxRow};
use raxx_store::{StoreError, now_ms};

use crate::{Job, JobCtx, JobError, JobFuture, JobReport};

/// How long one delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most rows one run sends.
pub const BATCH: u32 = 50;

pub struct NotifyDelivery;

impl Job for NotifyDelivery {
    fn name(&self) -> &'static str {
        "notify-delivery"
    }
    fn default_schedule(&self) -> &'static str {
        "*/10 * * * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Job
    }
    fn lease(&self) -> Duration {
        Duration::from_secs(300)
    }
    fn run(&self, ctx: JobCtx) -> JobFuture {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: JobCtx) -> Result<JobReport, JobError> {
    let report = deliver(&ctx.state, &ctx.actor(), now_ms()).await?;
    Ok(JobReport::ok(report.to_string()))
}

/// What one run sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub failed: usize,
    pub given_up: usize,
}

impl std::fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} notification(s) delivered, {} failed (retried later), {} given up",
            self.delivered, self.failed, self.given_up
        )
    }
}

/// Send every notification due at `now` (tests pass a later `now` to skip the back-off).
pub async fn deliver(state: &Console, actor: &str, now: i64) -> Result<DeliveryReport, StoreError> {
    let rows = state.store.claim_notifications(BATCH, now).await?;
    let mut report = DeliveryReport::default();
    if rows.is_empty() {
        return Ok(report);
    }
    let client = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        // A redirect could lead anywhere (another env's host): a target answers itself.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StoreError::Invalid(format!("no HTTP client: {e}")))?;
    for row in rows {
        let target = state
            .cfg
            .config
            .notify
            .iter()
            .enumerate()
            .find(|(i, t)| t.display_name(*i) == row.target)
            .map(|(_, t)| t);
        let (attempt, shown) = match target {
            None => (
                Attempt::Failed {
                    status: None,
                    error: format!("the target `{}` is no longer in [[notify]]", row.target),
                },
                "(not configured)".to_owned(),
            ),
            Some(t) => (send(&client, &t.url, &row).await, redacted_url(&t.url)),
        };
        let mut tx = state.store.begin().await?;
        let given_up = tx.record_delivery(&row, &attempt, now).await?;
        let (outcome, status, error) = match &attempt {
            Attempt::Delivered { status } => (Outcome::Allowed, Some(*status), None),
            Attempt::Failed { status, error } => (Outcome::Error, *status, Some(error.clone())),
        };
        let mut event = raxx_core::audit::AuditEvent::new(actor, "notify.deliver", outcome)
            .target("notify", row.target.clone())
            .with("outbox_id", row.id)
            .with("event", row.event.clone())
            .with("attempt", row.attempts + 1)
            .with("url", shown)
            .with("status", status)
            .with("given_up", given_up);
        if let Some(e) = error {
            event = event.reason(e);
        }
        tx.record(event).await?;
        tx.commit().await?;
        match (&attempt, given_up) {
            (Attempt::Delivered { .. }, _) => report.delivered += 1,
            (_, true) => report.given_up += 1,
            _ => report.failed += 1,
        }
    }
    Ok(report)
}

async fn send(client: &reqwest::Client, url: &str, row: &OutboxRow) -> Attempt {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "raxx-console-notify")
        .header("x-raxx-event", row.event.clone())
        .body(row.payload.clone())
        .send()
        .await;
    match resp {
        Ok(r) if r.status().is_success() => Attempt::Delivered {
            status: r.status().as_u16(),
        },
        Ok(r) => Attempt::Failed {
            status: Some(r.status().as_u16()),
            error: format!("the target answered {}", r.status()),
        },
        // reqwest's error names the URL: keep only its kind.
        Err(e) => Attempt::Failed {
            status: None,
            error: if e.is_timeout() {
                "no answer in time".into()
            } else if e.is_connect() {
                "could not connect".into()
            } else {
                "the request failed".into()
            },
        },
    }
}
