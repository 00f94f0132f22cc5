//! The OpenAPI document (`GET /api/v1/openapi.json`), derived from the route manifest so
//! it lists exactly the JSON routes that exist. Each route's manifest entry carries its
//! [`ApiDoc`]: the request body, query and path parameters and the reply, as utoipa derives
//! them from the handler's own types (docs/decisions.md); this module adds what the route's
//! class and access decide: `security`, and every error status it can answer, each with the
//! `{"error","message"}` envelope. The test kit checks every `/api/` answer of the test
//! suite against this document, bodies included.

use axum::Json;
use axum::extract::State;
use raxx_core::Env;
use raxx_core::gate::Access;
use serde_json::{Map, Value, json};
use utoipa::openapi::{RefOr, Schema};

use crate::kernel::AppState;
use crate::kernel::apidoc::ApiDoc;
use crate::kernel::apidoc::Components;
use crate::kernel::apidoc::schema_of;
use crate::kernel::route::Route;
use crate::kernel::route::Surface;
use crate::manifest::route_manifest;

/// The document itself, as `GET /api/v1/openapi.json` answers it.
pub struct Document;

impl utoipa::PartialSchema for Document {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::ObjectBuilder;
        use utoipa::openapi::schema::Type;
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("an OpenAPI 3.1 document"))
            .property("openapi", ObjectBuilder::new().schema_type(Type::String))
            .property("info", ObjectBuilder::new().schema_type(Type::Object))
            .property("paths", ObjectBuilder::new().schema_type(Type::Object))
            .required("openapi")
            .required("info")
            .required("paths")
            .into()
    }
}

impl utoipa::ToSchema for Document {
    fn name() -> std::borrow::Cow<'static, str> {
        "OpenApiDocument".into()
    }
}

