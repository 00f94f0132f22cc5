//! Tokens and rotation end to end (issue 5): real consoles on SQLite and PostgreSQL, the
//! real Heroku fake, operators signed in through real sessions.

use std::time::Duration;

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::KeyKind;
use raxx_providers::fake::{FailureMode, FakeAuthorization, FakeHeroku, FakeOptions, Step};
use raxx_testkit::{Operator, TestConsole};
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAGING_APP: &str = "raxx-api-staging";
const PROD_APP: &str = "raxx-api-prod";
const VAR: &str = "DEPLOY_BOT_KEY";
const UNSET_VAR: &str = "RAXX_TEST_TOKENS_NEVER_SET_7f3a";
const SWEEP: &str = "system:token-rotation-sweep";

struct World {
    console: TestConsole,
    fake: FakeHeroku,
    /// The authorization `deploy-bot` starts with.
    seeded: FakeAuthorization,
    op: Operator,
}

fn app_config(env: Env, app: &str, fake: &FakeHeroku, seeded: &str, other: &str) -> String {
    format!(
        r#"heroku_api_url = "{url}"

[[apps]]
name = "{app}"
env = "{env}"

[[apps.tokens]]
name = "client"
provider = "local"
max_age_days = 90

[[apps.tokens]]
name = "deploy-bot"
provider = "heroku"
authorization_id = "{seeded}"
api_key = "{key}"
config_vars = [{{ app = "{app}", var = "{VAR}" }}]
max_age_days = 90

[[apps.tokens]]
name = "unkeyed-bot"
provider = "heroku"
authorization_id = "{other}"
api_key_env = "{UNSET_VAR}"
config_vars = [{{ app = "{app}", var = "UNKEYED_BOT_KEY" }}]

[groups.token-readers]
grants = [{{ role = "console-token-reader", env_scope = "any" }}]
"#,
        url = fake.base_url(),
        key = FakeHeroku::DEFAULT_API_KEY,
    )
}

async fn world(env: Env, url: &str, groups: &[&str]) -> World {
    world_with(env, url, groups, FakeOptions::default()).await
}

async fn world_with(env: Env, url: &str, groups: &[&str], options: FakeOptions) -> World {
    let app = if env == Env::Prod {
        PROD_APP
    } else {
        STAGING_APP
    };
    let fake = FakeHeroku::start_with(options.with_app(app))
        .await
        .expect("fake heroku");
    let seeded = fake.seed_authorization(&["write-protected"], "deploy-bot (seeded)");
    fake.set_config_var(app, VAR, seeded.token.expose());
    let other = fake.seed_authorization(&["read"], "unkeyed-bot (seeded)");
    let console = TestConsole::start(
        env,
        url,
        &app_config(env, app, &fake, &seeded.id, &other.id),
    )
    .await;
    let op = console.operator("ops@raxx.test", groups).await;
    World {
        console,
        fake,
        seeded,
        op,
    }
}

async fn new_key(console: &TestConsole, app: &str, kind: KeyKind) -> (String, i64) {
    let store = console.store();
    let mut tx = store.begin().await.expect("begin");
    let made = tx
        .create_app_key(app, kind, kind.as_str(), "test")
        .await
        .expect("key");
    tx.record(AuditEvent::new("test", "key.create", Outcome::Allowed))
        .await
        .expect("audit");
    tx.commit().await.expect("commit");
    made
}

async fn send(
    console: &TestConsole,
    op: &Operator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    let headers = if method == reqwest::Method::GET {
        console.read_headers(op)
    } else {
        console.write_headers(op)
    };
    let mut req = console
        .client()
        .request(method, console.url(path))
        .headers(headers);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

async fn post(
    console: &TestConsole,
    op: &Operator,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    send(console, op, reqwest::Method::POST, path, body).await
}

async fn get(console: &TestConsole, op: &Operator, path: &str) -> (StatusCode, Value, String) {
    send(console, op, reqwest::Method::GET, path, None).await
}

async fn inventory(console: &TestConsole, op: &Operator) -> (Vec<Value>, String) {
    let (status, json, text) = get(console, op, "/api/v1/tokens").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    (json.as_array().cloned().expect("a list"), text)
}

fn find<'a>(tokens: &'a [Value], id: &str) -> &'a Value {
    tokens
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {tokens:?}"))
}

fn deploy_bot_id(tokens: &[Value]) -> String {
    tokens
        .iter()
        .find(|t| t["name"] == "deploy-bot")
        .and_then(|t| t["id"].as_str())
        .expect("deploy-bot in the inventory")
        .to_string()
}

async fn audit_export(console: &TestConsole) -> String {
    let auditor = console
        .operator("auditor@raxx.test", &[admin_group(console.env())])
        .await;
    let resp = console
        .client()
        .get(console.url("/audit/export?format=jsonl"))
        .headers(console.read_headers(&auditor))
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.expect("export body")
}

