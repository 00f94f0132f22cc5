//! Reading the audit log for the pages, the API and the exports.

use raxx_core::audit::Outcome;
use raxx_store::audit::AuditQuery;

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;

/// A page of the audit log; reading it is itself audited.
pub async fn audit_read(
    state: &AppState,
    ctx: &Ctx,
    q: &AuditQuery,
    action: &str,
) -> AppResult<Vec<raxx_core::audit::AuditEntry>> {
    // Who may read it is the route's decision (`RoleAt(audit, user)` in the manifest);
    // the gate made it before this handler ran.
    let rows = state.store.audit_page(q).await?;
    state
        .store
        .audit(
            ctx.event(action, Outcome::Allowed)
                .with("filters", serde_json::json!({
                    "actor": q.actor, "actors": q.actors, "action": q.action, "actions": q.actions,
                    "outcome": q.outcome.map(|o| o.as_str()),
                    "target": q.target, "target_type": q.target_type, "target_app": q.target_app,
                    "text": q.text, "reads_hidden": !q.hide_actions.is_empty(),
                    "since": q.since, "until": q.until, "before": q.before,
                }))
                .with("rows", rows.len() as i64),
        )
        .await?;
    Ok(rows)
}

/// One audit entry by id (`GET /audit/{id}` and its JSON twin); reading it is audited.
pub async fn audit_entry(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> AppResult<raxx_core::audit::AuditEntry> {
    // Who may read it is the route's decision (`RoleAt(audit, user)` in the manifest).
    let n: i64 =
        id.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            AppError::invalid(format!("`{id}` is not an audit entry id (a number)"))
        })?;
    let entry = state
        .store
        .audit_entry(n)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("audit entry {n}")))?;
    state
        .store
        .audit(
            ctx.event("audit.view", Outcome::Allowed)
                .target("audit", n.to_string()),
        )
        .await?;
    Ok(entry)
}

/// Parse the audit filters shared by the page, the API and the export.
pub fn audit_query(
    p: &std::collections::HashMap<String, String>,
    limit: u32,
) -> AppResult<AuditQuery> {
    let text = |k: &str| {
        p.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let time = |k: &str| -> AppResult<Option<i64>> {
        match text(k) {
            None => Ok(None),
            Some(v) => parse_time(&v).map(Some).ok_or_else(|| {
                AppError::invalid(format!("`{k}` must be a time like 2026-11-21T09:30 (UTC) or unix milliseconds, not `{v}`"))
            }),
        }
    };
    let outcome = match text("outcome") {
        None => None,
        Some(o) => Some(raxx_core::audit::Outcome::parse(&o).ok_or_else(|| {
            AppError::invalid(format!(
                "`outcome` must be allowed, denied or error, not `{o}`"
            ))
        })?),
    };
    let before = match text("before").or_else(|| text("after")) {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| AppError::invalid(format!("the cursor `{c}` is not valid")))?,
        ),
    };
    for k in ["actor", "action", "target"] {
        if text(k).is_some_and(|v| v.len() > 200) {
            return Err(AppError::invalid(format!(
                "`{k}` is longer than 200 characters"
            )));
        }
    }
    Ok(AuditQuery {
        actor: text("actor"),
        action: text("action"),
        outcome,
        target: text("target"),
        since: time("since")?,
        until: time("until")?,
        before,
        limit,
        ..Default::default()
    })
}

fn parse_time(v: &str) -> Option<i64> {
    if let Ok(ms) = v.parse::<i64>() {
        return Some(ms);
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.timestamp_millis())
}
