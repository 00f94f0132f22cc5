//! A hook for contract tests: when an observer is set (the test kit sets one), every answer
//! on `/api/` and `/ofrep/` is shown to it with its body, so the tests can check each one
//! against the published schemas (the served OpenAPI document, OFREP's definition). Unset
//! (production), the layer is one atomic load per request.

use std::sync::OnceLock;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

/// One answer as the client receives it.
pub struct Seen<'a> {
    pub method: &'a Method,
    /// The manifest path that answered (`None`: no route did).
    pub route: Option<&'static str>,
    pub path: &'a str,
    /// The `Host` the request named (tells apart consoles sharing a process).
    pub host: &'a str,
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

type Observer = Box<dyn Fn(&Seen<'_>) + Send + Sync>;

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Set the process's observer; the first one set stays. Returns whether this one was set.
pub fn set_observer(f: impl Fn(&Seen<'_>) + Send + Sync + 'static) -> bool {
    OBSERVER.set(Box::new(f)).is_ok()
}

/// The manifest path a request matched, carried in the answer's extensions (set by the
/// router's innermost layer).
#[derive(Clone, Copy, Debug)]
pub struct MatchedRoute(pub &'static str);

/// Largest body shown to the observer (bigger ones are shown empty).
const MAX_OBSERVED: usize = 4 * 1024 * 1024;

pub(crate) async fn observe(req: Request, next: Next) -> Response {
    let Some(observer) = OBSERVER.get() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    if !(path.starts_with("/api/") || path.starts_with("/ofrep/")) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let resp = next.run(req).await;
    let (parts, body) = resp.into_parts();
    let bytes = to_bytes(body, MAX_OBSERVED).await.unwrap_or_default();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    observer(&Seen {
        method: &method,
        route: parts.extensions.get::<MatchedRoute>().map(|r| r.0),
        path: &path,
        host: &host,
        status: parts.status.as_u16(),
        content_type,
        body: &bytes,
    });
    Response::from_parts(parts, Body::from(bytes))
}