fn admin_group(env: Env) -> &'static str {
    match env {
        Env::Staging => "staging-admins",
        Env::Prod => "production-admins",
    }
}

/// Does `secret` open a real request path? OFREP (a `client` key route) when it is
/// mounted, else the lookup the gate itself makes.
async fn key_works(console: &TestConsole, secret: &str) -> bool {
    let ofrep = raxx_web::route_manifest()
        .iter()
        .any(|r| r.path == "/ofrep/v1/evaluate/flags");
    if ofrep {
        let resp = console
            .client()
            .post(console.url("/ofrep/v1/evaluate/flags"))
            .bearer_auth(secret)
            .json(&json!({"context": {"targetingKey": "u1"}}))
            .send()
            .await
            .expect("ofrep");
        let status = resp.status();
        assert!(
            status != StatusCode::FORBIDDEN,
            "a client key must never be forbidden here: {status}"
        );
        return status != StatusCode::UNAUTHORIZED;
    }
    console
        .store()
        .api_key_by_secret(secret)
        .await
        .expect("lookup")
        .is_some()
}

async fn set_sql(console: &TestConsole, sql: &str, value: i64, id: i64) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(value)
        .bind(id)
        .execute(console.store().pool())
        .await
        .expect("update");
}

#[tokio::test]
async fn staging_admin_rotates_a_client_key_with_a_grace_period_then_revokes_the_previous() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (old_secret, old_id) = new_key(c, STAGING_APP, KeyKind::Client).await;
        assert!(key_works(c, &old_secret).await, "{url}");

        let (tokens, text) = inventory(c, &w.op).await;
        let before = find(&tokens, &format!("key:{old_id}"));
        assert_eq!(before["state"], "active");
        assert_eq!(before["kind"], "client");
        assert_eq!(before["provider"], "local");
        assert_eq!(before["max_age_days"], 90);
        for field in [
            "id",
            "app",
            "name",
            "kind",
            "provider",
            "created_at",
            "rotated_at",
            "expires_at",
            "state",
        ] {
            assert!(before.get(field).is_some(), "{field} missing");
        }
        assert!(!text.contains(&old_secret) && !text.contains("\"secret\""));

        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/key:{old_id}/rotate"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let new_secret = body["secret"].as_str().expect("secret once").to_string();
        let new_id = body["id"].as_str().expect("id").to_string();
        // SPEC §8: the token keeps its id; the rotation adds version 2.
        assert_eq!(new_id, format!("key:{old_id}"));
        assert_eq!(
            (body["version"].as_i64(), body["previous_version"].as_i64()),
            (Some(2), Some(1))
        );
        assert!(new_secret.starts_with("rxc_"));
        assert!(key_works(c, &new_secret).await, "new key works at once");
        assert!(key_works(c, &old_secret).await, "old key works in grace");

        let (tokens, text) = inventory(c, &w.op).await;
        let after = find(&tokens, &new_id);
        assert_eq!(after["state"], "in_grace");
        assert_eq!(after["previous_version"], 1);
        assert!(after["rotated_at"].is_i64());
        assert_eq!(after["rotated_by"], "ops@raxx.test");
        assert_eq!(
            tokens
                .iter()
                .filter(|t| t["app"] == STAGING_APP && t["kind"] == "client")
                .count(),
            1,
            "the previous version is listed under its token, not as a token"
        );
        assert!(!text.contains(&new_secret) && !text.contains(&old_secret));

        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{new_id}/revoke-previous"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(body["previous"], "version 1");
        assert!(
            !key_works(c, &old_secret).await,
            "refused right after revoke-previous"
        );
        assert!(key_works(c, &new_secret).await);
        let (tokens, _) = inventory(c, &w.op).await;
        assert_eq!(find(&tokens, &new_id)["state"], "active");

        let (status, body, _) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{new_id}/revoke-previous"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["error"], "no_previous");

        assert_eq!(c.audit_count("token.rotate", "allowed").await, 1);
        assert_eq!(c.audit_count("token.revoke_previous", "allowed").await, 1);
        let export = audit_export(c).await;
        assert!(export.contains("token.rotate"));
        assert!(
            !export.contains(&new_secret),
            "the secret never enters the audit log"
        );
        assert!(!export.contains(&old_secret));
    });
}

