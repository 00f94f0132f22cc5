//! "Your passkeys" (SPEC §3, issue 19): an operator lists, names and removes their own
//! passkeys and adds a backup; `console-session-admin` removes another operator's.
//!
//! Rule: a credential is attached to an EXISTING operator only here, by that operator,
//! signed in, after a fresh passkey assertion in the same session (the step-up: a
//! server-side row bound to the session, 5 minutes, used once). The anonymous
//! registration ceremonies (`auth.rs`: bootstrap, invite) only ever create a new operator.
//! The one exception is an operator with no passkey at all (made by a login link): they may
//! add their first one within [`FIRST_PASSKEY_WINDOW_MS`] of signing in.
//!
//! Every passkey added or removed is audited (name and id only, never key material) and
//! leaves a notice the owner sees on the dashboard until they dismiss it.

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use raxx_core::audit::Outcome;
use raxx_core::gate::{Access, Class, Denial, Owner, Target};
use raxx_core::rbac::{Level, Resource};
use raxx_store::admins::{Admin, StoredPasskey};
use raxx_store::passkeys::{PasskeyInfo, PasskeyNotice};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use crate::kernel::apidoc::ApiDoc;
use crate::kernel::apidoc::IntId;
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::extract::ApiJson;
use crate::kernel::route::Route;
use crate::kernel::route::route;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use crate::kernel::views::redirect_with_flash;
use crate::kernel::views::render;
use crate::signin::auth::Ceremony;
use raxx_actions::Kind;
use raxx_actions::fmt_time;

/// An operator without any passkey (signed in by a login link) may add a first one within
/// this long after the session started.
pub const FIRST_PASSKEY_WINDOW_MS: i64 = 10 * 60_000;

pub fn routes() -> Vec<Route> {
    use Access::*;
    vec![
        route!(GET "/passkeys", Read, SignedIn, "passkey.list", page),
        route!(POST "/passkeys/{id}/rename", Write, SignedIn, "passkey.rename", rename_form),
        route!(POST "/passkeys/{id}/remove", Write, OwnOrRole(Resource::Session), "passkey.remove", remove_form),
        route!(POST "/passkeys/notices/ack", Write, SignedIn, "passkey.notice.ack", ack_form),
        route!(GET "/operators/{id}/passkeys", Read, Role(Resource::Session), "passkey.list", operator_page),
        route!(GET "/api/v1/passkeys", Read, SignedIn, "passkey.list", api_list, doc = ApiDoc::reply::<MyPasskeys>()),
        route!(GET "/api/v1/operators/{id}/passkeys", Read, Role(Resource::Session), "passkey.list", api_operator_list, doc = ApiDoc::reply::<OperatorPasskeys>().path::<IntId>()),
        route!(POST "/api/v1/passkeys/step-up/start", Write, SignedIn, "passkey.step_up", step_up_start, doc = ApiDoc::reply::<Ceremony>()),
        route!(POST "/api/v1/passkeys/step-up/finish", Write, SignedIn, "passkey.step_up", step_up_finish, doc = ApiDoc::reply::<SteppedUp>().body::<StepUpFinish>()),
        route!(POST "/api/v1/passkeys/register/start", Write, SignedIn, "passkey.add", register_start, doc = ApiDoc::reply::<Ceremony>().body::<RegisterStart>()),
        route!(POST "/api/v1/passkeys/register/finish", Write, SignedIn, "passkey.add", register_finish, doc = ApiDoc::reply::<PasskeyAdded>().status(201).body::<RegisterFinish>()),
        route!(PATCH "/api/v1/passkeys/{id}", Write, SignedIn, "passkey.rename", api_rename, doc = ApiDoc::reply::<Renamed>().body::<NameForm>().path::<IntId>()),
        route!(DELETE "/api/v1/passkeys/{id}", Write, OwnOrRole(Resource::Session), "passkey.remove", api_remove, doc = ApiDoc::reply::<PasskeyRemoved>().path::<IntId>()),
        route!(POST "/api/v1/passkeys/notices/ack", Write, SignedIn, "passkey.notice.ack", api_ack, doc = ApiDoc::reply::<Acknowledged>()),
    ]
}

