//! Operators' pages: sessions, operators and their groups, invites.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use raxx_core::rbac::{Level, Resource};
use serde::Deserialize;

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;
use crate::kernel::views::{Layout, redirect_with_flash, render};
use raxx_actions::fmt_time;

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
    raxx_actions::operators::revoke_session(&state, &ctx.caller(), &id).await?;
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
    let local_groups = raxx_actions::identity::invitable_groups(&state).await?;
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
    let ended =
        raxx_actions::operators::set_operator_disabled(&state, &ctx.caller(), id, true).await?;
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
    raxx_actions::operators::remove_membership(&state, &ctx.caller(), id, &group).await?;
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
    raxx_actions::operators::set_operator_disabled(&state, &ctx.caller(), id, false).await?;
    Ok(redirect_with_flash("/operators", "Operator enabled."))
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
    let invitable = raxx_actions::identity::invitable_groups(state).await?;
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
    match raxx_actions::operators::create_invite(&state, &ctx.caller(), &f.email, &f.group)
        .await
        .map_err(AppError::from)
    {
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
    raxx_actions::operators::revoke_invite(&state, &ctx.caller(), id).await?;
    Ok(redirect_with_flash("/invites", "Invite revoked."))
}