#[tokio::test]
async fn grace_outside_zero_to_seven_days_is_400_and_changes_nothing() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (secret, id) = new_key(c, STAGING_APP, KeyKind::Deploy).await;
        for body in [
            json!({"grace_seconds": 604_801}),
            json!({"grace_seconds": -1}),
            json!({"grace": 5}),
            json!({"grace_seconds": "1h"}),
        ] {
            let (status, json, text) = post(
                c,
                &w.op,
                &format!("/api/v1/tokens/key:{id}/rotate"),
                Some(body.clone()),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
            assert_eq!(json["error"], "invalid");
            assert!(
                json["message"].as_str().unwrap_or("").contains("604800"),
                "{text}"
            );
        }
        let key = c.store().app_key(id).await.expect("read").expect("key");
        assert_eq!((key.grace_until, key.revoked_at), (None, None), "{url}");
        assert_eq!(
            c.store()
                .app_keys(Some(STAGING_APP))
                .await
                .expect("keys")
                .len(),
            1
        );
        assert_eq!(c.audit_count("token.rotate", "error").await, 4);
        assert_eq!(c.audit_count("token.rotate", "allowed").await, 0);

        // 7 days exactly and 0 are allowed; 0 ends the old key now.
        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/key:{id}/rotate"),
            Some(json!({"grace_seconds": 0})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(!key_works(c, &secret).await, "no grace");
        let next = body["id"].as_str().expect("id").to_string();
        let (status, _, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{next}/rotate"),
            Some(json!({"grace_seconds": 604_800})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    });
}

#[tokio::test]
async fn unknown_token_ids_are_404_and_audited() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        for id in ["key:999999", "heroku:999999", "bogus", "local:1"] {
            let (status, json, text) =
                post(c, &w.op, &format!("/api/v1/tokens/{id}/rotate"), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{id}: {text}");
            assert_eq!(json["error"], "not_found");
            assert!(
                json["message"].as_str().unwrap_or("").contains(id),
                "{text}"
            );
        }
        assert_eq!(c.audit_count("token.rotate", "error").await, 4, "{url}");
    });
}

#[tokio::test]
async fn a_token_of_a_prod_app_or_a_staging_session_on_prod_is_refused() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        // A stray key of the prod app in the staging database: its app is not of this console.
        let (prod_secret, prod_key) = new_key(c, PROD_APP, KeyKind::Client).await;
        let (status, json, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/key:{prod_key}/rotate"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {text}");
        assert_eq!(json["error"], "env_mismatch");
        assert!(!text.contains(&prod_secret));
        let key = c
            .store()
            .app_key(prod_key)
            .await
            .expect("read")
            .expect("key");
        assert_eq!(key.grace_until, None, "nothing changed");
        assert_eq!(c.audit_count("token.rotate", "denied").await, 1);
        let (tokens, _) = inventory(c, &w.op).await;
        assert!(
            !tokens.iter().any(|t| t["app"] == PROD_APP),
            "only this env's apps are listed"
        );

        // A request that believes it acts on prod.
        let (_, staging_key) = new_key(c, STAGING_APP, KeyKind::Client).await;
        let mut headers = c.write_headers(&w.op);
        headers.insert("x-console-env", "prod".parse().expect("header"));
        let resp = c
            .client()
            .post(c.url(&format!("/api/v1/tokens/key:{staging_key}/rotate")))
            .headers(headers)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "env_mismatch");

        // The staging session's cookie on the prod console.
        let prod = world(
            Env::Prod,
            &raxx_testkit::sqlite_url(),
            &["production-admins"],
        )
        .await;
        let (_, pkey) = new_key(&prod.console, PROD_APP, KeyKind::Client).await;
        let mut headers = c.write_headers(&w.op);
        headers.insert("x-console-env", "prod".parse().expect("header"));
        let resp = prod
            .console
            .client()
            .post(
                prod.console
                    .url(&format!("/api/v1/tokens/key:{pkey}/rotate")),
            )
            .headers(headers)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(prod.console.audit_count("token.rotate", "allowed").await, 0);
    });
}

#[tokio::test]
async fn staging_admins_on_prod_are_forbidden_and_production_admins_rotate() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Prod, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (secret, id) = new_key(c, PROD_APP, KeyKind::Client).await;
        let (status, json, text) =
            post(c, &w.op, &format!("/api/v1/tokens/key:{id}/rotate"), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {text}");
        assert_eq!(json["error"], "forbidden");
        assert!(text.contains("console-token-admin"), "{text}");
        let (status, _, _) = get(c, &w.op, "/api/v1/tokens").await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "no token role on prod at all"
        );
        assert!(key_works(c, &secret).await);

        let admin = c
            .operator("prod-admin@raxx.test", &["production-admins"])
            .await;
        let (status, body, text) =
            post(c, &admin, &format!("/api/v1/tokens/key:{id}/rotate"), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let until = body["grace_until"].as_i64().expect("grace_until");
        let expected = raxx_store::now_ms() + 86_400_000;
        assert!((until - expected).abs() < 60_000, "default grace is 24 h");
        assert_eq!(c.audit_count("token.rotate", "denied").await, 1);
    });
}

