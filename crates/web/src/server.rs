//! The router, built from the manifest only, and the process around it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::kernel::error::AppError;
use crate::kernel::state::AppState;
use crate::manifest::route_manifest;

pub use crate::kernel::extract::BODY_LIMIT;

pub fn build_router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for route in route_manifest() {
        let filter = MethodFilter::try_from(route.method.clone())
            .unwrap_or_else(|_| panic!("manifest route {route:?} has an unroutable method"));
        let st = state.clone();
        let guarded = (route.make)(filter).route_layer(middleware::from_fn(
            move |req: Request, next: Next| crate::kernel::gate::run(st.clone(), route, req, next),
        ));
        router = router.route(route.path, guarded);
    }
    // Outermost last: security headers wrap everything (413, 408, 421, 404 and 405 too);
    // every answer is counted under a bounded route label.
    router
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(middleware::from_fn(route_label))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), host_binding))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::flags::cors::layer,
        ))
        .layer(middleware::from_fn(track))
        .layer(middleware::from_fn(error_envelope))
        .layer(middleware::from_fn(crate::contract::observe))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// The `route` metrics label of an answer, carried out to [`track`] in its extensions.
#[derive(Clone, Copy, Debug)]
struct RouteLabel(&'static str);

/// Manifest path → the manifest's own `&'static str` (the metrics label), built once.
static ROUTE_PATHS: std::sync::LazyLock<std::collections::HashMap<&'static str, &'static str>> =
    std::sync::LazyLock::new(|| route_manifest().iter().map(|r| (r.path, r.path)).collect());

/// Label routed answers with their manifest path (a 405 with the fixed label).
async fn route_label(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .and_then(|p| ROUTE_PATHS.get(p.as_str()).copied());
    let mut resp = next.run(req).await;
    let label = match path {
        _ if resp.status() == StatusCode::METHOD_NOT_ALLOWED => {
            raxx_actions::metrics::METHOD_NOT_ALLOWED
        }
        Some(p) => {
            resp.extensions_mut()
                .insert(crate::contract::MatchedRoute(p));
            p
        }
        None => raxx_actions::metrics::UNMATCHED,
    };
    resp.extensions_mut().insert(RouteLabel(label));
    resp
}

async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    let msg = format!("there is no page at {}", req.uri().path());
    let mut resp =
        if req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/ofrep/") {
            AppError::NotFound(msg).into_response()
        } else {
            // Signed in: the layout carries the navigation this operator may use.
            let ctx = crate::kernel::gate::page_ctx(&state, req.headers()).await;
            crate::kernel::views::error_page(
                &state,
                ctx.as_ref(),
                crate::kernel::error::ErrorInfo {
                    status: StatusCode::NOT_FOUND,
                    code: "not_found".into(),
                    message: msg,
                },
            )
        };
    resp.extensions_mut()
        .insert(RouteLabel(raxx_actions::metrics::UNMATCHED));
    resp
}

/// Count and time every request: routed ones under their manifest path, the rest under
/// the fixed labels (unmatched, method_not_allowed, misdirected).
async fn track(req: Request, next: Next) -> Response {
    let method = raxx_actions::metrics::method_label(req.method().as_str());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let route = match resp.extensions().get::<RouteLabel>() {
        Some(l) => l.0,
        None if resp.status() == StatusCode::MISDIRECTED_REQUEST => {
            raxx_actions::metrics::MISDIRECTED
        }
        None => raxx_actions::metrics::UNMATCHED,
    };
    raxx_actions::metrics::observe_request(
        method,
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// Error answers that no handler wrote (405 from the router, 408 from the timeout, 413
/// from the body limit, an extractor's plain-text rejection) get the JSON envelope
/// `{"error","message"}` every other error has. Health and metrics answers stay as they are.
async fn error_envelope(req: Request, next: Next) -> Response {
    let plain_path = matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics");
    let head = req.method() == axum::http::Method::HEAD;
    let resp = next.run(req).await;
    let status = resp.status();
    if plain_path || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let plain = match resp.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    };
    if !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let (code, default) = match status.as_u16() {
        400 => ("invalid", "the request is not valid"),
        404 => ("not_found", "there is nothing here"),
        405 => (
            "method_not_allowed",
            "this path does not answer this method",
        ),
        408 => ("timeout", "the request took too long"),
        413 => ("too_large", "the request body is too large"),
        415 => (
            "unsupported_media_type",
            "the request body's type is not accepted",
        ),
        429 => ("too_many_requests", "too many requests; try again later"),
        503 => ("unavailable", "the console cannot answer right now"),
        _ if status.is_server_error() => ("internal", "the console failed to answer"),
        _ => ("invalid", "the request was refused"),
    };
    let message = if text.is_empty() {
        default.to_string()
    } else {
        text
    };
    let json = serde_json::json!({"error": code, "message": message}).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = if head {
        axum::body::Body::empty()
    } else {
        axum::body::Body::from(json)
    };
    Response::from_parts(parts, body)
}

/// A request for any host but public_url's gets 421 (health and metrics excepted).
async fn host_binding(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    // Compared without lowercasing copies: hosts are ASCII, compared case-insensitively.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let want = state.cfg.host_with_port.as_str();
    let ok = host.is_some_and(|h| {
        h.eq_ignore_ascii_case(want)
            || (!want.contains(':')
                && h.strip_suffix(if state.cfg.https { ":443" } else { ":80" })
                    .is_some_and(|h| h.eq_ignore_ascii_case(want)))
    });
    if !ok {
        let message = format!("this console answers for {} only", state.cfg.origin);
        // A browser asking for a page gets a page (with a link to the right address); API
        // clients keep the JSON envelope.
        if wants_html(req.headers()) && !path.starts_with("/api/") && !path.starts_with("/ofrep/") {
            return crate::kernel::views::error_page(
                &state,
                None,
                crate::kernel::error::ErrorInfo {
                    status: StatusCode::MISDIRECTED_REQUEST,
                    code: "misdirected".into(),
                    message,
                },
            );
        }
        return (
            StatusCode::MISDIRECTED_REQUEST,
            axum::Json(serde_json::json!({
                "error": "misdirected",
                "message": message,
            })),
        )
            .into_response();
    }
    next.run(req).await
}

/// Does the client prefer HTML (a browser's `Accept: text/html,…`)?
fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/html")))
}

