//! The JSON twins of the promotion pages and the kill switch (SPEC §13).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use raxx_core::flags::diff_flag;
use raxx_core::promotion::PromotionStatus;
use raxx_store::flags::PromotionRecord;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{env_apps, promote};
use crate::error::{AppError, AppResult};
use crate::gate::Ctx;
use crate::state::AppState;

/// A status filter from `?status=`, or 400 naming the allowed values.
pub(crate) fn status_filter(p: &HashMap<String, String>) -> AppResult<Option<PromotionStatus>> {
    match p.get("status").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            AppError::invalid(format!(
                "status must be one of pending, approved, applied, rejected, stale, expired; not `{s}`"
            ))
        }),
    }
}

/// A promotion as JSON; with `prod`, each flag's change against prod's current state.
pub(crate) fn promotion_json(
    r: &PromotionRecord,
    prod: Option<&raxx_store::flags::FlagState>,
) -> Value {
    let p = &r.promotion;
    let flags: Vec<Value> = p
        .flags
        .iter()
        .map(|f| {
            let current = prod.map(|s| s.flags.get(&f.key));
            let mut item = json!({
                "key": f.key,
                "base_version": f.base_version,
                "new": f.new,
            });
            if let Some(current) = current {
                item["current_version"] = json!(current.map(|c| c.version));
                item["change"] = json!(diff_flag(&f.key, current.map(|c| &c.flag), f.new.as_ref()));
            }
            item
        })
        .collect();
    json!({
        "id": p.id,
        "target_app": p.target_app,
        "status": p.status,
        "requested_by": p.requested_by,
        "reason": p.reason,
        "content_hash": p.content_hash,
        "created_at": p.created_at,
        "expires_at": p.expires_at,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at,
        "decision_reason": r.decision_reason,
        "applied_at": r.applied_at,
        "kind": r.kind,
        "review_hash": r.review_hash,
        "flags": flags,
    })
}

/// `GET /api/v1/promotions?status=`.
pub async fn promotions(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Json<Value>> {
    let status = status_filter(&p)?;
    let rows = state
        .store
        .promotions(&env_apps(&state), status, 200)
        .await?;
    Ok(Json(Value::Array(
        rows.iter().map(|r| promotion_json(r, None)).collect(),
    )))
}

/// `GET /api/v1/promotions/{id}`: with the review frozen at queue time (`review`: what was
/// approved and applied) and, per flag, its `change` against prod now (drift since).
pub async fn promotion(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    let record = promote::find(&state, id).await?;
    let prod = state.store.flag_state(&record.promotion.target_app).await?;
    let mut body = promotion_json(&record, Some(&prod));
    body["review"] = json!(state.store.promotion_review(&record).await?);
    Ok(Json(body))
}

fn body<T: DeserializeOwned + Default>(bytes: &Bytes, required: bool) -> AppResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if required {
            return Err(AppError::invalid("a JSON body is required"));
        }
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| AppError::invalid(format!("the JSON body is not valid: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct QueueBody {
    app: String,
    flags: Vec<String>,
    reason: String,
}

/// `POST /api/v1/promotions` `{"app","flags":[keys],"reason"}` → 201
/// `{"id","status":"pending","diff":…}`.
pub async fn queue(State(state): State<AppState>, ctx: Ctx, bytes: Bytes) -> AppResult<Response> {
    let b: QueueBody = body(&bytes, true)?;
    let (p, diff) = promote::queue(&state, &ctx, &b.app, &b.flags, &b.reason, None).await?;
    let record = promote::find(&state, p.id).await?;
    let review = state.store.promotion_review(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": p.id,
            "status": p.status,
            "kind": record.kind,
            "target_app": p.target_app,
            "content_hash": p.content_hash,
            "expires_at": p.expires_at,
            "diff": diff,
            "review": review,
        })),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// The content hash the approver reviewed (optional over the API).
    content_hash: Option<String>,
}

/// `POST /api/v1/promotions/{id}/approve` → `{"id","status":"applied",…}`;
/// 403 `self_approval`, 409 `stale`/`not_pending`/`expired`/`content_changed`.
pub async fn approve(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> AppResult<Json<Value>> {
    let b: ApproveBody = body(&bytes, false)?;
    let applied = promote::approve(&state, &ctx, id, b.content_hash.as_deref()).await?;
    Ok(Json(json!({
        "id": id,
        "status": PromotionStatus::Applied,
        "target_app": applied.target_app,
        "versions": applied.versions,
        "diff": applied.changes,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

/// `POST /api/v1/promotions/{id}/reject` `{"reason"}`.
pub async fn reject(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> AppResult<Json<Value>> {
    let b: ReasonBody = body(&bytes, true)?;
    let record = promote::reject(&state, &ctx, id, &b.reason).await?;
    Ok(Json(promotion_json(&record, None)))
}

/// `POST /api/v1/apps/{app}/flags/{key}/kill` `{"reason"}`.
pub async fn kill(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((app, key)): Path<(String, String)>,
    bytes: Bytes,
) -> AppResult<Json<Value>> {
    let b: ReasonBody = body(&bytes, true)?;
    let killed = promote::kill(&state, &ctx, &app, &key, &b.reason).await?;
    Ok(Json(json!({
        "app": killed.app,
        "key": killed.key,
        "enabled": false,
        "version": killed.version,
        "changed": killed.changed,
        "bypass": true,
    })))
}

/// `POST /api/v1/apps/{app}/flags/{key}/restore` `{"reason"}` → 201 with the queued restore
/// promotion and its review; 409 `not_killed` when the flag is not killed (nothing queued).
pub async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((app, key)): Path<(String, String)>,
    bytes: Bytes,
) -> AppResult<Response> {
    let b: ReasonBody = body(&bytes, true)?;
    let p = promote::restore(&state, &ctx, &app, &key, &b.reason).await?;
    let record = promote::find(&state, p.id).await?;
    let mut answer = promotion_json(&record, None);
    answer["review"] = json!(state.store.promotion_review(&record).await?);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
