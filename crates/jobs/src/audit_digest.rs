//! `audit-digest` (daily at 06:00 UTC by default): a summary of the last 24 hours of the
//! audit log — counts by action and outcome, and the denials — posted as JSON to the
//! optional `[jobs.audit-digest] webhook_url` (10 s timeout). The digest is recorded in
//! the runs table and as an `audit.digest` row (outcome `error` when the webhook failed).
//! The webhook URL is never logged beyond its origin: such URLs often carry a token.

use std::collections::BTreeMap;
use std::time::Duration;

use raxx_core::audit::{AuditEntry, Outcome};
use raxx_core::rbac::Resource;
use raxx_store::audit::AuditQuery;
use raxx_store::now_ms;
use serde_json::{Value, json};

use crate::{Job, JobCtx, JobError, JobFuture, JobReport};

const WINDOW_MS: i64 = 86_400_000;
/// Past this many rows the digest says it is partial rather than reading on.
const MAX_ROWS: usize = 200_000;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

pub struct AuditDigest;

impl Job for AuditDigest {
    fn name(&self) -> &'static str {
        "audit-digest"
    }
    fn default_schedule(&self) -> &'static str {
        "0 0 6 * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Audit
    }
    fn run(&self, ctx: JobCtx) -> JobFuture {
        Box::pin(run(ctx))
    }
}

/// The digest of `rows` (any order). Pure.
pub fn digest(
    rows: &[AuditEntry],
    env: &str,
    origin: &str,
    from: i64,
    until: i64,
    partial: bool,
) -> Value {
    let mut by: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
    for r in rows {
        *by.entry((r.event.action.clone(), r.event.outcome.as_str()))
            .or_default() += 1;
    }
    let mut denials: Vec<&AuditEntry> = rows
        .iter()
        .filter(|r| r.event.outcome == Outcome::Denied)
        .collect();
    denials.sort_by_key(|r| std::cmp::Reverse(r.id));
    let count = |o: Outcome| rows.iter().filter(|r| r.event.outcome == o).count();
    json!({
        "env": env,
        "console": origin,
        "from": from,
        "until": until,
        "partial": partial,
        "total": rows.len(),
        "allowed": count(Outcome::Allowed),
        "denied": count(Outcome::Denied),
        "errors": count(Outcome::Error),
        "by_action": by.iter().map(|((action, outcome), n)| json!({"action": action, "outcome": outcome, "count": n})).collect::<Vec<_>>(),
        "recent_denials": denials.iter().take(50).map(|r| json!({
            "id": r.id, "at": r.at, "actor": r.event.actor, "action": r.event.action,
            "target": r.event.target_id, "reason": r.event.reason,
        })).collect::<Vec<_>>(),
    })
}

/// `https://hooks.example.com/T0/B1/secret` → `https://hooks.example.com`.
pub fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "(unparseable URL)".into(),
    }
}

async fn run(ctx: JobCtx) -> Result<JobReport, JobError> {
    let state = ctx.state.clone();
    let env = state.env();
    if let Err(r) = ctx.authorize_run("audit", "digest").await {
        return Ok(JobReport {
            message: "no digest".into(),
            refused: vec![r.0],
        });
    }
    let until = now_ms();
    let from = until - WINDOW_MS;
    let mut rows = Vec::new();
    let mut q = AuditQuery {
        since: Some(from),
        until: Some(until),
        limit: 500,
        ..Default::default()
    };
    loop {
        let page = state.store.audit_page(&q).await?;
        let n = page.len();
        q.before = page.last().map(|e| e.id);
        rows.extend(page);
        if n < 500 || rows.len() >= MAX_ROWS {
            break;
        }
    }
    let partial = rows.len() >= MAX_ROWS;
    let body = digest(&rows, env.as_str(), &state.cfg.origin, from, until, partial);
    let summary = format!(
        "{} audit row(s) in the last 24 h: {} denied, {} error(s)",
        body["total"], body["denied"], body["errors"]
    );
    let mut event = ctx
        .event("audit.digest", Outcome::Allowed)
        .target("audit", "digest")
        .with("total", body["total"].clone())
        .with("denied", body["denied"].clone())
        .with("errors", body["errors"].clone())
        .with("since", from)
        .with("partial", partial);
    let mut failure = None;
    if let Some(url) = &ctx.webhook_url {
        let origin = origin_of(url);
        event = event.with("webhook", origin.clone());
        let sent = match raxx_providers::http_client_builder(WEBHOOK_TIMEOUT).build() {
            Err(e) => Err(format!("cannot build an HTTP client: {e}")),
            Ok(client) => match client.post(url).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => Ok(resp.status().as_u16()),
                Ok(resp) => Err(format!(
                    "the webhook at {origin} answered {}",
                    resp.status().as_u16()
                )),
                Err(e) if e.is_timeout() => Err(format!(
                    "the webhook at {origin} did not answer within 10 s"
                )),
                Err(e) => Err(format!(
                    "the webhook at {origin} could not be reached: {}",
                    e.without_url()
                )),
            },
        };
        match sent {
            Ok(status) => event = event.with("webhook_status", status),
            Err(e) => {
                event.outcome = Outcome::Error;
                event = event.reason(e.clone());
                failure = Some(e);
            }
        }
    }
    state.store.audit(event).await?;
    match failure {
        Some(e) => Err(JobError(format!("{summary}; {e}"))),
        None if ctx.webhook_url.is_some() => {
            Ok(JobReport::ok(format!("{summary}; posted to the webhook")))
        }
        None => Ok(JobReport::ok(format!("{summary}; no webhook configured"))),
    }
}

#[cfg(test)]
mod tests {
    use raxx_core::audit::AuditEvent;

    use super::*;

    fn row(id: i64, action: &str, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            id,
            at: id * 1000,
            event: AuditEvent::new("7", action, outcome).reason("why"),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn the_digest_counts_by_action_and_outcome_and_lists_denials() {
        let rows = vec![
            row(1, "token.rotate", Outcome::Allowed),
            row(2, "token.rotate", Outcome::Allowed),
            row(3, "token.rotate", Outcome::Denied),
            row(4, "customer.suspend", Outcome::Denied),
            row(5, "audit.view", Outcome::Error),
        ];
        let d = digest(&rows, "prod", "https://console.raxx.app", 0, 10, false);
        assert_eq!(d["total"], 5);
        assert_eq!(d["denied"], 2);
        assert_eq!(d["errors"], 1);
        let by = d["by_action"].as_array().unwrap();
        assert!(by.contains(&json!({"action": "token.rotate", "outcome": "allowed", "count": 2})));
        assert_eq!(d["recent_denials"][0]["id"], 4);
        assert_eq!(d["recent_denials"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn only_the_webhook_origin_is_ever_shown() {
        assert_eq!(
            origin_of("https://hooks.example.com/services/T0/B1/s3cr3t?x=1"),
            "https://hooks.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:9/x"), "http://127.0.0.1:9");
    }
}
