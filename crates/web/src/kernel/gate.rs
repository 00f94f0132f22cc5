//! The gate middleware: wraps every manifest route. It finds the principal, checks
//! CSRF and the claimed env on writes, asks [`raxx_core::gate::decide`], audits every
//! denial, and hands the handler a [`Ctx`].

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{Access, Csrf, Denial, GateInput, Principal, decide};
use raxx_core::opaque::constant_time_eq;
use raxx_core::rbac::EffectiveRoles;
use raxx_store::admins::Admin;
use raxx_store::sessions::Session;

use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::ErrorInfo;
use crate::kernel::route::Route;
use crate::kernel::route::Surface;
use crate::kernel::route::route_template;
use crate::kernel::state::AppState;
use raxx_actions::Kind;

/// Largest form body the gate buffers to read `_csrf` and `_target_env`.
const FORM_LIMIT: usize = 256 * 1024;

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
    let request_id = crate::kernel::client_ip::request_id(&state, &req);
    let ip = crate::kernel::client_ip::client_ip(&state, &req);
    let env = state.env();
    let (mut parts, body) = req.into_parts();

    // 1. The principal.
    let mut admin = None;
    let mut session = None;
    let mut principal = Principal::Anonymous;
    let mut session_problem = None;
    // Why a presented session cookie no longer signs anyone in, for the sign-in page's
    // notice ("expired" or "ended"); `None` when no cookie was presented.
    let mut session_reason: Option<&'static str> = None;
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
                use raxx_store::sessions::SessionRejection as R;
                session_reason = match why {
                    R::Idle | R::Expired | R::Unknown => Some("expired"),
                    R::Revoked => Some("ended"),
                    R::Disabled | R::OtherEnv => None,
                };
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
    // A read with an unsafe method (the playground's `POST .../evaluate`): an operator's
    // session must carry the CSRF token on it like on a write (`docs/decisions.md`).
    let unsafe_read = !route.class.is_write()
        && !matches!(route.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if route.class.is_write() || unsafe_read {
        let is_form = header_str(&parts.headers, "content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let mut token = header_str(&parts.headers, "x-csrf-token").map(str::to_string);
        if is_form {
            let bytes = match to_bytes(body, FORM_LIMIT).await {
                Ok(b) => b,
                Err(_) => {
                    return AppError::Conflict {
                        kind: Kind::TooLarge,
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
                &parts,
                None,
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

    // A confirmation page is decided as the write it confirms, as the page's own form will
    // submit it (its token, this console's env): it opens exactly when that would pass.
    let decided = route.decided_as();
    if !std::ptr::eq(decided, route) {
        csrf = Csrf::Valid;
        claimed_env = Some(env);
    }
    let input = GateInput {
        active_env: env,
        class: decided.class,
        access: decided.access,
        only_env: decided.only_env,
        principal: &principal,
        csrf,
        claimed_env,
        target_env: None,
        target_app: None,
        own_object: false,
    };
    let mut verdict = decide(&input);
    // Own-object routes: let the handler check ownership when the role is missing.
    if let (Err(Denial::Forbidden { .. }), Access::OwnOrRole(_)) = (&verdict, decided.access) {
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
            &parts,
            session_reason,
            &request_id,
            ip,
            &principal,
            admin,
            session,
            denial,
        )
        .await;
    }

    if unsafe_read && matches!(principal, Principal::Operator { .. }) && csrf != Csrf::Valid {
        let denial = Denial::Csrf {
            message: if csrf == Csrf::CrossSite {
                "cross-site request refused".into()
            } else {
                "the form's security token is missing or expired; reload the page and try again"
                    .into()
            },
        };
        return deny(
            &state,
            route,
            &parts,
            session_reason,
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
        flash: cookie(&parts.headers, "raxx_flash")
            .and_then(|f| crate::kernel::views::decode_flash(&f)),
    };
    parts.extensions.insert(ctx.clone());
    let had_flash = ctx.flash.is_some();
    let raw_path = parts.uri.path().to_string();
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    if had_flash {
        resp.headers_mut().append(
            header::SET_COOKIE,
            crate::kernel::views::clear_flash_cookie(),
        );
    }
    if route.surface() == Surface::Page
        && let Some(info) = resp.extensions().get::<ErrorInfo>().cloned()
    {
        return crate::kernel::views::error_page(&state, Some(&ctx), info);
    }
    if route.path == "/ofrep/v1/evaluate/flags/{key}" && route.method == axum::http::Method::POST {
        return ofrep_rejection(resp, &raw_path).await;
    }
    if route.surface() == Surface::Json {
        return json_rejection(resp).await;
    }
    resp
}

/// OFREP's definition gives a single evaluation's `400` the `evaluationFailure` body: a key
/// the path cannot be decoded into (not UTF-8) is answered `PARSE_ERROR` with that body
/// (the key as sent, lossily decoded), not with the console's envelope.
async fn ofrep_rejection(resp: Response, raw_path: &str) -> Response {
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if resp.status() != axum::http::StatusCode::BAD_REQUEST || !plain {
        return json_rejection(resp).await;
    }
    let encoded = raw_path.rsplit('/').next().unwrap_or_default();
    let key = String::from_utf8_lossy(&percent_decode(encoded)).into_owned();
    let body = serde_json::json!({
        "key": key,
        "errorCode": "PARSE_ERROR",
        "errorDetails": "the flag key in the path is not valid UTF-8 once percent-decoded",
    });
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// `%XX` decoded to bytes (anything else kept as is).
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
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
    let code = crate::kernel::error::rejection_code(status.as_u16());
    let body = serde_json::json!({"error": code, "message": String::from_utf8_lossy(&bytes)});
    (status, axum::Json(body)).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The path (and query) of a same-origin `Referer`, when it is safe to come back to.
fn referer_path<'a>(headers: &'a HeaderMap, state: &AppState) -> Option<&'a str> {
    let rest = header_str(headers, "referer")?.strip_prefix(state.cfg.origin.as_str())?;
    raxx_core::deeplink::safe_next(rest)
}

/// The operator a page answer outside the gate (the 404 fallback) is for, when the request
/// carries a live session: so that page shows the navigation they are entitled to.
pub async fn page_ctx(state: &AppState, headers: &HeaderMap) -> Option<Ctx> {
    let token = cookie(headers, &state.cfg.cookie_name())?;
    let signed = state
        .store
        .signed_in(&token, state.policy)
        .await
        .ok()?
        .ok()?;
    let env = state.env();
    let route = crate::kernel::route::manifest()
        .iter()
        .find(|r| r.path == "/" && r.method == axum::http::Method::GET)?;
    Some(Ctx {
        env,
        route_action: route.action,
        route,
        csrf_fact: Csrf::Valid,
        claimed_env: None,
        principal: Principal::Operator {
            session_env: signed.session.selected_env.parse().unwrap_or(env.other()),
            roles: EffectiveRoles::from_grants(env, &signed.grants),
        },
        admin: Some(signed.admin),
        session: Some(signed.session),
        request_id: String::new(),
        ip: None,
        flash: None,
    })
}

/// `Authorization: Bearer …` or `X-API-Key`.
pub fn api_key(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header_str(headers, "x-api-key"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub use raxx_actions::gate::{DENIAL_KEY, denial_row, object_denial_event};

/// A route denial row (no object).
pub fn denial_event(actor: String, route: &Route, denial: &Denial) -> AuditEvent {
    denial_row(
        AuditEvent::new(actor, route.action, Outcome::Denied),
        Some(&route_template(route)),
        denial,
    )
}

#[allow(clippy::too_many_arguments)]
async fn deny(
    state: &AppState,
    route: &'static Route,
    parts: &Parts,
    session_reason: Option<&'static str>,
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
    raxx_actions::metrics::gate_denial(denial.code());
    if route.surface() == Surface::Page {
        let unauthenticated = matches!(denial, Denial::Unauthenticated { .. });
        if unauthenticated && route.method == axum::http::Method::GET {
            return Redirect::to(&crate::kernel::views::login_redirect(
                &parts.uri,
                session_reason,
            ))
            .into_response();
        }
        // A submit without a live session: the page names the way back (sign in, then the
        // page the form was on — its same-origin Referer — never an off-site address).
        let sign_in = unauthenticated.then(|| {
            crate::kernel::views::login_url(referer_path(&parts.headers, state), session_reason)
        });
        // The layout shows the navigation this operator is entitled to (their real roles).
        let ctx = admin.map(|a| Ctx {
            env: state.env(),
            route_action: route.action,
            route,
            csrf_fact: Csrf::Valid,
            claimed_env: None,
            principal: principal.clone(),
            admin: Some(a),
            session,
            request_id: request_id.to_string(),
            ip,
            flash: None,
        });
        let err = AppError::Denied(denial.clone());
        let (status, code) = err.parts();
        return crate::kernel::views::error_page_with(
            state,
            ctx.as_ref(),
            ErrorInfo {
                status,
                code: code.to_string(),
                message: denial.message().to_string(),
            },
            sign_in,
        );
    }
    AppError::Denied(denial).into_response()
}
