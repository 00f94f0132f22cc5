//! The dashboard: what needs the operator now (promotions, checks, expiring tokens), and
//! who the caller is and which apps this console serves ([`api`]).

pub mod api;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use raxx_core::rbac::{Level, Resource};

use crate::audit::pages::{AuditRow, audit_rows};
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;
use crate::kernel::views::{Layout, render};

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
            hide_actions: crate::audit::filter::read_actions().to_vec(),
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
        notices: crate::signin::passkeys::dashboard_notices(&state, &ctx).await?,
    }))
}
