//! Issue 19 item 8, as a property over real HTTP on SQLite and PostgreSQL: issue every
//! kind of secret the console handles (session cookies, CSRF tokens, app API keys of each
//! kind, login links, invites, the enrolment code, the Heroku provider's API key and
//! tokens), run the flows and the refusals (a login link refused cross-site — the
//! reported attack —, a used link, a wrong env, a missing CSRF token, a revoked key, a key
//! of the wrong kind, a revoked invite, a wrong enrolment code, …), then scan every audit
//! row (chained and aggregated), the captured server log and every rendered page or JSON
//! answer for each secret. The only answers allowed to hold a secret are the ones that
//! show it once to whoever created it (a new key, a new invite link, a login's cookie).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::KeyKind;
use raxx_providers::fake::{FakeHeroku, FakeOptions};
use raxx_testkit::{Operator, TestConsole};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// Everything the server logged while this test binary ran.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_log() -> Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        log
    })
    .clone()
}

/// What the test saw: every answer body that must be secret-free, and the secrets.
#[derive(Default)]
struct Seen {
    bodies: Vec<(String, String)>,
    /// (what, value, may appear on its owner's own pages)
    secrets: Vec<(String, String, bool)>,
}

impl Seen {
    fn secret(&mut self, what: &str, value: &str) {
        assert!(
            value.len() >= 8,
            "{what} is too short to scan for: {value:?}"
        );
        self.secrets
            .push((what.to_string(), value.to_string(), false));
    }

    /// A CSRF token is rendered into its own session's forms (and `/api/v1/me`) by design:
    /// the pages scanned here are all its owner's, so it is scanned in the audit log and
    /// the server log only.
    fn own_page_secret(&mut self, what: &str, value: &str) {
        assert!(
            value.len() >= 8,
            "{what} is too short to scan for: {value:?}"
        );
        self.secrets
            .push((what.to_string(), value.to_string(), true));
    }
}

fn cookie_value(cookie: &str) -> String {
    cookie
        .split_once('=')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// Send and keep the answer as a page to scan (`scan`), or not (a show-once answer).
async fn call(
    c: &TestConsole,
    seen: &mut Seen,
    scan: bool,
    method: reqwest::Method,
    path: &str,
    headers: HeaderMap,
    body: Option<Value>,
) -> (u16, Value, String, Vec<String>) {
    let mut req = c
        .client()
        .request(method.clone(), c.url(path))
        .headers(headers);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    let text = resp.text().await.unwrap_or_default();
    if scan {
        seen.bodies
            .push((format!("{method} {path} -> {status}"), text.clone()));
    }
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text, cookies)
}

fn h(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    m
}

fn with(mut base: HeaderMap, extra: &[(&str, &str)]) -> HeaderMap {
    for (k, v) in h(extra) {
        if let Some(k) = k {
            base.insert(k, v);
        }
    }
    base
}

async fn keys(c: &TestConsole, app: &str, seen: &mut Seen) -> Vec<(KeyKind, String, i64)> {
    let mut tx = c.store().begin().await.unwrap();
    let mut out = Vec::new();
    for kind in KeyKind::ALL {
        let (secret, id) = tx
            .create_app_key(app, kind, kind.as_str(), "test")
            .await
            .unwrap();
        seen.secret(&format!("{} key", kind.as_str()), &secret);
        out.push((kind, secret, id));
    }
    tx.record(AuditEvent::new("test", "key.create", Outcome::Allowed))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    out
}

async fn login_link(c: &TestConsole, email: &str, seen: &mut Seen) -> String {
    let mut tx = c.store().begin().await.unwrap();
    let token = tx.create_login_link(email).await.unwrap();
    tx.record(AuditEvent::new(
        "cli",
        "auth.login_link.issue",
        Outcome::Allowed,
    ))
    .await
    .unwrap();
    tx.commit().await.unwrap();
    seen.secret("login link", &token);
    token
}

