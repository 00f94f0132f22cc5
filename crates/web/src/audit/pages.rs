//! The audit log's pages: the searchable table, one entry, and the exports.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;
use crate::kernel::views::{Layout, render};
use raxx_actions::audit::{export_csv, export_jsonl, operator_emails};
use raxx_actions::fmt_time;
pub struct AuditRow {
    pub id: i64,
    pub time: String,
    pub actor: String,
    /// The actor as recorded: the value of the actor filter that finds this actor's rows.
    pub actor_filter: String,
    pub action: String,
    pub target: String,
    /// The value of the target filter that finds this target's rows (empty: none).
    pub target_filter: String,
    pub outcome: String,
    pub reason: String,
}
/// Audit rows for display: operator ids are shown as their email (the id stays in the
/// title for filtering), everything else as recorded.
pub async fn audit_rows(
    state: &AppState,
    entries: &[raxx_core::audit::AuditEntry],
) -> AppResult<Vec<AuditRow>> {
    let emails: HashMap<String, String> = state
        .store
        .admins()
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.email))
        .collect();
    let name = |id: &str| match emails.get(id) {
        Some(email) => format!("{email} (#{id})"),
        None => id.to_string(),
    };
    Ok(entries
        .iter()
        .map(|e| AuditRow {
            id: e.id,
            time: fmt_time(e.at),
            actor: name(&e.event.actor),
            actor_filter: e.event.actor.clone(),
            target_filter: match (
                e.event.target_type.as_deref(),
                e.event.target_id.as_deref(),
                &e.event.target_app,
            ) {
                (Some(t), Some(i), Some(a)) => format!("{t} {i} ({a})"),
                (Some(t), Some(i), None) => format!("{t} {i}"),
                (None, Some(i), _) => i.to_string(),
                _ => String::new(),
            },
            action: e.event.action.clone(),
            target: match (
                e.event.target_type.as_deref(),
                e.event.target_id.as_deref(),
                &e.event.target_app,
            ) {
                (Some("operator"), Some(i), _) => format!("operator {}", name(i)),
                (Some(t), Some(i), Some(a)) => format!("{t} {i} ({a})"),
                (Some(t), Some(i), None) => format!("{t} {i}"),
                (_, _, Some(a)) => a.clone(),
                _ => String::new(),
            },
            outcome: e.event.outcome.as_str().to_string(),
            reason: e.event.reason.clone().unwrap_or_default(),
        })
        .collect())
}
#[derive(Default)]
pub struct AuditFilterView {
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub target: String,
    pub since: String,
    pub until: String,
    pub q: String,
    pub range: String,
    pub show_reads: bool,
}
/// The filter parameters the viewer carries from page to page (and into exports).
const AUDIT_PARAMS: [&str; 9] = [
    "actor", "action", "outcome", "target", "since", "until", "q", "range", "reads",
];
#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    f: AuditFilterView,
    ranges: Vec<(String, String)>,
    rows: Vec<AuditRow>,
    next_cursor: Option<i64>,
    query: String,
}
const AUDIT_PAGE: u32 = 50;
pub async fn audit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let show_reads = crate::audit::filter::show_reads(&p, false)?;
    let q = crate::audit::filter::audit_query(&state, &p, AUDIT_PAGE, false).await?;
    let entries = raxx_actions::audit::audit_read(&state, &ctx.caller(), &q, "audit.view").await?;
    let next_cursor = (entries.len() as u32 == AUDIT_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let query: String = AUDIT_PARAMS
        .iter()
        .filter_map(|k| p.get(*k).filter(|v| !v.is_empty()).map(|v| (k, v)))
        .map(|(k, v)| {
            format!(
                "&{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    Ok(render(&AuditPage {
        layout: Layout::new(&state, Some(&ctx), "Audit log", "Audit log"),
        f: AuditFilterView {
            actor: get("actor"),
            action: get("action"),
            outcome: get("outcome"),
            target: get("target"),
            since: get("since"),
            until: get("until"),
            q: get("q"),
            range: get("range"),
            show_reads,
        },
        ranges: crate::audit::filter::RANGES
            .iter()
            .map(|(v, l, _)| (v.to_string(), l.to_string()))
            .collect(),
        rows: audit_rows(&state, &entries).await?,
        next_cursor,
        query,
    }))
}
#[derive(Template)]
#[template(path = "audit_entry.html")]
struct AuditEntryPage {
    layout: Layout,
    e: raxx_core::audit::AuditEntry,
    time: String,
    actor: String,
    target: String,
    target_filter: String,
    context: String,
    newer: Option<i64>,
}
/// One audit entry in full: context, IP, request id, session and both hashes.
pub async fn audit_entry(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let e = raxx_actions::audit::audit_entry(&state, &ctx.caller(), &id).await?;
    let row = audit_rows(&state, std::slice::from_ref(&e))
        .await?
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("audit entry {id}")))?;
    let newer = state.store.audit_entry(e.id + 1).await?.map(|n| n.id);
    Ok(render(&AuditEntryPage {
        layout: Layout::new(
            &state,
            Some(&ctx),
            format!("Audit entry {}", e.id),
            "Audit log",
        ),
        time: row.time,
        actor: row.actor,
        target: if row.target.is_empty() {
            "none".into()
        } else {
            row.target
        },
        target_filter: row.target_filter,
        context: serde_json::to_string_pretty(&e.event.context).unwrap_or_default(),
        newer,
        e,
    }))
}
/// CSV or JSON lines of the filtered log (up to 100 000 rows per export).
pub async fn audit_export(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let format = p.get("format").map(String::as_str).unwrap_or("csv");
    if !matches!(format, "csv" | "jsonl") {
        return Err(AppError::invalid(format!(
            "format must be csv or jsonl, not `{format}`"
        )));
    }
    // An export carries what the filters name: reads included unless `reads=hide`.
    let mut q = crate::audit::filter::audit_query(&state, &p, 500, true).await?;
    let mut all =
        raxx_actions::audit::audit_read(&state, &ctx.caller(), &q, "audit.export").await?;
    while all.len() < 100_000 && (all.len() as u32).is_multiple_of(500) && !all.is_empty() {
        q.before = all.last().map(|e| e.id);
        let more = state.store.audit_page(&q).await?;
        if more.is_empty() {
            break;
        }
        all.extend(more);
    }
    let emails = operator_emails(&state).await?;
    let (body, ctype) = match format {
        "jsonl" => (export_jsonl(&all, &emails), "application/x-ndjson"),
        _ => (export_csv(&all, &emails), "text/csv; charset=utf-8"),
    };
    let disposition = format!("attachment; filename=\"audit-{}.{format}\"", state.env());
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
