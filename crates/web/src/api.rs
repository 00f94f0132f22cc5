//! The JSON API (`/api/v1`), health endpoints and the OpenAPI document.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use raxx_core::Env;
use raxx_core::rbac::{Level, Resource};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, AppResult};
use crate::gate::Ctx;
use crate::ops;
use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.ping().await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let up = state.store.ping().await;
    let audit = match up {
        true => state.store.audit_checkpoint_status().await.ok(),
        false => None,
    }
    .map(|status| crate::metrics::AuditScrape {
        chain_length: u64::try_from(status.chain_length).unwrap_or(0),
        checkpoint: status.last_checkpoint.map(|(_, last_id, at_ms)| {
            (at_ms as f64 / 1000.0, u64::try_from(last_id).unwrap_or(0))
        }),
    });
    let (checks, last_runs) = if up {
        (scrape_checks(&state).await, scrape_jobs(&state).await)
    } else {
        (Vec::new(), Vec::new())
    };
    let scrape = crate::metrics::Scrape {
        env: state.env().as_str(),
        database_up: up,
        checks,
        last_runs,
        audit,
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&scrape),
    )
        .into_response()
}

/// The configured checks' newest results (labels only from the config).
async fn scrape_checks(state: &AppState) -> Vec<(String, String, bool)> {
    let configured: std::collections::HashSet<(&str, &str)> = state
        .cfg
        .config
        .apps
        .iter()
        .filter(|a| a.env == state.env())
        .flat_map(|a| {
            a.checks
                .iter()
                .map(move |c| (a.name.as_str(), c.name.as_str()))
        })
        .collect();
    let results = state.store.latest_check_results().await.unwrap_or_default();
    results
        .into_iter()
        .filter(|r| configured.contains(&(r.app.as_str(), r.check.as_str())))
        .map(|r| {
            let up = r.status != raxx_store::checks::CheckStatus::Down;
            (r.app, r.check, up)
        })
        .collect()
}

/// Each job's newest finished run (job names are the scheduler's own constants).
async fn scrape_jobs(state: &AppState) -> Vec<(String, bool, Option<i64>)> {
    use raxx_store::jobs::RunOutcome;
    let runs = state.store.last_job_runs().await.unwrap_or_default();
    runs.into_iter()
        .filter(|r| r.outcome != RunOutcome::Running)
        .filter(|r| {
            r.job.len() <= 64
                && r.job
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
        .map(|r| (r.job, r.outcome == RunOutcome::Ok, r.finished_at))
        .collect()
}

/// The OpenAPI document, derived from the route manifest (`crate::openapi`).
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(crate::openapi::document(
        state.env(),
        &state.cfg.origin,
        &state.cfg.cookie_name(),
    ))
}

/// `GET /api/v1/me`: who is signed in, and the CSRF token their writes send.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    /// `staging` or `prod`: this console's env
    #[schema(value_type = String, example = "staging")]
    pub env: Env,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    /// send as `X-CSRF-Token` on every write
    pub csrf_token: String,
    pub session_id: Option<String>,
}

pub async fn me(State(state): State<AppState>, ctx: Ctx) -> AppResult<Json<Me>> {
    let admin = ctx
        .admin
        .clone()
        .ok_or_else(|| AppError::Internal("no operator".into()))?;
    Ok(Json(Me {
        id: admin.id,
        groups: state.store.groups_of(&admin.email).await?,
        email: admin.email,
        display_name: admin.display_name,
        env: state.env(),
        roles: ctx.roles().names(),
        csrf_token: ctx.csrf().to_string(),
        session_id: ctx.session.as_ref().map(|s| s.id.clone()),
    }))
}

/// One configured app.
#[derive(Serialize, ToSchema)]
pub struct AppView {
    pub name: String,
    #[schema(value_type = String, example = "staging")]
    pub env: Env,
    pub promote_from: Option<String>,
    pub heroku_app: Option<String>,
    /// how many health checks it has
    pub checks: usize,
}

pub async fn apps(State(state): State<AppState>) -> Json<Vec<AppView>> {
    let apps = state
        .cfg
        .config
        .apps
        .iter()
        .map(|a| AppView {
            name: a.name.clone(),
            env: a.env,
            promote_from: a.promote_from.clone(),
            heroku_app: a.heroku_app.clone(),
            checks: a.checks.len(),
        })
        .collect();
    Json(apps)
}

