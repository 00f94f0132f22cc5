//! Bad input against a real console (issue 8, docs/reliability.md): garbage bodies to every
//! write route of the manifest, garbage cookies and headers to every read route, oversized
//! bodies. Never a 5xx, never a panic; JSON routes answer a JSON error. Both backends.

use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::KeyKind;
use raxx_testkit::{Operator, TestConsole};
use raxx_web::kernel::route::Surface;
use raxx_web::manifest::route_manifest;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[[apps]]
name = "raxx-api-staging"
env = "staging"
"#;

const PROD_CONFIG: &str = r#"
[[apps]]
name = "raxx-api-prod"
env = "prod"
promote_from = "raxx-api-staging"
"#;

/// Bodies nobody should send: broken JSON, wrong types, huge numbers, deep nesting,
/// NUL and invalid UTF-8, forms with repeated and odd fields.
fn garbage_bodies() -> Vec<Vec<u8>> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let mut v: Vec<Vec<u8>> = [
        "",
        "{",
        "null",
        "[]",
        "\"x\"",
        "123456789012345678901234567890",
        "{\"app\": 1, \"flags\": \"x\", \"reason\": {}, \"email\": [], \"group\": null}",
        "{\"app\": \"raxx-api-prod\", \"flags\": [1, null, {}], \"reason\": \"\"}",
        "{\"email\": \"a@b\", \"group\": \"production-admins\", \"extra\": true}",
        "{\"content_hash\": 5, \"reason\": 1e400}",
        "{\"context\": [], \"x\": \"\\u0000\"}",
        "_csrf=&_target_env=mars&reason=&email=%ZZ&flags=&flags=",
        "a=b&a=c&&&=&%00=%00",
        "app = \"raxx-api-staging\"\n[flags.x]\ntype = \"boolean\"\n",
        "app: [\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(deep.into_bytes());
    v.push(vec![0xff, 0xfe, 0x00, b'{', 0xc3, 0x28]);
    v.push(format!("{{\"reason\": \"{}\"}}", "é".repeat(20_000)).into_bytes());
    v
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "application/toml",
    "application/yaml",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "garbage/x;;=;",
];

/// Path parameter values: plausible, missing, negative, huge, traversal, encoded junk.
const PARAMS: &[&str] = &[
    "999999",
    "-1",
    "0",
    "99999999999999999999999",
    "..%2F..%2Fetc",
    "%00",
    "%FF%FE",
    "a%20b",
    "new-checkout",
];

