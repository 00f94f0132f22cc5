//! The gate middleware: wraps every manifest route. It finds the principal, checks
//! CSRF and the claimed env on writes, asks [`raxx_core::gate::decide`], audits every
//! denial, and hands the handler a [`Ctx`].

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{
    Access, Csrf, Denial, GateInput, Owner, Principal, Target, authorize, decide,
};
use raxx_core::rbac::{EffectiveRoles, Level, Resource};
use raxx_core::secret::constant_time_eq;
use raxx_store::admins::Admin;
use raxx_store::sessions::Session;

use crate::error::{AppError, ErrorInfo};
use crate::manifest::{Route, Surface};
use crate::pages;
use crate::state::AppState;

/// Largest form body the gate buffers to read `_csrf` and `_target_env`.
const FORM_LIMIT: usize = 256 * 1024;

/// The request as the gate saw it; handlers take it as an extractor.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub env: Env,
    pub route_action: &'static str,
    /// The manifest route, and the CSRF and claimed-env facts the gate found: what the
    /// object half of the decision ([`Ctx::authorize`]) starts from.
    pub route: &'static Route,
    pub csrf_fact: Csrf,
    pub claimed_env: Option<Env>,
    pub principal: Principal,
    pub admin: Option<Admin>,
    pub session: Option<Session>,
    pub request_id: String,
    pub ip: Option<String>,
    pub flash: Option<String>,
}

impl Ctx {
    pub fn roles(&self) -> EffectiveRoles {
        match &self.principal {
            Principal::Operator { roles, .. } | Principal::System { roles, .. } => roles.clone(),
            _ => EffectiveRoles::default(),
        }
    }

    pub fn has(&self, resource: Resource, level: Level) -> bool {
        self.roles().has(resource, level)
    }

    /// May this principal make a `write` of `resource` on this console? (Renders
    /// controls only where the action is possible.)
    pub fn can_write(&self, resource: Resource) -> bool {
        self.has(resource, raxx_core::gate::write_level(self.env))
    }

    pub fn actor(&self) -> String {
        match (&self.principal, &self.admin) {
            (_, Some(a)) => a.id.to_string(),
            (Principal::Key { app, kind, .. }, _) => format!("key:{app}:{}", kind.as_str()),
            (Principal::System { job, .. }, _) => format!("system:{job}"),
            _ => "anonymous".into(),
        }
    }

    pub fn admin_id(&self) -> Option<i64> {
        self.admin.as_ref().map(|a| a.id)
    }