#[tokio::test]
async fn pages_render_rotate_controls_only_for_writers_and_show_the_secret_once() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (old_secret, id) = new_key(c, STAGING_APP, KeyKind::Client).await;

        let (status, _, html) = get(c, &w.op, "/tokens").await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(html.contains(&format!("/tokens/key:{id}/rotate")), "{html}");
        assert!(html.contains("deploy-bot") && html.contains(STAGING_APP));
        assert!(html.contains("href=\"/tokens\""), "nav entry");

        let reader = c.operator("reader@raxx.test", &["token-readers"]).await;
        let (status, _, html) = get(c, &reader, "/tokens").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("deploy-bot"));
        assert!(
            !html.contains("/rotate") && !html.contains("revoke-previous"),
            "no controls for a reader"
        );
        let (status, _, _) = get(c, &reader, &format!("/tokens/key:{id}/rotate")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let (status, _, html) = get(c, &w.op, &format!("/tokens/key:{id}/rotate")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Rotate the client key of raxx-api-staging on STAGING?"),
            "{html}"
        );
        assert!(html.contains("name=\"_target_env\" value=\"staging\""));

        let form = |target: &str| {
            vec![
                ("_csrf", w.op.csrf.clone()),
                ("_target_env", target.to_string()),
                ("grace_seconds", "86400".to_string()),
            ]
        };
        let cookie = c.read_headers(&w.op);
        let resp = c
            .client()
            .post(c.url(&format!("/tokens/key:{id}/rotate")))
            .headers(cookie.clone())
            .form(&form("prod"))
            .send()
            .await
            .expect("post");
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "a form prepared for prod"
        );
        let resp = c
            .client()
            .post(c.url(&format!("/tokens/key:{id}/rotate")))
            .headers(cookie)
            .form(&form("staging"))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap_or("")),
            Some("no-store")
        );
        let html = resp.text().await.expect("html");
        let secret = html
            .split("value=\"rxc_")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .map(|s| format!("rxc_{s}"))
            .expect("the secret on the result page");
        assert!(key_works(c, &secret).await && key_works(c, &old_secret).await);
        let (_, _, html) = get(c, &w.op, "/tokens").await;
        assert!(
            !html.contains(&secret) && html.contains("in grace until"),
            "shown once"
        );
    });
}

#[tokio::test]
async fn heroku_rotation_publishes_keeps_the_previous_for_the_grace_period_then_deletes_it() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (tokens, _) = inventory(c, &w.op).await;
        let id = deploy_bot_id(&tokens);
        assert!(id.starts_with("heroku:"), "{id}");
        let before = find(&tokens, &id);
        assert_eq!(before["authorization_id"], w.seeded.id.as_str());
        assert_eq!(before["kind"], "oauth");
        assert_eq!(before["auto_rotate"], true);

        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{id}/rotate"),
            Some(json!({"grace_seconds": 600})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{url}: {text}");
        let new_auth = body["authorization_id"]
            .as_str()
            .expect("new authorization")
            .to_string();
        assert_eq!(body["previous_authorization_id"], w.seeded.id.as_str());
        assert!(body.get("secret").is_none());
        let new_token = w.fake.config_var(STAGING_APP, VAR).expect("var");
        assert_eq!(
            w.fake
                .authorization(&new_auth)
                .expect("new authorization")
                .token
                .expose(),
            new_token.expose(),
            "the app's config var holds the new token"
        );
        assert_eq!(
            w.fake.authorization(&new_auth).expect("new").scope,
            vec!["write-protected"]
        );
        assert!(
            w.fake.authorization(&w.seeded.id).is_some(),
            "previous kept in grace"
        );
        assert!(!text.contains(new_token.expose()) && !text.contains(w.seeded.token.expose()));

        let (tokens, text) = inventory(c, &w.op).await;
        let after = find(&tokens, &id);
        assert_eq!(after["authorization_id"], new_auth.as_str());
        assert_eq!(after["previous_authorization_id"], w.seeded.id.as_str());
        assert_eq!(after["state"], "in_grace");
        assert_eq!(after["rotated_by"], "ops@raxx.test");
        assert!(!text.contains(new_token.expose()));

        let (status, _, text) = post(c, &w.op, &format!("/api/v1/tokens/{id}/rotate"), None).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "one previous at a time: {text}"
        );

        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{id}/revoke-previous"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(body["how"], "deleted");
        assert!(
            w.fake.authorization(&w.seeded.id).is_none(),
            "previous deleted"
        );
        assert!(w.fake.authorization(&new_auth).is_some());
        let (tokens, _) = inventory(c, &w.op).await;
        assert_eq!(find(&tokens, &id)["previous_authorization_id"], Value::Null);

        assert_eq!(c.audit_count("token.rotate", "allowed").await, 1);
        assert_eq!(c.audit_count("token.revoke_previous", "allowed").await, 1);
        let export = audit_export(c).await;
        assert!(export.contains(&new_auth), "authorization ids are recorded");
        for secret in [
            new_token.expose(),
            w.seeded.token.expose(),
            FakeHeroku::DEFAULT_API_KEY,
        ] {
            assert!(!export.contains(secret), "no secret in the audit log");
        }
    });
}

