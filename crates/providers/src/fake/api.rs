//! The fake's HTTP side: routes, the checks every request passes, failure injection,
//! and the endpoints themselves.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{FailureMode, FakeAuthorization, RecordedRequest, Shared, State, Step};
use crate::secret::Secret;

type Fake = Arc<Shared>;
/// A JSON answer: success or a Heroku-shaped error.
type Answer = (StatusCode, Value);

/// The scopes Heroku's OAuth documentation lists.
const SCOPES: [&str; 6] = [
    "global",
    "identity",
    "read",
    "write",
    "read-protected",
    "write-protected",
];
const USER_ID: &str = "5f2a6c3e-0000-4000-8000-000000000001";

pub(super) fn router(fake: Fake) -> Router {
    Router::new()
        .route(
            "/oauth/authorizations",
            post(create_authorization).get(list_authorizations),
        )
        .route(
            "/oauth/authorizations/{id}",
            get(authorization_info).delete(delete_authorization),
        )
        .route(
            "/apps/{app}/config-vars",
            get(config_vars_info).patch(update_config_vars),
        )
        .fallback(unknown_endpoint)
        .with_state(fake)
}

pub(super) fn new_authorization(
    scope: Vec<String>,
    description: Option<String>,
    expires_in: Option<u64>,
) -> FakeAuthorization {
    FakeAuthorization {
        id: uuid::Uuid::new_v4().to_string(),
        description,
        scope,
        token: Secret::new(format!("HRKU-{}", uuid::Uuid::new_v4().simple())),
        access_token_id: uuid::Uuid::new_v4().to_string(),
        expires_in,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

async fn create_authorization(
    AxumState(fake): AxumState<Fake>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Incoming::new(Method::POST, uri, Some(Step::Create), headers, Some(body));
    handle(&fake, request, authorization_params, |state, params| {
        let authorization = new_authorization(params.scope, params.description, params.expires_in);
        let answer = authorization_json(&authorization);
        state
            .authorizations
            .insert(authorization.id.clone(), authorization);
        Ok((StatusCode::CREATED, answer))
    })
    .await
}

async fn list_authorizations(
    AxumState(fake): AxumState<Fake>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = Incoming::new(Method::GET, uri, None, headers, None);
    handle(&fake, request, no_params, |state, ()| {
        let all = state
            .authorizations
            .values()
            .map(authorization_json)
            .collect();
        Ok((StatusCode::OK, Value::Array(all)))
    })
    .await
}

async fn authorization_info(
    AxumState(fake): AxumState<Fake>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = Incoming::new(Method::GET, uri, None, headers, None);
    handle(&fake, request, no_params, |state, ()| {
        let authorization = state.authorizations.get(&id).ok_or_else(no_authorization)?;
        Ok((StatusCode::OK, authorization_json(authorization)))
    })
    .await
}

async fn delete_authorization(
    AxumState(fake): AxumState<Fake>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = Incoming::new(Method::DELETE, uri, Some(Step::Revoke), headers, None);
    handle(&fake, request, no_params, |state, ()| {
        let authorization = state
            .authorizations
            .remove(&id)
            .ok_or_else(no_authorization)?;
        Ok((StatusCode::OK, authorization_json(&authorization)))
    })
    .await
}

async fn config_vars_info(
    AxumState(fake): AxumState<Fake>,
    Path(app): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = Incoming::new(Method::GET, uri, None, headers, None);
    handle(&fake, request, no_params, |state, ()| {
        let vars = state.apps.get(&app).ok_or_else(no_app)?;
        Ok((StatusCode::OK, config_vars_json(vars)))
    })
    .await
}

async fn update_config_vars(
    AxumState(fake): AxumState<Fake>,
    Path(app): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Incoming::new(Method::PATCH, uri, Some(Step::Publish), headers, Some(body));
    handle(&fake, request, config_var_params, |state, changes| {
        let vars = state.apps.get_mut(&app).ok_or_else(no_app)?;
        for (var, value) in changes {
            match value {
                Value::String(value) => {
                    vars.insert(var, value);
                }
                _ => {
                    vars.remove(&var);
                }
            }
        }
        Ok((StatusCode::OK, config_vars_json(vars)))
    })
    .await
}

async fn unknown_endpoint(
    AxumState(fake): AxumState<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = Incoming::new(method, uri, None, headers, None);
    handle(&fake, request, no_params, |_, ()| {
        Err(heroku_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested API endpoint was not found.",
        ))
    })
    .await
}

/// One request as the checks see it.
struct Incoming {
    method: Method,
    path: String,
    step: Option<Step>,
    headers: HeaderMap,
    body: Option<Bytes>,
}

impl Incoming {
    fn new(
        method: Method,
        uri: Uri,
        step: Option<Step>,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Self {
        Self {
            method,
            path: uri.path().to_owned(),
            step,
            headers,
            body,
        }
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the fake does with a request once it passed the checks.
enum Reply {
    Json(Answer),
    Garbage(StatusCode),
    Hang,
}

/// The path every request takes: Accept and auth checks, body parsing and its shape
/// (`params`), failure injection, the endpoint's change (`apply`, run under the state
/// lock), the log.
async fn handle<P>(
    fake: &Shared,
    request: Incoming,
    params: impl FnOnce(Option<Value>) -> Result<P, Answer>,
    apply: impl FnOnce(&mut State, P) -> Result<Answer, Answer>,
) -> Response {
    let reply = {
        let mut state = fake.lock();
        let (reply, logged_body) = decide(&mut state, &request, params, apply);
        let status = match &reply {
            Reply::Json((status, _)) => *status,
            Reply::Garbage(status) => *status,
            Reply::Hang => StatusCode::GATEWAY_TIMEOUT,
        };
        state.log.push(RecordedRequest {
            method: request.method.to_string(),
            path: request.path.clone(),
            step: request.step,
            accept: request.header(header::ACCEPT).map(str::to_owned),
            status: status.as_u16(),
            body: logged_body,
        });
        reply
    };
    match reply {
        Reply::Json((status, body)) => (status, Json(body)).into_response(),
        Reply::Garbage(status) => (
            status,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>Application error</h1></body></html>",
        )
            .into_response(),
        Reply::Hang => {
            let mut stopped = fake.stopped.clone();
            tokio::select! {
                _ = tokio::time::sleep(fake.hang) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            heroku_response(heroku_error(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "The fake held this answer until the client gave up.",
            ))
        }
    }
}

/// The reply, and the body as it goes into the log (config var values redacted).
fn decide<P>(
    state: &mut State,
    request: &Incoming,
    params: impl FnOnce(Option<Value>) -> Result<P, Answer>,
    apply: impl FnOnce(&mut State, P) -> Result<Answer, Answer>,
) -> (Reply, Option<Value>) {
    if !request
        .header(header::ACCEPT)
        .is_some_and(accepts_version_3)
    {
        let answer = heroku_error(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.",
        );
        return (Reply::Json(answer), None);
    }
    let bearer = request
        .header(header::AUTHORIZATION)
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if !bearer.is_some_and(|token| state.accepts_bearer(token)) {
        let answer = heroku_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid credentials provided.",
        );
        return (Reply::Json(answer), None);
    }

    let body = match &request.body {
        None => None,
        Some(bytes) => match parse_body(request, bytes) {
            Ok(body) => Some(body),
            Err(answer) => return (Reply::Json(answer), None),
        },
    };
    let logged_body = body.clone().map(|body| match request.step {
        Some(Step::Publish) => redact_values(body),
        _ => body,
    });
    // A request of the wrong shape is refused before any failure is counted.
    let body = match params(body) {
        Ok(params) => params,
        Err(answer) => return (Reply::Json(answer), logged_body),
    };

    let failure = request.step.and_then(|step| state.take_failure(step));
    let reply = match failure {
        None => Reply::Json(either(apply(state, body))),
        Some(FailureMode::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Reply::Json(heroku_error(
                status,
                error_id(status),
                "The fake was told to fail this request.",
            ))
        }
        Some(FailureMode::Timeout) => Reply::Hang,
        Some(FailureMode::TimeoutAfterApplying) => {
            let _ = apply(state, body);
            Reply::Hang
        }
        Some(FailureMode::GarbageBody) => Reply::Garbage(match request.step {
            Some(Step::Create) => StatusCode::CREATED,
            _ => StatusCode::OK,
        }),
        Some(FailureMode::WrongShape) => match apply(state, body) {
            Ok((status, answer)) => Reply::Json((status, wrong_shape(request.step, answer))),
            Err(answer) => Reply::Json(answer),
        },
    };
    (reply, logged_body)
}

fn either(result: Result<Answer, Answer>) -> Answer {
    result.unwrap_or_else(|answer| answer)
}

/// `Accept` names `application/vnd.heroku+json` with `version=3`.
fn accepts_version_3(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or_default();
        media_type.eq_ignore_ascii_case("application/vnd.heroku+json")
            && parts.any(|param| {
                param.split_once('=').is_some_and(|(name, value)| {
                    name.trim().eq_ignore_ascii_case("version")
                        && value.trim().trim_matches('"') == "3"
                })
            })
    })
}

fn parse_body(request: &Incoming, bytes: &[u8]) -> Result<Value, Answer> {
    let json_type = request.header(header::CONTENT_TYPE).is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json_type {
        return Err(heroku_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Request bodies must be JSON, sent with Content-Type: application/json.",
        ));
    }
    serde_json::from_slice(bytes).map_err(|_| {
        heroku_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Invalid JSON in the request body.",
        )
    })
}

