//! Server-rendered pages. Every page carries the env pill; every form carries `_csrf`
//! and `_target_env`; a control for an action this operator cannot take on this
//! console is absent from the HTML, not hidden.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use raxx_core::Env;
use raxx_core::gate::{Csrf, GateInput, Principal, decide, route_exists_in};
use raxx_core::rbac::{Level, Resource};
use raxx_store::admins::Admin;
use serde::Deserialize;

use crate::error::{AppError, AppResult, ErrorInfo};
use crate::gate::Ctx;
use crate::ops::{self, fmt_time};
use crate::state::AppState;

/// What the layout needs on every page.
pub struct Layout {
    pub env: Env,
    pub origin: String,
    /// Host (and port) of public_url, for compact display.
    pub host: String,
    pub title: String,
    pub nav: &'static str,
    pub operator: Option<Admin>,
    pub csrf: String,
    pub flash: Option<String>,
    /// (label, href) of the main navigation: [`nav_links`] for this principal.
    pub links: Vec<(&'static str, &'static str)>,
}

/// The main navigation's candidates, in order: (label, page). Which of them an operator
/// sees is not written here but decided ([`nav_links`]).
pub const NAV: [(&str, &str); 12] = [
    ("Dashboard", "/"),
    ("Status", "/status"),
    ("Flags", "/flags"),
    ("Promotions", "/promotions"),
    ("Customers", "/customers"),
    ("Jobs", "/jobs"),
    ("Audit log", "/audit"),
    ("Tokens", "/tokens"),
    ("Sessions", "/sessions"),
    ("Passkeys", "/passkeys"),
    ("Operators", "/operators"),
    ("Invites", "/invites"),
];

/// The navigation derived from the route manifest and the gate: a link is shown only when
/// the manifest has a `GET` route at that page and [`raxx_core::gate::decide`] would allow
/// this principal's `GET` of it on this console. A page whose purpose is a write that
/// cannot exist on this console (promotions, on staging: `POST /promotions` is a
/// prod-write) is not offered either.
pub fn nav_links(env: Env, principal: &Principal) -> Vec<(&'static str, &'static str)> {
    let manifest = crate::manifest::route_manifest();
    NAV.into_iter()
        .filter(|(_, path)| {
            let Some(get) = manifest
                .iter()
                .find(|r| r.method == axum::http::Method::GET && r.path == *path)
            else {
                return false;
            };
            let input = GateInput {
                active_env: env,
                class: get.class,
                access: get.access,
                only_env: get.only_env,
                principal,
                csrf: Csrf::Valid,
                claimed_env: None,
                target_env: None,
                target_app: None,
                own_object: false,
            };
            let its_writes_exist = manifest
                .iter()
                .filter(|r| r.path == *path && r.class.is_write())
                .all(|w| route_exists_in(w.class, w.only_env, env));
            decide(&input).is_ok() && its_writes_exist
        })
        .collect()
}

impl Layout {
    pub fn new(
        state: &AppState,
        ctx: Option<&Ctx>,
        title: impl Into<String>,
        nav: &'static str,
    ) -> Self {
        Layout {
            env: state.env(),
            origin: state.cfg.origin.clone(),
            host: state.cfg.host_with_port.clone(),
            title: title.into(),
            nav,
            operator: ctx.and_then(|c| c.admin.clone()),
            csrf: ctx.map(|c| c.csrf().to_string()).unwrap_or_default(),
            flash: ctx.and_then(|c| c.flash.clone()),
            links: ctx.map_or_else(Vec::new, |c| nav_links(state.env(), &c.principal)),
        }
    }

    /// (label, href) of the main navigation, only what this operator can open.
    pub fn nav_items(&self) -> Vec<(&'static str, &'static str)> {
        self.links.clone()
    }
}

pub(crate) fn render(t: &impl Template) -> Response {
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
    code: String,
    status: u16,
    /// `/login?next=…` when the answer is "sign in first" (a submit after the session ended).
    sign_in: Option<String>,
    /// A provider failure's raw answer, shown behind a toggle under the short message.
    raw: Option<String>,
}

