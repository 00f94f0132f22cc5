//! CORS for the OFREP routes only, so browser apps (`@openfeature/ofrep-web-provider`)
//! can evaluate flags from their own origin. Per app: `cors_origins` in `[[apps]]`.
//!
//! - A preflight (`OPTIONS /ofrep/...`) carries no key, so it cannot name an app: it is
//!   answered for an origin that *some* app of this console allows, with the methods and
//!   headers the OFREP providers send, and `Access-Control-Max-Age`.
//! - The request itself carries the key: its answer gets `Access-Control-Allow-Origin`
//!   only when the *key's app* lists the origin (the handler tags the response with
//!   [`OfrepApp`]). A refusal by the gate (no key, unknown key) has no app; it gets the
//!   header when some app allows the origin, so the SDK can read the 401 and say why.
//! - Never `Access-Control-Allow-Credentials`: keys go in headers, never in cookies.
//! - `Access-Control-Expose-Headers: ETag`, so the web provider can poll with `If-None-Match`.
//! - An origin no app allows gets no CORS headers at all (the browser blocks the call) and
//!   is counted in `raxx_ofrep_cors_refused_total`.
//! - No other route ever carries a CORS header.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use raxx_core::config::cors_origin_allowed;
use serde_json::json;

use crate::kernel::state::AppState;

/// The request headers the OFREP providers send (and the ones we accept).
pub const ALLOW_HEADERS: &str = "authorization, x-api-key, content-type, if-none-match";
/// How long a browser may keep a preflight answer, in seconds.
pub const MAX_AGE_SECONDS: u32 = 600;

/// The app whose key an OFREP answer was computed for (set by the OFREP handlers).
#[derive(Clone, Debug)]
pub struct OfrepApp(pub String);

fn is_ofrep(path: &str) -> bool {
    path.starts_with("/ofrep/")
}

/// The method an OFREP path answers (configuration is a GET, evaluation a POST).
fn method_for(path: &str) -> &'static str {
    if path == "/ofrep/v1/configuration" {
        "GET"
    } else {
        "POST"
    }
}

/// This console's apps' `cors_origins` lists: `app` alone, or every app.
fn allowed(state: &AppState, app: Option<&str>, origin: &str) -> bool {
    state
        .cfg
        .config
        .apps
        .iter()
        .filter(|a| a.env == state.env())
        .filter(|a| app.is_none_or(|name| a.name == name))
        .any(|a| cors_origin_allowed(&a.cors_origins, origin))
}

/// The `Access-Control-Allow-Origin` value for an allowed origin: `*` when the allowing
/// list says `*` (and no list names the origin itself), the origin otherwise.
fn allow_origin_value(state: &AppState, app: Option<&str>, origin: &str) -> HeaderValue {
    let named = state
        .cfg
        .config
        .apps
        .iter()
        .filter(|a| a.env == state.env())
        .filter(|a| app.is_none_or(|name| a.name == name))
        .any(|a| a.cors_origins.iter().any(|o| o == origin));
    if named {
        HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("null"))
    } else {
        HeaderValue::from_static("*")
    }
}

fn origin_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `OPTIONS /ofrep/...`: the preflight answer (a manifest route, public: a preflight never
/// carries credentials).
pub async fn preflight(State(state): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let method = method_for(&path);
    let Some(origin) = origin_of(req.headers()) else {
        // Not a CORS preflight: say what the path answers.
        return (
            StatusCode::NO_CONTENT,
            [(header::ALLOW, HeaderValue::from_static(method))],
        )
            .into_response();
    };
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(method);
    if !allowed(&state, None, &origin) || !requested.eq_ignore_ascii_case(method) {
        raxx_actions::metrics::cors_refused("preflight");
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({
                "error": "cors_refused",
                "message": format!("origin {origin} may not call {method} {path}: no app of this console lists it in cors_origins"),
            })),
        )
            .into_response();
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin_value(&state, None, &origin),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(method),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(MAX_AGE_SECONDS),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// The middleware (outside the router): CORS headers on OFREP answers for allowed
/// origins; none anywhere else, whatever an inner layer set.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ofrep = is_ofrep(req.uri().path());
    let origin = origin_of(req.headers());
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = next.run(req).await;
    if !ofrep {
        strip(resp.headers_mut());
        return resp;
    }
    if preflight {
        return resp; // answered by [`preflight`]
    }
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin else {
        return resp;
    };
    if origin == state.cfg.origin {
        return resp; // same origin: no CORS needed
    }
    let app = resp.extensions().get::<OfrepApp>().map(|a| a.0.clone());
    if !allowed(&state, app.as_deref(), &origin) {
        raxx_actions::metrics::cors_refused("request");
        return resp;
    }
    let value = allow_origin_value(&state, app.as_deref(), &origin);
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag"),
    );
    resp
}

fn strip(h: &mut HeaderMap) {
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::ACCESS_CONTROL_MAX_AGE,
    ] {
        h.remove(name);
    }
}