/// The refusal every anonymous registration gives for an address that has an operator.
pub fn existing_operator_refusal() -> AppError {
    AppError::Conflict {
        kind: Kind::Conflict,
        code: "operator_exists",
        message: "this address already has an operator: a passkey is added to it only by that operator, signed in, from \"Your passkeys\"".into(),
    }
}

fn me(ctx: &Ctx) -> AppResult<(&Admin, &raxx_store::sessions::Session)> {
    match (&ctx.admin, &ctx.session) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => Err(AppError::Denied(Denial::Unauthenticated {
            message: "sign in first".into(),
        })),
    }
}

fn name_ok(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "a passkey name is 1 to 60 printable characters (e.g. \"work laptop\")",
        ));
    }
    Ok(name.to_string())
}

fn cred_id_of(p: &Passkey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.cred_id().as_slice())
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

/// A refused passkey ceremony step, in the one denial row layout (`denial` = `code`).
async fn audit_denied(
    state: &AppState,
    ctx: &Ctx,
    action: &str,
    code: &str,
    reason: &str,
) -> AppResult<()> {
    state
        .store
        .audit(
            ctx.event(action, Outcome::Denied)
                .target("operator", ctx.actor())
                .reason(reason)
                .with(crate::kernel::gate::DENIAL_KEY, code)
                .with("route", crate::kernel::route::route_template(ctx.route)),
        )
        .await?;
    Ok(())
}

// ---- step-up: a fresh assertion with one of the operator's own passkeys ----

