//! The router, built from the manifest only, and the process around it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::AppError;
use crate::gate;
use crate::manifest::route_manifest;
use crate::state::AppState;

/// Largest request body anywhere (a flags file is the largest thing we accept).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn build_router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for route in route_manifest() {
        let filter = MethodFilter::try_from(route.method.clone())
            .unwrap_or_else(|_| panic!("manifest route {route:?} has an unroutable method"));
        let st = state.clone();
        let guarded = (route.make)(filter).route_layer(middleware::from_fn(
            move |req: Request, next: Next| gate::run(st.clone(), route, req, next),
        ));
        router = router.route(route.path, guarded);
    }
    router
        .layer(middleware::from_fn(track))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), host_binding))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    let msg = format!("there is no page at {}", req.uri().path());
    if req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/ofrep/") {
        return AppError::NotFound(msg).into_response();
    }
    crate::pages::error_page(
        &state,
        None,
        crate::error::ErrorInfo {
            status: StatusCode::NOT_FOUND,
            code: "not_found".into(),
            message: msg,
        },
    )
}

/// Count and time every routed request under its manifest path.
async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    crate::metrics::observe_request(
        &method,
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// A request for any host but public_url's gets 421 (health and metrics excepted).
async fn host_binding(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase)
        .or_else(|| {
            req.uri()
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase())
        });
    let want = state.cfg.host_with_port.to_ascii_lowercase();
    let ok = host.as_deref().is_some_and(|h| {
        h == want
            || (!state.cfg.host_with_port.contains(':')
                && h.strip_suffix(if state.cfg.https { ":443" } else { ":80" }) == Some(&want))
    });
    if !ok {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            axum::Json(serde_json::json!({
                "error": "misdirected",
                "message": format!("this console answers for {} only", state.cfg.origin),
            })),
        )
            .into_response();
    }
    next.run(req).await
}

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if state.cfg.https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// A client must send its request headers within this time (slow-header clients are cut off).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests before closing what remains.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Serve until `shutdown` resolves; in-flight requests finish first (up to
/// [`SHUTDOWN_GRACE`]). Our own accept loop rather than `axum::serve`, because the latter
/// gives hyper no timer, so a client trickling its headers would hold a connection forever.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    // Keeps the key and flag caches' change signal live while serving (stops on return).
    let _changes = state.store.watch_changes();
    // Writes the keys' "last used" in batches (keycache.rs); stops on return.
    let usage = crate::keycache::UsageFlusher::start(state.key_cache.clone(), state.store.clone());
    let app = build_router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
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
    Ok(())
}