/// The login-link flows: refused cross-site (the reported attack), opened, opened again.
async fn login_link_flows(c: &TestConsole, email: &str, seen: &mut Seen) {
    let token = login_link(c, email, seen).await;
    let path = format!("/auth/link/{token}");
    for site in ["cross-site", "same-site"] {
        let (status, _, _, _) = call(
            c,
            seen,
            true,
            reqwest::Method::POST,
            "/auth/link",
            h(&[("sec-fetch-site", site)]),
            Some(serde_json::json!({ "token": token })),
        )
        .await;
        assert_eq!(status, 403, "a {site} login link is refused");
    }
    // Opened for real: whatever it answers (a session, a confirmation page) is for the
    // link's owner; a cookie it sets is a new secret.
    let (_, _, _, cookies) = call(c, seen, false, reqwest::Method::GET, &path, h(&[]), None).await;
    for ck in cookies {
        let value = ck.split(';').next().map(cookie_value).unwrap_or_default();
        if value.len() >= 8 {
            seen.secret("login link session cookie", &value);
        }
    }
    // Used (or at least not consumable twice by a scanner): opened again, and HEAD.
    call(c, seen, true, reqwest::Method::GET, &path, h(&[]), None).await;
    call(c, seen, true, reqwest::Method::HEAD, &path, h(&[]), None).await;
}

/// The operator's write refusals: no CSRF token, another env named, cross-site.
async fn write_refusals(c: &TestConsole, op: &Operator, path: &str, seen: &mut Seen) {
    let env = c.env().as_str();
    let other = c.env().other().as_str();
    for (why, headers) in [
        (
            "missing csrf",
            with(c.read_headers(op), &[("x-console-env", env)]),
        ),
        (
            "wrong env",
            with(
                c.read_headers(op),
                &[("x-console-env", other), ("x-csrf-token", &op.csrf)],
            ),
        ),
        (
            "cross-site",
            with(c.write_headers(op), &[("origin", "http://evil.test")]),
        ),
        (
            "forged cookie",
            h(&[
                ("cookie", &format!("{}x", op.cookie)),
                ("x-csrf-token", &op.csrf),
                ("x-console-env", env),
            ]),
        ),
    ] {
        let (status, _, text, _) = call(
            c,
            seen,
            true,
            reqwest::Method::POST,
            path,
            headers,
            Some(json!({"grace_seconds": 0, "email": "x@raxx.test", "group": "production-admins"})),
        )
        .await;
        assert!(status == 401 || status == 403, "{why}: {status} {text}");
    }
}

/// Pages and JSON reads an operator sees after all that, including the audit log itself.
async fn read_everything(c: &TestConsole, op: &Operator, seen: &mut Seen) {
    for path in [
        "/",
        "/tokens",
        "/api/v1/tokens",
        "/audit",
        "/api/v1/audit?limit=500",
        "/audit/export?format=csv",
        "/audit/export?format=jsonl",
        "/sessions",
        "/api/v1/sessions",
        "/operators",
        "/invites",
        "/api/v1/invites",
        "/jobs",
        "/status",
        "/flags",
        "/api/v1/me",
    ] {
        call(
            c,
            seen,
            true,
            reqwest::Method::GET,
            path,
            c.read_headers(op),
            None,
        )
        .await;
    }
}

async fn audit_text(c: &TestConsole) -> String {
    c.store()
        .flush_anon_denials(raxx_store::now_ms() + raxx_store::anon_denials::INTERVAL_MS)
        .await
        .unwrap();
    let mut out = String::new();
    c.store()
        .audit_scan(|row| {
            out.push_str(&serde_json::to_string(&row).unwrap());
            out.push('\n');
            Ok(())
        })
        .await
        .unwrap();
    for agg in c.store().anon_aggregates().await.unwrap() {
        out.push_str(&format!("{agg:?}\n"));
    }
    out
}

