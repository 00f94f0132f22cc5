//! "Your passkeys" (SPEC §3, issue 19): the pages and JSON routes over
//! `raxx_actions::passkeys`, where the rules live (a credential is attached to an existing
//! operator only by that operator, signed in, after a step-up in the same session; never
//! the last one removed by oneself; every change audited and noticed to the owner).

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use raxx_actions::fmt_time;
use raxx_actions::passkeys::{self, Me};
use raxx_core::gate::{Access, Class};
use raxx_core::rbac::{Level, Resource};
use raxx_store::admins::{Admin, StoredPasskey};
use raxx_store::passkeys::PasskeyInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

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

pub use raxx_actions::passkeys::FIRST_PASSKEY_WINDOW_MS;

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

/// The operator and session of this request, for the use cases.
fn me(ctx: &Ctx) -> AppResult<Me<'_>> {
    Ok(Me::of(ctx.admin.as_ref(), ctx.session.as_ref())?)
}

fn ceremony(c: raxx_actions::signin::Challenge) -> Response {
    Json(Ceremony {
        ceremony: c.ceremony,
        challenge: c.challenge,
    })
    .into_response()
}

// ---- step-up: a fresh assertion with one of the operator's own passkeys ----

pub async fn step_up_start(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    Ok(ceremony(passkeys::step_up_start(&state, me(&ctx)?).await?))
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
    let valid_seconds = passkeys::step_up_finish(
        &state,
        &ctx.caller(),
        me(&ctx)?,
        &body.ceremony,
        &body.credential,
    )
    .await?;
    Ok(Json(SteppedUp {
        ok: true,
        valid_seconds,
    })
    .into_response())
}

// ---- adding a passkey: after the step-up, in the same session ----

#[derive(Deserialize, ToSchema)]
pub struct RegisterStart {
    /// a name for the new passkey
    name: String,
}

pub async fn register_start(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RegisterStart>,
) -> AppResult<Response> {
    let started = passkeys::add_start(&state, &ctx.caller(), me(&ctx)?, &body.name).await?;
    Ok(ceremony(started))
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
    let (id, name) = passkeys::add_finish(
        &state,
        &ctx.caller(),
        me(&ctx)?,
        &body.ceremony,
        &body.credential,
    )
    .await?;
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

// ---- notices ----

/// The signed-in operator's pending notices, as sentences (the dashboard shows them).
pub async fn dashboard_notices(state: &AppState, ctx: &Ctx) -> AppResult<Vec<String>> {
    let Some(id) = ctx.admin_id() else {
        return Ok(Vec::new());
    };
    let notices = passkeys::notices(state, id).await?;
    Ok(notices.into_iter().map(|(_, text)| text).collect())
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
    let me = me(&ctx)?;
    let stored = state.store.passkeys_of(me.admin.id).await?;
    Ok(render(&PasskeysPage {
        first: passkeys::first_passkey_allowed(me.session, stored.len()),
        stepped_up: passkeys::stepped_up(&state, me).await?,
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
    let name = passkeys::rename(&state, &ctx.caller(), me(&ctx)?, id, &form.name).await?;
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
    let (removed, own) = passkeys::remove(&state, &ctx.caller(), me(&ctx)?, id).await?;
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
    passkeys::ack(&state, &ctx.caller(), me(&ctx)?).await?;
    Ok(redirect_with_flash("/", "Noted."))
}

// ---- JSON ----

pub async fn api_list(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let admin = me(&ctx)?.admin;
    let passkeys: Vec<PasskeyItem> = state
        .store
        .passkeys_of(admin.id)
        .await?
        .iter()
        .map(|p| PasskeyInfo::from(p).into())
        .collect();
    let notices = passkeys::notices(&state, admin.id)
        .await?
        .into_iter()
        .map(|(n, message)| NoticeView {
            message,
            kind: n.kind,
            name: n.passkey_name,
            at: n.created_at,
            by: n.by_admin_id,
        })
        .collect();
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
    let name = passkeys::rename(&state, &ctx.caller(), me(&ctx)?, id, &body.name).await?;
    Ok(Json(Renamed { id, name }).into_response())
}

pub async fn api_remove(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let (removed, own) = passkeys::remove(&state, &ctx.caller(), me(&ctx)?, id).await?;
    Ok(Json(PasskeyRemoved {
        removed: id,
        operator: removed.admin_id,
        own,
    })
    .into_response())
}

pub async fn api_ack(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let n = passkeys::ack(&state, &ctx.caller(), me(&ctx)?).await?;
    Ok(Json(Acknowledged { acknowledged: n }).into_response())
}

/// Is there a session-admin view for this principal? (The operators page links to it.)
pub fn can_view_others(ctx: &Ctx) -> bool {
    ctx.has(Resource::Session, Level::Reader)
}