/// The JSON routes the document covers (OFREP has its own definition).
pub fn documented_routes() -> impl Iterator<Item = &'static Route> {
    route_manifest()
        .iter()
        .filter(|r| r.surface() == Surface::Json && !r.path.starts_with("/ofrep/"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// An operator write: a session, its CSRF token and the env the operator believes in.
fn operator_write(r: &Route) -> bool {
    r.class.is_write() && !matches!(r.access, Access::Public | Access::Key(_))
}

/// `security` of an operation: who may call it. An operator write needs all three of the
/// session cookie, `X-CSRF-Token` and `X-Console-Env` (one requirement object).
fn security(r: &Route) -> Value {
    let session = if operator_write(r) {
        json!({"session": [], "csrf": [], "consoleEnv": []})
    } else {
        json!({"session": []})
    };
    let keys = [json!({"bearer": []}), json!({"apiKey": []})];
    match r.access {
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
fn responses(r: &Route, doc: &ApiDoc, components: &mut Components) -> Value {
    let mut m = Map::new();
    let reply = to_json(&(doc.reply)(components));
    m.insert(
        doc.ok.to_string(),
        json!({"description": "OK", "content": {"application/json": {"schema": reply}}}),
    );
    if doc.not_modified {
        m.insert(
            "304".into(),
            json!({"description": "not modified (`If-None-Match`)"}),
        );
    }
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
        "405".into(),
        error("the path exists, not with this method (`method_not_allowed`)"),
    );
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
            "415".into(),
            error("the body's type is not accepted (`unsupported_media_type`)"),
        );
        m.insert(
            "422".into(),
            error("the JSON body does not have the operation's fields (`invalid`)"),
        );
    }
    m.insert(
        "421".into(),
        error("the request's Host is not this console's (`misdirected`)"),
    );
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

/// The path's `{name}`s, in order.
fn path_names(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn operation(r: &Route, components: &mut Components) -> Value {
    let doc = r.doc.unwrap_or_else(|| ApiDoc {
        // Undocumented (the tests refuse this): any JSON.
        reply: |_| RefOr::T(Schema::default()),
        ..ApiDoc::reply::<crate::kernel::apidoc::Error>()
    });
    let typed: Vec<Value> = doc
        .path
        .map(|f| f())
        .unwrap_or_default()
        .iter()
        .map(to_json)
        .collect();
    let mut params: Vec<Value> = path_names(r.path)
        .into_iter()
        .map(|name| {
            typed
                .iter()
                .find(|p| p["name"] == name)
                .cloned()
                .unwrap_or_else(|| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        })
        .collect();
    params.extend(
        doc.query
            .map(|f| f())
            .unwrap_or_default()
            .iter()
            .map(to_json),
    );
    let mut op = json!({
        "operationId": format!("{}_{}", r.method.as_str().to_lowercase(), r.path.trim_start_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
        "summary": r.action,
        "x-class": r.class.as_str(),
        "x-permission-staging": r.permission(Env::Staging),
        "x-permission-prod": r.permission(Env::Prod),
        "parameters": params,
        "security": security(r),
        "responses": responses(r, &doc, components),
    });
    if let Some(body) = doc.body {
        let schema = to_json(&(body.schema)(components));
        let mut content = Map::new();
        content.insert("application/json".into(), json!({"schema": schema}));
        for media in body.also {
            content.insert((*media).into(), json!({"schema": {"type": "string"}}));
        }
        op["requestBody"] = json!({"required": body.required, "content": content});
    }
    op
}

/// The document for a console of `env` at `origin`.
pub fn document(env: Env, origin: &str, cookie_name: &str) -> Value {
    let mut paths = Map::new();
    let mut components: Components = Vec::new();
    schema_of::<crate::kernel::apidoc::Error>(&mut components);
    for r in documented_routes() {
        let path = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        path[r.method.as_str().to_lowercase()] = operation(r, &mut components);
    }
    let schemas: Map<String, Value> = components
        .iter()
        .map(|(name, schema)| (name.clone(), to_json(schema)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "raxx-console",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("The {env} console's JSON API. Every error is {{\"error\",\"message\"}}. Times are unix milliseconds. OFREP (`/ofrep/v1/...`) follows the OpenFeature Remote Evaluation Protocol's own definition (docs/flags.md)."),
        },
        "servers": [{"url": origin}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": cookie_name, "description": "a signed-in operator's session; writes also need csrf and consoleEnv"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token", "description": "the session's CSRF token (`csrf_token` of GET /api/v1/me)"},
                "consoleEnv": {"type": "apiKey", "in": "header", "name": "X-Console-Env", "description": "the env you believe you act on (`staging` or `prod`); must be this console's"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "an app API key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an app API key"},
            },
        },
    })
}

/// The OpenAPI document, derived from the route manifest .
pub async fn openapi_json(State(state): State<AppState>) -> Json<Value> {
    Json(document(
        state.env(),
        &state.cfg.origin,
        &state.cfg.cookie_name(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        document(Env::Prod, "https://console.raxx.app", "raxx_console_prod")
    }

    #[test]
    fn every_json_route_is_documented_with_security_and_typed_ids() {
        let doc = doc();
        let mut n = 0;
        for r in documented_routes() {
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
        let t = &doc["paths"]["/api/v1/tokens/{id}"]["get"]["parameters"][0];
        assert_eq!(t["schema"]["pattern"], "^[a-z]+:[0-9]+$");
        assert_eq!(
            doc["paths"]["/api/v1/apps/{app}/flags"]["put"]["security"],
            json!([{"bearer": []}, {"apiKey": []}])
        );
        assert_eq!(
            doc["paths"]["/api/v1/openapi.json"]["get"]["security"],
            json!([])
        );
        assert_eq!(
            doc["paths"]["/api/v1/invites"]["post"]["security"],
            json!([{"session": [], "csrf": [], "consoleEnv": []}])
        );
        let status = &doc["paths"]["/api/v1/promotions"]["get"]["parameters"][0];
        assert_eq!(status["name"], "status");
        let schema = status["schema"].to_string();
        assert!(
            schema.contains(
                r#""enum":["pending","approved","applied","rejected","stale","expired"]"#
            ),
            "status is the enum: {schema}"
        );
        let outcome = doc["paths"]["/api/v1/audit"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "outcome"))
            .map(|p| p["schema"].to_string())
            .unwrap_or_default();
        assert!(
            outcome.contains(r#""enum":["allowed","denied","error"]"#),
            "{outcome}"
        );
    }

    /// Every JSON route names its reply type (and a write with a body its body type): a
    /// route added without `doc = …` fails here.
    #[test]
    fn every_json_route_has_typed_request_and_reply_schemas() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for r in documented_routes() {
            let d = r
                .doc
                .unwrap_or_else(|| panic!("{r:?} has no `doc = ApiDoc::…` in the manifest"));
            let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
            let ok = &op["responses"][d.ok.to_string()]["content"]["application/json"]["schema"];
            assert!(
                ok.as_object().is_some_and(|o| !o.is_empty()),
                "{r:?}: reply schema {ok}"
            );
            // A `$ref` (directly or as an array's items) names a component that exists.
            let target = ok.get("$ref").or_else(|| ok["items"].get("$ref"));
            if let Some(Value::String(t)) = target {
                let name = t.trim_start_matches("#/components/schemas/");
                assert!(schemas[name].is_object(), "{r:?}: {t} is not a component");
            }
            if let Some(body) = op.get("requestBody") {
                let s = &body["content"]["application/json"]["schema"];
                assert!(
                    s.as_object().is_some_and(|o| !o.is_empty()),
                    "{r:?}: body schema {s}"
                );
            }
            for name in path_names(r.path) {
                assert!(
                    op["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")),
                    "{r:?}: path parameter {name} undocumented"
                );
            }
            // Every error the operation lists is the envelope.
            for (status, resp) in op["responses"].as_object().into_iter().flatten() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{r:?} {status}"
                    );
                }
            }
        }
        // Bodies that handlers parse are documented as required where they are.
        assert_eq!(
            doc["paths"]["/api/v1/invites"]["post"]["requestBody"]["required"],
            true
        );
        assert_eq!(
            doc["paths"]["/api/v1/tokens/{id}/rotate"]["post"]["requestBody"]["required"],
            false
        );
        let invite = &schemas["InviteBody"];
        assert_eq!(invite["required"], json!(["email", "group"]));
    }

    /// Every `$ref` of the document names a component it has.
    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, refs: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        refs.push(r.clone());
                    }
                    m.values().for_each(|x| walk(x, refs));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, refs)),
                _ => {}
            }
        }
        let doc = doc();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(refs.len() > 50);
        for r in refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r} is not a component reference"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
    }
}
