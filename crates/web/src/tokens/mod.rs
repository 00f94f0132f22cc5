//! Tokens and rotation (SPEC §8, issue 5): one inventory of app keys (provider `local`)
//! and provider tokens (`[[apps.tokens]]`, Heroku), dual-phase rotation of both, the
//! rotation sweep and the dashboard's reminders. Never a secret, except a new app key's
//! secret in the one answer that creates it.
//!
//! - [`inventory`]: the list and each token's state (pure parts table-tested).
//! - [`rotation`]: rotate / revoke-previous, shared by pages, the JSON API and the sweep.
//! - [`sweep`]: the config sync, [`rotation_sweep`], [`expiring_tokens`].
//! - [`history`]: one token's page: its versions and rotation history.
//! - [`depends`]: the warning before rotating a key the other console depends on.
//!
//! Token ids are `key:<n>` (an app key) or `<provider>:<n>` (`heroku:3`), kept across
//! rotations; see docs/tokens.md.

pub mod history;
pub use raxx_actions::tokens::{depends, inventory, rotation, sweep};

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, http::StatusCode};
use raxx_core::gate::{Access, Class};
use raxx_core::rbac::{Level, Resource};
use raxx_store::now_ms;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use inventory::{Token, TokenId, TokenState, Version, VersionState};
pub use raxx_actions::Actor;
pub use rotation::{GRACE_DEFAULT, GRACE_MAX, Rotation};
pub use sweep::{ExpiringToken, SweepReport, expiring_tokens, rotation_sweep};

use crate::kernel::apidoc::ApiDoc;
use crate::kernel::apidoc::TokenIdPath;
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::route::Route;
use crate::kernel::route::route;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use crate::kernel::views::redirect_with_flash;
use raxx_actions::fmt_time;

/// The routes of this capability (one line in `manifest::feature_routes`).
pub fn routes() -> Vec<Route> {
    use Access::Role;
    vec![
        route!(GET "/tokens", Read, Role(Resource::Token), "token.view", tokens_page),
        route!(GET "/tokens/{id}", Read, Role(Resource::Token), "token.view", history::token_page),
        // The confirmation page of the POST below: decided as that POST (`Route::decided_as`).
        Route {
            confirms: Some(Method::POST),
            ..route!(GET "/tokens/{id}/rotate", Read, Role(Resource::Token), "token.rotate.confirm", confirm_page)
        },
        route!(POST "/tokens/{id}/rotate", Write, Role(Resource::Token), "token.rotate", rotate_page),
        route!(POST "/tokens/{id}/revoke-previous", Write, Role(Resource::Token), "token.revoke_previous", revoke_previous_page),
        route!(GET "/api/v1/tokens", Read, Role(Resource::Token), "token.list", api_list, doc = ApiDoc::list::<TokenView>()),
        route!(GET "/api/v1/tokens/{id}", Read, Role(Resource::Token), "token.list", history::api_token, doc = ApiDoc::reply::<history::TokenDetail>().path::<TokenIdPath>()),
        route!(POST "/api/v1/tokens/{id}/rotate", Write, Role(Resource::Token), "token.rotate", api_rotate, doc = ApiDoc::reply::<RotationView>().optional_body::<RotateBody>().path::<TokenIdPath>()),
        route!(POST "/api/v1/tokens/{id}/revoke-previous", Write, Role(Resource::Token), "token.revoke_previous", api_revoke_previous, doc = ApiDoc::reply::<PreviousRevoked>().path::<TokenIdPath>()),
    ]
}

pub use raxx_actions::tokens::{inventory_of as inventory, start_up, sync_inventory};

/// The dashboard's reminders: empty for operators who cannot read tokens, and when the
/// inventory cannot be read (the dashboard must still render).
pub async fn dashboard_reminders(state: &AppState, ctx: &Ctx) -> Vec<ExpiringToken> {
    if !ctx.has(Resource::Token, Level::Reader) {
        return Vec::new();
    }
    expiring_tokens(state).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not list expiring tokens");
        Vec::new()
    })
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

fn actor(ctx: &Ctx) -> Actor {
    Actor::Operator(Box::new(ctx.caller()))
}