/// Every powerful browser feature off; WebAuthn (`publickey-credentials-get/create`) on
/// for this origin only, since sign-in uses passkeys.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), hid=(), magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-create=(self), publickey-credentials-get=(self), screen-wake-lock=(), serial=(), usb=(), xr-spatial-tracking=()";

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Names and values are checked at compile time (`const`), not on every answer.
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // Room for all of them at once (one growth of the map at most).
    h.reserve(9);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        const {
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
            )
        },
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        const { HeaderValue::from_static("nosniff") },
    );
    h.insert(
        header::REFERRER_POLICY,
        const { HeaderValue::from_static("same-origin") },
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        const { HeaderValue::from_static("DENY") },
    );
    // On every answer (so on every HTML page): no powerful features, and no window
    // opened by or opening this console keeps a handle on it.
    h.insert(
        const { HeaderName::from_static("permissions-policy") },
        const { HeaderValue::from_static(PERMISSIONS_POLICY) },
    );
    h.insert(
        const { HeaderName::from_static("cross-origin-opener-policy") },
        const { HeaderValue::from_static("same-origin") },
    );
    if state.cfg.https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            const { HeaderValue::from_static("max-age=31536000; includeSubDomains") },
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            const { HeaderValue::from_static("no-store") },
        );
    }
    resp
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A client must send its request headers within this time (slow-header clients are cut
/// off); the default of [`ServeOptions::header_read_timeout`].
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests before closing what remains.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How a listener is served: what the connection layer enforces below the router.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// A client must send its request headers within this time.
    pub header_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// [`serve_with`] the default [`ServeOptions`].
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(state, listener, shutdown, ServeOptions::default()).await
}

/// Serve until `shutdown` resolves; in-flight requests finish first (up to
/// [`SHUTDOWN_GRACE`]). Our own accept loop rather than `axum::serve`, because the latter
/// gives hyper no timer, so a client trickling its headers would hold a connection forever.
pub async fn serve_with(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    // Keeps the key and flag caches' change signal live while serving (stops on return).
    let _changes = state.store.watch_changes();
    // Histogram samples wait in the exporter until drained; drain them while serving.
    let upkeep = tokio::spawn(async {
        let mut every = tokio::time::interval(raxx_actions::metrics::UPKEEP_EVERY);
        loop {
            every.tick().await;
            raxx_actions::metrics::upkeep();
        }
    });
    let _upkeep = AbortOnDrop(upkeep);
    // Writes the keys' "last used" in batches (keycache.rs); stops on return.
    let usage =
        raxx_actions::keycache::UsageFlusher::start(state.key_cache.clone(), state.store.clone());
    // Adds the flags' OFREP evaluation counts to the database (flags/usage.rs).
    let flag_usage =
        crate::flags::usage::UsageFlusher::start(state.flag_cache.clone(), state.store.clone());
    let app = build_router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let svc = app
            .clone()
            .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo::<SocketAddr>(remote));
                req
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace ran out; closing the remaining connections");
    }
    usage.finish().await;
    flag_usage.finish().await;
    Ok(())
}
