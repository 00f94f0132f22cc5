//! Contract checks on every answer a test console gives: each OFREP response against the
//! OFREP definition's schemas (`crates/web/tests/ofrep/schemas.json`), each `/api/` answer
//! against the served OpenAPI document (its status listed for the operation, its body valid
//! against the schema listed for that status: the operation's reply type for a success,
//! the error envelope for every error). A console that gave a
//! response outside its contract fails the test that started it when it is dropped.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use jsonschema::Validator;
use raxx_web::contract::Seen;
use serde_json::Value;

static OFREP: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../web/tests/ofrep/schemas.json"))
        .expect("the OFREP schemas parse")
});

static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<Validator>>>> =
    LazyLock::new(Default::default);

static VIOLATIONS: LazyLock<Mutex<Vec<(String, String)>>> = LazyLock::new(Default::default);

/// Start checking (once per process; every console of the process is checked).
pub fn install() {
    raxx_web::contract::set_observer(|seen| {
        if let Err(problem) = check(seen) {
            let problem = format!(
                "{} {} -> {}: {problem}",
                seen.method, seen.path, seen.status
            );
            eprintln!("contract violation: {problem}");
            VIOLATIONS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((seen.host.to_string(), problem));
        }
    });
}

/// The violations seen for requests to `host`, removed from the list.
pub fn take_violations(host: &str) -> Vec<String> {
    let mut all = VIOLATIONS.lock().unwrap_or_else(|p| p.into_inner());
    let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|(h, _)| h == host);
    *all = rest;
    mine.into_iter().map(|(_, p)| p).collect()
}

/// Whether one answer keeps its contract.
pub fn check(seen: &Seen<'_>) -> Result<(), String> {
    if seen.path.starts_with("/ofrep/") {
        return check_ofrep(seen);
    }
    if seen.path.starts_with("/api/") {
        return check_api(seen);
    }
    Ok(())
}

/// The OpenAPI document as served (the env, origin and cookie name only change text).
static OPENAPI: LazyLock<Value> = LazyLock::new(|| {
    let mut doc = raxx_web::openapi::document(raxx_core::Env::Staging, "http://test", "c");
    // Schemas under `$defs` for [`validate`], beside the document's own `components`.
    doc["$defs"] = doc["components"]["schemas"].clone();
    doc
});

fn check_api(seen: &Seen<'_>) -> Result<(), String> {
    let Some(route) = seen.route else {
        // No route answered: it must still be the error envelope.
        return envelope(seen);
    };
    // HEAD is answered by the GET handler (without a body): it is the GET operation.
    let method = match seen.method.as_str() {
        "HEAD" => "get".to_string(),
        m => m.to_ascii_lowercase(),
    };
    let op = &OPENAPI["paths"][route][method.as_str()];
    if !op.is_object() {
        return Err(format!(
            "`{} {route}` is not in the OpenAPI document",
            seen.method
        ));
    }
    let status = seen.status.to_string();
    let listed = &op["responses"][&status];
    if !listed.is_object() {
        return Err(format!(
            "the OpenAPI document lists no {status} for `{} {route}`",
            seen.method
        ));
    }
    if seen.status >= 400 {
        return envelope(seen);
    }
    let schema = &listed["content"]["application/json"]["schema"];
    if schema.is_object() && !seen.body.is_empty() {
        let is_json = seen
            .content_type
            .is_some_and(|c| c.starts_with("application/json"));
        if !is_json {
            return Err(format!(
                "a {status} with a JSON schema answered as {:?}",
                seen.content_type
            ));
        }
        let body: Value =
            serde_json::from_slice(seen.body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let id = format!("openapi {method} {route} {status}");
        validate_schema(&id, schema, &body)?;
    }
    Ok(())
}

/// Validate `instance` against one schema of the OpenAPI document (its `$ref`s resolve in
/// the document's `components`); compiled once per `id`.
fn validate_schema(id: &str, schema: &Value, instance: &Value) -> Result<(), String> {
    let validator = {
        let mut cache = VALIDATORS.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(id) {
            Some(v) => v.clone(),
            None => {
                let root = serde_json::json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "components": {"schemas": OPENAPI["components"]["schemas"]},
                    "allOf": [schema],
                });
                let v = Arc::new(
                    jsonschema::draft202012::new(&root)
                        .map_err(|e| format!("the schema of {id} does not compile: {e}"))?,
                );
                cache.insert(id.to_string(), v.clone());
                v
            }
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        let mut text = instance.to_string();
        if text.len() > 2000 {
            text.truncate(2000);
        }
        Err(format!(
            "the body does not match the documented schema: {}; body {text}",
            errors.join("; ")
        ))
    }
}