    /// An audit event prefilled with who, which session, which request.
    pub fn event(&self, action: &str, outcome: Outcome) -> AuditEvent {
        let mut e = AuditEvent::new(self.actor(), action, outcome);
        e.session_id = self.session.as_ref().map(|s| s.id.clone());
        e.request_id = Some(self.request_id.clone());
        e.ip = self.ip.clone();
        e
    }

    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf_token.as_str())
    }

    /// The route facts as the gate saw them, for [`raxx_core::gate::authorize`].
    pub fn gate_input(&self) -> GateInput<'_> {
        GateInput {
            active_env: self.env,
            class: self.route.class,
            access: self.route.access,
            only_env: self.route.only_env,
            principal: &self.principal,
            csrf: self.csrf_fact,
            claimed_env: self.claimed_env,
            target_env: None,
            target_app: None,
            own_object: false,
        }
    }

    /// The object half of the gate: may this request act on `target`? One decision
    /// ([`raxx_core::gate::authorize`]) and one denial row layout ([`denial_event`], plus
    /// the object named by `what`). Audits and refuses otherwise.
    pub async fn authorize(
        &self,
        state: &AppState,
        target: Target<'_>,
        what: &str,
    ) -> Result<(), AppError> {
        let Err(denial) = authorize(&self.gate_input(), &target) else {
            return Ok(());
        };
        let mut event = denial_event(self.actor(), self.route, &denial).with("target", what);
        event.session_id = self.session.as_ref().map(|s| s.id.clone());
        event.request_id = Some(self.request_id.clone());
        event.ip = self.ip.clone();
        if let Some(app) = target.app {
            event = event.app(app);
        }
        state.store.audit(event).await?;
        crate::metrics::gate_denial(denial.code());
        Err(AppError::Denied(denial))
    }

    /// The handler-side half of env match: the target object's env must be this
    /// console's. Audits and refuses otherwise (through [`Ctx::authorize`]).
    pub async fn check_target_env(
        &self,
        state: &AppState,
        target_env: Env,
        target: &str,
    ) -> Result<(), AppError> {
        let t = Target {
            env: Some(target_env),
            app: None,
            owner: Owner::Nobody,
        };
        self.authorize(state, t, target).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| AppError::Internal("route mounted outside the gate".into()))
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// `Sec-Fetch-Site` / `Origin` say whether a write came from this console's own pages.
fn cross_site(headers: &HeaderMap, origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o != origin)
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub async fn run(state: AppState, route: &'static Route, req: Request, next: Next) -> Response {
    let request_id = crate::client_ip::request_id(&state, &req);
    let ip = crate::client_ip::client_ip(&state, &req);
    let env = state.env();
    let (mut parts, body) = req.into_parts();

    // 1. The principal.
    let mut admin = None;
    let mut session = None;
    let mut principal = Principal::Anonymous;
    let mut session_problem = None;
    let wants_key = matches!(route.access, Access::Key(_) | Access::RoleOrKey(..));
    let presented_key = api_key(&parts.headers);
    if wants_key && let Some(key) = &presented_key {
        let now = raxx_store::now_ms();
        // From memory while the change signal says nothing changed (read routes); from
        // the database otherwise, with the outage fallback on read routes (`keycache.rs`).
        let looked_up = state
            .key_cache
            .verify(&state.store, key, now, route.class.is_write())
            .await;
        match looked_up {
            Ok(Some(k)) => {
                principal = Principal::Key {
                    kind: k.kind,
                    app: k.app.clone(),
                    app_env: env,
                };
            }
            Ok(None) => {
                session_problem =
                    Some("the API key is not valid (unknown, revoked or past its grace period)")
            }
            Err(e) => return AppError::from(e).into_response(),
        }
    } else if parts.headers.contains_key(header::COOKIE)
        && let Some(token) = cookie(&parts.headers, &state.cfg.cookie_name())
    {
        // (The cookie's name is only built when a request carries cookies.)
        match state.store.signed_in(&token, state.policy).await {
            Ok(Ok(raxx_store::sessions::SignedIn {
                session: s,
                admin: a,
                grants,
            })) => {
                let session_env = s.selected_env.parse().unwrap_or(env.other());
                principal = Principal::Operator {
                    session_env,
                    roles: EffectiveRoles::from_grants(env, &grants),
                };
                admin = Some(a);
                session = Some(s);
            }
            Ok(Err(why)) => {
                session_problem = Some(match why {
                    raxx_store::sessions::SessionRejection::Idle => {
                        "your session was idle too long; sign in again"
                    }
                    raxx_store::sessions::SessionRejection::Expired => {
                        "your session has ended; sign in again"
                    }
                    raxx_store::sessions::SessionRejection::Revoked => {
                        "your session was ended; sign in again"
                    }
                    raxx_store::sessions::SessionRejection::Disabled => "this operator is disabled",
                    raxx_store::sessions::SessionRejection::OtherEnv => {
                        "this session belongs to the other console"
                    }
                    raxx_store::sessions::SessionRejection::Unknown => {
                        "unknown session; sign in again"
                    }
                })
            }
            Err(e) => return AppError::from(e).into_response(),
        }
    }

    // 2. CSRF and the claimed env, read from headers or the form body.
    let mut csrf = Csrf::Valid;
    let mut claimed_env: Option<Env> =
        header_str(&parts.headers, "x-console-env").and_then(|v| v.parse().ok());
    let mut body = body;
    if route.class.is_write() {
        let is_form = header_str(&parts.headers, "content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let mut token = header_str(&parts.headers, "x-csrf-token").map(str::to_string);
        if is_form {
            let bytes = match to_bytes(body, FORM_LIMIT).await {
                Ok(b) => b,
                Err(_) => {
                    return AppError::Conflict {
                        status: 413,
                        code: "too_large",
                        message: "the form is too large".into(),
                    }
                    .into_response();
                }
            };
            if let Some(t) = form_field(&bytes, "_csrf") {
                token = Some(t);
            }
            if let Some(e) = form_field(&bytes, "_target_env") {
                claimed_env = e.parse().ok();
                if claimed_env.is_none() {
                    claimed_env = Some(env.other());
                }
            }
            body = Body::from(bytes);
        }
        if cross_site(&parts.headers, &state.cfg.origin) {
            csrf = Csrf::CrossSite;
        } else if let Some(s) = &session
            && !token
                .as_deref()
                .is_some_and(|t| constant_time_eq(t, &s.csrf_token))
        {
            csrf = Csrf::BadToken;
        }
        if route.access == Access::Public && csrf == Csrf::CrossSite {
            let denial = Denial::Csrf {
                message: "cross-site request refused".into(),
            };
            return deny(
                &state,
                route,
                &parts.uri,
                &request_id,
                ip,
                &principal,
                None,
                None,
                denial,
            )
            .await;
        }
    }

    let input = GateInput {
        active_env: env,
        class: route.class,
        access: route.access,
        only_env: route.only_env,
        principal: &principal,
        csrf,
        claimed_env,
        target_env: None,
        target_app: None,
        own_object: false,
    };
    let mut verdict = decide(&input);
    // Own-object routes: let the handler check ownership when the role is missing.
    if let (Err(Denial::Forbidden { .. }), Access::OwnOrRole(_)) = (&verdict, route.access) {
        verdict = Ok(());
    }
    if let Err(mut denial) = verdict {
        if let (Denial::Unauthenticated { message }, Some(problem)) = (&mut denial, session_problem)
        {
            *message = problem.to_string();
        }
        return deny(
            &state,
            route,
            &parts.uri,
            &request_id,
            ip,
            &principal,
            admin,
            session,
            denial,
        )
        .await;
    }

    let ctx = Ctx {
        env,
        route_action: route.action,
        route,
        csrf_fact: csrf,
        claimed_env,
        principal,
        admin,
        session,
        request_id,
        ip,
        flash: cookie(&parts.headers, "raxx_flash").and_then(|f| pages::decode_flash(&f)),
    };
    parts.extensions.insert(ctx.clone());
    let had_flash = ctx.flash.is_some();
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    if had_flash {
        resp.headers_mut()
            .append(header::SET_COOKIE, pages::clear_flash_cookie());
    }
    if route.surface() == Surface::Page
        && let Some(info) = resp.extensions().get::<ErrorInfo>().cloned()
    {
        return pages::error_page(&state, Some(&ctx), info);
    }
    if route.surface() == Surface::Json {
        return json_rejection(resp).await;
    }
    resp
}

/// An extractor's rejection (bad path segment, body or query) is plain text; on a JSON route
/// answer `{"error","message"}` like every other error, with the same status.
async fn json_rejection(resp: Response) -> Response {
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let status = resp.status();
    if !status.is_client_error() || !plain {
        return resp;
    }
    let bytes = to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let code = match status.as_u16() {
        413 => "too_large",
        415 => "unsupported_media_type",
        _ => "invalid",
    };
    let body = serde_json::json!({"error": code, "message": String::from_utf8_lossy(&bytes)});
    (status, axum::Json(body)).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Authorization: Bearer …` or `X-API-Key`.
pub fn api_key(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header_str(headers, "x-api-key"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The one context layout of every denial row (route and object denials alike): the
/// denial's `code` and the route's manifest template (`GET /auth/link/{token}`). Never the
/// request's raw path: a path can carry a secret (a login link, an invite token).
pub fn denial_event(actor: String, route: &Route, denial: &Denial) -> AuditEvent {
    AuditEvent::new(actor, route.action, Outcome::Denied)
        .reason(denial.message())
        .with("code", denial.code())
        .with("route", route_template(route))
}

/// `GET /auth/link/{token}`: what audit rows and logs name a route by.
pub fn route_template(route: &Route) -> String {
    format!("{} {}", route.method, route.path)
}

#[allow(clippy::too_many_arguments)]
async fn deny(
    state: &AppState,
    route: &'static Route,
    uri: &axum::http::Uri,
    request_id: &str,
    ip: Option<String>,
    principal: &Principal,
    admin: Option<Admin>,
    session: Option<Session>,
    denial: Denial,
) -> Response {
    let key_actor = match principal {
        Principal::Key { app, kind, .. } => Some(format!("key:{app}:{}", kind.as_str())),
        _ => None,
    };
    let recorded = match (admin.as_ref(), key_actor) {
        // Signed-in principals (an operator, a valid app key): one chained row each.
        (Some(a), _) => Some(a.id.to_string()),
        (None, Some(key)) => Some(key),
        // Nobody: counted per (interval, source, route, code), outside the chain.
        (None, None) => None,
    };
    let written = match recorded {
        Some(actor) => {
            let mut event = denial_event(actor, route, &denial);
            event.session_id = session.as_ref().map(|s| s.id.clone());
            event.request_id = Some(request_id.to_string());
            event.ip = ip.clone();
            state.store.audit(event).await
        }
        None => {
            let template = route_template(route);
            state
                .store
                .count_anon_denial(&raxx_store::anon_denials::AnonDenial {
                    source: ip.as_deref(),
                    route: &template,
                    action: route.action,
                    code: denial.code(),
                })
                .await
        }
    };
    if let Err(e) = written {
        // Fail closed: a denial we cannot record still denies, and says so.
        tracing::error!(error = %e, "could not audit a denial");
    }
    tracing::info!(code = denial.code(), route = %route.path, "gate denied");
    crate::metrics::gate_denial(denial.code());
    if route.surface() == Surface::Page {
        if matches!(denial, Denial::Unauthenticated { .. })
            && route.method == axum::http::Method::GET
        {
            return Redirect::to(&crate::auth::login_redirect(uri)).into_response();
        }
        let ctx = admin.map(|a| Ctx {
            env: state.env(),
            route_action: route.action,
            route,
            csrf_fact: Csrf::Valid,
            claimed_env: None,
            principal: Principal::Anonymous,
            admin: Some(a),
            session,
            request_id: request_id.to_string(),
            ip,
            flash: None,
        });
        let err = AppError::Denied(denial.clone());
        let (status, code) = err.parts();
        return pages::error_page(
            state,
            ctx.as_ref(),
            ErrorInfo {
                status,
                code: code.to_string(),
                message: denial.message().to_string(),
            },
        );
    }
    AppError::Denied(denial).into_response()
}
