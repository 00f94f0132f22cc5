//! Operators as JSON: sessions, invites, operators and their groups.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use raxx_core::rbac::{Level, Resource};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;

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
    raxx_actions::operators::revoke_session(&state, &ctx.caller(), &id).await?;
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
    let (url, id) =
        raxx_actions::operators::create_invite(&state, &ctx.caller(), &body.email, &body.group)
            .await?;
    Ok((StatusCode::CREATED, Json(InviteCreated { id, url })).into_response())
}

pub async fn revoke_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<InviteRevoked>> {
    raxx_actions::operators::revoke_invite(&state, &ctx.caller(), id).await?;
    Ok(Json(InviteRevoked { id, revoked: true }))
}

pub async fn disable_operator(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Json<OperatorState>> {
    let ended =
        raxx_actions::operators::set_operator_disabled(&state, &ctx.caller(), id, true).await?;
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
    raxx_actions::operators::set_operator_disabled(&state, &ctx.caller(), id, false).await?;
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
    raxx_actions::operators::remove_membership(&state, &ctx.caller(), id, &group).await?;
    Ok(Json(MembershipRemoved {
        id,
        group,
        removed: true,
    }))
}