/// For endpoints without a body.
fn no_params(_: Option<Value>) -> Result<(), Answer> {
    Ok(())
}

/// The body of `PATCH /apps/{app}/config-vars`: var names to a string, or null to remove.
fn config_var_params(body: Option<Value>) -> Result<Map<String, Value>, Answer> {
    let Some(Value::Object(changes)) = body else {
        return Err(invalid_params(
            "Request body must be a JSON object of config vars.",
        ));
    };
    if changes.keys().any(String::is_empty) {
        return Err(invalid_params("Config var names must not be empty."));
    }
    if !changes.values().all(|v| v.is_string() || v.is_null()) {
        return Err(invalid_params(
            "Config var values must be strings, or null to remove a var.",
        ));
    }
    Ok(changes)
}

/// The parameters of `POST /oauth/authorizations`: `scope` (required), `description`,
/// `expires_in`, `client`.
fn authorization_params(body: Option<Value>) -> Result<AuthorizationParams, Answer> {
    let Some(Value::Object(body)) = body else {
        return Err(invalid_params("Request body must be a JSON object."));
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !["scope", "description", "expires_in", "client"].contains(&k.as_str()))
    {
        return Err(invalid_params(&format!("Unknown parameter: {unknown}.")));
    }
    let scope: Option<Vec<String>> = match body.get("scope") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    let Some(scope) = scope else {
        return Err(invalid_params(
            "scope must be a non-empty array of strings.",
        ));
    };
    if let Some(bad) = scope.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(invalid_params(&format!("Invalid scope: {bad}.")));
    }
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return Err(invalid_params("description must be a string.")),
    };
    let expires_in = match body.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(seconds) if seconds > 0 => Some(seconds),
            _ => {
                return Err(invalid_params(
                    "expires_in must be a positive integer or null.",
                ));
            }
        },
    };
    if !matches!(
        body.get("client"),
        None | Some(Value::Null) | Some(Value::String(_))
    ) {
        return Err(invalid_params("client must be a string."));
    }
    Ok(AuthorizationParams {
        scope,
        description,
        expires_in,
    })
}