/// Errors are `{"error","message"}` JSON, whatever produced them.
fn envelope(seen: &Seen<'_>) -> Result<(), String> {
    if seen.status < 400 {
        return Ok(());
    }
    let is_json = seen
        .content_type
        .is_some_and(|c| c.starts_with("application/json"));
    if !is_json {
        return Err(format!(
            "an error answered as {:?}, not the JSON envelope",
            seen.content_type
        ));
    }
    let body: Value = serde_json::from_slice(seen.body)
        .map_err(|e| format!("the error body is not JSON: {e}"))?;
    validate("openapi", &OPENAPI, "Error", &body)
}

fn check_ofrep(seen: &Seen<'_>) -> Result<(), String> {
    let Some(route) = seen.route else {
        return Ok(()); // no such OFREP path: the console's 404, not an OFREP operation
    };
    if seen.method == "OPTIONS" {
        return Ok(()); // CORS preflight (see crate::cors), not an OFREP operation
    }
    // HEAD is answered by the GET handler: it is the GET operation.
    let method = if seen.method == "HEAD" {
        "GET"
    } else {
        seen.method.as_str()
    };
    let op = format!("{method} {route}");
    let statuses = OFREP["statuses"]
        .get(&op)
        .ok_or_else(|| format!("`{op}` is not an operation of the OFREP definition"))?;
    let status = seen.status.to_string();
    let schema = statuses
        .get(&status)
        .or_else(|| OFREP["extensions"].get(&status))
        .ok_or_else(|| format!("OFREP does not list status {status} for `{op}`"))?;
    let Some(name) = schema.as_str() else {
        return Ok(()); // a status without a body schema
    };
    let body: Value = serde_json::from_slice(seen.body)
        .map_err(|e| format!("the body is not JSON ({e}) but OFREP gives it the schema {name}"))?;
    validate("ofrep", &OFREP, name, &body)
}

/// Validate `instance` against `$defs/name` of `doc`; compiled once per (doc, name).
pub fn validate(doc_id: &str, doc: &Value, name: &str, instance: &Value) -> Result<(), String> {
    let validator = {
        let mut cache = VALIDATORS.lock().unwrap_or_else(|p| p.into_inner());
        let id = format!("{doc_id}#{name}");
        match cache.get(&id) {
            Some(v) => v.clone(),
            None => {
                let schema = serde_json::json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "$defs": doc["$defs"],
                    "$ref": format!("#/$defs/{name}"),
                });
                let v = Arc::new(
                    jsonschema::draft202012::new(&schema)
                        .map_err(|e| format!("schema {name} does not compile: {e}"))?,
                );
                cache.insert(id, v.clone());
                v
            }
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "does not match {name}: {}; body {instance}",
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::Method;

    fn seen<'a>(route: &'static str, method: &'a Method, status: u16, body: &'a [u8]) -> Seen<'a> {
        Seen {
            method,
            route: Some(route),
            path: route,
            host: "test",
            status,
            content_type: Some("application/json"),
            body,
        }
    }

    /// A success body is checked against the operation's reply schema, not just parsed.
    #[test]
    fn success_bodies_are_validated_against_the_reply_schema() {
        let get = Method::GET;
        let good = br#"{"id": 1, "email": "a@raxx.test", "display_name": "A", "env": "staging",
            "roles": [], "groups": [], "csrf_token": "t", "session_id": null}"#;
        assert_eq!(check(&seen("/api/v1/me", &get, 200, good)), Ok(()));
        let wrong_type =
            br#"{"id": "1", "email": "a@raxx.test", "display_name": "A", "env": "staging",
            "roles": [], "groups": [], "csrf_token": "t", "session_id": null}"#;
        let err = check(&seen("/api/v1/me", &get, 200, wrong_type)).expect_err("id is a string");
        assert!(err.contains("does not match"), "{err}");
        let missing = br#"{"id": 1}"#;
        assert!(check(&seen("/api/v1/me", &get, 200, missing)).is_err());
        // Lists: each item is checked.
        let apps = br#"[{"name": "a", "env": "staging", "promote_from": null, "heroku_app": null, "checks": "2"}]"#;
        assert!(check(&seen("/api/v1/apps", &get, 200, apps)).is_err());
        // An undocumented status is refused; an error must be the envelope.
        assert!(check(&seen("/api/v1/me", &get, 418, b"{}")).is_err());
        assert!(check(&seen("/api/v1/me", &get, 404, br#"{"error": "not_found"}"#)).is_err());
        assert_eq!(
            check(&seen(
                "/api/v1/me",
                &get,
                404,
                br#"{"error": "not_found", "message": "m"}"#
            )),
            Ok(())
        );
    }
}
