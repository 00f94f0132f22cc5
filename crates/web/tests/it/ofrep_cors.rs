//! OFREP for browser apps over real HTTP: CORS per app on the OFREP routes only, float
//! flags served as floats, `metadata` (flagMetadata), the configuration endpoint. The test
//! kit checks every OFREP answer against the OFREP definition's schemas. SQLite and
//! PostgreSQL.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::{FileFormat, parse_flags_file};
use raxx_testkit::TestConsole;
use reqwest::Method;
use serde_json::Value;

const A: &str = "raxx-web-staging";
const B: &str = "raxx-admin-staging";
const A_ORIGIN: &str = "https://app.example";
const B_ORIGIN: &str = "https://admin.example";
const EVIL: &str = "https://evil.example";

fn config() -> String {
    format!(
        "[[apps]]\nname = \"{A}\"\nenv = \"staging\"\ncors_origins = [\"{A_ORIGIN}\"]\n\
         [[apps]]\nname = \"{B}\"\nenv = \"staging\"\ncors_origins = [\"{B_ORIGIN}\"]\n"
    )
}

fn flags(app: &str) -> String {
    format!(
        r#"app = "{app}"

[flags.sample-rate]
type = "float"
variants = {{ all = 1, some = 0.25 }}
default = "all"

[flags.limit]
type = "integer"
variants = {{ one = 1 }}
default = "one"
"#
    )
}

async fn console(url: &str) -> (TestConsole, String, String) {
    let c = TestConsole::start(Env::Staging, url, &config()).await;
    for app in [A, B] {
        let parsed = parse_flags_file(&flags(app), FileFormat::Toml).expect("fixture parses");
        c.store()
            .apply_flags(
                &parsed,
                "test",
                AuditEvent::new("test", "flag.apply", Outcome::Allowed),
            )
            .await
            .expect("apply");
    }
    let a = c.app_keys(A).await.client;
    let b = c.app_keys(B).await.client;
    (c, a, b)
}