/// Rotation with the fake told to fail: nothing changes in the inventory or at the fake,
/// an `error` audit row names the step, and the operator sees it.
async fn failed_rotation(w: &World, id: &str, want_status: StatusCode, want_step: &str) -> String {
    let c = &w.console;
    let auths_before: Vec<String> = w.fake.authorizations().into_iter().map(|a| a.id).collect();
    let var_before = w.fake.config_var(STAGING_APP, VAR).expect("var");
    let (tokens_before, _) = inventory(c, &w.op).await;
    let errors_before = c.audit_count("token.rotate", "error").await;

    let (status, body, text) = post(c, &w.op, &format!("/api/v1/tokens/{id}/rotate"), None).await;
    assert_eq!(status, want_status, "{text}");
    let message = body["message"].as_str().expect("message").to_string();
    assert!(message.contains(want_step), "{message}");

    let auths_after: Vec<String> = w.fake.authorizations().into_iter().map(|a| a.id).collect();
    assert_eq!(auths_after, auths_before, "no new authorization left live");
    assert_eq!(
        w.fake.config_var(STAGING_APP, VAR).expect("var").expose(),
        var_before.expose(),
        "config vars as they were"
    );
    let (tokens_after, _) = inventory(c, &w.op).await;
    let strip = |t: &Value| {
        let mut t = t.clone();
        t["last_error"] = Value::Null;
        t
    };
    assert_eq!(
        strip(find(&tokens_after, id)),
        strip(find(&tokens_before, id)),
        "inventory unchanged"
    );
    assert_eq!(
        c.audit_count("token.rotate", "error").await,
        errors_before + 1
    );
    let q = raxx_store::audit::AuditQuery {
        action: Some("token.rotate".into()),
        limit: 1,
        ..Default::default()
    };
    let row = c.store().audit_page(&q).await.expect("audit").remove(0);
    let reason = row.event.reason.clone().unwrap_or_default();
    assert!(reason.contains(want_step), "{reason}");
    assert_eq!(row.event.outcome, Outcome::Error);
    assert!(!text.contains(FakeHeroku::DEFAULT_API_KEY));
    message
}

#[tokio::test]
async fn heroku_failures_at_each_step_change_nothing_and_name_the_step() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (tokens, _) = inventory(c, &w.op).await;
        let id = deploy_bot_id(&tokens);

        w.fake.fail_next(Step::Create, FailureMode::Status(422));
        failed_rotation(&w, &id, StatusCode::BAD_GATEWAY, "step 1").await;

        w.fake.fail_next(Step::Publish, FailureMode::Status(500));
        let message = failed_rotation(&w, &id, StatusCode::BAD_GATEWAY, "step 2").await;
        assert!(
            message.contains("was deleted again"),
            "compensated: {message}"
        );
        let q = raxx_store::audit::AuditQuery {
            action: Some("token.rotate".into()),
            limit: 1,
            ..Default::default()
        };
        let row = c.store().audit_page(&q).await.expect("audit").remove(0);
        assert_eq!(row.event.context["failed_step"], 2, "{url}");
        assert_eq!(row.event.context["changed_nothing"], true);

        w.fake.fail_next(Step::Create, FailureMode::WrongShape);
        failed_rotation(&w, &id, StatusCode::BAD_GATEWAY, "step 1").await;
        w.fake.fail_next(Step::Publish, FailureMode::GarbageBody);
        failed_rotation(&w, &id, StatusCode::BAD_GATEWAY, "step 2").await;

        // The operator's page shows the failed step too.
        w.fake.fail_next(Step::Publish, FailureMode::Status(503));
        let resp = c
            .client()
            .post(c.url(&format!("/tokens/{id}/rotate")))
            .headers(c.read_headers(&w.op))
            .form(&[
                ("_csrf", w.op.csrf.as_str()),
                ("_target_env", "staging"),
                ("grace_seconds", "60"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        let html = resp.text().await.expect("html");
        assert!(
            html.contains("step 2 (write config vars to raxx-api-staging)"),
            "{html}"
        );
        assert!(html.contains("data-env=\"staging\""));

        // It still rotates once the provider behaves.
        let (status, _, text) = post(c, &w.op, &format!("/api/v1/tokens/{id}/rotate"), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let (tokens, _) = inventory(c, &w.op).await;
        assert_eq!(
            find(&tokens, &id)["last_error"],
            Value::Null,
            "cleared by success"
        );

        // Step 3: revoking the previous fails; it stays recorded and live.
        w.fake.fail_next(Step::Revoke, FailureMode::Status(500));
        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{id}/revoke-previous"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
        assert!(
            body["message"].as_str().unwrap_or("").contains("step 3"),
            "{text}"
        );
        assert!(w.fake.authorization(&w.seeded.id).is_some());
        let (tokens, _) = inventory(c, &w.op).await;
        assert_eq!(
            find(&tokens, &id)["previous_authorization_id"],
            w.seeded.id.as_str()
        );
        assert_eq!(c.audit_count("token.revoke_previous", "error").await, 1);
    });
}

#[tokio::test]
async fn a_provider_timeout_is_a_clear_504_and_changes_nothing() {
    raxx_testkit::each_backend!(|url| {
        let w = world_with(
            Env::Staging,
            &url,
            &["staging-admins"],
            FakeOptions::default().with_hang(Duration::from_secs(30)),
        )
        .await;
        let (tokens, _) = inventory(&w.console, &w.op).await;
        let id = deploy_bot_id(&tokens);
        w.fake.fail_next(Step::Create, FailureMode::Timeout);
        let message = failed_rotation(&w, &id, StatusCode::GATEWAY_TIMEOUT, "step 1").await;
        assert!(
            message.contains("no answer from Heroku"),
            "{url}: {message}"
        );
    });
}

#[tokio::test]
async fn a_missing_api_key_env_var_is_named_and_nothing_is_called() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (tokens, _) = inventory(c, &w.op).await;
        let unkeyed = tokens
            .iter()
            .find(|t| t["name"] == "unkeyed-bot")
            .expect("unkeyed-bot");
        assert_eq!(unkeyed["auto_rotate"], false);
        let id = unkeyed["id"].as_str().expect("id").to_string();
        let requests = w.fake.requests().len();
        let (status, body, text) =
            post(c, &w.op, &format!("/api/v1/tokens/{id}/rotate"), None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{url}: {text}");
        assert_eq!(body["error"], "provider_config");
        assert!(text.contains(UNSET_VAR), "names the variable: {text}");
        assert_eq!(w.fake.requests().len(), requests, "Heroku was not called");
        assert_eq!(c.audit_count("token.rotate", "error").await, 1);
    });
}

