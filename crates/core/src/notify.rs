//! Notifications (issue 16 item 5): which audited events are notified, and the payload
//! each `[[notify]]` target kind is sent. Pure: the store writes the outbox rows in the
//! event's own transaction (`raxx_store::notify`), a job delivers them.
//!
//! Most events are audit rows (a promotion queued, a kill switch, ...): [`from_audit`]
//! maps one to a [`Notification`], so nothing can be notified that was not committed.
//! `token.expiring` and `job.failing` are not one audit row; their writers build the
//! [`Notification`] themselves.

use serde_json::{Value, json};

use crate::Env;
use crate::audit::{AuditEvent, Outcome};
use crate::config::NotifyKind;

/// One notification, before it is shaped for a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// One of [`crate::config::NOTIFY_EVENTS`].
    pub event: &'static str,
    /// One sentence for people.
    pub summary: String,
    /// A deep link into the console (through sign-in: `/login?next=` keeps it).
    pub link: Option<String>,
    pub app: Option<String>,
    pub actor: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
}

impl Notification {
    pub fn new(event: &'static str, summary: impl Into<String>) -> Self {
        Notification {
            event,
            summary: summary.into(),
            link: None,
            app: None,
            actor: None,
            target_type: None,
            target_id: None,
        }
    }
}

fn ctx_str<'a>(e: &'a AuditEvent, key: &str) -> Option<&'a str> {
    e.context.get(key).and_then(Value::as_str)
}

/// The notification an audited event stands for, if any. `origin` is the console's
/// public origin (`https://console.raxx.app`), for the deep link.
pub fn from_audit(e: &AuditEvent, origin: &str) -> Option<Notification> {
    let id = e.target_id.clone().unwrap_or_default();
    let app = e.target_app.clone().unwrap_or_default();
    let reason = e
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let promotion_link = || Some(format!("{origin}/promotions/{id}"));
    let (event, summary, link) = match (e.action.as_str(), e.outcome) {
        ("flag.promotion.queue" | "flag.restore", Outcome::Allowed) => (
            "promotion.queued",
            format!("Promotion #{id} to {app} is waiting for review{reason}"),
            promotion_link(),
        ),
        ("flag.promotion.approve", Outcome::Allowed) => (
            "promotion.approved",
            format!("Promotion #{id} to {app} was approved"),
            promotion_link(),
        ),
        ("flag.promotion.apply", Outcome::Allowed) => (
            "promotion.applied",
            format!("Promotion #{id} was applied to {app}"),
            promotion_link(),
        ),
        ("flag.promotion.approve", Outcome::Error) if ctx_str(e, "error") == Some("stale") => (
            "promotion.stale",
            format!("Promotion #{id} to {app} is stale: prod changed under it{reason}"),
            promotion_link(),
        ),
        ("flag.promotion.reject", Outcome::Allowed) => (
            "promotion.rejected",
            format!("Promotion #{id} to {app} was rejected{reason}"),
            promotion_link(),
        ),
        ("flag.promotion.expire", Outcome::Allowed) => (
            "promotion.expired",
            format!("Promotion #{id} to {app} expired without a decision"),
            promotion_link(),
        ),
        ("flag.kill", Outcome::Allowed) => (
            "flag.killed",
            format!("Kill switch: {id} was disabled in {app}{reason}"),
            Some(format!("{origin}/apps/{app}/flags/{id}")),
        ),
        ("token.rotate", Outcome::Error) => (
            "token.rotation_failed",
            format!("Rotating token {id} failed{reason}"),
            Some(format!("{origin}/tokens")),
        ),
        ("status.change", _) => (
            "check.changed",
            format!(
                "Check {id} is {} (was {}){reason}",
                ctx_str(e, "to").unwrap_or("?"),
                ctx_str(e, "from").unwrap_or("?")
            ),
            Some(format!("{origin}/status")),
        ),
        _ => return None,
    };
    Some(Notification {
        event,
        summary,
        link,
        app: e.target_app.clone(),
        actor: Some(e.actor.clone()),
        target_type: e.target_type.clone(),
        target_id: e.target_id.clone(),
    })
}

/// The body a target of `kind` is sent. Slack: `{"text": ...}` (an incoming webhook's
/// shape, the link in Slack's `<url|text>` form); webhook: a JSON document with every field.
pub fn payload(kind: NotifyKind, n: &Notification, env: Env, at_ms: i64) -> Value {
    match kind {
        NotifyKind::Slack => {
            let link = n
                .link
                .as_deref()
                .map(|l| format!(" <{l}|Open in the console>"))
                .unwrap_or_default();
            json!({"text": format!("[{}] {}{link}", env.as_str(), n.summary)})
        }
        NotifyKind::Webhook => json!({
            "event": n.event,
            "env": env.as_str(),
            "summary": n.summary,
            "link": n.link,
            "app": n.app,
            "actor": n.actor,
            "target": {"type": n.target_type, "id": n.target_id},
            "at": at_ms,
        }),
    }
}

/// Seconds to wait before attempt `attempt + 1` after `attempt` failed (1-based):
/// 10 s, 20 s, 40 s, … doubling, at most an hour.
pub fn backoff_ms(attempt: u32) -> i64 {
    let exp = attempt.saturating_sub(1).min(12);
    (10_000i64 << exp).min(3_600_000)
}

/// Deliveries given up after this many attempts (the outbox row is marked failed).
pub const MAX_ATTEMPTS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_events_carry_a_deep_link_and_slack_is_text() {
        let e = AuditEvent::new("7", "flag.promotion.queue", Outcome::Allowed)
            .target("promotion", "4")
            .app("raxx-api-prod")
            .reason("wider rollout");
        let n = from_audit(&e, "https://console.raxx.app").expect("notified");
        assert_eq!(n.event, "promotion.queued");
        assert_eq!(
            n.link.as_deref(),
            Some("https://console.raxx.app/promotions/4")
        );
        let slack = payload(NotifyKind::Slack, &n, Env::Prod, 0);
        let obj = slack.as_object().unwrap();
        assert_eq!(obj.len(), 1);
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains("<https://console.raxx.app/promotions/4|")
        );
        let hook = payload(NotifyKind::Webhook, &n, Env::Prod, 5);
        assert_eq!(hook["event"], "promotion.queued");
        assert_eq!(hook["link"], "https://console.raxx.app/promotions/4");
        // Denied attempts and reads are not notified.
        let denied = AuditEvent::new("7", "flag.promotion.queue", Outcome::Denied);
        assert!(from_audit(&denied, "x").is_none());
        assert!(from_audit(&AuditEvent::new("7", "flag.list", Outcome::Allowed), "x").is_none());
        let stale =
            AuditEvent::new("7", "flag.promotion.approve", Outcome::Error).with("error", "stale");
        assert_eq!(from_audit(&stale, "x").unwrap().event, "promotion.stale");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1), 10_000);
        assert_eq!(backoff_ms(2), 20_000);
        assert_eq!(backoff_ms(4), 80_000);
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
