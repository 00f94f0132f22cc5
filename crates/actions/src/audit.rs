//! Reading the audit log for the pages, the API and the exports (every read of the log is
//! itself audited), and the log as the exports write it: CSV (spreadsheet-safe cells) and
//! JSON lines, each row with its actor's email. The CLI's `audit export` uses these too.

use std::collections::HashMap;

use raxx_core::audit::Outcome;
use raxx_store::audit::AuditQuery;

use crate::actor::Caller;
use crate::console::Console;
use crate::error::{Error, Result};
use crate::fmt_time;

/// Operator id → email, for exports and the row view.
pub async fn operator_emails(state: &Console) -> Result<HashMap<String, String>> {
    Ok(state
        .store
        .admins()
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.email))
        .collect())
}

/// One audit row as a JSON line, with `actor_email` beside the actor id when the actor
/// is an operator.
pub fn jsonl_row(r: &raxx_core::audit::AuditEntry, email: Option<&str>) -> Option<String> {
    let mut v = serde_json::to_value(r).ok()?;
    if let (Some(obj), Some(email)) = (v.as_object_mut(), email) {
        obj.insert(
            "actor_email".into(),
            serde_json::Value::String(email.into()),
        );
    }
    serde_json::to_string(&v).ok().map(|l| l + "\n")
}

pub fn export_jsonl(
    rows: &[raxx_core::audit::AuditEntry],
    emails: &HashMap<String, String>,
) -> String {
    rows.iter()
        .filter_map(|r| jsonl_row(r, emails.get(&r.event.actor).map(String::as_str)))
        .collect()
}

pub const CSV_HEADER: &str = "id,time,actor,actor_email,session_id,action,target_type,target_id,target_app,outcome,reason,context,request_id,ip,prev_hash,hash\n";

pub fn export_csv(
    rows: &[raxx_core::audit::AuditEntry],
    emails: &HashMap<String, String>,
) -> String {
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        out.push_str(&csv_row(r, emails.get(&r.event.actor).map(String::as_str)));
    }
    out
}

/// One audit row as a CSV line: every cell quoted, spreadsheet formulas neutralised.
pub fn csv_row(r: &raxx_core::audit::AuditEntry, actor_email: Option<&str>) -> String {
    fn cell(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    }
    let e = &r.event;
    let fields = [
        r.id.to_string(),
        fmt_time(r.at),
        e.actor.clone(),
        actor_email.unwrap_or_default().to_string(),
        e.session_id.clone().unwrap_or_default(),
        e.action.clone(),
        e.target_type.clone().unwrap_or_default(),
        e.target_id.clone().unwrap_or_default(),
        e.target_app.clone().unwrap_or_default(),
        e.outcome.as_str().to_string(),
        e.reason.clone().unwrap_or_default(),
        e.context.to_string(),
        e.request_id.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        r.prev_hash.clone(),
        r.hash.clone(),
    ];
    let mut line = fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// A page of the audit log; reading it is itself audited.
pub async fn audit_read(
    state: &Console,
    ctx: &Caller,
    q: &AuditQuery,
    action: &str,
) -> Result<Vec<raxx_core::audit::AuditEntry>> {
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
    state: &Console,
    ctx: &Caller,
    id: &str,
) -> Result<raxx_core::audit::AuditEntry> {
    // Who may read it is the route's decision (`RoleAt(audit, user)` in the manifest).
    let n: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::invalid(format!("`{id}` is not an audit entry id (a number)")))?;
    let entry = state
        .store
        .audit_entry(n)
        .await?
        .ok_or_else(|| Error::NotFound(format!("audit entry {n}")))?;
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
) -> Result<AuditQuery> {
    let text = |k: &str| {
        p.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let time = |k: &str| -> Result<Option<i64>> {
        match text(k) {
            None => Ok(None),
            Some(v) => parse_time(&v).map(Some).ok_or_else(|| {
                Error::invalid(format!("`{k}` must be a time like 2026-11-21T09:30 (UTC) or unix milliseconds, not `{v}`"))
            }),
        }
    };
    let outcome = match text("outcome") {
        None => None,
        Some(o) => Some(raxx_core::audit::Outcome::parse(&o).ok_or_else(|| {
            Error::invalid(format!(
                "`outcome` must be allowed, denied or error, not `{o}`"
            ))
        })?),
    };
    let before = match text("before").or_else(|| text("after")) {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| Error::invalid(format!("the cursor `{c}` is not valid")))?,
        ),
    };
    for k in ["actor", "action", "target"] {
        if text(k).is_some_and(|v| v.len() > 200) {
            return Err(Error::invalid(format!(
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