#[tokio::test]
async fn the_sweep_ends_graces_rotates_overdue_provider_tokens_and_reminds_about_keys() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (tokens, _) = inventory(c, &w.op).await;
        let id = deploy_bot_id(&tokens);
        let n: i64 = id.trim_start_matches("heroku:").parse().expect("n");
        let long_ago = raxx_store::now_ms() - 91 * 86_400_000;

        // An app key past its max age, and one whose grace period is over.
        let (_, old_key) = new_key(c, STAGING_APP, KeyKind::Client).await;
        set_sql(
            c,
            "UPDATE console_app_keys SET created_at = $1 WHERE id = $2",
            long_ago,
            old_key,
        )
        .await;
        let (graced_secret, graced) = new_key(c, STAGING_APP, KeyKind::Read).await;
        let (status, _, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/key:{graced}/rotate"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        set_sql(
            c,
            "UPDATE console_app_keys SET grace_until = $1 WHERE id = $2",
            raxx_store::now_ms() - 1,
            graced,
        )
        .await;
        assert!(
            !key_works(c, &graced_secret).await,
            "refused as soon as the grace ends"
        );
        // deploy-bot is past its max age.
        set_sql(
            c,
            "UPDATE console_provider_tokens SET created_at = $1 WHERE id = $2",
            long_ago,
            n,
        )
        .await;

        let (status, _, html) = get(c, &w.op, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Expiring tokens") && html.contains(&format!("key:{old_key}")),
            "{url}"
        );

        let report = raxx_web::tokens::rotation_sweep(&c.state, SWEEP)
            .await
            .expect("sweep");
        assert!(report.failures.is_empty(), "{report:?}");
        assert_eq!(report.graces_ended.len(), 1, "{report:?}");
        assert!(report.graces_ended[0].starts_with(&format!("key:{graced}")));
        assert_eq!(report.rotated.len(), 1, "{report:?}");
        assert!(report.rotated[0].starts_with(&id));
        assert!(
            report
                .expiring
                .iter()
                .any(|e| e.id == format!("key:{old_key}") && e.state == "overdue")
        );
        assert!(
            !report.expiring.iter().any(|e| e.id == id),
            "rotated, so not expiring"
        );
        let key = c.store().app_key(graced).await.expect("read").expect("key");
        assert!(key.revoked_at.is_some(), "marked");

        let (tokens, _) = inventory(c, &w.op).await;
        let bot = find(&tokens, &id);
        assert_eq!(bot["rotated_by"], SWEEP);
        assert_eq!(bot["state"], "in_grace");
        assert_eq!(bot["previous_authorization_id"], w.seeded.id.as_str());
        let q = raxx_store::audit::AuditQuery {
            actor: Some(SWEEP.into()),
            action: Some("token.rotate".into()),
            limit: 5,
            ..Default::default()
        };
        assert_eq!(c.store().audit_page(&q).await.expect("audit").len(), 1);

        // The next sweep after the grace period deletes the previous authorization.
        set_sql(
            c,
            "UPDATE console_provider_tokens SET previous_grace_until = $1 WHERE id = $2",
            raxx_store::now_ms() - 1,
            n,
        )
        .await;
        let report = raxx_web::tokens::rotation_sweep(&c.state, SWEEP)
            .await
            .expect("sweep");
        assert!(report.failures.is_empty(), "{report:?}");
        assert!(
            report.graces_ended.iter().any(|g| g.contains(&w.seeded.id)),
            "{report:?}"
        );
        assert!(
            w.fake.authorization(&w.seeded.id).is_none(),
            "deleted at Heroku"
        );
        assert!(report.rotated.is_empty());

        // A sweep with nothing to do changes nothing.
        let rows = c.audit_count("token.rotate", "allowed").await;
        let report = raxx_web::tokens::rotation_sweep(&c.state, SWEEP)
            .await
            .expect("sweep");
        assert!(
            report.graces_ended.is_empty() && report.rotated.is_empty(),
            "{report:?}"
        );
        assert_eq!(c.audit_count("token.rotate", "allowed").await, rows);
    });
}