/// `GET /api/v1/audit`'s query (read by [`ops::audit_query`]).
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
    let q = crate::audit_filter::audit_query(&state, &p, limit, true).await?;
    let rows = ops::audit_read(&state, &ctx, &q, "audit.view").await?;
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
    let e = ops::audit_entry(&state, &ctx, &id).await?;
    let emails = crate::pages::operator_emails(&state).await?;
    let mut v = json!(e);
    if let (Some(obj), Some(email)) = (v.as_object_mut(), emails.get(&e.event.actor)) {
        obj.insert("actor_email".into(), json!(email));
    }
    Ok(Json(v))
}

/// A live session. Times are unix milliseconds.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub admin_id: i64,
    pub email: String,
    pub selected_env: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

pub async fn sessions(
    State(state): State<AppState>,
    ctx: Ctx,
) -> AppResult<Json<Vec<SessionView>>> {
    let all = ctx.has(Resource::Session, Level::Reader);
    let rows = state
        .store
        .live_sessions(if all { None } else { ctx.admin_id() })
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(s, email)| SessionView {
                id: s.id,
                admin_id: s.admin_id,
                email,
                selected_env: s.selected_env,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                user_agent: s.user_agent,
                ip: s.ip,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct SessionRevoked {
    pub id: String,
    /// always `true`
    pub revoked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct InviteRevoked {
    pub id: i64,
    /// always `true`
    pub revoked: bool,
}

pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Json<SessionRevoked>> {
    ops::revoke_session(&state, &ctx, &id).await?;
    Ok(Json(SessionRevoked { id, revoked: true }))
}

/// An invite. Times are unix milliseconds.
#[derive(Serialize, ToSchema)]
pub struct InviteView {
    pub id: i64,
    pub email: String,
    pub group: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// `pending`, `used`, `expired` or `revoked`
    pub state: &'static str,
}

pub async fn invites(State(state): State<AppState>) -> AppResult<Json<Vec<InviteView>>> {
    let now = raxx_store::now_ms();
    Ok(Json(
        state
            .store
            .invites()
            .await?
            .into_iter()
            .map(|i| InviteView {
                state: i.state(now),
                id: i.id,
                email: i.email,
                group: i.group_name,
                created_at: i.created_at,
                expires_at: i.expires_at,
            })
            .collect(),
    ))
}

/// `POST /api/v1/invites`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    group: String,
}

/// A created invite: its one-time URL (shown once).
#[derive(Serialize, ToSchema)]
pub struct InviteCreated {
    pub id: i64,
    pub url: String,
}

/// An operator disabled or enabled.
#[derive(Serialize, ToSchema)]
pub struct OperatorState {
    pub id: i64,
    pub disabled: bool,
    /// sessions ended by disabling (absent when enabling)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions_ended: Option<u64>,
}

/// A group membership removed.
#[derive(Serialize, ToSchema)]
pub struct MembershipRemoved {
    pub id: i64,
    pub group: String,
    /// always `true`
    pub removed: bool,
}

pub async fn create_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Result<Json<InviteBody>, axum::extract::rejection::JsonRejection>,
) -> AppResult<Response> {
    let Json(body) = body.map_err(|e| AppError::invalid(e.body_text()))?;
    let (url, id) = ops::create_invite(&state, &ctx, &body.email, &body.group).await?;
    Ok((StatusCode::CREATED, Json(InviteCreated { id, url })).into_response())
}

pub async fn revoke_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<InviteRevoked>> {
    ops::revoke_invite(&state, &ctx, id).await?;
    Ok(Json(InviteRevoked { id, revoked: true }))
}

pub async fn disable_operator(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<OperatorState>> {
    let ended = ops::set_operator_disabled(&state, &ctx, id, true).await?;
    Ok(Json(OperatorState {
        id,
        disabled: true,
        sessions_ended: Some(ended),
    }))
}

/// `POST /api/v1/operators/{id}/enable`: the JSON twin of the operators page's Enable.
pub async fn enable_operator(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<OperatorState>> {
    ops::set_operator_disabled(&state, &ctx, id, false).await?;
    Ok(Json(OperatorState {
        id,
        disabled: false,
        sessions_ended: None,
    }))
}

pub async fn remove_membership(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, group)): Path<(i64, String)>,
) -> AppResult<Json<MembershipRemoved>> {
    ops::remove_membership(&state, &ctx, id, &group).await?;
    Ok(Json(MembershipRemoved {
        id,
        group,
        removed: true,
    }))
}