/// The HTML face of an error: same words as the JSON, inside the layout.
pub fn error_page(state: &AppState, ctx: Option<&Ctx>, info: ErrorInfo) -> Response {
    error_page_with(state, ctx, info, None)
}

/// [`error_page`] with the sign-in link an unauthenticated submit gets.
pub fn error_page_with(
    state: &AppState,
    ctx: Option<&Ctx>,
    info: ErrorInfo,
    sign_in: Option<String>,
) -> Response {
    let heading = match info.code.as_str() {
        "env_mismatch" => "Wrong environment",
        "forbidden" => "You do not have the role for this",
        "csrf" => "This form has expired",
        "unauthenticated" => "Please sign in",
        "not_found" => "Not found",
        "invalid" => "Please check what you entered",
        "unavailable" => "The console cannot reach its database",
        "misdirected" => "Wrong address for this console",
        "invite_unusable" => "This invite cannot be used",
        "read_only" | "storage_full" => "Changes are paused",
        "internal" => "Something went wrong on the console's side",
        _ if info.status == StatusCode::CONFLICT => "This changed meanwhile",
        _ => "Something went wrong",
    };
    let sign_in = sign_in
        .or_else(|| (info.code == "unauthenticated").then(|| crate::auth::login_url(None, None)));
    // Provider failures: the failed step in a line, the upstream text behind a toggle.
    let (message, raw) = if info.code.starts_with("provider_") {
        (
            format!("{} Nothing else was changed.", failed_step(&info.message)),
            Some(info.message),
        )
    } else {
        (info.message, None)
    };
    let heading = if raw.is_some() {
        "The provider call failed"
    } else {
        heading
    };
    let page = ErrorPage {
        layout: Layout::new(state, ctx, heading, ""),
        heading: heading.to_string(),
        message,
        raw,
        code: info.code,
        status: info.status.as_u16(),
        sign_in,
    };
    let mut resp = render(&page);
    *resp.status_mut() = info.status;
    resp
}

/// A provider failure in one short line: "Last rotation stopped at step 2 (write config
/// vars to raxx-api-staging)." from "step 2 (…): Heroku answered 422: …". A message that
/// does not name a step reads "Last rotation failed." (the raw text stays in a toggle).
pub fn failed_step(message: &str) -> String {
    match message
        .strip_prefix("step ")
        .and_then(|rest| rest.split_once("): "))
    {
        Some((step, _)) => format!("Stopped at step {step})."),
        None => "The provider call failed.".to_string(),
    }
}