#[tokio::test]
async fn the_sweep_reports_a_failed_provider_rotation_and_keeps_the_token() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (tokens, _) = inventory(c, &w.op).await;
        let id = deploy_bot_id(&tokens);
        let n: i64 = id.trim_start_matches("heroku:").parse().expect("n");
        set_sql(
            c,
            "UPDATE console_provider_tokens SET created_at = $1 WHERE id = $2",
            raxx_store::now_ms() - 91 * 86_400_000,
            n,
        )
        .await;
        w.fake.fail_next(Step::Publish, FailureMode::Status(500));
        let report = raxx_web::tokens::rotation_sweep(&c.state, SWEEP)
            .await
            .expect("sweep");
        assert_eq!(report.failures.len(), 1, "{url}: {report:?}");
        assert!(report.failures[0].contains("step 2"), "{report:?}");
        let reminder = report
            .expiring
            .iter()
            .find(|e| e.id == id)
            .expect("still overdue: reminded");
        assert!(reminder.reason.contains("step 2"), "{reminder:?}");
        let (tokens, _) = inventory(c, &w.op).await;
        assert_eq!(find(&tokens, &id)["authorization_id"], w.seeded.id.as_str());
        assert_eq!(w.fake.authorizations().len(), 2, "compensated");
    });
}

/// Issue 17 / SPEC §8: a token keeps its id across rotations. Rotating `key:N` and then
/// revoking its previous version both name `key:N`; the inventory lists one row for it
/// with its versions under it.
#[tokio::test]
async fn a_key_keeps_its_id_so_rotate_then_revoke_previous_name_the_same_token() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (old_secret, n) = new_key(c, STAGING_APP, KeyKind::Client).await;
        let id = format!("key:{n}");

        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{id}/rotate"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{url}: {text}");
        assert_eq!(body["id"], id.as_str(), "the rotated token keeps its id");
        let new_secret = body["secret"].as_str().expect("secret once").to_string();

        let (tokens, _) = inventory(c, &w.op).await;
        let rows: Vec<&Value> = tokens
            .iter()
            .filter(|t| t["app"] == STAGING_APP && t["provider"] == "local")
            .collect();
        assert_eq!(rows.len(), 1, "one row per token: {rows:?}");
        let token = find(&tokens, &id);
        assert_eq!(token["state"], "in_grace");
        let versions = token["versions"].as_array().expect("versions");
        assert_eq!(versions.len(), 2, "current and previous: {versions:?}");
        assert_eq!(versions[0]["state"], "current");
        assert_eq!(versions[0]["version"], 2);
        assert_eq!(versions[1]["state"], "previous");
        assert_eq!(versions[1]["version"], 1);
        assert!(versions[1]["grace_until"].is_i64());

        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/{id}/revoke-previous"),
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "revoke-previous on the same id: {text}"
        );
        assert_eq!(body["id"], id.as_str());
        assert!(
            !key_works(c, &old_secret).await,
            "the old secret stops working"
        );
        assert!(key_works(c, &new_secret).await, "the new one goes on");

        let (tokens, _) = inventory(c, &w.op).await;
        let token = find(&tokens, &id);
        assert_eq!(token["state"], "active");
        assert_eq!(token["versions"].as_array().map(Vec::len), Some(1));

        // And again: the same id, a third version.
        let (status, body, text) =
            post(c, &w.op, &format!("/api/v1/tokens/{id}/rotate"), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["version"], 3);
        let q = raxx_store::audit::AuditQuery {
            target: Some(id.clone()),
            action: Some("token.".into()),
            outcome: Some(Outcome::Allowed),
            limit: 10,
            ..Default::default()
        };
        let rows = c.store().audit_page(&q).await.expect("audit");
        assert_eq!(rows.len(), 3, "every rotation is audited on the token's id");

        // The page: one row for the token, its versions under it.
        let (status, _, html) = get(c, &w.op, "/tokens").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            html.matches(&format!("data-token=\"{id}\"")).count(),
            1,
            "{html}"
        );
        assert!(
            html.contains("version 3") && html.contains("version 2"),
            "{html}"
        );
    });
}

