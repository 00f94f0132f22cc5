//! Who the caller is and which apps this console serves (JSON).

use axum::Json;
use axum::extract::State;
use raxx_core::Env;
use serde::Serialize;
use utoipa::ToSchema;

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;

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