/// Redirect after an action, carrying a one-shot message.
pub fn redirect_with_flash(to: &str, message: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    let encoded: String = url::form_urlencoded::byte_serialize(message.as_bytes()).collect();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "raxx_flash={encoded}; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub fn decode_flash(raw: &str) -> Option<String> {
    let decoded: String = url::form_urlencoded::parse(format!("m={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    (!decoded.is_empty()).then(|| decoded.chars().take(300).collect())
}

pub fn clear_flash_cookie() -> HeaderValue {
    HeaderValue::from_static("raxx_flash=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, ctype): (&'static str, &str) = match file.as_str() {
        "app.css" => (include_str!("../static/app.css"), "text/css; charset=utf-8"),
        "passkey.js" => (
            include_str!("../static/passkey.js"),
            "text/javascript; charset=utf-8",
        ),
        "passkeys.js" => (
            include_str!("../static/passkeys.js"),
            "text/javascript; charset=utf-8",
        ),
        "refresh.js" => (
            include_str!("../static/refresh.js"),
            "text/javascript; charset=utf-8",
        ),
        "copy.js" => (
            include_str!("../static/copy.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (include_str!("../static/favicon.svg"), "image/svg+xml"),
        // One per console, so a tab says which env it is (base.html picks this env's).
        "favicon-staging.svg" => (
            include_str!("../static/favicon-staging.svg"),
            "image/svg+xml",
        ),
        "favicon-prod.svg" => (include_str!("../static/favicon-prod.svg"), "image/svg+xml"),
        _ => return AppError::NotFound(format!("asset {file}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

pub struct AuditRow {
    pub id: i64,
    pub time: String,
    pub actor: String,
    /// The actor as recorded: the value of the actor filter that finds this actor's rows.
    pub actor_filter: String,
    pub action: String,
    pub target: String,
    /// The value of the target filter that finds this target's rows (empty: none).
    pub target_filter: String,
    pub outcome: String,
    pub reason: String,
}

/// Audit rows for display: operator ids are shown as their email (the id stays in the
/// title for filtering), everything else as recorded.
pub async fn audit_rows(
    state: &AppState,
    entries: &[raxx_core::audit::AuditEntry],
) -> AppResult<Vec<AuditRow>> {
    let emails: HashMap<String, String> = state
        .store
        .admins()
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.email))
        .collect();
    let name = |id: &str| match emails.get(id) {
        Some(email) => format!("{email} (#{id})"),
        None => id.to_string(),
    };
    Ok(entries
        .iter()
        .map(|e| AuditRow {
            id: e.id,
            time: fmt_time(e.at),
            actor: name(&e.event.actor),
            actor_filter: e.event.actor.clone(),
            target_filter: match (
                e.event.target_type.as_deref(),
                e.event.target_id.as_deref(),
                &e.event.target_app,
            ) {
                (Some(t), Some(i), Some(a)) => format!("{t} {i} ({a})"),
                (Some(t), Some(i), None) => format!("{t} {i}"),
                (None, Some(i), _) => i.to_string(),
                _ => String::new(),
            },
            action: e.event.action.clone(),
            target: match (
                e.event.target_type.as_deref(),
                e.event.target_id.as_deref(),
                &e.event.target_app,
            ) {
                (Some("operator"), Some(i), _) => format!("operator {}", name(i)),
                (Some(t), Some(i), Some(a)) => format!("{t} {i} ({a})"),
                (Some(t), Some(i), None) => format!("{t} {i}"),
                (_, _, Some(a)) => a.clone(),
                _ => String::new(),
            },
            outcome: e.event.outcome.as_str().to_string(),
            reason: e.event.reason.clone().unwrap_or_default(),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    layout: Layout,
    pending: Option<usize>,
    roles: Vec<String>,
    app_count: usize,
    session_count: usize,
    recent: Option<Vec<AuditRow>>,
    expiring: Vec<crate::tokens::ExpiringToken>,
    status: Option<crate::status::Summary>,
    /// "A new passkey was added on …": shown until the operator dismisses them.
    notices: Vec<String>,
}

pub async fn dashboard(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let recent = if ctx.has(Resource::Audit, Level::User) {
        let q = raxx_store::audit::AuditQuery {
            limit: 8,
            hide_actions: crate::audit_filter::read_actions().to_vec(),
            ..Default::default()
        };
        Some(audit_rows(&state, &state.store.audit_page(&q).await?).await?)
    } else {
        None
    };
    let session_count = state.store.live_sessions(ctx.admin_id()).await?.len();
    // Pending promotions exist only on prod (the queue is filtered to this env's apps).
    let pending = if state.env() == raxx_core::Env::Prod {
        let apps = crate::flags::env_apps(&state);
        Some(
            state
                .store
                .promotions(
                    &apps,
                    Some(raxx_core::promotion::PromotionStatus::Pending),
                    500,
                )
                .await?
                .len(),
        )
    } else {
        None
    };
    Ok(render(&Dashboard {
        pending,
        layout: Layout::new(&state, Some(&ctx), "Dashboard", "Dashboard"),
        roles: ctx.roles().names(),
        app_count: state.cfg.config.apps.len(),
        session_count,
        recent,
        expiring: crate::tokens::dashboard_reminders(&state, &ctx).await,
        status: crate::status::summary(&state).await,
        notices: crate::passkeys::dashboard_notices(&state, &ctx).await?,
    }))
}

pub struct SessionRow {
    pub id: String,
    pub email: String,
    pub created: String,
    pub last_seen: String,
    pub expires: String,
    pub user_agent: String,
    pub ip: String,
    pub current: bool,
    pub can_end: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    layout: Layout,
    rows: Vec<SessionRow>,
    all: bool,
}

pub async fn sessions(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let all = ctx.has(Resource::Session, Level::Reader);
    let can_end_any = ctx.can_write(Resource::Session);
    let me = ctx.admin_id();
    let current = ctx.session.as_ref().map(|s| s.id.clone());
    let rows = state
        .store
        .live_sessions(if all { None } else { me })
        .await?
        .into_iter()
        .map(|(s, email)| SessionRow {
            current: Some(&s.id) == current.as_ref(),
            can_end: can_end_any || Some(s.admin_id) == me,
            id: s.id,
            email,
            created: fmt_time(s.created_at),
            last_seen: fmt_time(s.last_seen_at),
            expires: fmt_time(s.expires_at),
            user_agent: s.user_agent.unwrap_or_default(),
            ip: s.ip.unwrap_or_default(),
        })
        .collect();
    Ok(render(&SessionsPage {
        layout: Layout::new(&state, Some(&ctx), "Sessions", "Sessions"),
        rows,
        all,
    }))
}

pub async fn revoke_session(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    ops::revoke_session(&state, &ctx, &id).await?;
    let own = ctx.session.as_ref().is_some_and(|s| s.id == id);
    Ok(if own {
        Redirect::to("/login").into_response()
    } else {
        redirect_with_flash("/sessions", "Session ended.")
    })
}

/// A member of a group, with the removal control when this operator may use it.
pub struct MemberRow {
    pub email: String,
    pub source: String,
    /// `/operators/{id}/groups/{group}/remove`, when removable here.
    pub remove_action: Option<String>,
}

pub struct GroupRow {
    pub name: String,
    pub description: String,
    pub grants: Vec<(String, String)>,
    pub members: Vec<MemberRow>,
}

pub struct OperatorRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub groups: String,
    pub disabled: bool,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "operators.html")]
struct OperatorsPage {
    layout: Layout,
    rows: Vec<OperatorRow>,
    groups: Vec<GroupRow>,
    can_admin: bool,
}

pub async fn operators(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let mut rows = Vec::new();
    for a in state.store.admins().await? {
        rows.push(OperatorRow {
            groups: state.store.groups_of(&a.email).await?.join(", "),
            is_me: Some(a.id) == ctx.admin_id(),
            id: a.id,
            email: a.email,
            name: a.display_name,
            disabled: a.disabled,
        });
    }
    // Removing a membership is an invite-resource write; config-made memberships stay.
    let can_remove = ctx.can_write(Resource::Invite);
    let local_groups = ops::invitable_groups(&state).await?;
    let ids: HashMap<String, i64> = rows.iter().map(|r| (r.email.clone(), r.id)).collect();
    let groups = state
        .store
        .groups()
        .await?
        .into_iter()
        .map(|g| GroupRow {
            members: g
                .members
                .iter()
                .map(|(email, source)| MemberRow {
                    remove_action: ids
                        .get(email)
                        .filter(|_| {
                            can_remove && source != "config" && local_groups.contains(&g.name)
                        })
                        .map(|id| format!("/operators/{id}/groups/{}/remove", g.name)),
                    email: email.clone(),
                    source: source.clone(),
                })
                .collect(),
            name: g.name,
            description: g.description,
            grants: g.grants,
        })
        .collect();
    Ok(render(&OperatorsPage {
        layout: Layout::new(&state, Some(&ctx), "Operators", "Operators"),
        rows,
        groups,
        can_admin: ctx.can_write(Resource::Session),
    }))
}

pub async fn disable_operator(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let ended = ops::set_operator_disabled(&state, &ctx, id, true).await?;
    Ok(redirect_with_flash(
        "/operators",
        &format!("Operator disabled; {ended} session(s) ended."),
    ))
}

pub async fn remove_membership(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, group)): Path<(i64, String)>,
) -> AppResult<Response> {
    ops::remove_membership(&state, &ctx, id, &group).await?;
    Ok(redirect_with_flash(
        "/operators",
        &format!("Removed from {group}; their roles change on their next request."),
    ))
}

pub async fn enable_operator(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    ops::set_operator_disabled(&state, &ctx, id, false).await?;
    Ok(redirect_with_flash("/operators", "Operator enabled."))
}

#[cfg(test)]
mod tests {
    use super::failed_step;

    #[test]
    fn a_provider_failure_reads_as_its_step() {
        assert_eq!(
            failed_step(
                "step 2 (write config vars to raxx-api-staging): Heroku answered 422: Invalid params (https://api.example/x)"
            ),
            "Stopped at step 2 (write config vars to raxx-api-staging)."
        );
        assert_eq!(failed_step("no step here"), "The provider call failed.");
    }
}

#[derive(Default)]
pub struct AuditFilterView {
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub target: String,
    pub since: String,
    pub until: String,
    pub q: String,
    pub range: String,
    pub show_reads: bool,
}

/// The filter parameters the viewer carries from page to page (and into exports).
const AUDIT_PARAMS: [&str; 9] = [
    "actor", "action", "outcome", "target", "since", "until", "q", "range", "reads",
];

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    f: AuditFilterView,
    ranges: Vec<(String, String)>,
    rows: Vec<AuditRow>,
    next_cursor: Option<i64>,
    query: String,
}

const AUDIT_PAGE: u32 = 50;

pub async fn audit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let show_reads = crate::audit_filter::show_reads(&p, false)?;
    let q = crate::audit_filter::audit_query(&state, &p, AUDIT_PAGE, false).await?;
    let entries = ops::audit_read(&state, &ctx, &q, "audit.view").await?;
    let next_cursor = (entries.len() as u32 == AUDIT_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let query: String = AUDIT_PARAMS
        .iter()
        .filter_map(|k| p.get(*k).filter(|v| !v.is_empty()).map(|v| (k, v)))
        .map(|(k, v)| {
            format!(
                "&{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    Ok(render(&AuditPage {
        layout: Layout::new(&state, Some(&ctx), "Audit log", "Audit log"),
        f: AuditFilterView {
            actor: get("actor"),
            action: get("action"),
            outcome: get("outcome"),
            target: get("target"),
            since: get("since"),
            until: get("until"),
            q: get("q"),
            range: get("range"),
            show_reads,
        },
        ranges: crate::audit_filter::RANGES
            .iter()
            .map(|(v, l, _)| (v.to_string(), l.to_string()))
            .collect(),
        rows: audit_rows(&state, &entries).await?,
        next_cursor,
        query,
    }))
}

#[derive(Template)]
#[template(path = "audit_entry.html")]
struct AuditEntryPage {
    layout: Layout,
    e: raxx_core::audit::AuditEntry,
    time: String,
    actor: String,
    target: String,
    target_filter: String,
    context: String,
    newer: Option<i64>,
}

/// One audit entry in full: context, IP, request id, session and both hashes.
pub async fn audit_entry(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let e = ops::audit_entry(&state, &ctx, &id).await?;
    let row = audit_rows(&state, std::slice::from_ref(&e))
        .await?
        .pop()
        .ok_or_else(|| AppError::NotFound(format!("audit entry {id}")))?;
    let newer = state.store.audit_entry(e.id + 1).await?.map(|n| n.id);
    Ok(render(&AuditEntryPage {
        layout: Layout::new(
            &state,
            Some(&ctx),
            format!("Audit entry {}", e.id),
            "Audit log",
        ),
        time: row.time,
        actor: row.actor,
        target: if row.target.is_empty() {
            "none".into()
        } else {
            row.target
        },
        target_filter: row.target_filter,
        context: serde_json::to_string_pretty(&e.event.context).unwrap_or_default(),
        newer,
        e,
    }))
}

/// CSV or JSON lines of the filtered log (up to 100 000 rows per export).
pub async fn audit_export(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let format = p.get("format").map(String::as_str).unwrap_or("csv");
    if !matches!(format, "csv" | "jsonl") {
        return Err(AppError::invalid(format!(
            "format must be csv or jsonl, not `{format}`"
        )));
    }
    // An export carries what the filters name: reads included unless `reads=hide`.
    let mut q = crate::audit_filter::audit_query(&state, &p, 500, true).await?;
    let mut all = ops::audit_read(&state, &ctx, &q, "audit.export").await?;
    while all.len() < 100_000 && (all.len() as u32).is_multiple_of(500) && !all.is_empty() {
        q.before = all.last().map(|e| e.id);
        let more = state.store.audit_page(&q).await?;
        if more.is_empty() {
            break;
        }
        all.extend(more);
    }
    let emails = operator_emails(&state).await?;
    let (body, ctype) = match format {
        "jsonl" => (export_jsonl(&all, &emails), "application/x-ndjson"),
        _ => (export_csv(&all, &emails), "text/csv; charset=utf-8"),
    };
    let disposition = format!("attachment; filename=\"audit-{}.{format}\"", state.env());
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Operator id → email, for exports and the row view.
pub async fn operator_emails(state: &AppState) -> AppResult<HashMap<String, String>> {
    Ok(state
        .store
        .admins()
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.email))
        .collect())
}

/// One audit row as a JSON line, with `actor_email` beside the actor id when the actor
/// is an operator.
pub fn jsonl_row(r: &raxx_core::audit::AuditEntry, email: Option<&str>) -> Option<String> {
    let mut v = serde_json::to_value(r).ok()?;
    if let (Some(obj), Some(email)) = (v.as_object_mut(), email) {
        obj.insert(
            "actor_email".into(),
            serde_json::Value::String(email.into()),
        );
    }
    serde_json::to_string(&v).ok().map(|l| l + "\n")
}

pub fn export_jsonl(
    rows: &[raxx_core::audit::AuditEntry],
    emails: &HashMap<String, String>,
) -> String {
    rows.iter()
        .filter_map(|r| jsonl_row(r, emails.get(&r.event.actor).map(String::as_str)))
        .collect()
}

pub const CSV_HEADER: &str = "id,time,actor,actor_email,session_id,action,target_type,target_id,target_app,outcome,reason,context,request_id,ip,prev_hash,hash\n";

pub fn export_csv(
    rows: &[raxx_core::audit::AuditEntry],
    emails: &HashMap<String, String>,
) -> String {
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        out.push_str(&csv_row(r, emails.get(&r.event.actor).map(String::as_str)));
    }
    out
}

/// One audit row as a CSV line: every cell quoted, spreadsheet formulas neutralised.
pub fn csv_row(r: &raxx_core::audit::AuditEntry, actor_email: Option<&str>) -> String {
    fn cell(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    }
    let e = &r.event;
    let fields = [
        r.id.to_string(),
        fmt_time(r.at),
        e.actor.clone(),
        actor_email.unwrap_or_default().to_string(),
        e.session_id.clone().unwrap_or_default(),
        e.action.clone(),
        e.target_type.clone().unwrap_or_default(),
        e.target_id.clone().unwrap_or_default(),
        e.target_app.clone().unwrap_or_default(),
        e.outcome.as_str().to_string(),
        e.reason.clone().unwrap_or_default(),
        e.context.to_string(),
        e.request_id.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        r.prev_hash.clone(),
        r.hash.clone(),
    ];
    let mut line = fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

pub struct InviteRow {
    pub id: i64,
    pub email: String,
    pub group: String,
    pub invited_by: String,
    pub created: String,
    pub expires: String,
    pub accepted: String,
    pub state: String,
}

/// A group an invite can name, with the roles it grants on this console.
pub struct InviteGroup {
    pub name: String,
    pub roles: String,
}

/// What the invite form shows: what was typed, and what to fix when a submit failed.
#[derive(Default)]
pub struct InviteFormView {
    pub email: String,
    pub group: String,
    pub error: Option<String>,
    /// Which field the error is about: `email` or `group`.
    pub field: &'static str,
}

#[derive(Template)]
#[template(path = "invites.html")]
struct InvitesPage {
    layout: Layout,
    rows: Vec<InviteRow>,
    groups: Vec<InviteGroup>,
    can_create: bool,
    new_url: Option<String>,
    form: InviteFormView,
}

async fn invites_page(
    state: &AppState,
    ctx: &Ctx,
    new_url: Option<String>,
    form: InviteFormView,
) -> AppResult<Response> {
    let now = raxx_store::now_ms();
    let emails: HashMap<i64, String> = state
        .store
        .admins()
        .await?
        .into_iter()
        .map(|a| (a.id, a.email))
        .collect();
    let rows = state
        .store
        .invites()
        .await?
        .into_iter()
        .map(|i| InviteRow {
            state: i.state(now).to_string(),
            id: i.id,
            email: i.email,
            group: i.group_name,
            invited_by: emails
                .get(&i.created_by)
                .cloned()
                .unwrap_or_else(|| format!("operator #{}", i.created_by)),
            created: fmt_time(i.created_at),
            expires: fmt_time(i.expires_at),
            accepted: i.accepted_at.map(fmt_time).unwrap_or_default(),
        })
        .collect();
    let invitable = ops::invitable_groups(state).await?;
    let env = state.env();
    let groups = state
        .store
        .groups()
        .await?
        .into_iter()
        .filter(|g| invitable.contains(&g.name))
        .map(|g| InviteGroup {
            roles: g
                .grants
                .iter()
                .filter(|(_, scope)| {
                    scope
                        .parse::<raxx_core::rbac::EnvScope>()
                        .is_ok_and(|s| s.covers(env))
                })
                .map(|(role, _)| role.clone())
                .collect::<Vec<_>>()
                .join(", "),
            name: g.name,
        })
        .collect();
    let failed = form.error.is_some();
    let mut resp = render(&InvitesPage {
        layout: Layout::new(state, Some(ctx), "Invites", "Invites"),
        rows,
        groups,
        can_create: ctx.can_write(Resource::Invite),
        new_url,
        form,
    });
    if failed {
        *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

pub async fn invites(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    invites_page(&state, &ctx, None, InviteFormView::default()).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    group: String,
}

pub async fn create_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<InviteForm>,
) -> AppResult<Response> {
    if f.group.is_empty() {
        // No default group: the operator picks one, and keeps what they typed.
        let form = InviteFormView {
            email: f.email,
            group: String::new(),
            error: Some("Choose the group the invitee joins.".into()),
            field: "group",
        };
        return invites_page(&state, &ctx, None, form).await;
    }
    match ops::create_invite(&state, &ctx, &f.email, &f.group).await {
        Ok((url, _)) => invites_page(&state, &ctx, Some(url), InviteFormView::default()).await,
        // A refusal about the input re-renders the form with what was typed, marked.
        Err(e @ (AppError::Invalid(_) | AppError::Conflict { .. })) => {
            let (_, code) = e.parts();
            let field = if code == "group_not_invitable" || e.to_string().contains("is not a group")
            {
                "group"
            } else {
                "email"
            };
            let form = InviteFormView {
                error: Some(e.to_string()),
                email: f.email,
                group: f.group,
                field,
            };
            invites_page(&state, &ctx, None, form).await
        }
        Err(e) => Err(e),
    }
}

pub async fn revoke_invite(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    ops::revoke_invite(&state, &ctx, id).await?;
    Ok(redirect_with_flash("/invites", "Invite revoked."))
}
