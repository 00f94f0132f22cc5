//! What runs without an operator: the config sync (at start-up and before any token
//! action), the rotation sweep (the `token-rotation-sweep` job) and the dashboard's
//! "expiring tokens" reminders.

use raxx_core::audit::{AuditEvent, Outcome};
use raxx_store::now_ms;
use raxx_store::tokens::plan_sync;
use serde::Serialize;

use super::inventory::{self, TokenId, TokenState, configured_tokens};
use super::rotation::{self, GRACE_DEFAULT, SYNC_ACTOR, manual_reason};
use crate::actor::Actor;
use crate::console::Console;
use crate::error::Result;

/// What one sweep did. Tokens are named `id (app name)`.
#[derive(Debug, Default, Serialize)]
pub struct SweepReport {
    /// Previous credentials whose grace period ended and that are now revoked.
    pub graces_ended: Vec<String>,
    /// Provider tokens past their max age that the sweep rotated.
    pub rotated: Vec<String>,
    /// Tokens that need a person (the dashboard's reminders).
    pub expiring: Vec<ExpiringToken>,
    /// What the sweep tried and could not do (each also audited as `error`).
    pub failures: Vec<String>,
}

impl SweepReport {
    /// One line for the jobs page.
    pub fn summary(&self) -> String {
        format!(
            "{} grace period(s) ended, {} token(s) rotated, {} expiring, {} failure(s)",
            self.graces_ended.len(),
            self.rotated.len(),
            self.expiring.len(),
            self.failures.len()
        )
    }

    pub fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }
}

/// A token a person has to act on: an app key near or past its max age (its new secret
/// must be handed to the app), or a provider token the console could not rotate.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiringToken {
    pub id: String,
    pub app: String,
    pub name: String,
    pub kind: String,
    pub provider: String,
    /// `expiring_soon` or `overdue`.
    pub state: &'static str,
    pub state_label: String,
    pub expires_at: Option<i64>,
    /// What to do about it.
    pub reason: String,
}

/// The sweep: end grace periods that are over, rotate provider tokens past their max
/// age, and report what needs a person. `actor` is the job's `system:<job>`; every
/// write passes the gate as that system principal and is audited under it.
pub async fn rotation_sweep(state: &Console, actor: &str) -> Result<SweepReport> {
    sync(state).await?;
    let who = Actor::System(actor.to_string());
    let mut report = SweepReport::default();
    let now = now_ms();

    // 1. App key versions whose grace period is over stopped working already; mark
    // them, on their token's id.
    for key in state.store.app_keys_past_grace(now).await? {
        let target = format!("key:{}", key.token_id);
        if let Err(e) =
            rotation::check_target(state, &who, "token.grace_end", &target, &key.app).await
        {
            report.failures.push(format!("{target} ({}): {e}", key.app));
            continue;
        }
        let mut tx = state.store.begin().await?;
        if !tx.finish_app_key_grace(key.id, now).await? {
            tx.rollback().await?;
            continue;
        }
        tx.record(
            who.event("token.grace_end", Outcome::Allowed)
                .target("token", target.clone())
                .app(key.app.clone())
                .with("provider", "local")
                .with("version_id", key.id)
                .with("grace_until", key.grace_until),
        )
        .await?;
        tx.commit().await?;
        report
            .graces_ended
            .push(format!("{target} ({} {})", key.app, key.name));
    }

    // 2. Previous provider authorizations whose grace period is over: delete them.
    for p in state.store.provider_tokens().await? {
        let due = p.is_active()
            && p.previous_authorization_id.is_some()
            && p.previous_grace_until.is_none_or(|g| g <= now);
        if !due {
            continue;
        }
        let id = TokenId::Provider {
            provider: p.provider.clone(),
            id: p.id,
        };
        match rotation::revoke_previous(state, &who, &id).await {
            Ok(r) => report.graces_ended.push(format!(
                "{id} ({} {}): {} {}",
                r.app, r.name, r.previous, r.how
            )),
            Err(e) => report
                .failures
                .push(format!("{id} ({} {}): {e}", p.app, p.name)),
        }
    }

    // 3. Provider tokens past their max age that the console can rotate by itself.
    let tokens = inventory::build(state, now_ms(), |p| manual_reason(state, p)).await?;
    for t in tokens.iter().filter(|t| {
        matches!(t.id, TokenId::Provider { .. })
            && matches!(t.state, TokenState::Overdue { .. })
            && t.manual_reason.is_none()
            && t.previous.is_none()
    }) {
        match rotation::rotate(state, &who, &t.id, Ok(GRACE_DEFAULT)).await {
            Ok(r) => report.rotated.push(format!(
                "{} ({} {}): now {}",
                t.id,
                t.app,
                t.name,
                r.new_authorization_id.unwrap_or_default()
            )),
            Err(e) => report
                .failures
                .push(format!("{} ({} {}): {e}", t.id, t.app, t.name)),
        }
    }

    // 4. What is left for a person, and a reminder to the `[[notify]]` targets.
    report.expiring = expiring_tokens(state).await?;
    notify_expiring(state, actor, &report.expiring).await?;
    Ok(report)
}