async fn preflight(c: &TestConsole, path: &str, origin: &str, method: &str) -> reqwest::Response {
    c.client()
        .request(Method::OPTIONS, c.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("send")
}

async fn bulk(c: &TestConsole, key: Option<&str>, origin: &str) -> reqwest::Response {
    let mut r = c
        .client()
        .post(c.url("/ofrep/v1/evaluate/flags"))
        .header("origin", origin)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"context":{"targetingKey":"u1"}}"#);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.expect("send")
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn refused(text: &str, kind: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "raxx_ofrep_cors_refused_total{{kind=\"{kind}\"}} "
            ))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn metrics(c: &TestConsole) -> String {
    c.client()
        .get(c.url("/metrics"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn preflights_are_answered_for_listed_origins_only() {
    raxx_testkit::each_backend!(|url| {
        let (c, _, _) = console(&url).await;
        for path in [
            "/ofrep/v1/evaluate/flags",
            "/ofrep/v1/evaluate/flags/sample-rate",
        ] {
            let r = preflight(&c, path, A_ORIGIN, "POST").await;
            assert_eq!(r.status(), 204, "{path}");
            assert_eq!(header(&r, "access-control-allow-origin"), Some(A_ORIGIN));
            assert_eq!(header(&r, "access-control-allow-methods"), Some("POST"));
            let allowed = header(&r, "access-control-allow-headers").expect("allow-headers");
            for h in [
                "authorization",
                "x-api-key",
                "content-type",
                "if-none-match",
            ] {
                assert!(allowed.contains(h), "{h} not in {allowed}");
            }
            assert_eq!(header(&r, "access-control-max-age"), Some("600"));
            assert_eq!(header(&r, "access-control-allow-credentials"), None);
            assert_eq!(header(&r, "vary"), Some("Origin"));
        }
        // Another app's origin is fine for a preflight (it has no key to name an app).
        let r = preflight(&c, "/ofrep/v1/evaluate/flags", B_ORIGIN, "POST").await;
        assert_eq!(header(&r, "access-control-allow-origin"), Some(B_ORIGIN));
        let r = preflight(&c, "/ofrep/v1/configuration", A_ORIGIN, "GET").await;
        assert_eq!(r.status(), 204);
        assert_eq!(header(&r, "access-control-allow-methods"), Some("GET"));

        let before = refused(&metrics(&c).await, "preflight");
        let r = preflight(&c, "/ofrep/v1/evaluate/flags", EVIL, "POST").await;
        assert_eq!(r.status(), 403);
        assert_eq!(header(&r, "access-control-allow-origin"), None);
        assert_eq!(header(&r, "access-control-allow-methods"), None);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "cors_refused");
        // A listed origin asking for a method OFREP does not use: refused too.
        let r = preflight(&c, "/ofrep/v1/evaluate/flags", A_ORIGIN, "DELETE").await;
        assert_eq!(header(&r, "access-control-allow-origin"), None);
        assert!(refused(&metrics(&c).await, "preflight") >= before + 2);

        // Never on any other route.
        for path in [
            "/api/v1/me",
            "/healthz",
            "/login",
            "/api/v1/apps/raxx-web-staging/flags",
        ] {
            let r = preflight(&c, path, A_ORIGIN, "GET").await;
            assert_eq!(header(&r, "access-control-allow-origin"), None, "{path}");
            let r = c
                .client()
                .get(c.url(path))
                .header("origin", A_ORIGIN)
                .send()
                .await
                .expect("send");
            assert_eq!(header(&r, "access-control-allow-origin"), None, "{path}");
        }
    });
}

#[tokio::test]
async fn answers_carry_cors_only_for_the_key_apps_origins() {
    raxx_testkit::each_backend!(|url| {
        let (c, a_key, _) = console(&url).await;
        let r = bulk(&c, Some(&a_key), A_ORIGIN).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "access-control-allow-origin"), Some(A_ORIGIN));
        assert_eq!(header(&r, "access-control-expose-headers"), Some("ETag"));
        assert_eq!(header(&r, "access-control-allow-credentials"), None);
        assert!(r.headers().get_all("vary").iter().any(|v| v == "Origin"));
        let etag = header(&r, "etag").expect("etag").to_string();

        // A's key from B's origin: B lists it, A does not. No CORS header; counted.
        let before = refused(&metrics(&c).await, "request");
        let r = bulk(&c, Some(&a_key), B_ORIGIN).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "access-control-allow-origin"), None);
        assert!(refused(&metrics(&c).await, "request") > before);

        // No key from a listed origin: the 401 is readable by the page.
        let r = bulk(&c, None, A_ORIGIN).await;
        assert_eq!(r.status(), 401);
        assert_eq!(header(&r, "access-control-allow-origin"), Some(A_ORIGIN));
        let r = bulk(&c, None, EVIL).await;
        assert_eq!(r.status(), 401);
        assert_eq!(header(&r, "access-control-allow-origin"), None);

        // A 304 keeps the headers the web provider needs.
        let r = c
            .client()
            .post(c.url("/ofrep/v1/evaluate/flags"))
            .header("origin", A_ORIGIN)
            .header("if-none-match", &etag)
            .bearer_auth(&a_key)
            .body(r#"{"context":{"targetingKey":"u1"}}"#)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 304);
        assert_eq!(header(&r, "access-control-allow-origin"), Some(A_ORIGIN));
        assert_eq!(header(&r, "access-control-expose-headers"), Some("ETag"));
    });
}