fn assert_secret_free(seen: &Seen, audit: &str, log: &str, label: &str) {
    let mut leaks = Vec::new();
    for (what, secret, on_own_pages) in &seen.secrets {
        if audit.contains(secret.as_str()) {
            leaks.push(format!("{label}: the {what} is in an audit row"));
        }
        if log.contains(secret.as_str()) {
            leaks.push(format!("{label}: the {what} is in the server log"));
        }
        for (page, body) in &seen.bodies {
            // A page requested by the secret itself (the login link's confirmation page,
            // whose button POSTs it) tells its holder nothing new.
            if !on_own_pages && !page.contains(secret.as_str()) && body.contains(secret.as_str()) {
                leaks.push(format!("{label}: the {what} is on the page {page}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}

const STAGING_APP: &str = "raxx-api-staging";
const VAR: &str = "DEPLOY_BOT_KEY";

#[tokio::test]
async fn no_secret_reaches_an_audit_row_a_log_line_or_a_page() {
    let log = captured_log();
    raxx_testkit::each_backend!(|url| {
        // ---- staging: keys, the Heroku provider, refusals, login links, the enrolment code.
        let mut seen = Seen::default();
        let fake = FakeHeroku::start_with(FakeOptions::default().with_app(STAGING_APP))
            .await
            .expect("fake heroku");
        let seeded = fake.seed_authorization(&["write-protected"], "deploy-bot (seeded)");
        fake.set_config_var(STAGING_APP, VAR, seeded.token.expose());
        seen.secret("Heroku API key", FakeHeroku::DEFAULT_API_KEY);
        seen.secret("seeded Heroku token", seeded.token.expose());
        seen.secret("enrolment code", "test-enrol-code");
        let extra = format!(
            r#"heroku_api_url = "{}"
[[apps]]
name = "{STAGING_APP}"
env = "staging"
[[apps.tokens]]
name = "deploy-bot"
provider = "heroku"
authorization_id = "{}"
api_key = "{}"
config_vars = [{{ app = "{STAGING_APP}", var = "{VAR}" }}]
"#,
            fake.base_url(),
            seeded.id,
            FakeHeroku::DEFAULT_API_KEY
        );
        let s = TestConsole::start(Env::Staging, &url, &extra).await;
        let op = s.operator("qa@raxx.test", &["staging-admins"]).await;
        seen.secret("session cookie", &cookie_value(&op.cookie));
        seen.own_page_secret("CSRF token", &op.csrf);
        let keys = keys(&s, STAGING_APP, &mut seen).await;

        // A key rotation shows the new secret once (not scanned), then the old one is revoked.
        let (client_kind, client_secret, client_id) = keys[0].clone();
        assert_eq!(client_kind, KeyKind::Client);
        let (status, body, text, _) = call(
            &s,
            &mut seen,
            false,
            reqwest::Method::POST,
            &format!("/api/v1/tokens/key:{client_id}/rotate"),
            s.write_headers(&op),
            Some(json!({"grace_seconds": 0})),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let new_client = body["secret"].as_str().expect("shown once").to_string();
        seen.secret("rotated client key", &new_client);
        // The revoked key, a key of the wrong kind, an unknown key: refused.
        for (why, key) in [
            ("revoked key", client_secret.as_str()),
            ("deploy key on OFREP", keys[1].1.as_str()),
            ("garbage key", "rxk_not_a_key_but_long_enough"),
        ] {
            let (status, _, text, _) = call(
                &s,
                &mut seen,
                true,
                reqwest::Method::POST,
                "/ofrep/v1/evaluate/flags",
                h(&[("authorization", &format!("Bearer {key}"))]),
                Some(json!({"context": {"targetingKey": "u1"}})),
            )
            .await;
            assert!(status == 401 || status == 403, "{why}: {status} {text}");
        }
        // The read key used where a deploy key is needed.
        call(
            &s,
            &mut seen,
            true,
            reqwest::Method::PUT,
            &format!("/api/v1/apps/{STAGING_APP}/flags"),
            h(&[("authorization", &format!("Bearer {}", keys[2].1))]),
            Some(json!({"flags": {}})),
        )
        .await;

        // The Heroku rotation: the new token lands in the app's config var only.
        let (_, inv, _, _) = call(
            &s,
            &mut seen,
            true,
            reqwest::Method::GET,
            "/api/v1/tokens",
            s.read_headers(&op),
            None,
        )
        .await;
        let heroku_id = inv
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["name"] == "deploy-bot"))
            .and_then(|t| t["id"].as_str())
            .expect("deploy-bot")
            .to_string();
        let (status, _, text, _) = call(
            &s,
            &mut seen,
            true,
            reqwest::Method::POST,
            &format!("/api/v1/tokens/{heroku_id}/rotate"),
            s.write_headers(&op),
            Some(json!({"grace_seconds": 600})),
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let new_heroku = fake.config_var(STAGING_APP, VAR).expect("published");
        seen.secret("rotated Heroku token", new_heroku.expose());

        write_refusals(
            &s,
            &op,
            &format!("/api/v1/tokens/key:{}/rotate", keys[2].2),
            &mut seen,
        )
        .await;
        login_link_flows(&s, "qa@raxx.test", &mut seen).await;
        // The enrolment code: right (starts a ceremony), wrong, and cross-site.
        for (code, site) in [
            ("test-enrol-code", "same-origin"),
            ("wrong-enrol-code-typed", "same-origin"),
            ("test-enrol-code", "cross-site"),
        ] {
            call(
                &s,
                &mut seen,
                true,
                reqwest::Method::POST,
                "/auth/register/start",
                h(&[("sec-fetch-site", site)]),
                Some(
                    json!({"email": "root@raxx.test", "display_name": "Root", "enrol_code": code}),
                ),
            )
            .await;
        }
        seen.secret("mistyped enrolment code", "wrong-enrol-code-typed");
        read_everything(&s, &op, &mut seen).await;
        let audit = audit_text(&s).await;
        let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
        // A login link is now refused on `POST /auth/link` (the token in the body, never the
        // path); the scan below checks the token is in no row, log line or page.
        assert_secret_free(&seen, &audit, &logged, &format!("staging on {url}"));

        // ---- prod: invites, login links, refusals by a prod admin.
        let mut seen = Seen::default();
        let prod_db = if url.starts_with("sqlite") {
            raxx_testkit::sqlite_url()
        } else {
            raxx_testkit::postgres_url().await.expect("postgres")
        };
        let p = TestConsole::start(
            Env::Prod,
            &prod_db,
            "[[apps]]\nname = \"raxx-api-prod\"\nenv = \"prod\"\npromote_from = \"raxx-api-staging\"\n",
        )
        .await;
        let admin = p.operator("lead@raxx.test", &["production-admins"]).await;
        seen.secret("prod session cookie", &cookie_value(&admin.cookie));
        seen.own_page_secret("prod CSRF token", &admin.csrf);
        let (status, body, text, _) = call(
            &p,
            &mut seen,
            false,
            reqwest::Method::POST,
            "/api/v1/invites",
            p.write_headers(&admin),
            Some(json!({"email": "new.hire@raxx.test", "group": "production-admins"})),
        )
        .await;
        assert_eq!(status, 201, "{text}");
        let invite_url = body["url"].as_str().expect("invite url").to_string();
        let invite_token = invite_url.rsplit('/').next().unwrap().to_string();
        seen.secret("invite token", &invite_token);
        // The invite used cross-site, then revoked and used again.
        call(
            &p,
            &mut seen,
            true,
            reqwest::Method::POST,
            "/auth/register/start",
            h(&[("sec-fetch-site", "cross-site")]),
            Some(json!({"display_name": "New", "invite_token": invite_token})),
        )
        .await;
        let invite_id = body["id"].as_i64().expect("invite id");
        call(
            &p,
            &mut seen,
            true,
            reqwest::Method::POST,
            &format!("/api/v1/invites/{invite_id}/revoke"),
            p.write_headers(&admin),
            None,
        )
        .await;
        call(
            &p,
            &mut seen,
            true,
            reqwest::Method::GET,
            &format!("/invite/{invite_token}"),
            h(&[]),
            None,
        )
        .await;
        call(
            &p,
            &mut seen,
            true,
            reqwest::Method::POST,
            "/auth/register/start",
            h(&[]),
            Some(json!({"display_name": "New", "invite_token": invite_token})),
        )
        .await;
        write_refusals(&p, &admin, "/api/v1/invites", &mut seen).await;
        login_link_flows(&p, "lead@raxx.test", &mut seen).await;
        read_everything(&p, &admin, &mut seen).await;
        let audit = audit_text(&p).await;
        let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
        assert_secret_free(&seen, &audit, &logged, &format!("prod on {url}"));
    });
}