pub async fn step_up_start(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let (admin, session) = me(&ctx)?;
    let passkeys: Vec<Passkey> = state
        .store
        .passkeys_of(admin.id)
        .await?
        .iter()
        .filter_map(|p| serde_json::from_str(&p.passkey).ok())
        .collect();
    if passkeys.is_empty() {
        return Err(AppError::Conflict {
            kind: Kind::Conflict,
            code: "no_passkey",
            message: "you have no passkey to confirm with; add your first passkey directly (within 10 minutes of signing in)".into(),
        });
    }
    let (challenge, auth) = state
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| AppError::Internal(format!("the step-up could not start: {e}")))?;
    let state_json = serde_json::to_string(&auth).map_err(internal)?;
    let ceremony = state
        .store
        .put_ceremony(
            "stepup",
            Some(&admin.email),
            &state_json,
            &json!({"session_id": session.id, "admin_id": admin.id}),
        )
        .await?;
    Ok(Json(Ceremony {
        ceremony,
        challenge: json!(challenge),
    })
    .into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct StepUpFinish {
    ceremony: String,
    #[schema(value_type = crate::kernel::apidoc::WebAuthnJson)]
    credential: PublicKeyCredential,
}

/// A step-up done: the session may add or remove passkeys for a while.
#[derive(Serialize, ToSchema)]
pub struct SteppedUp {
    /// always `true`
    pub ok: bool,
    pub valid_seconds: i64,
}

/// A passkey added.
#[derive(Serialize, ToSchema)]
pub struct PasskeyAdded {
    pub id: i64,
    pub name: String,
    pub redirect: String,
}

/// A passkey (no key material). Times are unix milliseconds.
#[derive(Serialize, ToSchema)]
pub struct PasskeyItem {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<PasskeyInfo> for PasskeyItem {
    fn from(p: PasskeyInfo) -> Self {
        PasskeyItem {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// A change to one's passkeys made by someone else, not yet acknowledged.
#[derive(Serialize, ToSchema)]
pub struct NoticeView {
    /// `added` or `removed`
    pub kind: String,
    pub name: String,
    pub at: i64,
    pub by: Option<i64>,
    pub message: String,
}

/// The signed-in operator's passkeys and notices.
#[derive(Serialize, ToSchema)]
pub struct MyPasskeys {
    pub passkeys: Vec<PasskeyItem>,
    pub notices: Vec<NoticeView>,
}

/// An operator's passkeys.
#[derive(Serialize, ToSchema)]
pub struct OperatorPasskeys {
    pub passkeys: Vec<PasskeyItem>,
}

/// A passkey renamed.
#[derive(Serialize, ToSchema)]
pub struct Renamed {
    pub id: i64,
    pub name: String,
}

/// A passkey removed.
#[derive(Serialize, ToSchema)]
pub struct PasskeyRemoved {
    /// the passkey's id
    pub removed: i64,
    /// its owner
    pub operator: i64,
    /// whether it was the caller's own
    pub own: bool,
}

/// Notices acknowledged.
#[derive(Serialize, ToSchema)]
pub struct Acknowledged {
    pub acknowledged: u64,
}

pub async fn step_up_finish(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<StepUpFinish>,
) -> AppResult<Response> {
    let (admin, session) = me(&ctx)?;
    let c = state
        .store
        .take_ceremony(&body.ceremony, "stepup")
        .await?
        .filter(|c| {
            c.context["session_id"].as_str() == Some(session.id.as_str())
                && c.context["admin_id"].as_i64() == Some(admin.id)
        })
        .ok_or_else(|| {
            AppError::invalid(
                "this confirmation expired, was used, or belongs to another session; start again",
            )
        })?;
    let auth: PasskeyAuthentication = serde_json::from_str(&c.state).map_err(internal)?;
    let result = match state
        .webauthn
        .finish_passkey_authentication(&body.credential, &auth)
    {
        Ok(r) => r,
        Err(e) => {
            let regression = matches!(e, WebauthnError::CredentialPossibleCompromise);
            let reason = if regression {
                "signature counter went backwards: possible cloned authenticator".to_string()
            } else {
                format!("passkey assertion failed: {e}")
            };
            audit_denied(&state, &ctx, "passkey.step_up", "unauthenticated", &reason).await?;
            return Err(AppError::Denied(Denial::Unauthenticated {
                message: format!("your passkey could not be verified: {reason}"),
            }));
        }
    };
    use base64::Engine;
    let cred_id =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(result.cred_id().as_slice());
    let stored = state.store.passkeys_of(admin.id).await?;
    let Some(row) = stored.iter().find(|p| p.cred_id == cred_id) else {
        audit_denied(
            &state,
            &ctx,
            "passkey.step_up",
            "unauthenticated",
            "not one of this operator's passkeys",
        )
        .await?;
        return Err(AppError::invalid("this is not one of your passkeys"));
    };
    let mut tx = state.store.begin().await?;
    if let Ok(mut pk) = serde_json::from_str::<Passkey>(&row.passkey) {
        pk.update_credential(&result);
        let json = serde_json::to_string(&pk).map_err(internal)?;
        tx.update_passkey(&cred_id, &json, i64::from(result.counter()))
            .await?;
    }
    tx.put_stepup(&session.id, admin.id).await?;
    tx.record(
        ctx.event("passkey.step_up", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("passkey_id", row.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(SteppedUp {
        ok: true,
        valid_seconds: raxx_store::passkeys::STEPUP_TTL_MS / 1000,
    })
    .into_response())
}

// ---- adding a passkey: after the step-up, in the same session ----

#[derive(Deserialize, ToSchema)]
pub struct RegisterStart {
    /// a name for the new passkey
    name: String,
}

/// May this session add a passkey without a step-up? Only an operator with none, shortly
/// after signing in (which, without a passkey, only a login link can do).
fn first_passkey_allowed(session: &raxx_store::sessions::Session, count: usize) -> bool {
    count == 0 && raxx_store::now_ms() - session.created_at < FIRST_PASSKEY_WINDOW_MS
}

pub async fn register_start(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RegisterStart>,
) -> AppResult<Response> {
    let (admin, session) = me(&ctx)?;
    let name = name_ok(&body.name)?;
    let stored = state.store.passkeys_of(admin.id).await?;
    let first = first_passkey_allowed(session, stored.len());
    if !first && !state.store.stepup_fresh(&session.id, admin.id).await? {
        return Err(step_up_needed(&state, &ctx, stored.is_empty()).await?);
    }
    let exclude: Vec<_> = stored
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let (challenge, reg) = state
        .webauthn
        .start_passkey_registration(
            Uuid::new_v4(),
            &admin.email,
            &admin.display_name,
            Some(exclude),
        )
        .map_err(|e| AppError::Internal(format!("passkey registration could not start: {e}")))?;
    let state_json = serde_json::to_string(&reg).map_err(internal)?;
    let ceremony = state
        .store
        .put_ceremony(
            "register-own",
            Some(&admin.email),
            &state_json,
            &json!({"session_id": session.id, "admin_id": admin.id, "name": name, "first": first}),
        )
        .await?;
    Ok(Json(Ceremony {
        ceremony,
        challenge: json!(challenge),
    })
    .into_response())
}

async fn step_up_needed(state: &AppState, ctx: &Ctx, none: bool) -> AppResult<AppError> {
    let message = if none {
        "you have no passkey yet and signed in more than 10 minutes ago: sign in again (a new login link) and add it straight away"
    } else {
        "confirm with one of your passkeys first (step-up, valid 5 minutes); then add the new one"
    };
    audit_denied(state, ctx, "passkey.add", "step_up_required", message).await?;
    Ok(AppError::Conflict {
        kind: Kind::Forbidden,
        code: "step_up_required",
        message: message.into(),
    })
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
    ApiJson(body): ApiJson<RegisterFinish>,
) -> AppResult<Response> {
    let (admin, session) = me(&ctx)?;
    let c = state
        .store
        .take_ceremony(&body.ceremony, "register-own")
        .await?
        .filter(|c| {
            c.context["session_id"].as_str() == Some(session.id.as_str())
                && c.context["admin_id"].as_i64() == Some(admin.id)
        })
        .ok_or_else(|| {
            AppError::invalid(
                "this registration expired, was used, or belongs to another session; start again",
            )
        })?;
    let reg: PasskeyRegistration = serde_json::from_str(&c.state).map_err(internal)?;
    let passkey = match state
        .webauthn
        .finish_passkey_registration(&body.credential, &reg)
    {
        Ok(p) => p,
        Err(e) => {
            audit_denied(
                &state,
                &ctx,
                "passkey.add",
                "invalid",
                &format!("passkey verification failed: {e}"),
            )
            .await?;
            return Err(AppError::invalid(format!(
                "the new passkey could not be verified: {e}"
            )));
        }
    };
    let name = c.context["name"].as_str().unwrap_or("passkey").to_string();
    let first = c.context["first"].as_bool() == Some(true);
    let cred_id = cred_id_of(&passkey);
    let passkey_json = serde_json::to_string(&passkey).map_err(internal)?;
    let mut tx = state.store.begin().await?;
    // The step-up is used once, here, in the transaction that adds the passkey; the first
    // passkey of an operator with none needs none (the count is re-read under the lock).
    let allowed = if first {
        tx.passkey_count(admin.id).await? == 0
    } else {
        tx.take_stepup(&session.id, admin.id).await?
    };
    if !allowed {
        tx.rollback().await?;
        return Err(step_up_needed(&state, &ctx, false).await?);
    }
    if state.store.passkey_by_cred(&cred_id).await?.is_some() {
        tx.rollback().await?;
        audit_denied(
            &state,
            &ctx,
            "passkey.add",
            "conflict",
            "credential already registered",
        )
        .await?;
        return Err(AppError::Conflict {
            kind: Kind::Conflict,
            code: "duplicate",
            message: "this authenticator's passkey is already registered".into(),
        });
    }
    tx.add_passkey(admin.id, &cred_id, &name, &passkey_json)
        .await?;
    let id = tx.passkey_id_by_cred(&cred_id).await?;
    tx.add_passkey_notice(admin.id, "added", &name, None)
        .await?;
    tx.record(
        ctx.event("passkey.add", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("passkey_id", id)
            .with("name", name.clone())
            .with("via", if first { "first passkey" } else { "step-up" }),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(PasskeyAdded {
            id,
            name,
            redirect: "/passkeys".into(),
        }),
    )
        .into_response())
}

// ---- rename, remove, notices: one implementation for the page and the API ----

async fn rename(state: &AppState, ctx: &Ctx, id: i64, name: &str) -> AppResult<String> {
    let (admin, _) = me(ctx)?;
    let name = name_ok(name)?;
    let mut tx = state.store.begin().await?;
    let Some(old) = tx.rename_passkey(id, admin.id, &name).await? else {
        tx.rollback().await?;
        return Err(AppError::NotFound(format!("your passkey {id}")));
    };
    tx.record(
        ctx.event("passkey.rename", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("passkey_id", id)
            .with("from", old)
            .with("to", name.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(name)
}

/// Remove a passkey: your own (never your last one), or anyone's with the session write
/// role (`console-session-admin` on prod), which also ends all of that operator's sessions.
async fn remove(state: &AppState, ctx: &Ctx, id: i64) -> AppResult<(StoredPasskey, bool)> {
    let (admin, _) = me(ctx)?;
    let target = state
        .store
        .passkey_by_id(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("passkey {id}")))?;
    let own = target.admin_id == admin.id;
    // The object half of the gate: your own passkey, or another operator's with the
    // session write role (`console-session-admin` on prod).
    let object = Target {
        env: None,
        app: None,
        owner: if own { Owner::Principal } else { Owner::Other },
    };
    ctx.authorize(
        state,
        object,
        &format!("passkey {id} of operator {}", target.admin_id),
    )
    .await?;
    let mut tx = state.store.begin().await?;
    if own && tx.passkey_count(admin.id).await? <= 1 {
        tx.rollback().await?;
        state
            .store
            .audit(
                ctx.event("passkey.remove", Outcome::Denied)
                    .target("operator", admin.id.to_string())
                    .reason("the operator's last passkey")
                    .with(crate::kernel::gate::DENIAL_KEY, "last_passkey")
                    .with("passkey_id", id),
            )
            .await?;
        return Err(AppError::Conflict {
            kind: Kind::Conflict,
            code: "last_passkey",
            message: "this is your only passkey: add a backup passkey first, then remove this one"
                .into(),
        });
    }
    let Some(removed) = tx.delete_passkey(id).await? else {
        tx.rollback().await?;
        return Err(AppError::NotFound(format!("passkey {id}")));
    };
    let ended = if own {
        0
    } else {
        tx.revoke_sessions_of(removed.admin_id).await?
    };
    tx.add_passkey_notice(
        removed.admin_id,
        "removed",
        &removed.name,
        (!own).then_some(admin.id),
    )
    .await?;
    tx.record(
        ctx.event("passkey.remove", Outcome::Allowed)
            .target("operator", removed.admin_id.to_string())
            .with("passkey_id", id)
            .with("name", removed.name.clone())
            .with("own", own)
            .with("sessions_ended", ended),
    )
    .await?;
    tx.commit().await?;
    Ok((removed, own))
}

async fn ack(state: &AppState, ctx: &Ctx) -> AppResult<u64> {
    let (admin, _) = me(ctx)?;
    let mut tx = state.store.begin().await?;
    let n = tx.ack_passkey_notices(admin.id).await?;
    if n == 0 {
        tx.rollback().await?;
        return Ok(0);
    }
    tx.record(
        ctx.event("passkey.notice.ack", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("count", n),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// The words of a notice: "A new passkey “X” was added on 2026-12-01 09:30:12 UTC."
pub async fn notice_text(state: &AppState, n: &PasskeyNotice) -> AppResult<String> {
    let when = fmt_time(n.created_at);
    let by = match n.by_admin_id {
        Some(id) => match state.store.admin_by_id(id).await? {
            Some(a) => format!(" by {}", a.email),
            None => format!(" by operator {id}"),
        },
        None => String::new(),
    };
    Ok(match n.kind.as_str() {
        "added" => format!(
            "A new passkey “{}” was added to your account on {when} UTC{by}.",
            n.passkey_name
        ),
        _ => format!(
            "A passkey “{}” was removed from your account on {when} UTC{by}.",
            n.passkey_name
        ),
    })
}

/// The signed-in operator's pending notices, as sentences (the dashboard shows them).
pub async fn dashboard_notices(state: &AppState, ctx: &Ctx) -> AppResult<Vec<String>> {
    let Some(id) = ctx.admin_id() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for n in state.store.passkey_notices(id).await? {
        out.push(notice_text(state, &n).await?);
    }
    Ok(out)
}

// ---- pages ----

pub struct PasskeyRow {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

fn rows(stored: &[StoredPasskey]) -> Vec<PasskeyRow> {
    stored
        .iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name.clone(),
            created: fmt_time(p.created_at),
            last_used: p
                .last_used_at
                .map(fmt_time)
                .unwrap_or_else(|| "never".into()),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    layout: Layout,
    rows: Vec<PasskeyRow>,
    notices: Vec<String>,
    /// Whether this session may add one without a step-up (no passkey yet, just signed in).
    first: bool,
    /// Whether this session holds a fresh step-up (the registration form is offered).
    stepped_up: bool,
}

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let (admin, session) = me(&ctx)?;
    let stored = state.store.passkeys_of(admin.id).await?;
    Ok(render(&PasskeysPage {
        first: first_passkey_allowed(session, stored.len()),
        stepped_up: state.store.stepup_fresh(&session.id, admin.id).await?,
        rows: rows(&stored),
        notices: dashboard_notices(&state, &ctx).await?,
        layout: Layout::new(&state, Some(&ctx), "Your passkeys", "Passkeys"),
    }))
}

#[derive(Template)]
#[template(path = "operator_passkeys.html")]
struct OperatorPasskeysPage {
    layout: Layout,
    operator: Admin,
    rows: Vec<PasskeyRow>,
    can_remove: bool,
}

pub async fn operator_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let operator = state
        .store
        .admin_by_id(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("operator {id}")))?;
    let stored = state.store.passkeys_of(id).await?;
    Ok(render(&OperatorPasskeysPage {
        can_remove: ctx.can_write(Resource::Session),
        layout: Layout::new(
            &state,
            Some(&ctx),
            format!("Passkeys of {}", operator.email),
            "Operators",
        ),
        operator,
        rows: rows(&stored),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct NameForm {
    name: String,
}

pub async fn rename_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    Form(form): Form<NameForm>,
) -> AppResult<Response> {
    let name = rename(&state, &ctx, id, &form.name).await?;
    Ok(redirect_with_flash(
        "/passkeys",
        &format!("Passkey renamed to “{name}”."),
    ))
}

pub async fn remove_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let (removed, own) = remove(&state, &ctx, id).await?;
    Ok(if own {
        redirect_with_flash("/passkeys", &format!("Passkey “{}” removed.", removed.name))
    } else {
        redirect_with_flash(
            &format!("/operators/{}/passkeys", removed.admin_id),
            &format!(
                "Passkey “{}” removed; that operator's sessions were ended.",
                removed.name
            ),
        )
    })
}

pub async fn ack_form(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    ack(&state, &ctx).await?;
    Ok(redirect_with_flash("/", "Noted."))
}

// ---- JSON ----

pub async fn api_list(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let (admin, _) = me(&ctx)?;
    let passkeys: Vec<PasskeyItem> = state
        .store
        .passkeys_of(admin.id)
        .await?
        .iter()
        .map(|p| PasskeyInfo::from(p).into())
        .collect();
    let mut notices = Vec::new();
    for n in state.store.passkey_notices(admin.id).await? {
        notices.push(NoticeView {
            message: notice_text(&state, &n).await?,
            kind: n.kind,
            name: n.passkey_name,
            at: n.created_at,
            by: n.by_admin_id,
        });
    }
    Ok(Json(MyPasskeys { passkeys, notices }).into_response())
}

pub async fn api_operator_list(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    if state.store.admin_by_id(id).await?.is_none() {
        return Err(AppError::NotFound(format!("operator {id}")));
    }
    let passkeys: Vec<PasskeyItem> = state
        .store
        .passkeys_of(id)
        .await?
        .iter()
        .map(|p| PasskeyInfo::from(p).into())
        .collect();
    Ok(Json(OperatorPasskeys { passkeys }).into_response())
}

pub async fn api_rename(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<NameForm>,
) -> AppResult<Response> {
    let name = rename(&state, &ctx, id, &body.name).await?;
    Ok(Json(Renamed { id, name }).into_response())
}

pub async fn api_remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let (removed, own) = remove(&state, &ctx, id).await?;
    Ok(Json(PasskeyRemoved {
        removed: id,
        operator: removed.admin_id,
        own,
    })
    .into_response())
}

pub async fn api_ack(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let n = ack(&state, &ctx).await?;
    Ok(Json(Acknowledged { acknowledged: n }).into_response())
}

/// Is there a session-admin view for this principal? (The operators page links to it.)
pub fn can_view_others(ctx: &Ctx) -> bool {
    ctx.has(Resource::Session, Level::Reader)
}
