//! The break-glass login link (SPEC §3, issue 19). Opening it (`GET`, and so `HEAD`)
//! changes nothing: it shows "Sign in as E on PROD" with a button. Only that button's
//! same-origin `POST /auth/link`, with the token in the form body, consumes the link,
//! sets the session cookie and redirects to the dashboard. Link previewers and scanners
//! that fetch the URL no longer burn it.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use raxx_store::identity::LoginLinkState;
use serde::Deserialize;

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use crate::signin::auth::askama_html;
use crate::signin::auth::session_cookie;
use crate::signin::auth::user_agent;

#[derive(Template)]
#[template(path = "login_link.html")]
struct LinkPage {
    layout: Layout,
    valid: bool,
    email: String,
    expires: String,
    token: String,
    problem: String,
}

/// `GET /auth/link/{token}`: the confirmation page, or why the link cannot be used.
pub async fn confirm_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let link = raxx_actions::signin::login_link_state(&state, &token).await?;
    let (status, problem) = match &link {
        LoginLinkState::Valid { .. } => (StatusCode::OK, String::new()),
        LoginLinkState::Used { used_at, .. } => (
            StatusCode::GONE,
            format!(
                "This login link was used already, at {} UTC. A link signs in once.",
                raxx_actions::fmt_time(*used_at)
            ),
        ),
        LoginLinkState::Expired { .. } => (
            StatusCode::GONE,
            "This login link expired: links last 10 minutes.".to_string(),
        ),
        LoginLinkState::Unknown => (
            StatusCode::NOT_FOUND,
            "This login link is not valid: it never existed, or it was copied incompletely."
                .to_string(),
        ),
    };
    let (valid, email, expires) = match link {
        LoginLinkState::Valid { email, expires_at } => {
            (true, email, raxx_actions::fmt_time(expires_at))
        }
        _ => (false, String::new(), String::new()),
    };
    let page = LinkPage {
        layout: Layout::new(&state, Some(&ctx), "Sign in with a login link", ""),
        valid,
        email,
        expires,
        token: if valid { token } else { String::new() },
        problem,
    };
    let mut resp = askama_html(&page);
    *resp.status_mut() = status;
    // The page carries the token: never cache it, never send it on as a referrer.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    token: String,
}

/// `POST /auth/link`: use the link once, sign in, go to the dashboard. The gate refuses
/// it cross-site (`Sec-Fetch-Site`/`Origin`), like every public write.
pub async fn sign_in(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> AppResult<Response> {
    let began = raxx_actions::signin::login_link(
        &state,
        &ctx.caller(),
        &form.token,
        user_agent(&headers).as_deref(),
    )
    .await?;
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, &began.token));
    Ok(resp)
}