// ---- JSON API ----

/// A token in the JSON API. App keys carry `version`/`previous_version`; provider tokens
/// carry the `authorization_id` fields instead. Times are unix milliseconds.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    /// `key:12` for an app key, `heroku:3` for a provider token
    pub id: String,
    pub app: String,
    pub name: String,
    /// `client` / `deploy` / `read` for app keys, `oauth` for provider authorizations
    pub kind: String,
    pub provider: String,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub rotated_by: Option<String>,
    pub max_age_days: Option<i64>,
    pub expires_at: Option<i64>,
    pub state: &'static str,
    pub grace_until: Option<i64>,
    pub auto_rotate: bool,
    pub versions: Vec<VersionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub authorization_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub previous_authorization_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_pending_revocation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub last_error: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub manual_reason: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub version: Option<Option<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub previous_version: Option<Option<usize>>,
}

fn token_json(t: &Token, now: i64) -> TokenView {
    let provider = matches!(t.id, TokenId::Provider { .. });
    let key = !provider;
    TokenView {
        id: t.id.to_string(),
        app: t.app.clone(),
        name: t.name.clone(),
        kind: t.kind.clone(),
        provider: t.provider.clone(),
        created_at: t.created_at,
        rotated_at: t.rotated_at,
        rotated_by: t.rotated_by.clone(),
        max_age_days: t.max_age_days,
        expires_at: t.expires_at,
        state: t.state.as_str(),
        grace_until: t.previous.as_ref().map(|p| p.grace_until),
        auto_rotate: t.manual_reason.is_none(),
        versions: t.versions.iter().map(version_json).collect(),
        authorization_id: provider.then(|| t.authorization_id.clone()),
        previous_authorization_id: provider
            .then(|| t.previous.as_ref().map(|p| p.reference.clone())),
        previous_pending_revocation: provider.then(|| t.previous_pending(now)),
        last_error: provider.then(|| t.last_error.clone()),
        manual_reason: provider.then(|| t.manual_reason.clone()),
        version: key.then(|| t.versions.first().and_then(|v| v.number)),
        previous_version: key.then(|| {
            t.versions
                .iter()
                .find(|v| v.state == VersionState::Previous)
                .and_then(|v| v.number)
        }),
    }
}

/// One version in the JSON API: `{"version": 2, "state": "current", ...}` for app keys,
/// `{"authorization_id": "...", "state": "previous", ...}` for provider tokens.
#[derive(Serialize, ToSchema)]
pub struct VersionView {
    /// `current`, `previous` or `ended`
    pub state: &'static str,
    pub created_at: Option<i64>,
    pub created_by: Option<String>,
    pub grace_until: Option<i64>,
    pub ended_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// app keys: the version's number
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<usize>,
    /// provider tokens: the authorization id
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub authorization_id: Option<Option<String>>,
}

pub fn version_json(v: &Version) -> VersionView {
    VersionView {
        state: v.state.as_str(),
        created_at: v.created_at,
        created_by: v.created_by.clone(),
        grace_until: v.grace_until,
        ended_at: v.ended_at,
        last_used_at: v.last_used_at,
        version: v.number,
        authorization_id: v.number.is_none().then(|| v.authorization_id.clone()),
    }
}

pub async fn api_list(State(state): State<AppState>) -> AppResult<Json<Vec<TokenView>>> {
    let now = now_ms();
    let tokens = inventory(&state).await?;
    Ok(Json(tokens.iter().map(|t| token_json(t, now)).collect()))
}

/// `POST /api/v1/tokens/{id}/rotate`: empty, or the grace period of the previous secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// seconds the previous secret keeps working (0 to 604800; default 86400)
    #[schema(minimum = 0, maximum = 604800)]
    grace_seconds: Option<i64>,
}

/// The optional `{"grace_seconds": N}` body, range-checked.
fn grace_from_body(body: &[u8]) -> raxx_actions::Result<i64> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return rotation::grace_seconds(None);
    }
    let parsed: RotateBody = serde_json::from_slice(body).map_err(|e| {
        raxx_actions::Error::invalid(format!(
            "the body must be empty or {{\"grace_seconds\": N}} with N from 0 to {GRACE_MAX}: {e}"
        ))
    })?;
    rotation::grace_seconds(parsed.grace_seconds)
}