/// `token.expiring` (issue 16): one reminder listing the tokens that need a person, at most
/// once a day unless a token joins the list. The reminder is queued with its own audit row
/// (`token.expiring`, the token ids) in one transaction; nothing is written when no target
/// asks for the event or nothing is expiring.
async fn notify_expiring(state: &Console, actor: &str, expiring: &[ExpiringToken]) -> Result<()> {
    let wanted = state
        .cfg
        .config
        .notify
        .iter()
        .any(|t| t.events.iter().any(|e| e == "token.expiring"));
    if expiring.is_empty() || !wanted {
        return Ok(());
    }
    let ids: Vec<String> = expiring.iter().map(|t| t.id.clone()).collect();
    let day_ago = now_ms() - 86_400_000;
    let last = state
        .store
        .audit_page(&raxx_store::audit::AuditQuery {
            action: Some("token.expiring".into()),
            since: Some(day_ago),
            limit: 1,
            ..Default::default()
        })
        .await?;
    if let Some(prev) = last.first() {
        let told: Vec<&str> = prev.event.context["tokens"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if ids.iter().all(|id| told.contains(&id.as_str())) {
            return Ok(());
        }
    }
    let list = expiring
        .iter()
        .map(|t| format!("{} {} of {} ({})", t.id, t.name, t.app, t.state_label))
        .collect::<Vec<_>>()
        .join("; ");
    let mut n = raxx_core::notify::Notification::new(
        "token.expiring",
        format!("{} token(s) need a person: {list}", expiring.len()),
    );
    n.link = Some(state.cfg.url("/tokens"));
    n.target_type = Some("token".into());
    let mut tx = state.store.begin().await?;
    let queued = tx.enqueue_notification(&n).await?;
    tx.record(
        AuditEvent::new(actor, "token.expiring", Outcome::Allowed)
            .with("tokens", ids)
            .with("notifications", queued as i64),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Tokens that need a person: app keys expiring soon or overdue, provider tokens the
/// console cannot rotate by itself that are expiring soon, and provider tokens still
/// overdue (the sweep failed or has not run).
pub async fn expiring_tokens(state: &Console) -> Result<Vec<ExpiringToken>> {
    sync(state).await?;
    let now = now_ms();
    let tokens = inventory::build(state, now, |p| manual_reason(state, p)).await?;
    Ok(tokens
        .into_iter()
        .filter(|t| match t.state {
            TokenState::Overdue { .. } => true,
            TokenState::ExpiringSoon { .. } => t.manual_reason.is_some(),
            _ => false,
        })
        .map(|t| {
            let reason = match (&t.id, &t.manual_reason, &t.last_error) {
                (TokenId::Key(_), _, _) => format!(
                    "rotate it and hand the new secret to {} (an app key cannot be handed over automatically)",
                    t.app
                ),
                (_, Some(why), _) => format!("the console cannot rotate it: {why}"),
                (_, None, Some(err)) => format!("the last rotation failed: {err}"),
                (_, None, None) => "the rotation sweep rotates it on its next run".into(),
            };
            ExpiringToken {
                id: t.id.to_string(),
                state: t.state.as_str(),
                state_label: inventory::state_label(t.state),
                expires_at: t.expires_at,
                app: t.app,
                name: t.name,
                kind: t.kind,
                provider: t.provider,
                reason,
            }
        })
        .collect())
}

/// Bring `console_provider_tokens` in line with `[[apps.tokens]]`: one audited
/// transaction, planned inside it so instances starting together agree. Returns the
/// number of changes (0 when already in line: no write at all).
pub async fn sync(state: &Console) -> Result<usize> {
    let configured = configured_tokens(&state.cfg);
    let stored = state.store.provider_tokens().await?;
    if plan_sync(&stored, &configured).is_empty() {
        return Ok(0);
    }
    let mut tx = state.store.begin().await?;
    let stored = tx.provider_tokens().await?;
    let steps = plan_sync(&stored, &configured);
    if steps.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let now = now_ms();
    for step in &steps {
        let id = tx.apply_sync(step, now).await?;
        let (app, name, provider) = match step {
            raxx_store::tokens::SyncStep::Add(c) => {
                (c.app.clone(), c.name.clone(), c.provider.clone())
            }
            _ => stored
                .iter()
                .find(|s| s.id == id)
                .map(|s| (s.app.clone(), s.name.clone(), s.provider.clone()))
                .unwrap_or_default(),
        };
        let mut event = AuditEvent::new(SYNC_ACTOR, "token.sync", Outcome::Allowed)
            .target("token", format!("{provider}:{id}"))
            .app(app)
            .with("token_name", name)
            .with("change", step.kind());
        if let raxx_store::tokens::SyncStep::AdoptAuthorization { from, to, .. } = step {
            event = event
                .with("from_authorization_id", from.clone())
                .with("to_authorization_id", to.clone());
        }
        tx.record(event).await?;
    }
    tx.commit().await?;
    Ok(steps.len())
}
