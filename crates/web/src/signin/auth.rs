//! Sign-in: passkey ceremonies (WebAuthn via webauthn-rs, user verification required,
//! ceremony state server-side with a TTL), bootstrap enrolment, invites, the
//! break-glass login link, sign-out.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::{normalise_email, plausible_email};
use raxx_core::opaque::{constant_time_eq, hash_token};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::extract::ApiJson;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use raxx_actions::Kind;

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

/// Is some `ADMIN_EMAIL` address still without an operator? (An operator that exists, even
/// without a passkey, adds one only signed in: `passkeys.rs`.)
pub async fn bootstrap_pending(state: &AppState) -> AppResult<bool> {
    for email in &state.cfg.config.admin_emails {
        if state.store.admin_by_email(email).await?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

pub async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> AppResult<Response> {
    let page = LoginPage {
        layout: Layout::new(&state, None, "Sign in", ""),
        bootstrap_open: bootstrap_pending(&state).await? && state.enrol_code_hash().await.is_some(),
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

fn display_name_ok(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "display name must be 1 to 80 printable characters",
        ));
    }
    Ok(name.to_string())
}

/// Failed attempts allowed per account from one address, and per address, in an hour
/// (ASVS 2.2.1); the account as a whole backs off instead (`raxx_core::throttle`).
pub const MAX_FAILURES_PER_ACCOUNT_SOURCE_HOUR: i64 = raxx_core::throttle::MAX_PER_ACCOUNT_SOURCE;

pub const MAX_FAILURES_PER_IP_HOUR: i64 = raxx_core::throttle::MAX_PER_SOURCE;

/// Refuse a sign-in or enrolment attempt once this address failed too often.
async fn throttle(state: &AppState, ctx: &Ctx, email: &str, ip: Option<&str>) -> AppResult<()> {
    let route = crate::kernel::route::route_template(ctx.route);
    Ok(raxx_actions::identity::check_attempt(state, &route, email, ip).await?)
}

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
    let display_name = display_name_ok(&body.display_name)?;
    let ip = ctx.ip.clone();
    let (email, context) = if let Some(token) =
        body.invite_token.as_deref().filter(|t| !t.is_empty())
    {
        let invite = state.store.invite_by_token(token).await?.ok_or_else(|| {
            AppError::invalid("this invite link is not valid any more (used, revoked or expired)")
        })?;
        raxx_actions::identity::check_redeemable(&state, &invite, ip.as_deref()).await?;
        if state.store.admin_by_email(&invite.email).await?.is_some() {
            return Err(crate::signin::passkeys::existing_operator_refusal());
        }
        (
            invite.email.clone(),
            json!({"mode": "invite", "invite_hash": hash_token(token), "group": invite.group_name}),
        )
    } else {
        let email = normalise_email(body.email.as_deref().unwrap_or_default());
        if !plausible_email(&email) {
            return Err(AppError::invalid(
                "enter the email address listed in ADMIN_EMAIL",
            ));
        }
        // The enrolment code is guessed like a password: throttled like sign-in.
        throttle(&state, &ctx, &email, ip.as_deref()).await?;
        let code_ok = match (state.enrol_code_hash().await, body.enrol_code.as_deref()) {
            (Some(want), Some(code)) => constant_time_eq(&hash_token(code.trim()), &want),
            _ => false,
        };
        let listed = state.cfg.config.admin_emails.contains(&email);
        // Bootstrap creates an operator; it never adds a passkey to one that exists.
        let exists = state.store.admin_by_email(&email).await?.is_some();
        if !listed || exists || !code_ok {
            let reason = if !listed {
                "email not in ADMIN_EMAIL"
            } else if exists {
                "the address already has an operator"
            } else {
                "wrong enrolment code"
            };
            let mut ev = AuditEvent::new("anonymous", "auth.register", Outcome::Denied)
                .target("operator", email.clone())
                .reason(reason)
                .with(crate::kernel::gate::DENIAL_KEY, "forbidden")
                .with("email", email.clone());
            ev.ip = ip.clone();
            // Nobody is signed in: counted for the throttle, the row aggregated like every
            // anonymous refusal, so guessing cannot flood the chain.
            raxx_actions::identity::record_anonymous_failure(
                &state,
                &crate::kernel::route::route_template(ctx.route),
                "forbidden",
                &email,
                ip.as_deref(),
                ev,
            )
            .await?;
            // One message for every case, so the form does not reveal which addresses are listed.
            return Err(AppError::Denied(raxx_core::gate::Denial::Forbidden {
                message: "bootstrap enrolment refused: check the email and the enrolment code (an address that already has a passkey signs in instead)".into(),
                needed: None,
            }));
        }
        (email, json!({"mode": "bootstrap"}))
    };
    let user_id = Uuid::new_v4();
    let (challenge, reg) = state
        .webauthn
        .start_passkey_registration(user_id, &email, &display_name, None)
        .map_err(|e| AppError::Internal(format!("passkey registration could not start: {e}")))?;
    let mut context = context;
    context["display_name"] = json!(display_name);
    let state_json = serde_json::to_string(&reg).map_err(|e| AppError::Internal(e.to_string()))?;
    let ceremony = state
        .store
        .put_ceremony("register", Some(&email), &state_json, &context)
        .await?;
    Ok(Json(Ceremony {
        ceremony,
        challenge: json!(challenge),
    })
    .into_response())
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
    let ip = ctx.ip.clone();
    let c = state
        .store
        .take_ceremony(&body.ceremony, "register")
        .await?
        .ok_or_else(|| {
            AppError::invalid("this registration expired or was already used; start again")
        })?;
    let email = c.email.clone().unwrap_or_default();
    let reg: PasskeyRegistration =
        serde_json::from_str(&c.state).map_err(|e| AppError::Internal(e.to_string()))?;
    let passkey = match state
        .webauthn
        .finish_passkey_registration(&body.credential, &reg)
    {
        Ok(p) => p,
        Err(e) => {
            let mut ev = AuditEvent::new("anonymous", "auth.register", Outcome::Denied)
                .target("operator", email.clone())
                .reason(format!("passkey verification failed: {e}"))
                .with(crate::kernel::gate::DENIAL_KEY, "invalid")
                .with("email", email.clone());
            ev.ip = ip;
            state.store.audit(ev).await?;
            return Err(AppError::invalid(format!(
                "the passkey could not be verified: {e}"
            )));
        }
    };
    let display_name = c.context["display_name"]
        .as_str()
        .unwrap_or(&email)
        .to_string();
    let mode = c.context["mode"].as_str().unwrap_or_default().to_string();
    let mut tx = state.store.begin().await?;
    let mut invited_by = None;
    let (group, source) = if mode == "invite" {
        let hash = c.context["invite_hash"].as_str().unwrap_or_default();
        let invite = tx
            .accept_invite(hash)
            .await?
            .ok_or_else(|| AppError::invalid("this invite was revoked or used meanwhile"))?;
        // Re-checked at redemption: still a new address, a creator who may still invite.
        if let Some(refusal) = raxx_actions::identity::redemption_refusal(&state, &invite).await? {
            tx.rollback().await?;
            return Err(raxx_actions::identity::refuse_redemption(
                &state,
                &invite,
                refusal,
                ip.as_deref(),
            )
            .await
            .into());
        }
        invited_by = Some(invite.created_by);
        (invite.group_name, "invite")
    } else {
        (state.env().admin_group().to_string(), "bootstrap")
    };
    // A registration ceremony only ever creates an operator: a passkey is added to an
    // existing one only by that operator, signed in, after a step-up (`passkeys.rs`).
    let admin = match state.store.admin_by_email(&email).await? {
        Some(existing) => {
            tx.rollback().await?;
            let mut ev = AuditEvent::new("anonymous", "auth.register", Outcome::Denied)
                .target("operator", existing.id.to_string())
                .reason("the address already has an operator")
                .with(crate::kernel::gate::DENIAL_KEY, "operator_exists")
                .with("email", email.clone())
                .with("mode", mode);
            ev.ip = ip;
            state.store.audit(ev).await?;
            return Err(crate::signin::passkeys::existing_operator_refusal());
        }
        None => tx.create_admin(&email, &display_name).await?,
    };
    if let Some(by) = invited_by {
        tx.set_invited_by(admin.id, by).await?;
    }
    let cred_id = passkey_id(&passkey);
    let passkey_json =
        serde_json::to_string(&passkey).map_err(|e| AppError::Internal(e.to_string()))?;
    tx.add_passkey(admin.id, &cred_id, "passkey", &passkey_json)
        .await?;
    tx.add_member(&group, &email, source).await?;
    let (token, session) = tx
        .create_session(
            admin.id,
            state.env(),
            state.policy,
            user_agent(&headers).as_deref(),
            ip.as_deref(),
        )
        .await?;
    let mut ev = AuditEvent::new(admin.id.to_string(), "auth.register", Outcome::Allowed)
        .target("operator", admin.id.to_string())
        .with("email", email)
        .with("group", group)
        .with("mode", mode);
    ev.session_id = Some(session.id);
    ev.ip = ip;
    tx.record(ev).await?;
    tx.commit().await?;
    let mut resp = Json(SignedIn {
        redirect: "/".into(),
    })
    .into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &token));
    Ok(resp)
}