async fn new_key(console: &TestConsole, app: &str, kind: KeyKind) -> String {
    let mut tx = console.store().begin().await.unwrap();
    let (secret, id) = tx
        .create_app_key(app, kind, kind.as_str(), "test")
        .await
        .unwrap();
    tx.record(
        AuditEvent::new("test", "key.create", Outcome::Allowed).target("key", id.to_string()),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    secret
}

fn fill(path: &str, app: &str, param: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map(|e| start + e + 1)
            .unwrap_or(rest.len());
        out.push_str(if &rest[start..end] == "{app}" {
            app
        } else {
            param
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

struct Setup {
    console: TestConsole,
    op: Operator,
    app: &'static str,
    keys: Vec<String>,
}

async fn setup(env: Env, url: &str) -> Setup {
    let (config, app, group) = match env {
        Env::Staging => (CONFIG, "raxx-api-staging", "staging-admins"),
        Env::Prod => (PROD_CONFIG, "raxx-api-prod", "production-admins"),
    };
    let console = TestConsole::start(env, url, config).await;
    let op = console.operator("fuzz@raxx.test", &[group]).await;
    let mut keys = Vec::new();
    for kind in [KeyKind::Client, KeyKind::Deploy, KeyKind::Read] {
        keys.push(new_key(&console, app, kind).await);
    }
    Setup {
        console,
        op,
        app,
        keys,
    }
}

/// One request; the status and body, asserting the no-5xx and JSON-error rules.
async fn check(
    s: &Setup,
    surface: Surface,
    req: reqwest::RequestBuilder,
    what: &str,
    failures: &mut Vec<String>,
) -> u16 {
    let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = resp.bytes().await.unwrap_or_default();
    let env = s.console.env();
    let text = String::from_utf8_lossy(&body);
    // 502 `staging_source` is the documented answer when the staging source (an upstream,
    // not the request) is missing or unreachable: prod's new-promotion page reads it.
    let upstream = status == 502 && text.contains("staging");
    if status >= 500 && !upstream {
        failures.push(format!("{env} {what}: {status} {text}"));
    } else if status >= 400 && surface == Surface::Json {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.get("error").is_some() || v.get("errorCode").is_some() => {}
            _ => failures.push(format!(
                "{env} {what}: {status} is not a JSON error ({ctype}): {text}"
            )),
        }
    }
    status
}

/// Fail with every distinct problem (deduplicated by route and status), not just the first.
fn assert_none(failures: &[String]) {
    let mut seen = std::collections::BTreeSet::new();
    for f in failures {
        let key: String = f
            .split(" body#")
            .next()
            .unwrap_or(f)
            .chars()
            .take(120)
            .collect();
        seen.insert(key);
    }
    assert!(
        failures.is_empty(),
        "{} bad answers, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every POST/PUT/DELETE route of the manifest, with every garbage body and content type,
/// as a signed-in admin of the env (session + CSRF + env header) and with each app key.
#[tokio::test]
async fn every_write_route_answers_garbage_bodies_with_a_4xx_never_a_5xx() {
    for env in [Env::Staging, Env::Prod] {
        // A database remembers its env: fresh ones per env.
        raxx_testkit::each_backend!(|url| {
            let s = setup(env, &url).await;
            let client = s.console.client();
            let bodies = garbage_bodies();
            let mut failures = Vec::new();
            let mut tried = 0;
            for route in route_manifest() {
                if route.method == Method::GET || route.path == "/logout" {
                    continue;
                }
                for (i, param) in PARAMS.iter().enumerate() {
                    let path = fill(route.path, s.app, param);
                    for (j, body) in bodies.iter().enumerate() {
                        // Every body with the first parameter, a third of them with the rest.
                        if i > 0 && (i + j) % 3 != 0 {
                            continue;
                        }
                        // Every body once; content types and keys rotate through the cases.
                        let ctype = CONTENT_TYPES[(i + j) % CONTENT_TYPES.len()];
                        let mut req = client
                            .request(route.method.clone(), s.console.url(&path))
                            .headers(s.console.write_headers(&s.op))
                            .header("content-type", ctype)
                            .body(body.clone());
                        if route.path.starts_with("/ofrep/") || route.path.contains("{app}") {
                            req = req.bearer_auth(&s.keys[(i + j) % s.keys.len()]);
                        }
                        let what = format!("{} {path} body#{j} {ctype}", route.method);
                        check(&s, route.surface(), req, &what, &mut failures).await;
                        tried += 1;
                    }
                }
            }
            assert_none(&failures);
            assert!(tried > 400, "{tried}");
            // The operator's session survived the barrage (nothing logged it out).
            let me = client
                .get(s.console.url("/api/v1/me"))
                .headers(s.console.read_headers(&s.op))
                .send()
                .await
                .unwrap();
            assert_eq!(me.status(), 200);
        });
    }
}

/// Random JSON values as bodies of every JSON write route (proptest-generated).
#[tokio::test]
async fn random_json_bodies_to_json_write_routes_never_5xx() {
    raxx_testkit::each_backend!(|url| {
        random_json_bodies(&url).await;
    });
}

async fn random_json_bodies(url: &str) {
    let s = setup(Env::Prod, url).await;
    let client = s.console.client();
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,10}".prop_map(Value::String),
        Just(json!("raxx-api-prod")),
        Just(json!("production-admins")),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("app".to_string()),
                    Just("flags".to_string()),
                    Just("reason".to_string()),
                    Just("email".to_string()),
                    Just("group".to_string()),
                    Just("content_hash".to_string()),
                    Just("context".to_string()),
                    ".{0,6}".boxed(),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let routes: Vec<_> = route_manifest()
        .iter()
        .filter(|r| r.method != Method::GET && r.surface() == Surface::Json)
        .collect();
    let mut failures = Vec::new();
    let mut runner = TestRunner::new(PtConfig {
        cases: 40,
        ..PtConfig::default()
    });
    for _ in 0..40 {
        let tree = value.new_tree(&mut runner).expect("value");
        let body = tree.current().to_string();
        for route in &routes {
            let path = fill(route.path, s.app, "1");
            let mut req = client
                .request(route.method.clone(), s.console.url(&path))
                .headers(s.console.write_headers(&s.op))
                .header("content-type", "application/json")
                .body(body.clone());
            if route.path.starts_with("/ofrep/") {
                req = req.bearer_auth(&s.keys[0]);
            }
            let what = format!("{} {path} {body}", route.method);
            check(&s, route.surface(), req, &what, &mut failures).await;
        }
    }
    assert_none(&failures);
}

/// Garbage cookies and headers on every read route (and a few write routes): no 5xx.
#[tokio::test]
async fn garbage_cookies_and_headers_never_5xx() {
    raxx_testkit::each_backend!(|url| {
        let s = setup(Env::Prod, &url).await;
        let client = s.console.client();
        let cookie_name = s.console.state.cfg.cookie_name();
        let long = "a".repeat(6000);
        let cookies: Vec<Vec<u8>> = vec![
            format!("{cookie_name}=").into_bytes(),
            format!("{cookie_name}=garbage").into_bytes(),
            format!("{cookie_name}={long}").into_bytes(),
            format!("{cookie_name}=%00%ff; {cookie_name}=x; {cookie_name}").into_bytes(),
            format!("{}; {cookie_name}=\"quoted\"", s.op.cookie).into_bytes(),
            b";;;==;=;".to_vec(),
            vec![b'a', b'=', 0xff, 0xfe, 0x80],
            format!("{}x", s.op.cookie).into_bytes(),
        ];
        let headers: Vec<(&str, Vec<u8>)> = vec![
            ("x-csrf-token", vec![0xff; 40]),
            ("x-console-env", b"prod\tstaging".to_vec()),
            ("x-console-env", vec![0xc3, 0x28]),
            ("authorization", b"Bearer".to_vec()),
            ("authorization", b"Bearer \xff\xfe".to_vec()),
            ("authorization", b"Basic Zm9vOmJhcg==".to_vec()),
            ("authorization", format!("Bearer {long}").into_bytes()),
            ("x-api-key", b"rxk_\x80\x81".to_vec()),
            ("x-forwarded-for", b"999.1.1.1, ::ffff:zz, \xff".to_vec()),
            ("sec-fetch-site", b"\xffcross".to_vec()),
            ("origin", b"null".to_vec()),
            ("origin", b"http://[::1".to_vec()),
            ("if-none-match", b"W/\"\xff, *, \"".to_vec()),
            ("accept", b"text/html;q=abc, */*;q=-1".to_vec()),
            ("accept-language", vec![0xff; 100]),
            ("user-agent", vec![0x80; 2000]),
            ("content-type", b"application/json; charset=\xff".to_vec()),
            ("content-length", b"0".to_vec()),
        ];
        let mut failures = Vec::new();
        let mut tried = 0;
        for route in route_manifest() {
            let path = fill(route.path, s.app, "1");
            let method = route.method.clone();
            let body = if method == Method::GET { "" } else { "{}" };
            for c in &cookies {
                let req = client
                    .request(method.clone(), s.console.url(&path))
                    .header("cookie", HeaderValue::from_bytes(c).unwrap())
                    .header("x-console-env", "prod")
                    .body(body);
                check(
                    &s,
                    route.surface(),
                    req,
                    &format!("{method} {path} cookie {c:?}"),
                    &mut failures,
                )
                .await;
                tried += 1;
            }
            for (name, value) in &headers {
                let mut req = client
                    .request(method.clone(), s.console.url(&path))
                    .headers(s.console.read_headers(&s.op))
                    .body(body);
                req = req.header(
                    HeaderName::from_static(name),
                    HeaderValue::from_bytes(value).unwrap(),
                );
                check(
                    &s,
                    route.surface(),
                    req,
                    &format!("{method} {path} {name}: {value:?}"),
                    &mut failures,
                )
                .await;
                tried += 1;
            }
        }
        // Query strings too: every GET route with junk parameters.
        for route in route_manifest().iter().filter(|r| r.method == Method::GET) {
            let path = fill(route.path, s.app, "1");
            for q in [
                "?before=-1&limit=99999999999999999999",
                "?app=%00&status=%FF&actor=&from=yesterday&to=1e99",
                "?before=abc&format=xml&page=-5",
            ] {
                let req = client
                    .get(s.console.url(&format!("{path}{q}")))
                    .headers(s.console.read_headers(&s.op));
                check(
                    &s,
                    route.surface(),
                    req,
                    &format!("GET {path}{q}"),
                    &mut failures,
                )
                .await;
                tried += 1;
            }
        }
        assert_none(&failures);
        assert!(tried > 300, "{tried}");
    });
}

/// Oversized bodies: over 1 MiB anywhere, over 64 KiB for OFREP: `413`, nothing written.
#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    raxx_testkit::each_backend!(|url| {
        let s = setup(Env::Staging, &url).await;
        let client = s.console.client();
        let before = s.console.audit_count("flag.apply", "allowed").await;
        let big = format!(
            "app = \"raxx-api-staging\"\n# {}\n",
            "x".repeat(1024 * 1024 + 1)
        );
        let r = client
            .put(s.console.url("/api/v1/apps/raxx-api-staging/flags"))
            .bearer_auth(&s.keys[1])
            .header("content-type", "application/toml")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert_eq!(s.console.audit_count("flag.apply", "allowed").await, before);
        let r = client
            .post(s.console.url("/api/v1/invites"))
            .headers(s.console.write_headers(&s.op))
            .header("content-type", "application/json")
            .body(format!(
                "{{\"email\": \"{}\"}}",
                "a".repeat(1024 * 1024 + 1)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        let ofrep = format!(
            "{{\"context\": {{\"targetingKey\": \"{}\"}}}}",
            "k".repeat(64 * 1024 + 1)
        );
        for path in [
            "/ofrep/v1/evaluate/flags",
            "/ofrep/v1/evaluate/flags/new-checkout",
        ] {
            let r = client
                .post(s.console.url(path))
                .bearer_auth(&s.keys[0])
                .header("content-type", "application/json")
                .body(ofrep.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 413, "{path}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["errorCode"], "PARSE_ERROR");
        }
        // A body announced as huge (Content-Length 64 MiB) is refused before it is read.
        let head = format!(
            "POST /api/v1/invites HTTP/1.1\r\nHost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\ncookie: {}\r\nx-csrf-token: {}\r\nx-console-env: staging\r\n\r\n{{}}",
            s.console.origin.trim_start_matches("http://"),
            64 * 1024 * 1024,
            s.op.cookie,
            s.op.csrf
        );
        let reply = raw_exchange(s.console.addr, head.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    });
}

/// Send raw bytes, read what comes back within 5 s.
async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(bytes).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), sock.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
