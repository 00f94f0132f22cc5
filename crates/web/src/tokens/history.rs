//! One token's page (`GET /tokens/{id}`, JSON twin `GET /api/v1/tokens/{id}`): the token,
//! all its versions (every secret an app key token has had; a provider token's current
//! and previous authorization) and its rotation history, read from the audit log rows
//! whose target is the token's id (which rotations keep).

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use raxx_core::audit::AuditEntry;
use raxx_core::rbac::Resource;
use raxx_store::audit::AuditQuery;
use raxx_store::now_ms;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::inventory::{Token, TokenId, Version, key_versions};
use super::{VersionRow, render, token_json, version_json, version_row};
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use raxx_actions::fmt_time;

/// Most history rows shown (newest first).
pub const HISTORY_LIMIT: u32 = 100;

/// One change to a token, from the audit log.
pub struct HistoryEntry {
    pub at: i64,
    /// The operator's email, or the actor (`system:<job>`).
    pub actor: String,
    pub action: String,
    pub outcome: String,
    /// "version 3", "new authorization …", the failure's reason.
    pub detail: String,
}

struct TokenView {
    token: Token,
    versions: Vec<Version>,
    history: Vec<HistoryEntry>,
}

async fn load(state: &AppState, raw: &str) -> AppResult<TokenView> {
    let id = TokenId::parse(raw).ok_or_else(|| {
        AppError::NotFound(format!(
            "there is no token `{raw}`; token ids look like key:12 or heroku:3"
        ))
    })?;
    let token = super::inventory(state)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| AppError::NotFound(format!("there is no token {id}")))?;
    let admins = state.store.admins().await?;
    let who = |actor: &str| {
        actor
            .parse::<i64>()
            .ok()
            .and_then(|n| admins.iter().find(|a| a.id == n))
            .map_or_else(|| actor.to_string(), |a| a.email.clone())
    };
    let versions = match id {
        TokenId::Key(n) => {
            let rows = state.store.app_key_versions(n).await?;
            let refs: Vec<_> = rows.iter().collect();
            let used = state.store.app_key_last_used().await?;
            key_versions(&refs, now_ms(), &used, who)
        }
        TokenId::Provider { .. } => token.versions.clone(),
    };
    let q = AuditQuery {
        target: Some(id.to_string()),
        action: Some("token.".into()),
        limit: HISTORY_LIMIT,
        ..Default::default()
    };
    let history = state
        .store
        .audit_page(&q)
        .await?
        .iter()
        .filter(|e| e.event.target_type.as_deref() == Some("token"))
        .map(|e| history_entry(e, &who))
        .collect();
    Ok(TokenView {
        token,
        versions,
        history,
    })
}

fn history_entry(e: &AuditEntry, who: &impl Fn(&str) -> String) -> HistoryEntry {
    let c = &e.event.context;
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let mut detail = Vec::new();
    if let Some(n) = c.get("version").and_then(Value::as_u64) {
        detail.push(format!("version {n}"));
    }
    if let Some(a) = text("new_authorization_id") {
        detail.push(format!("new authorization {a}"));
    }
    if let Some(a) = text("previous_authorization_id") {
        detail.push(format!("previous authorization {a}"));
    }
    if let Some(g) = c.get("grace_seconds").and_then(Value::as_i64) {
        detail.push(format!("grace {g} s"));
    }
    if let Some(change) = text("change") {
        detail.push(format!("config: {change}"));
    }
    if let Some(r) = &e.event.reason {
        detail.push(r.clone());
    }
    HistoryEntry {
        at: e.at,
        actor: who(&e.event.actor),
        action: e.event.action.clone(),
        outcome: e.event.outcome.as_str().to_string(),
        detail: detail.join(" · "),
    }
}

/// A token with every version it had and its audit history.
#[derive(Serialize, ToSchema)]
pub struct TokenDetail {
    #[serde(flatten)]
    pub token: super::TokenView,
    pub all_versions: Vec<super::VersionView>,
    pub history: Vec<HistoryItem>,
}

/// One audited event of a token.
#[derive(Serialize, ToSchema)]
pub struct HistoryItem {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub detail: String,
}

pub async fn api_token(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> AppResult<Json<TokenDetail>> {
    let view = load(&state, &raw).await?;
    Ok(Json(TokenDetail {
        token: token_json(&view.token, now_ms()),
        all_versions: view.versions.iter().map(version_json).collect(),
        history: view
            .history
            .iter()
            .map(|h| HistoryItem {
                at: h.at,
                actor: h.actor.clone(),
                action: h.action.clone(),
                outcome: h.outcome.clone(),
                detail: h.detail.clone(),
            })
            .collect(),
    }))
}

pub struct HistoryRow {
    pub time: String,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "tokens_token.html")]
struct TokenPage {
    layout: Layout,
    id: String,
    name: String,
    app: String,
    noun: String,
    versions: Vec<VersionRow>,
    history: Vec<HistoryRow>,
    can_rotate: bool,
}

pub async fn token_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(raw): Path<String>,
) -> AppResult<Response> {
    let view = load(&state, &raw).await?;
    let t = &view.token;
    Ok(render(&TokenPage {
        layout: Layout::new(&state, Some(&ctx), format!("Token {}", t.name), "Tokens"),
        id: t.id.to_string(),
        name: t.name.clone(),
        app: t.app.clone(),
        noun: t.noun(),
        versions: view.versions.iter().map(version_row).collect(),
        history: view
            .history
            .into_iter()
            .map(|h| HistoryRow {
                time: fmt_time(h.at),
                actor: h.actor,
                action: h.action.trim_start_matches("token.").replace('_', " "),
                outcome: h.outcome,
                detail: h.detail,
            })
            .collect(),
        can_rotate: ctx.can_write(Resource::Token),
    }))
}