#[derive(Debug, PartialEq)]
struct AuthorizationParams {
    scope: Vec<String>,
    description: Option<String>,
    expires_in: Option<u64>,
}

fn authorization_json(a: &FakeAuthorization) -> Value {
    json!({
        "id": a.id,
        "description": a.description,
        "scope": a.scope,
        "created_at": a.created_at,
        "updated_at": a.created_at,
        "access_token": {
            "id": a.access_token_id,
            "token": a.token.expose(),
            "expires_in": a.expires_in,
        },
        "client": null,
        "grant": null,
        "refresh_token": null,
        "session": null,
        "user": { "id": USER_ID, "email": "operator@raxx.test", "full_name": "Fake Heroku user" },
    })
}

fn config_vars_json(vars: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        vars.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// A success answer missing what the step returns.
fn wrong_shape(step: Option<Step>, mut answer: Value) -> Value {
    match step {
        Some(Step::Create) => {
            if let Some(Value::Object(token)) = answer.get_mut("access_token") {
                token.remove("token");
            }
            answer
        }
        _ => json!({ "status": "ok" }),
    }
}

fn redact_values(body: Value) -> Value {
    match body {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if v.is_string() {
                        Value::String("<redacted>".into())
                    } else {
                        v
                    };
                    (k, v)
                })
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

fn heroku_error(status: StatusCode, id: &str, message: &str) -> Answer {
    (status, json!({ "id": id, "message": message }))
}

fn heroku_response(answer: Answer) -> Response {
    (answer.0, Json(answer.1)).into_response()
}

fn invalid_params(message: &str) -> Answer {
    heroku_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_params", message)
}

fn no_app() -> Answer {
    let (status, mut body) = heroku_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "Couldn't find that app.",
    );
    body["resource"] = json!("app");
    (status, body)
}