/// A rotation done. An app key's answer carries its new `secret` (shown once), `version`,
/// `previous_version` and `notice`; a provider token's the authorization ids,
/// `published_to` and `warning`.
#[derive(Serialize, ToSchema)]
pub struct RotationView {
    pub id: String,
    pub app: String,
    pub name: String,
    pub grace_until: i64,
    /// `local` for app keys, else the provider
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub version: Option<Option<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub previous_version: Option<Option<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub notice: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub authorization_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub previous_authorization_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_to: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub warning: Option<Option<String>>,
}

fn rotation_json(r: &Rotation) -> RotationView {
    let key = r.secret.is_some();
    let provider = !key;
    RotationView {
        id: r.id.to_string(),
        app: r.app.clone(),
        name: r.name.clone(),
        grace_until: r.grace_until,
        provider: match &r.id {
            TokenId::Provider { provider, .. } if !key => provider.clone(),
            _ => "local".into(),
        },
        secret: r.secret.clone(),
        version: key.then_some(r.version),
        previous_version: key.then(|| r.version.map(|n| n - 1).filter(|n| *n > 0)),
        notice: key.then(|| r.notice.clone()),
        authorization_id: provider.then(|| r.new_authorization_id.clone()),
        previous_authorization_id: provider.then(|| r.previous_authorization_id.clone()),
        published_to: provider.then(|| r.published_to.clone()),
        warning: provider.then(|| r.warning.clone()),
    }
}

/// "Revoke previous now" done.
#[derive(Serialize, ToSchema)]
pub struct PreviousRevoked {
    pub id: String,
    pub app: String,
    pub name: String,
    /// `version 1` (an app key) or the authorization id
    pub previous: String,
    /// always `true`
    pub revoked: bool,
    /// providers: `deleted` or `already_gone`
    pub how: &'static str,
}

pub async fn api_rotate(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(raw): Path<String>,
    body: Bytes,
) -> AppResult<Json<RotationView>> {
    let who = actor(&ctx);
    let id = rotation::parse_id(&state, &who, "token.rotate", &raw).await?;
    let r = rotation::rotate(&state, &who, &id, grace_from_body(&body)).await?;
    Ok(Json(rotation_json(&r)))
}

pub async fn api_revoke_previous(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(raw): Path<String>,
) -> AppResult<Json<PreviousRevoked>> {
    let who = actor(&ctx);
    let id = rotation::parse_id(&state, &who, "token.revoke_previous", &raw).await?;
    let r = rotation::revoke_previous(&state, &who, &id).await?;
    Ok(Json(PreviousRevoked {
        id: r.id.to_string(),
        app: r.app,
        name: r.name,
        previous: r.previous,
        revoked: true,
        how: r.how,
    }))
}

// ---- Pages ----

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub provider: String,
    pub created: String,
    pub rotated: String,
    pub rotated_by: String,
    pub max_age: String,
    pub expires: String,
    pub state_label: String,
    /// The state in a word or two, for the badge (the label carries the time).
    pub state_short: String,
    pub state_class: &'static str,
    pub notes: Vec<String>,
    pub has_previous: bool,
    /// The current version, then the previous one while it works.
    pub versions: Vec<VersionRow>,
    /// The last failed rotation: (the failed step in words, the provider's raw answer).
    pub failure: Option<(String, String)>,
}

/// One version under its token's row.
pub struct VersionRow {
    /// "version 2", or "authorization 01234567-…".
    pub label: String,
    /// `current` / `previous` / `ended`.
    pub state: &'static str,
    /// "since 2026-11-20 09:30:00 UTC by ops@raxx.test · last used …".
    pub detail: String,
}

