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
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{env_apps, promote};
use crate::kernel::apidoc::AnyJson;
use crate::kernel::apidoc::PromotionState;
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;

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

/// `?status=` of `GET /api/v1/promotions`.
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct PromotionsQuery {
    /// only promotions in this state
    #[param(inline)]
    status: Option<PromotionState>,
}

/// One flag of a promotion.
#[derive(Serialize, ToSchema)]
pub struct PromotedFlagView {
    pub key: String,
    /// prod's version the promotion was made against (`null`: the flag was new)
    pub base_version: Option<i64>,
    /// the definition to apply (`null`: remove the flag)
    #[schema(value_type = AnyJson)]
    pub new: Value,
    /// with prod's state: its version now
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub current_version: Option<Option<i64>>,
    /// with prod's state: the change against prod now
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = AnyJson)]
    pub change: Option<Value>,
}

/// A promotion. Times are unix milliseconds.
#[derive(Serialize, ToSchema)]
pub struct PromotionView {
    pub id: i64,
    pub target_app: String,
    #[schema(value_type = PromotionState)]
    pub status: PromotionStatus,
    /// the requester's operator id
    pub requested_by: i64,
    pub reason: String,
    pub content_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_by: Option<i64>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
    pub applied_at: Option<i64>,
    /// `staging` (promoted from staging) or `restore` (after a kill)
    #[schema(value_type = String)]
    pub kind: Value,
    pub review_hash: Option<String>,
    pub flags: Vec<PromotedFlagView>,
    /// the review frozen at queue time (single promotions and restores)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = AnyJson)]
    pub review: Option<Value>,
}

/// A promotion as JSON; with `prod`, each flag's change against prod's current state.
pub(crate) fn promotion_json(
    r: &PromotionRecord,
    prod: Option<&raxx_store::flags::FlagState>,
) -> PromotionView {
    let p = &r.promotion;
    let flags = p
        .flags
        .iter()
        .map(|f| {
            let current = prod.map(|s| s.flags.get(&f.key));
            PromotedFlagView {
                key: f.key.clone(),
                base_version: f.base_version,
                new: json!(f.new),
                current_version: current.map(|c| c.map(|c| c.version)),
                change: current
                    .map(|c| json!(diff_flag(&f.key, c.map(|c| &c.flag), f.new.as_ref()))),
            }
        })
        .collect();
    PromotionView {
        id: p.id,
        target_app: p.target_app.clone(),
        status: p.status,
        requested_by: p.requested_by,
        reason: p.reason.clone(),
        content_hash: p.content_hash.clone(),
        created_at: p.created_at,
        expires_at: p.expires_at,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        decision_reason: r.decision_reason.clone(),
        applied_at: r.applied_at,
        kind: json!(r.kind),
        review_hash: r.review_hash.clone(),
        flags,
        review: None,
    }
}

/// `GET /api/v1/promotions?status=`.
pub async fn promotions(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Json<Vec<PromotionView>>> {
    let status = status_filter(&p)?;
    let rows = state
        .store
        .promotions(&env_apps(&state), status, 200)
        .await?;
    Ok(Json(rows.iter().map(|r| promotion_json(r, None)).collect()))
}

/// `GET /api/v1/promotions/{id}`: with the review frozen at queue time (`review`: what was
/// approved and applied) and, per flag, its `change` against prod now (drift since).
pub async fn promotion(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> AppResult<Json<PromotionView>> {
    let record = promote::find(&state, id).await?;
    let prod = state.store.flag_state(&record.promotion.target_app).await?;
    let mut body = promotion_json(&record, Some(&prod));
    body.review = Some(json!(state.store.promotion_review(&record).await?));
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

/// `POST /api/v1/promotions`: promote these staging flags to the prod app.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// the prod app
    app: String,
    /// staging flag keys
    flags: Vec<String>,
    reason: String,
}

/// A promotion queued.
#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub id: i64,
    #[schema(value_type = PromotionState)]
    pub status: PromotionStatus,
    #[schema(value_type = String)]
    pub kind: Value,
    pub target_app: String,
    pub content_hash: String,
    pub expires_at: i64,
    #[schema(value_type = AnyJson)]
    pub diff: Value,
    #[schema(value_type = AnyJson)]
    pub review: Value,
}

/// A promotion approved and applied.
#[derive(Serialize, ToSchema)]
pub struct Approved {
    pub id: i64,
    #[schema(value_type = PromotionState)]
    pub status: PromotionStatus,
    pub target_app: String,
    /// each flag's version now
    #[schema(value_type = AnyJson)]
    pub versions: Value,
    #[schema(value_type = AnyJson)]
    pub diff: Value,
}

/// A flag killed (disabled on prod at once).
#[derive(Serialize, ToSchema)]
pub struct Killed {
    pub app: String,
    pub key: String,
    /// always `false`
    pub enabled: bool,
    pub version: i64,
    /// `false` when it was already disabled
    pub changed: bool,
    /// always `true`: the kill switch skips review
    pub bypass: bool,
}

/// `POST /api/v1/promotions` `{"app","flags":[keys],"reason"}` → 201
/// `{"id","status":"pending","diff":…}`.
pub async fn queue(State(state): State<AppState>, ctx: Ctx, bytes: Bytes) -> AppResult<Response> {
    let b: QueueBody = body(&bytes, true)?;
    let (p, diff) =
        promote::queue(&state, &ctx.caller(), &b.app, &b.flags, &b.reason, None).await?;
    let record = promote::find(&state, p.id).await?;
    let review = state.store.promotion_review(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(Queued {
            id: p.id,
            status: p.status,
            kind: json!(record.kind),
            target_app: p.target_app,
            content_hash: p.content_hash,
            expires_at: p.expires_at,
            diff: json!(diff),
            review: json!(review),
        }),
    )
        .into_response())
}

/// `POST /api/v1/promotions/{id}/approve` (body optional).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
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
) -> AppResult<Json<Approved>> {
    let b: ApproveBody = body(&bytes, false)?;
    let applied = promote::approve(&state, &ctx.caller(), id, b.content_hash.as_deref()).await?;
    Ok(Json(Approved {
        id,
        status: PromotionStatus::Applied,
        target_app: applied.target_app,
        versions: json!(applied.versions),
        diff: json!(applied.changes),
    }))
}

/// `{"reason"}`: why (reject, kill, restore).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    reason: String,
}

/// `POST /api/v1/promotions/{id}/reject` `{"reason"}`.
pub async fn reject(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    bytes: Bytes,
) -> AppResult<Json<PromotionView>> {
    let b: ReasonBody = body(&bytes, true)?;
    let record = promote::reject(&state, &ctx.caller(), id, &b.reason).await?;
    Ok(Json(promotion_json(&record, None)))
}

/// `POST /api/v1/apps/{app}/flags/{key}/kill` `{"reason"}`.
pub async fn kill(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((app, key)): Path<(String, String)>,
    bytes: Bytes,
) -> AppResult<Json<Killed>> {
    let b: ReasonBody = body(&bytes, true)?;
    let killed = promote::kill(&state, &ctx.caller(), &app, &key, &b.reason).await?;
    Ok(Json(Killed {
        app: killed.app,
        key: killed.key,
        enabled: false,
        version: killed.version,
        changed: killed.changed,
        bypass: true,
    }))
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
    let p = promote::restore(&state, &ctx.caller(), &app, &key, &b.reason).await?;
    let record = promote::find(&state, p.id).await?;
    let mut answer = promotion_json(&record, None);
    answer.review = Some(json!(state.store.promotion_review(&record).await?));
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
