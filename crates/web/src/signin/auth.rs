//! Sign-in pages and routes over `raxx_actions::signin` (the passkey ceremonies,
//! bootstrap enrolment, invites, sign-out): here the bodies are read, the session cookie
//! set and cleared, and the sign-in page rendered.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use raxx_actions::signin;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::extract::ApiJson;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    bootstrap_open: bool,
    /// Where to land after the passkey (a safe same-origin path, or empty).
    next: String,
    /// "Your session expired — sign in again." when the gate sent the operator here.
    notice: Option<&'static str>,
}

pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> AppResult<Response> {
    let page = LoginPage {
        layout: Layout::new(&state, None, "Sign in", ""),
        bootstrap_open: signin::bootstrap_pending(&state).await?
            && state.enrol_code_hash().await.is_some(),
        next: q
            .next
            .as_deref()
            .and_then(raxx_core::deeplink::safe_next)
            .unwrap_or_default()
            .to_owned(),
        notice: session_notice(q.reason.as_deref()),
    };
    Ok(askama_html(&page))
}

pub(crate) fn askama_html(t: &impl Template) -> Response {
    match t.render() {
        Ok(h) => axum::response::Html(h).into_response(),
        Err(e) => AppError::Internal(format!("template: {e}")).into_response(),
    }
}

pub(crate) fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The session cookie: HttpOnly, SameSite=Strict, Path=/, Secure on https.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.cfg.https { "; Secure" } else { "" };
    let max_age = state.policy.absolute_ms / 1000;
    HeaderValue::from_str(&format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
        state.cfg.cookie_name()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(state: &AppState) -> HeaderValue {
    let secure = if state.cfg.https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}",
        state.cfg.cookie_name()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Failed attempts allowed per account from one address, and per address, in an hour
/// (ASVS 2.2.1); the account as a whole backs off instead (`raxx_core::throttle`).
pub const MAX_FAILURES_PER_ACCOUNT_SOURCE_HOUR: i64 = raxx_core::throttle::MAX_PER_ACCOUNT_SOURCE;

pub const MAX_FAILURES_PER_IP_HOUR: i64 = raxx_core::throttle::MAX_PER_SOURCE;

#[derive(Deserialize, ToSchema)]
pub struct RegisterStart {
    email: Option<String>,
    display_name: String,
    enrol_code: Option<String>,
    invite_token: Option<String>,
}

/// Start a passkey registration: a bootstrap admin with the enrolment code, or an
/// invitee with their invite link's token.
pub async fn register_start(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RegisterStart>,
) -> AppResult<Response> {
    let enrolment = signin::Enrolment {
        email: body.email.as_deref(),
        display_name: &body.display_name,
        enrol_code: body.enrol_code.as_deref(),
        invite_token: body.invite_token.as_deref(),
    };
    let started = signin::register_start(&state, &ctx.caller(), enrolment).await?;
    Ok(ceremony(started))
}

/// A ceremony's id and options as the browser's script reads them.
pub(crate) fn ceremony(c: signin::Challenge) -> Response {
    Json(Ceremony {
        ceremony: c.ceremony,
        challenge: c.challenge,
    })
    .into_response()
}

/// Signed in: the session cookie, and where the browser goes next.
fn signed_in(state: &AppState, began: &signin::Began, redirect: &str) -> Response {
    let mut resp = Json(SignedIn {
        redirect: redirect.to_string(),
    })
    .into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(state, &began.token));
    resp
}

/// A WebAuthn ceremony started: its id (sent back with the result) and the options for
/// `navigator.credentials`.
#[derive(Serialize, ToSchema)]
pub struct Ceremony {
    pub ceremony: String,
    #[schema(value_type = crate::kernel::apidoc::WebAuthnJson)]
    pub challenge: Value,
}

/// Signed in: where the browser goes next (the session cookie is set).
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    pub redirect: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterFinish {
    ceremony: String,
    #[schema(value_type = crate::kernel::apidoc::WebAuthnJson)]
    credential: RegisterPublicKeyCredential,
}

pub async fn register_finish(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterFinish>,
) -> AppResult<Response> {
    let began = signin::register_finish(
        &state,
        &ctx.caller(),
        &body.ceremony,
        &body.credential,
        user_agent(&headers).as_deref(),
    )
    .await?;
    Ok(signed_in(&state, &began, "/"))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginStart {
    email: String,
}

pub async fn login_start(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<LoginStart>,
) -> AppResult<Response> {
    Ok(ceremony(
        signin::login_start(&state, &ctx.caller(), &body.email).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginFinish {
    ceremony: String,
    /// The deep link the sign-in started from (`/login?next=`), re-checked here.
    #[serde(default)]
    next: Option<String>,
    #[schema(value_type = crate::kernel::apidoc::WebAuthnJson)]
    credential: PublicKeyCredential,
}

pub async fn login_finish(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginFinish>,
) -> AppResult<Response> {
    let began = signin::login_finish(
        &state,
        &ctx.caller(),
        &body.ceremony,
        &body.credential,
        user_agent(&headers).as_deref(),
    )
    .await?;
    Ok(signed_in(
        &state,
        &began,
        after_sign_in(body.next.as_deref()),
    ))
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    layout: Layout,
    email: String,
    group: String,
    token: String,
}

pub async fn invite_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> AppResult<Response> {
    // Used, revoked, expired or unknown: 404 with words that say why and what to do.
    let invite = signin::pending_invite(&state, &token).await?;
    Ok(askama_html(&InvitePage {
        layout: Layout::new(&state, None, "Accept invite", ""),
        email: invite.email,
        group: invite.group_name,
        token,
    }))
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    signin::logout(&state, &ctx.caller()).await?;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(&state));
    Ok(resp)
}

// ------------------------------------------------------------------ deep links (issue 16)

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
    /// Why the last session is gone (`expired`, `ended`): set by the gate's redirect.
    #[serde(default)]
    reason: Option<String>,
}

/// Where a finished sign-in lands: `next` when it is a safe same-origin path
/// ([`raxx_core::deeplink::safe_next`]), else the dashboard.
fn after_sign_in(next: Option<&str>) -> &str {
    next.and_then(raxx_core::deeplink::safe_next).unwrap_or("/")
}

/// The sign-in page's notice for `?reason=` (fixed words; nothing from the query is shown).
fn session_notice(reason: Option<&str>) -> Option<&'static str> {
    match reason? {
        "expired" => Some("Your session expired — sign in again."),
        "ended" => Some("Your session was ended — sign in again."),
        _ => None,
    }
}