pub fn version_row(v: &Version) -> VersionRow {
    let mut parts = Vec::new();
    match (v.state, v.created_at) {
        (VersionState::Previous, _) => {
            if let Some(g) = v.grace_until {
                parts.push(format!("works until {} UTC", fmt_time(g)));
            }
        }
        (VersionState::Ended, _) => {
            if let Some(e) = v.ended_at {
                parts.push(format!("ended {} UTC", fmt_time(e)));
            }
        }
        (VersionState::Current, Some(at)) => parts.push(format!("since {} UTC", fmt_time(at))),
        (VersionState::Current, None) => {}
    }
    if let Some(by) = &v.created_by {
        parts.push(format!("by {by}"));
    }
    if v.number.is_some() {
        parts.push(match v.last_used_at {
            Some(at) => format!("last used {} UTC", fmt_time(at)),
            None => "never used".into(),
        });
    }
    VersionRow {
        label: v.label(),
        state: v.state.as_str(),
        detail: parts.join(" · "),
    }
}

pub struct AppTokens {
    pub name: String,
    pub rows: Vec<TokenRow>,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    apps: Vec<AppTokens>,
    can_rotate: bool,
}

pub async fn tokens_page(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let now = now_ms();
    let tokens = inventory(&state).await?;
    let apps = state
        .cfg
        .config
        .apps
        .iter()
        .map(|app| AppTokens {
            name: app.name.clone(),
            rows: tokens
                .iter()
                .filter(|t| t.app == app.name)
                .map(|t| token_row(t, now, state.env()))
                .collect(),
        })
        .collect();
    Ok(render(&TokensPage {
        layout: Layout::new(&state, Some(&ctx), "Tokens", "Tokens"),
        apps,
        can_rotate: ctx.can_write(Resource::Token),
    }))
}

fn token_row(t: &Token, now: i64, env: raxx_core::Env) -> TokenRow {
    let mut notes = Vec::new();
    if let Some(p) = &t.previous {
        notes.push(if t.previous_pending(now) {
            format!(
                "previous {} still live: its grace ended {} UTC; the sweep deletes it",
                p.reference,
                fmt_time(p.grace_until)
            )
        } else {
            format!("previous {} works until then", p.reference)
        });
    }
    if let (TokenId::Key(_), Ok(kind)) = (&t.id, t.kind.parse()) {
        notes.extend(depends::dependent(env, kind).map(|other| {
            format!("the {other} console may read flags with this key (staging_source_key)")
        }));
    }
    if let (TokenId::Provider { .. }, Some(why)) = (&t.id, &t.manual_reason) {
        notes.push(format!("cannot rotate: {why}"));
    }
    // The failed step in a line; the provider's raw answer (URLs and all) behind a toggle.
    let failure = t
        .last_error
        .as_deref()
        .map(|err| (crate::kernel::views::failed_step(err), err.to_string()));
    TokenRow {
        id: t.id.to_string(),
        name: t.name.clone(),
        kind: t.kind.clone(),
        provider: inventory::provider_label(&t.provider).to_string(),
        created: fmt_time(t.created_at),
        rotated: t.rotated_at.map(fmt_time).unwrap_or_else(|| "never".into()),
        rotated_by: t.rotated_by.clone().unwrap_or_default(),
        max_age: t
            .max_age_days
            .map(|d| format!("{d} days"))
            .unwrap_or_else(|| "none".into()),
        expires: t.expires_at.map(fmt_time).unwrap_or_default(),
        state_label: inventory::state_label(t.state),
        state_short: t.state.as_str().replace('_', " "),
        state_class: inventory::state_css(t.state),
        notes,
        has_previous: t.previous.is_some(),
        versions: t.versions.iter().map(version_row).collect(),
        failure,
    }
}

#[derive(Template)]
#[template(path = "tokens_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    id: String,
    app: String,
    name: String,
    /// "Rotate the client key of raxx-api-staging on STAGING?"
    question: String,
    provider: bool,
    published_to: Vec<String>,
    /// Another console depends on this key (a staging read key: prod's
    /// staging_source_key); shown above the form.
    depends: Option<String>,
    /// "last used 2026-11-20 09:30:00 UTC", for an app key.
    last_used: Option<String>,
}

