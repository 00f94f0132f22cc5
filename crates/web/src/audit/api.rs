//! The audit log as JSON: search and one entry.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;

/// `GET /api/v1/audit`'s query (read by [`crate::audit::ops::audit_query`]).
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct AuditQuery {
    /// rows per page
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<u32>,
    /// who acted: an operator id, a literal actor (`system:…`), or an email or its start
    actor: Option<String>,
    /// any part of an action name (`kill`, `token.rotate`); `flag.*` is a prefix
    action: Option<String>,
    #[param(inline)]
    outcome: Option<Outcome>,
    /// target as the viewer shows it: `type id (app)`, `type id` or an id
    target: Option<String>,
    /// free text in the action, target or reason (case-insensitive)
    q: Option<String>,
    /// only rows of the last `1h`, `24h`, `7d` or `30d`
    #[param(inline)]
    range: Option<Range>,
    /// `hide` leaves out allowed reads (`audit.view`, …); the API shows them by default
    #[param(inline)]
    reads: Option<Reads>,
    /// only rows at or after this time (`2026-11-21T09:30`, UTC, or unix milliseconds)
    since: Option<String>,
    /// only rows before this time
    until: Option<String>,
    /// cursor: only rows before this id (`next_cursor` of the previous page)
    before: Option<String>,
}

/// A relative time range of the audit filters.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum Range {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

/// Whether allowed reads are listed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Reads {
    Show,
    Hide,
}

/// An audit outcome.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Outcome {
    Allowed,
    Denied,
    Error,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// rows, newest first (`id`, `at`, `actor`, `action`, `outcome`, `target_*`, `context`,
    /// `prev_hash`, `hash`)
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<raxx_core::audit::AuditEntry>,
    /// pass as `before` for the next page; absent on the last page
    pub next_cursor: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Json<AuditPage>> {
    let limit = match p.get("limit") {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::invalid("limit must be 1 to 500"))?,
        None => 100,
    };
    // The API shows reads unless `reads=hide` (the viewer hides them by default).
    let q = crate::audit::filter::audit_query(&state, &p, limit, true).await?;
    let rows = raxx_actions::audit::audit_read(&state, &ctx.caller(), &q, "audit.view").await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(AuditPage {
        entries: rows,
        next_cursor: next,
    }))
}

pub async fn audit_entry(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let e = raxx_actions::audit::audit_entry(&state, &ctx.caller(), &id).await?;
    let emails = raxx_actions::audit::operator_emails(&state).await?;
    let mut v = json!(e);
    if let (Some(obj), Some(email)) = (v.as_object_mut(), emails.get(&e.event.actor)) {
        obj.insert("actor_email".into(), json!(email));
    }
    Ok(Json(v))
}