#[tokio::test]
async fn floats_are_floats_and_answers_carry_metadata() {
    raxx_testkit::each_backend!(|url| {
        let (c, a_key, _) = console(&url).await;
        let r = c
            .client()
            .post(c.url("/ofrep/v1/evaluate/flags/sample-rate"))
            .bearer_auth(&a_key)
            .json(&serde_json::json!({"context": {"targetingKey": "u1"}}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        let text = r.text().await.expect("text");
        assert!(text.contains(r#""value":1.0"#), "{text}");
        let body: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(body["metadata"]["app"], A);
        assert!(
            body["metadata"]["version"].as_i64().is_some_and(|v| v >= 1),
            "{body}"
        );

        let text = bulk(&c, Some(&a_key), A_ORIGIN)
            .await
            .text()
            .await
            .expect("text");
        assert!(
            text.contains(r#""key":"sample-rate","value":1.0"#),
            "{text}"
        );
        assert!(text.contains(r#""key":"limit","value":1,"#), "{text}");
    });
}

#[tokio::test]
async fn the_configuration_endpoint_needs_a_client_key_and_revalidates() {
    raxx_testkit::each_backend!(|url| {
        let (c, a_key, _) = console(&url).await;
        let r = c
            .client()
            .get(c.url("/ofrep/v1/configuration"))
            .header("x-api-key", &a_key)
            .header("origin", A_ORIGIN)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "access-control-allow-origin"), Some(A_ORIGIN));
        let etag = header(&r, "etag").expect("etag").to_string();
        let body: Value = r.json().await.expect("json");
        assert_eq!(
            body["capabilities"]["cacheInvalidation"]["polling"]["enabled"],
            true
        );
        // The definition's names: every type is supported, so none is listed unsupported.
        assert_eq!(
            body["capabilities"]["flagEvaluation"]["unsupportedTypes"],
            serde_json::json!([])
        );
        assert_eq!(
            body["capabilities"]["cacheInvalidation"]["polling"]["minPollingInterval"],
            1000
        );
        let r = c
            .client()
            .get(c.url("/ofrep/v1/configuration"))
            .header("x-api-key", &a_key)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 304);
        let r = c
            .client()
            .get(c.url("/ofrep/v1/configuration"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401);
    });
}

/// The check itself can fail: an answer outside the OFREP definition is reported.
#[test]
fn the_ofrep_contract_check_rejects_what_the_definition_does_not_allow() {
    use axum::http::Method as M;
    use raxx_web::contract::Seen;
    let seen = |status: u16, body: &'static str| Seen {
        method: &M::POST,
        route: Some("/ofrep/v1/evaluate/flags/{key}"),
        path: "/ofrep/v1/evaluate/flags/x",
        host: "h",
        status,
        content_type: Some("application/json"),
        body: body.as_bytes(),
    };
    let check = raxx_testkit::contract::check;
    assert!(
        check(&seen(
            200,
            r#"{"key":"x","value":true,"reason":"STATIC","variant":"on"}"#
        ))
        .is_ok()
    );
    assert!(check(&seen(200, r#"{"key":"x","value":1,"reason":"STATIC"}"#)).is_ok());
    assert!(
        check(&seen(200, r#"{"key":"x","reason":"STATIC"}"#)).is_err(),
        "no value"
    );
    assert!(
        check(&seen(
            200,
            r#"{"key":"x","value":true,"metadata":{"a":[1]}}"#
        ))
        .is_err(),
        "metadata values are scalars"
    );
    assert!(check(&seen(404, r#"{"key":"x","errorCode":"FLAG_NOT_FOUND"}"#)).is_ok());
    assert!(check(&seen(404, r#"{"key":"x","errorCode":"GENERAL"}"#)).is_err());
    assert!(check(&seen(400, r#"{"key":"x","errorCode":"TYPE_MISMATCH"}"#)).is_err());
    assert!(check(&seen(418, "{}")).is_err(), "an unlisted status");
}

/// OFREP's definition gives a single evaluation's `400` the `evaluationFailure` body: a flag
/// key that is not UTF-8 once percent-decoded gets it (`PARSE_ERROR`), not the console's
/// `{"error","message"}` envelope. The test kit validates the body against the definition.
#[tokio::test]
async fn a_key_that_is_not_utf8_is_an_ofrep_parse_error() {
    raxx_testkit::each_backend!(|url| {
        let (c, a_key, _) = console(&url).await;
        let r = c
            .client()
            .post(c.url("/ofrep/v1/evaluate/flags/%FF%FE"))
            .bearer_auth(&a_key)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["errorCode"], "PARSE_ERROR", "{body}");
        assert_eq!(body["key"], "\u{fffd}\u{fffd}", "{body}");
        assert!(body["errorDetails"].is_string(), "{body}");
        assert!(body.get("error").is_none(), "{body}");
        // A key that decodes is evaluated as usual (an unknown one is FLAG_NOT_FOUND).
        let r = c
            .client()
            .post(c.url("/ofrep/v1/evaluate/flags/%C3%A9t%C3%A9"))
            .bearer_auth(&a_key)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["errorCode"], "FLAG_NOT_FOUND", "{body}");
        assert_eq!(body["key"], "été", "{body}");
    });
}