/// "Rotate the client key of raxx-api-staging on STAGING?": rendered only for an
/// operator who can rotate here, for a token of this console's apps.
pub async fn confirm_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(raw): Path<String>,
) -> AppResult<Response> {
    // Who may open it is the gate's decision of the POST it confirms (the manifest's
    // `confirms`): this handler runs only for them.
    let id = TokenId::parse(&raw).ok_or_else(|| {
        AppError::NotFound(format!(
            "there is no token `{raw}`; token ids look like key:12 or heroku:3"
        ))
    })?;
    let token = inventory(&state)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| AppError::NotFound(format!("there is no token {id} to rotate")))?;
    let app_env = state
        .cfg
        .app(&token.app)
        .map(|a| a.env)
        .unwrap_or(state.env().other());
    ctx.check_target_env(&state, app_env, &format!("the app {}", token.app))
        .await?;
    let published_to = match &token.id {
        TokenId::Provider { id, .. } => state
            .store
            .provider_token(*id)
            .await?
            .as_ref()
            .and_then(|p| rotation::token_config(&state, p))
            .map(|c| {
                c.config_vars
                    .iter()
                    .map(|v| format!("{} {}", v.app, v.var))
                    .collect()
            })
            .unwrap_or_default(),
        TokenId::Key(_) => Vec::new(),
    };
    // A key named after its kind ("client") is just "the client key".
    let what = if token.name == token.kind {
        token.noun()
    } else {
        format!("{} {}", token.noun(), token.name)
    };
    let depends = match (&token.id, token.kind.parse()) {
        (TokenId::Key(_), Ok(kind)) => depends::warning(state.env(), kind, &token.app),
        _ => None,
    };
    let last_used = match &token.id {
        TokenId::Key(_) => token.versions.first().map(|v| match v.last_used_at {
            Some(at) => format!("The current version was last used {} UTC.", fmt_time(at)),
            None => "The current version has not been used yet.".into(),
        }),
        TokenId::Provider { .. } => None,
    };
    Ok(render(&ConfirmPage {
        layout: Layout::new(&state, Some(&ctx), "Rotate a token", "Tokens"),
        depends,
        last_used,
        question: format!(
            "Rotate the {what} of {} on {}?",
            token.app,
            state.env().pill()
        ),
        provider: matches!(token.id, TokenId::Provider { .. }),
        id: id.to_string(),
        app: token.app,
        name: token.name,
        published_to,
    }))
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    grace_seconds: String,
}

#[derive(Template)]
#[template(path = "tokens_result.html")]
struct ResultPage {
    layout: Layout,
    r: Rotation,
    id: String,
    grace_until: String,
    /// A previous credential still works (not when the grace period was 0).
    show_revoke: bool,
}

pub async fn rotate_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(raw): Path<String>,
    Form(f): Form<RotateForm>,
) -> AppResult<Response> {
    let who = actor(&ctx);
    let id = rotation::parse_id(&state, &who, "token.rotate", &raw).await?;
    let grace = match f.grace_seconds.trim() {
        "" => rotation::grace_seconds(None),
        g => g
            .parse::<i64>()
            .map_err(|_| {
                raxx_actions::Error::invalid(format!(
                    "grace_seconds must be a whole number of seconds from 0 to {GRACE_MAX}"
                ))
            })
            .and_then(|g| rotation::grace_seconds(Some(g))),
    };
    let r = rotation::rotate(&state, &who, &id, grace).await?;
    Ok(render(&ResultPage {
        layout: Layout::new(&state, Some(&ctx), "Token rotated", "Tokens"),
        show_revoke: r.grace_until > now_ms()
            && (r.secret.is_some() || r.previous_authorization_id.is_some()),
        id: r.id.to_string(),
        grace_until: fmt_time(r.grace_until),
        r,
    }))
}

pub async fn revoke_previous_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(raw): Path<String>,
) -> AppResult<Response> {
    let who = actor(&ctx);
    let id = rotation::parse_id(&state, &who, "token.revoke_previous", &raw).await?;
    let r = rotation::revoke_previous(&state, &who, &id).await?;
    Ok(redirect_with_flash(
        "/tokens",
        &format!(
            "The previous credential of {} ({}) was revoked: {} no longer works.",
            r.name, r.app, r.previous
        ),
    ))
}
