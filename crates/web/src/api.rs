//! The JSON API (`/api/v1`), health endpoints and the OpenAPI document.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use raxx_core::rbac::{Level, Resource};
use serde::Deserialize;
use serde_json::{Value, json};

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
    if up && let Ok(status) = state.store.audit_checkpoint_status().await {
        let length = u64::try_from(status.chain_length).unwrap_or(0);
        let covered = match status.last_checkpoint {
            Some((_, last_id, at_ms)) => {
                crate::metrics::audit_checkpoint(at_ms as f64 / 1000.0, length);
                u64::try_from(last_id).unwrap_or(0)
            }
            None => {
                crate::metrics::audit_chain_length(length);
                0
            }
        };
        crate::metrics::audit_rows_uncovered(length.saturating_sub(covered));
    }
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

pub async fn me(State(state): State<AppState>, ctx: Ctx) -> AppResult<Json<Value>> {
    let admin = ctx
        .admin
        .clone()
        .ok_or_else(|| AppError::Internal("no operator".into()))?;
    Ok(Json(json!({
        "id": admin.id,
        "email": admin.email,
        "display_name": admin.display_name,
        "env": state.env(),
        "roles": ctx.roles().names(),
        "groups": state.store.groups_of(&admin.email).await?,
        "csrf_token": ctx.csrf(),
        "session_id": ctx.session.as_ref().map(|s| s.id.clone()),
    })))
}

pub async fn apps(State(state): State<AppState>) -> Json<Value> {
    let apps: Vec<Value> = state
        .cfg
        .config
        .apps
        .iter()
        .map(|a| json!({"name": a.name, "env": a.env, "promote_from": a.promote_from, "heroku_app": a.heroku_app, "checks": a.checks.len()}))
        .collect();
    Json(json!(apps))
}

pub async fn audit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Json<Value>> {
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
    Ok(Json(json!({"entries": rows, "next_cursor": next})))
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

pub async fn sessions(State(state): State<AppState>, ctx: Ctx) -> AppResult<Json<Value>> {
    let all = ctx.has(Resource::Session, Level::Reader);
    let rows = state
        .store
        .live_sessions(if all { None } else { ctx.admin_id() })
        .await?;
    Ok(Json(json!(rows
        .into_iter()
        .map(|(s, email)| json!({"id": s.id, "admin_id": s.admin_id, "email": email, "selected_env": s.selected_env,
            "created_at": s.created_at, "last_seen_at": s.last_seen_at, "expires_at": s.expires_at,
            "user_agent": s.user_agent, "ip": s.ip}))
        .collect::<Vec<_>>())))
}

pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    ops::revoke_session(&state, &ctx, &id).await?;
    Ok(Json(json!({"id": id, "revoked": true})))
}

pub async fn invites(State(state): State<AppState>) -> AppResult<Json<Value>> {
    let now = raxx_store::now_ms();
    Ok(Json(json!(state
        .store
        .invites()
        .await?
        .into_iter()
        .map(|i| json!({"id": i.id, "email": i.email, "group": i.group_name, "created_at": i.created_at, "expires_at": i.expires_at, "state": i.state(now)}))
        .collect::<Vec<_>>())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    group: String,
}

pub async fn create_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Result<Json<InviteBody>, axum::extract::rejection::JsonRejection>,
) -> AppResult<Response> {
    let Json(body) = body.map_err(|e| AppError::invalid(e.body_text()))?;
    let (url, id) = ops::create_invite(&state, &ctx, &body.email, &body.group).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "url": url}))).into_response())
}

pub async fn revoke_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    ops::revoke_invite(&state, &ctx, id).await?;
    Ok(Json(json!({"id": id, "revoked": true})))
}

pub async fn disable_operator(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    let ended = ops::set_operator_disabled(&state, &ctx, id, true).await?;
    Ok(Json(
        json!({"id": id, "disabled": true, "sessions_ended": ended}),
    ))
}

/// `POST /api/v1/operators/{id}/enable`: the JSON twin of the operators page's Enable.
pub async fn enable_operator(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    ops::set_operator_disabled(&state, &ctx, id, false).await?;
    Ok(Json(json!({"id": id, "disabled": false})))
}

pub async fn remove_membership(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, group)): Path<(i64, String)>,
) -> AppResult<Json<Value>> {
    ops::remove_membership(&state, &ctx, id, &group).await?;
    Ok(Json(json!({"id": id, "group": group, "removed": true})))
}