fn passkey_id(p: &Passkey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.cred_id().as_slice())
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
    let email = normalise_email(&body.email);
    throttle(&state, &ctx, &email, ctx.ip.as_deref()).await?;
    let admin = state
        .store
        .admin_by_email(&email)
        .await?
        .filter(|a| !a.disabled);
    let stored = match &admin {
        Some(a) => state.store.passkeys_of(a.id).await?,
        None => Vec::new(),
    };
    let passkeys: Vec<Passkey> = stored
        .iter()
        .filter_map(|p| serde_json::from_str(&p.passkey).ok())
        .collect();
    if passkeys.is_empty() {
        let mut ev = AuditEvent::new("anonymous", "auth.login", Outcome::Denied)
            .target("operator", email.clone())
            .reason("no usable passkey for this email");
        ev.ip = ctx.ip.clone();
        raxx_actions::identity::record_anonymous_failure(
            &state,
            &crate::kernel::route::route_template(ctx.route),
            "unknown_account",
            &email,
            ctx.ip.as_deref(),
            ev,
        )
        .await?;
        return Err(AppError::invalid(
            "no passkey is registered for this email on this console",
        ));
    }
    let (challenge, auth) = state
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| AppError::Internal(format!("sign-in could not start: {e}")))?;
    let state_json = serde_json::to_string(&auth).map_err(|e| AppError::Internal(e.to_string()))?;
    let ceremony = state
        .store
        .put_ceremony("login", Some(&email), &state_json, &json!({}))
        .await?;
    Ok(Json(Ceremony {
        ceremony,
        challenge: json!(challenge),
    })
    .into_response())
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
    let ip = ctx.ip.clone();
    let c = state
        .store
        .take_ceremony(&body.ceremony, "login")
        .await?
        .ok_or_else(|| {
            AppError::invalid("this sign-in expired or was already used; start again")
        })?;
    let email = c.email.clone().unwrap_or_default();
    throttle(&state, &ctx, &email, ip.as_deref()).await?;
    let admin = state
        .store
        .admin_by_email(&email)
        .await?
        .filter(|a| !a.disabled)
        .ok_or_else(|| AppError::invalid("this operator cannot sign in"))?;
    let auth: PasskeyAuthentication =
        serde_json::from_str(&c.state).map_err(|e| AppError::Internal(e.to_string()))?;
    let result = match state
        .webauthn
        .finish_passkey_authentication(&body.credential, &auth)
    {
        Ok(r) => r,
        Err(e) => {
            let regression = matches!(e, WebauthnError::CredentialPossibleCompromise);
            let mut ev = AuditEvent::new(admin.id.to_string(), "auth.login", Outcome::Denied)
                .target("operator", email.clone())
                .reason(if regression {
                    "signature counter went backwards: possible cloned authenticator".to_string()
                } else {
                    format!("passkey assertion failed: {e}")
                })
                .with(crate::kernel::gate::DENIAL_KEY, "unauthenticated")
                .with("email", email.clone())
                .with("counter_regression", regression);
            ev.ip = ip.clone();
            if regression {
                // A possibly cloned authenticator: always a chained row of its own.
                raxx_actions::identity::record_failure(&state, &email, ip.as_deref(), ev).await?;
            } else {
                raxx_actions::identity::record_anonymous_failure(
                    &state,
                    &crate::kernel::route::route_template(ctx.route),
                    "bad_assertion",
                    &email,
                    ip.as_deref(),
                    ev,
                )
                .await?;
            }
            return Err(AppError::Denied(raxx_core::gate::Denial::Unauthenticated {
                message: if regression {
                    "this passkey's signature counter went backwards; sign-in refused and recorded"
                        .into()
                } else {
                    format!("the passkey could not be verified: {e}")
                },
            }));
        }
    };
    use base64::Engine;
    let cred_id =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(result.cred_id().as_slice());
    let stored = state.store.passkeys_of(admin.id).await?;
    let Some(row) = stored.iter().find(|p| p.cred_id == cred_id) else {
        return Err(AppError::invalid("unknown passkey"));
    };
    let mut tx = state.store.begin().await?;
    if let Ok(mut pk) = serde_json::from_str::<Passkey>(&row.passkey) {
        pk.update_credential(&result);
        let json = serde_json::to_string(&pk).map_err(|e| AppError::Internal(e.to_string()))?;
        tx.update_passkey(&cred_id, &json, i64::from(result.counter()))
            .await?;
    }
    let (token, session) = tx
        .create_session(
            admin.id,
            state.env(),
            state.policy,
            user_agent(&headers).as_deref(),
            ip.as_deref(),
        )
        .await?;
    let mut ev = AuditEvent::new(admin.id.to_string(), "auth.login", Outcome::Allowed)
        .target("operator", admin.id.to_string())
        .with("method", "passkey");
    ev.session_id = Some(session.id);
    ev.ip = ip;
    tx.record(ev).await?;
    tx.commit().await?;
    let mut resp = Json(SignedIn {
        redirect: after_sign_in(body.next.as_deref()).to_string(),
    })
    .into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &token));
    Ok(resp)
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
    let now = raxx_store::now_ms();
    let Some(invite) = state
        .store
        .invite_by_token_any_state(&token)
        .await?
        .filter(|i| i.state(now) == "pending")
    else {
        // Used, revoked, expired or unknown: say which, and what to do next.
        let message = match state.store.invite_by_token_any_state(&token).await? {
            Some(i) => match i.state(now) {
                "accepted" => format!(
                    "this invite was already used on {} (UTC). If that was you, sign in with your passkey.",
                    raxx_actions::fmt_time(i.accepted_at.unwrap_or(i.created_at))
                ),
                "revoked" => "this invite was revoked. Ask the operator who invited you for a new one.".to_string(),
                _ => format!(
                    "this invite expired on {} (UTC): invites last 72 hours. Ask the operator who invited you for a new one.",
                    raxx_actions::fmt_time(i.expires_at)
                ),
            },
            None => "this invite link is not valid: check that it was copied whole, or ask for a new one.".to_string(),
        };
        // 404 as before (the link leads nowhere now), with words that say why.
        return Err(AppError::Conflict {
            kind: Kind::Gone,
            code: "invite_unusable",
            message,
        });
    };
    Ok(askama_html(&InvitePage {
        layout: Layout::new(&state, None, "Accept invite", ""),
        email: invite.email,
        group: invite.group_name,
        token,
    }))
}

pub async fn logout(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    if let Some(s) = &ctx.session {
        let mut tx = state.store.begin().await?;
        tx.revoke_session(&s.id).await?;
        tx.record(
            ctx.event("auth.logout", Outcome::Allowed)
                .target("session", s.id.clone()),
        )
        .await?;
        tx.commit().await?;
    }
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
