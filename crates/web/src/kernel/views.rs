//! What every page shares: the layout (env pill, navigation from the manifest and the
//! gate), rendering, the flash message, error pages, static assets, sign-in redirects.

use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use raxx_core::Env;
use raxx_core::gate::{Csrf, GateInput, Principal, decide, route_exists_in};
use raxx_store::admins::Admin;

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::ErrorInfo;
use crate::kernel::state::AppState;

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
    let manifest = crate::kernel::route::manifest();
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

/// A page: an askama template answered as HTML (a template that fails to render is a
/// logged 500, never half a page). Handlers return `Page(template)`; [`render`] is the
/// same for code that builds a `Response` itself.
pub struct Page<T: Template>(pub T);

impl<T: Template> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        render(&self.0)
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
    let sign_in = sign_in.or_else(|| {
        (info.code == "unauthenticated").then(|| crate::kernel::views::login_url(None, None))
    });
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
        "app.css" => (
            include_str!("../../static/app.css"),
            "text/css; charset=utf-8",
        ),
        "passkey.js" => (
            include_str!("../../static/passkey.js"),
            "text/javascript; charset=utf-8",
        ),
        "passkeys.js" => (
            include_str!("../../static/passkeys.js"),
            "text/javascript; charset=utf-8",
        ),
        "refresh.js" => (
            include_str!("../../static/refresh.js"),
            "text/javascript; charset=utf-8",
        ),
        "copy.js" => (
            include_str!("../../static/copy.js"),
            "text/javascript; charset=utf-8",
        ),
        "favicon.svg" => (include_str!("../../static/favicon.svg"), "image/svg+xml"),
        // One per console, so a tab says which env it is (base.html picks this env's).
        "favicon-staging.svg" => (
            include_str!("../../static/favicon-staging.svg"),
            "image/svg+xml",
        ),
        "favicon-prod.svg" => (
            include_str!("../../static/favicon-prod.svg"),
            "image/svg+xml",
        ),
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

/// The gate's redirect of a signed-out page GET: `/login?next=<path and query>` when that
/// path is safe to come back to, else plain `/login`.
/// `reason` (`expired`, `ended`) makes the sign-in page say why the session is gone.
pub fn login_redirect(uri: &axum::http::Uri, reason: Option<&str>) -> String {
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    login_url(raxx_core::deeplink::safe_next(target), reason)
}

/// `/login` with an optional safe `next` and the reason the last session is gone.
pub fn login_url(next: Option<&str>, reason: Option<&str>) -> String {
    let mut query = Vec::new();
    if let Some(next) = next
        .and_then(raxx_core::deeplink::safe_next)
        .filter(|n| *n != "/")
    {
        query.push(format!(
            "next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ));
    }
    if let Some(r) = reason.filter(|r| matches!(*r, "expired" | "ended")) {
        query.push(format!("reason={r}"));
    }
    if query.is_empty() {
        "/login".to_owned()
    } else {
        format!("/login?{}", query.join("&"))
    }
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

/// Template filters every capability may use: `use crate::kernel::views::filters;` in the
/// module that defines the template.
pub mod filters {
    use std::fmt::Display;

    /// Text whose `` `quoted` `` parts are values (change summaries: "default `off` →
    /// `on`"): escaped as HTML, each quoted part in `<code>`. Use as `{{ s|ticks }}`.
    #[askama::filter_fn]
    pub fn ticks(
        text: impl Display,
        _: &dyn askama::Values,
    ) -> askama::Result<askama::filters::Safe<String>> {
        Ok(askama::filters::Safe(super::ticks_html(&text.to_string())))
    }
}

/// The HTML of [`filters::ticks`]: escaped, with an odd `` ` `` left as it is.
pub fn ticks_html(text: &str) -> String {
    // askama's own HTML escaper, so a page reads the same either way.
    let escape = |s: &str| {
        askama::filters::escape(s, askama::filters::Html)
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        // An unpaired backtick: not a quoting, show the text as it is.
        return escape(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

#[cfg(test)]
mod ticks_tests {
    use super::ticks_html;

    #[test]
    fn quoted_values_become_code_and_everything_is_escaped() {
        assert_eq!(
            ticks_html("default `off` → `on`"),
            "default <code>off</code> → <code>on</code>"
        );
        assert_eq!(
            ticks_html("variant `<b>` added: {\"a\":1}"),
            "variant <code>&#60;b&#62;</code> added: {&#34;a&#34;:1}"
        );
        assert_eq!(ticks_html("one ` only <i>"), "one ` only &#60;i&#62;");
        assert_eq!(ticks_html(""), "");
    }
}
