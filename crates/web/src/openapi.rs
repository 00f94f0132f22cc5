//! The OpenAPI document (`GET /api/v1/openapi.json`), derived from the route manifest so
//! it lists exactly the JSON routes that exist: per operation its path parameters typed as
//! the handlers parse them, its query parameters (with enums), `security` from the route's
//! access, and every status it can answer, each error with the `{"error","message"}`
//! envelope. The test kit checks every `/api/` answer of the test suite against it.
//!
//! Not yet here (issue 14): typed request and success bodies from the handlers' structs
//! (success bodies are documented as "any JSON" until the handlers have typed structs).

use raxx_core::Env;
use raxx_core::gate::Access;
use serde_json::{Map, Value, json};

use crate::manifest::{Route, Surface, route_manifest};

/// How a path parameter is parsed: these are `i64` in their handlers; every other one is a
/// string.
fn integer_param(path: &str, name: &str) -> bool {
    name == "id"
        && [
            "/api/v1/invites/",
            "/api/v1/operators/",
            "/api/v1/promotions/",
        ]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Query parameters of the JSON reads that take any.
fn query_params(path: &str) -> Vec<Value> {
    let q = |name: &str, schema: Value, about: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": about});
    let s = || json!({"type": "string"});
    match path {
        "/api/v1/audit" => vec![
            q(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
                "rows per page",
            ),
            q("actor", s(), "who acted"),
            q("action", s(), "audit action, e.g. `flag.apply`"),
            q(
                "outcome",
                json!({"type": "string", "enum": ["allowed", "denied", "failed"]}),
                "outcome",
            ),
            q("target", s(), "target object"),
            q("after", s(), "only rows after this time"),
            q("before", s(), "cursor: only rows before this id"),
        ],
        "/api/v1/promotions" => vec![q(
            "status",
            json!({"type": "string", "enum": ["pending", "approved", "applied", "rejected", "stale", "expired"]}),
            "only promotions in this state",
        )],
        "/api/v1/apps/{app}/evaluate" => vec![q(
            "promotion",
            json!({"type": "integer", "format": "int64"}),
            "prod: evaluate this pending promotion's proposed state",
        )],
        "/api/v1/customers" => vec![
            q("q", s(), "search text"),
            q(
                "page",
                json!({"type": "integer", "minimum": 0, "default": 0}),
                "page, from 0",
            ),
        ],
        _ => Vec::new(),
    }
}

/// `security` of an operation: who may call it.
fn security(access: Access) -> Value {
    let session = json!({"session": []});
    let keys = [json!({"bearer": []}), json!({"apiKey": []})];
    match access {
        Access::Public => json!([]),
        Access::Key(_) => json!(keys),
        Access::RoleOrKey(..) => json!([session, keys[0], keys[1]]),
        Access::SignedIn | Access::Role(_) | Access::RoleAt(..) | Access::OwnOrRole(_) => {
            json!([session])
        }
    }
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// Every status the operation can answer.
fn responses(r: &Route) -> Value {
    let mut m = Map::new();
    let success = match (r.method.as_str(), r.path) {
        ("POST", "/api/v1/promotions" | "/api/v1/invites" | "/api/v1/passkeys/register/finish") => {
            "201"
        }
        ("POST", p) if p.ends_with("/restore") => "201",
        ("POST", "/api/v1/jobs/{name}/run") => "202",
        _ => "200",
    };
    m.insert(
        success.into(),
        json!({"description": "OK", "content": {"application/json": {"schema": {}}}}),
    );
    m.insert("400".into(), error("invalid input (`invalid`)"));
    if r.access != Access::Public {
        m.insert(
            "401".into(),
            error("not signed in, or no valid key (`unauthenticated`)"),
        );
    }
    m.insert(
        "403".into(),
        error("refused by the gate (`forbidden`, `csrf`, `env_mismatch`)"),
    );
    m.insert("404".into(), error("no such object (`not_found`)"));
    m.insert(
        "408".into(),
        error("the request took over 30 s (`timeout`)"),
    );
    if r.class.is_write() {
        m.insert(
            "409".into(),
            error("conflicts with the current state (e.g. `stale`, `read_only`)"),
        );
        m.insert("413".into(), error("the body is too large (`too_large`)"));
        m.insert(
            "422".into(),
            error("the JSON body does not have the operation's fields (`invalid`)"),
        );
        m.insert(
            "415".into(),
            error("the body's type is not accepted (`unsupported_media_type`)"),
        );
    }
    if r.path.starts_with("/api/v1/promotions") || r.path.contains("/flags") {
        m.insert(
            "502".into(),
            error("prod could not read the staging console's flags (`staging_source`)"),
        );
    }
    if r.path.starts_with("/api/v1/tokens") {
        m.insert(
            "502".into(),
            error("the provider refused a step of the rotation (`provider`)"),
        );
        m.insert(
            "504".into(),
            error("the provider did not answer in time (`provider_timeout`)"),
        );
    }
    m.insert(
        "429".into(),
        error("too many attempts (`too_many_requests`)"),
    );
    m.insert("500".into(), error("the console failed (`internal`)"));
    m.insert(
        "503".into(),
        error(
            "the database did not answer, or is full or read-only (`unavailable`, `storage_full`)",
        ),
    );
    Value::Object(m)
}

fn operation(r: &Route) -> Value {
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if integer_param(r.path, name) {
                json!({"type": "integer", "format": "int64"})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    params.extend(query_params(r.path));
    // A POST read (the playground's evaluate) needs the CSRF token with a session too.
    let operator_write = (r.class.is_write() || r.method == axum::http::Method::POST)
        && !matches!(r.access, Access::Public | Access::Key(_));
    if operator_write {
        params.push(json!({"name": "X-CSRF-Token", "in": "header", "required": false, "schema": {"type": "string"}, "description": "the session's CSRF token (from GET /api/v1/me); required with a session, not with an API key"}));
        params.push(json!({"name": "X-Console-Env", "in": "header", "required": false, "schema": {"type": "string", "enum": ["staging", "prod"]}, "description": "the env you believe you act on; must equal this console's"}));
    }
    let mut op = json!({
        "operationId": format!("{}_{}", r.method.as_str().to_lowercase(), r.path.trim_start_matches('/').replace(['/', '{', '}', '.'], "_")),
        "summary": r.action,
        "x-class": r.class.as_str(),
        "x-permission-staging": r.permission(Env::Staging),
        "x-permission-prod": r.permission(Env::Prod),
        "parameters": params,
        "security": security(r.access),
        "responses": responses(r),
    });
    if matches!(r.method.as_str(), "POST" | "PUT" | "PATCH") {
        op["requestBody"] = json!({
            "required": false,
            "content": {"application/json": {"schema": {}}},
        });
    }
    op
}

/// The document for a console of `env` at `origin`.
pub fn document(env: Env, origin: &str, cookie_name: &str) -> Value {
    let mut paths = Map::new();
    for r in route_manifest()
        .iter()
        .filter(|r| r.surface() == Surface::Json && !r.path.starts_with("/ofrep/"))
    {
        let path = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        path[r.method.as_str().to_lowercase()] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "raxx-console",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("The {env} console's JSON API. Every error is {{\"error\",\"message\"}}. OFREP (`/ofrep/v1/...`) follows the OpenFeature Remote Evaluation Protocol's own definition (docs/flags.md)."),
        },
        "servers": [{"url": origin}],
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                },
            },
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": cookie_name, "description": "a signed-in operator's session; writes also need X-CSRF-Token and X-Console-Env"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "an app API key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an app API key"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_json_route_is_documented_with_security_and_typed_ids() {
        let doc = document(Env::Prod, "https://console.raxx.app", "raxx_console_prod");
        let mut n = 0;
        for r in route_manifest()
            .iter()
            .filter(|r| r.surface() == Surface::Json && !r.path.starts_with("/ofrep/"))
        {
            let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{r:?} undocumented");
            assert!(op["security"].is_array(), "{r:?}");
            assert!(op["responses"]["500"].is_object(), "{r:?}");
            n += 1;
        }
        assert!(n > 20);
        let p = &doc["paths"]["/api/v1/promotions/{id}"]["get"]["parameters"][0];
        assert_eq!(p["schema"]["type"], "integer");
        let s = &doc["paths"]["/api/v1/sessions/{id}"]["delete"]["parameters"][0];
        assert_eq!(s["schema"]["type"], "string");
        assert_eq!(
            doc["paths"]["/api/v1/apps/{app}/flags"]["put"]["security"],
            json!([{"bearer": []}, {"apiKey": []}])
        );
        assert_eq!(
            doc["paths"]["/api/v1/openapi.json"]["get"]["security"],
            json!([])
        );
        let status = &doc["paths"]["/api/v1/promotions"]["get"]["parameters"][0];
        assert_eq!(status["schema"]["enum"][0], "pending");
    }
}