/// "Last used" per version comes from the key cache's batched flush (no write per
/// request); the token's page lists every version and its rotation history; the result
/// page offers a copy button from a same-origin script.
#[tokio::test]
async fn versions_show_last_used_and_the_token_page_its_rotation_history() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (old_secret, n) = new_key(c, STAGING_APP, KeyKind::Client).await;
        let id = format!("key:{n}");
        let usage_rows = || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM console_app_key_usage")
                .fetch_one(c.store().pool())
                .await
                .expect("count");
            n
        };
        let flushes = c.state.key_cache.flushes();
        for _ in 0..5 {
            assert!(key_works(c, &old_secret).await);
        }
        let rows = usage_rows().await;
        if c.state.key_cache.flushes() == flushes {
            // (Unless the background flush ran meanwhile, every USAGE_FLUSH_EVERY.)
            assert_eq!(rows, 0, "{url}: a use is not written per request");
        }
        c.state
            .key_cache
            .flush_usage(c.store())
            .await
            .expect("flush");
        assert_eq!(usage_rows().await, 1, "one row per key version");
        assert_eq!(
            c.state
                .key_cache
                .flush_usage(c.store())
                .await
                .expect("again"),
            0,
            "nothing new to write"
        );

        // Rotate through the page: the result has the copy button and its script.
        let resp = c
            .client()
            .post(c.url(&format!("/tokens/{id}/rotate")))
            .headers(c.read_headers(&w.op))
            .form(&[
                ("_csrf", w.op.csrf.as_str()),
                ("_target_env", "staging"),
                ("grace_seconds", "3600"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::OK);
        let html = resp.text().await.expect("html");
        assert!(html.contains("data-copy=\"new-secret\""), "{html}");
        assert!(html.contains("<script src=\"/static/copy.js\""), "{html}");
        assert!(!html.contains("onclick"), "no inline script");
        let script = c
            .client()
            .get(c.url("/static/copy.js"))
            .send()
            .await
            .expect("script");
        assert_eq!(script.status(), StatusCode::OK);

        let (tokens, _) = inventory(c, &w.op).await;
        let versions = find(&tokens, &id)["versions"].clone();
        assert_eq!(
            versions[0]["last_used_at"],
            Value::Null,
            "the new one: not yet"
        );
        assert!(
            versions[1]["last_used_at"].is_i64(),
            "the previous one: used"
        );

        let (status, body, text) = get(c, &w.op, &format!("/api/v1/tokens/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["all_versions"].as_array().map(Vec::len), Some(2));
        let history = body["history"].as_array().expect("history");
        assert_eq!(history.len(), 1, "{history:?}");
        assert_eq!(history[0]["action"], "token.rotate");
        assert_eq!(history[0]["actor"], "ops@raxx.test");
        assert!(!text.contains(&old_secret));

        let (status, _, html) = get(c, &w.op, &format!("/tokens/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Rotation history") && html.contains("version 2"),
            "{html}"
        );
        assert!(html.contains("ops@raxx.test"));
        let (status, _, _) = get(c, &w.op, "/tokens/key:999999").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    });
}

/// Prod reads staging's flags with a staging `read` key (`staging_source_key`): rotating
/// a read key on staging warns first, and a former version's id says which token it is.
#[tokio::test]
async fn rotating_a_staging_read_key_warns_that_prod_depends_on_it() {
    raxx_testkit::each_backend!(|url| {
        let w = world(Env::Staging, &url, &["staging-admins"]).await;
        let c = &w.console;
        let (_, read) = new_key(c, STAGING_APP, KeyKind::Read).await;
        let (_, client) = new_key(c, STAGING_APP, KeyKind::Client).await;
        let (status, _, html) = get(c, &w.op, &format!("/tokens/key:{read}/rotate")).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert!(
            html.contains("data-depends") && html.contains("staging_source_key"),
            "{html}"
        );
        let (_, _, html) = get(c, &w.op, &format!("/tokens/key:{client}/rotate")).await;
        assert!(!html.contains("data-depends"), "a client key: no warning");

        let (status, body, text) =
            post(c, &w.op, &format!("/api/v1/tokens/key:{read}/rotate"), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(
            body["notice"]
                .as_str()
                .unwrap_or("")
                .contains("staging_source_key"),
            "{text}"
        );
        // The new version's row id is not a token id.
        let version_id = c
            .store()
            .app_key_versions(read)
            .await
            .expect("versions")
            .last()
            .map(|v| v.id)
            .expect("a version");
        assert_ne!(version_id, read);
        let (status, body, text) = post(
            c,
            &w.op,
            &format!("/api/v1/tokens/key:{version_id}/revoke-previous"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("act on key:{read}")),
            "{text}"
        );
        assert_eq!(c.audit_count("token.revoke_previous", "error").await, 1);
    });
}
