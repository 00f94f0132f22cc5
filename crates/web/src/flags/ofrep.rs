//! OFREP (OpenFeature Remote Evaluation Protocol) for apps: the app is the client key's.
//!
//! Statuses: `200` evaluated (a disabled flag too, reason `DISABLED`); `400` with
//! `PARSE_ERROR`/`INVALID_CONTEXT`/`TARGETING_KEY_MISSING`; `404` `FLAG_NOT_FOUND`;
//! `401`/`403` from the gate (no key, wrong kind); `413` for a body over 64 KiB; bulk
//! answers carry an `ETag` and `If-None-Match` gets `304`. Bodies are built by
//! `raxx_core::flags::ofrep`; this module only moves bytes.

use std::borrow::Cow;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use raxx_core::flags::ofrep::{
    BulkEvaluationFailure, EvaluationFailure, evaluate_all, evaluate_flag as evaluate_one,
    parse_request,
};
use raxx_core::flags::{ErrorCode, EvaluationContext, bulk_etag, if_none_match};
use raxx_core::gate::{Denial, Principal};
use serde_json::{Map, Value, json};

use super::CachedFlags;
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::state::AppState;

/// Largest evaluation request body: a context is small; anything bigger is refused.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn evaluate_flag(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(key): Path<String>,
    body: Body,
) -> Response {
    let resp = evaluate_flag_inner(&state, &ctx, key, body).await;
    tag(resp, &ctx)
}

async fn evaluate_flag_inner(state: &AppState, ctx: &Ctx, key: String, body: Body) -> Response {
    let context = match request(ctx, body).await {
        Ok(c) => c,
        Err(Refusal::Response(r)) => return r,
        Err(Refusal::Context(code, details)) => {
            let failure = EvaluationFailure {
                key: Cow::Borrowed(key.as_str()),
                error_code: code,
                error_details: Some(details),
            };
            return (status(code.http_status()), Json(failure)).into_response();
        }
    };
    let flags = match load(state, ctx).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    flags.count(&key);
    let mut result = evaluate_one(&flags.flags, &key, &context);
    result.set_metadata(metadata(&flags, &key));
    (status(result.http_status()), Json(&result)).into_response()
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the app, with an `ETag`.
pub async fn evaluate_flags(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let resp = evaluate_flags_inner(&state, &ctx, &headers, body).await;
    tag(resp, &ctx)
}

async fn evaluate_flags_inner(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let context = match request(ctx, body).await {
        Ok(c) => c,
        Err(Refusal::Response(r)) => return r,
        Err(Refusal::Context(code, details)) => {
            let failure = BulkEvaluationFailure {
                error_code: code,
                error_details: Some(details),
            };
            return (StatusCode::BAD_REQUEST, Json(failure)).into_response();
        }
    };
    let flags = match load(state, ctx).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    // A bulk evaluation (or a 304: the app goes on using the same answers) counts every flag.
    flags.count_all();
    let etag = bulk_etag(&flags.etag, &context);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| if_none_match(v, &etag));
    if matched {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), cache],
        )
            .into_response();
    }
    let mut answer = evaluate_all(&flags.flags, &context);
    for result in &mut answer.flags {
        let key = result.key().to_string();
        result.set_metadata(metadata(&flags, &key));
    }
    (
        StatusCode::OK,
        [(header::ETAG, etag_value), cache],
        Json(&answer),
    )
        .into_response()
}

/// `flagMetadata` of an evaluated flag: its version (moves with every applied change of
/// the flag) and the app. The bulk ETag covers both (versions move with the flag state).
fn metadata(flags: &CachedFlags, key: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("app".into(), Value::from(flags.flags.app.clone()));
    if let Some(stored) = flags.state.flags.get(key) {
        m.insert("version".into(), Value::from(stored.version));
    }
    m
}

/// Tag an answer with the key's app, for the CORS layer (`crate::cors`).
fn tag(mut resp: Response, ctx: &Ctx) -> Response {
    if let Principal::Key { app, .. } = &ctx.principal {
        resp.extensions_mut()
            .insert(crate::flags::cors::OfrepApp(app.clone()));
    }
    resp
}

/// The smallest poll interval the console suggests to OFREP providers (milliseconds). A
/// bulk poll whose flags did not change is a `304` from memory, so this can be short.
pub const MIN_POLL_INTERVAL_MS: u64 = 1000;

/// `GET /ofrep/v1/configuration`: what OFREP's provider configuration endpoint describes
/// (polling supported, its minimum interval in milliseconds, no unsupported flag type),
/// with an `ETag`. Field names are the definition's (`minPollingInterval`,
/// `unsupportedTypes`; `crates/web/tests/ofrep/`).
pub async fn configuration(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Response {
    let resp = configuration_inner(&state, &ctx, &headers).await;
    tag(resp, &ctx)
}

async fn configuration_inner(state: &AppState, ctx: &Ctx, headers: &HeaderMap) -> Response {
    if let Err(r) = load(state, ctx).await {
        return r;
    }
    let body = json!({
        "name": "raxx-console",
        "capabilities": {
            "cacheInvalidation": {
                "polling": {"enabled": true, "minPollingInterval": MIN_POLL_INTERVAL_MS},
            },
            // OFREP names the types a system does not support: the console supports all.
            "flagEvaluation": {"unsupportedTypes": []},
        },
    });
    let text = body.to_string();
    let etag = format!("\"{}\"", &raxx_core::opaque::hash_token(&text)[..16]);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| if_none_match(v, &etag));
    if matched {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (StatusCode::OK, [(header::ETAG, etag_value)], Json(body)).into_response()
}

enum Refusal {
    /// A finished answer (413, or the gate-like refusals).
    Response(Response),
    /// The body is not an evaluation request: answered in the endpoint's failure shape.
    Context(ErrorCode, String),
}

async fn request(ctx: &Ctx, body: Body) -> Result<EvaluationContext, Refusal> {
    if !matches!(ctx.principal, Principal::Key { .. }) {
        return Err(Refusal::Response(
            AppError::Denied(Denial::Unauthenticated {
                message: "OFREP takes an app client key".into(),
            })
            .into_response(),
        ));
    }
    let bytes = to_bytes(body, MAX_REQUEST_BYTES).await.map_err(|_| {
        Refusal::Response(
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({
                    "errorCode": ErrorCode::ParseError,
                    "errorDetails": format!("the request body is larger than {MAX_REQUEST_BYTES} bytes"),
                })),
            )
                .into_response(),
        )
    })?;
    parse_request(&bytes).map_err(|e| Refusal::Context(e.code, e.details))
}

/// The key's app state; the key's app must be an app of this console.
async fn load(state: &AppState, ctx: &Ctx) -> Result<std::sync::Arc<CachedFlags>, Response> {
    let Principal::Key { app, .. } = &ctx.principal else {
        return Err(AppError::Internal("no key".into()).into_response());
    };
    if super::known_app(state, app).is_err() {
        return Err(AppError::Denied(Denial::Forbidden {
            message: format!(
                "this key's app `{app}` is not an app of the {} console",
                state.env()
            ),
            needed: None,
        })
        .into_response());
    }
    state
        .flag_cache
        .get(&state.store, app)
        .await
        .map_err(|e| AppError::from(e).into_response())
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