fn no_authorization() -> Answer {
    let (status, mut body) = heroku_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "Couldn't find that authorization.",
    );
    body["resource"] = json!("authorization");
    (status, body)
}

/// Heroku's error id for a status, from its documented list.
fn error_id(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        402 => "delinquent",
        403 => "forbidden",
        404 => "not_found",
        406 => "not_acceptable",
        409 => "conflict",
        410 => "gone",
        422 => "invalid_params",
        429 => "rate_limit",
        503 => "service_unavailable",
        _ => "internal_server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_must_name_version_3() {
        let cases = [
            ("application/vnd.heroku+json; version=3", true),
            (
                "application/json, application/vnd.heroku+json;version=\"3\"",
                true,
            ),
            (
                "Application/Vnd.Heroku+JSON; charset=utf-8; version=3",
                true,
            ),
            ("application/vnd.heroku+json", false),
            ("application/vnd.heroku+json; version=2", false),
            ("application/json; version=3", false),
            ("*/*", false),
        ];
        for (accept, want) in cases {
            assert_eq!(accepts_version_3(accept), want, "{accept}");
        }
    }

    #[test]
    fn authorization_params_follow_the_documented_shape() {
        let ok = authorization_params(Some(json!({"scope": ["global"], "description": "d"})));
        assert_eq!(
            ok,
            Ok(AuthorizationParams {
                scope: vec!["global".to_owned()],
                description: Some("d".to_owned()),
                expires_in: None,
            })
        );

        let bad = [
            json!({}),
            json!({"scope": []}),
            json!({"scope": "global"}),
            json!({"scope": ["everything"]}),
            json!({"scope": ["read"], "description": 5}),
            json!({"scope": ["read"], "expires_in": -1}),
            json!({"scope": ["read"], "scopes": ["read"]}),
            json!(["global"]),
        ];
        for body in bad {
            let Err((status, answer)) = authorization_params(Some(body.clone())) else {
                panic!("accepted {body}");
            };
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(answer["id"], "invalid_params", "{body}");
        }
    }

    #[test]
    fn logged_config_var_values_are_redacted() {
        let logged = redact_values(json!({"KEY": "HRKU-secret", "GONE": null}));
        assert_eq!(logged, json!({"KEY": "<redacted>", "GONE": null}));
    }
}
