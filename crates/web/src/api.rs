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
use crate::manifest::{Surface, route_manifest};
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
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(state.env().as_str(), up),
    )
        .into_response()
}

/// The OpenAPI document, generated from the route manifest so it covers every JSON route.
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    let mut paths = serde_json::Map::new();
    for r in route_manifest()
        .iter()
        .filter(|r| r.surface() == Surface::Json)
    {
        let path = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "operationId": format!("{}_{}", r.method.as_str().to_lowercase(), r.path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
            "summary": r.action,
            "x-class": r.class.as_str(),
            "x-permission-staging": r.permission(raxx_core::Env::Staging),
            "x-permission-prod": r.permission(raxx_core::Env::Prod),
            "parameters": params,
            "responses": {
                "200": {"description": "OK"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
            },
        });
        if r.class.is_write()
            && r.access != raxx_core::gate::Access::Public
            && let Some(p) = op["parameters"].as_array_mut()
        {
            p.push(json!({"name": "X-CSRF-Token", "in": "header", "required": false, "schema": {"type": "string"}, "description": "the session's CSRF token (from GET /api/v1/me); not needed with an API key"}));
            p.push(json!({"name": "X-Console-Env", "in": "header", "required": false, "schema": {"type": "string", "enum": ["staging", "prod"]}, "description": "the env you believe you act on; must equal this console's"}));
        }
        path[r.method.as_str().to_lowercase()] = op;
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "raxx-console", "version": env!("CARGO_PKG_VERSION"), "description": format!("The {} console's JSON API. Errors are {{\"error\",\"message\"}}.", state.env())},
        "servers": [{"url": state.cfg.origin}],
        "paths": paths,
        "components": {
            "responses": {"Error": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {"Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": state.cfg.cookie_name()},
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }))
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
    let q = ops::audit_query(&p, limit)?;
    let rows = ops::audit_read(&state, &ctx, &q, "audit.view").await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(json!({"entries": rows, "next_cursor": next})))
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

pub async fn remove_membership(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, group)): Path<(i64, String)>,
) -> AppResult<Json<Value>> {
    ops::remove_membership(&state, &ctx, id, &group).await?;
    Ok(Json(json!({"id": id, "group": group, "removed": true})))
}
