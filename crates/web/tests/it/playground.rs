//! The flag playground (issue 16 item 3) over real HTTP, on SQLite and PostgreSQL: every
//! flag's answer and why (which rule matched, the first failed condition of each earlier
//! rule), agreeing with OFREP; CSRF on the POST read; bad input naming the field; on prod a
//! pending promotion's proposed state.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::FileFormat;
use raxx_core::gate::KeyKind;
use raxx_testkit::{Operator, TestConsole};
use reqwest::StatusCode;
use serde_json::{Value, json};

const STAGING_APP: &str = "raxx-api-staging";
const PROD_APP: &str = "raxx-api-prod";

const FLAGS: &str = r#"
[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[[flags.new-checkout.rules]]
rollout = { on = 10, off = 90 }

[flags.theme]
type = "string"
variants = { light = "light", dark = "dark" }
default = "light"

[[flags.theme.rules]]
when = [{ attr = "country", op = "eq", value = "DE" }, { attr = "plan", op = "in", value = ["pro", "team"] }]
serve = "dark"

[flags.legacy-search]
type = "boolean"
variants = { on = true, off = false }
default = "on"
enabled = false
"#;

fn after() -> String {
    FLAGS.replace(
        "rollout = { on = 10, off = 90 }",
        "when = [{ attr = \"country\", op = \"in\", value = [\"DE\", \"FR\"] }]\nrollout = { on = 50, off = 50 }",
    )
}

async fn another_db(url: &str) -> String {
    if url.starts_with("sqlite") {
        raxx_testkit::sqlite_url()
    } else {
        raxx_testkit::postgres_url().await.expect("postgres")
    }
}

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

async fn seed(c: &TestConsole, app: &str, body: &str) {
    let flags =
        raxx_core::flags::parse_flags_file(&format!("app = \"{app}\"\n{body}"), FileFormat::Toml)
            .expect("flags parse");
    c.store()
        .apply_flags(
            &flags,
            "seed",
            AuditEvent::new("test", "flag.seed", Outcome::Allowed),
        )
        .await
        .unwrap();
}

async fn staging(url: &str) -> TestConsole {
    let c = TestConsole::start(
        Env::Staging,
        url,
        "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
    )
    .await;
    seed(&c, STAGING_APP, FLAGS).await;
    c
}

async fn evaluate(
    c: &TestConsole,
    op: &Operator,
    app: &str,
    query: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = c
        .client()
        .post(c.url(&format!("/api/v1/apps/{app}/evaluate{query}")))
        .headers(c.write_headers(op))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn flag<'a>(answer: &'a Value, key: &str) -> &'a Value {
    answer["flags"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["key"] == key))
        .unwrap_or_else(|| panic!("{key} in {answer}"))
}

#[tokio::test]
async fn the_playground_explains_matches_and_misses_and_agrees_with_ofrep() {
    raxx_testkit::each_backend!(|url| {
        let c = staging(&url).await;
        let op = c.operator("sam@raxx.test", &["staging-admins"]).await;
        let client = new_key(&c, STAGING_APP, KeyKind::Client).await;
        let contexts = [
            json!({"targetingKey": "user-7", "email": "ann@raxx.app"}),
            json!({"targetingKey": "user-8", "email": "x@example.com", "country": "DE"}),
            json!({"targetingKey": "user-9", "country": "DE", "plan": "pro"}),
        ];
        for context in &contexts {
            let (s, answer) =
                evaluate(&c, &op, STAGING_APP, "", json!({ "context": context })).await;
            assert_eq!(s, 200, "{answer}");
            assert_eq!(answer["flags"].as_array().unwrap().len(), 3, "{answer}");
            // The same answer OFREP gives an app with the same context.
            let resp = c
                .client()
                .post(c.url("/ofrep/v1/evaluate/flags"))
                .bearer_auth(&client)
                .json(&json!({ "context": context }))
                .send()
                .await
                .unwrap();
            let ofrep: Value = resp.json().await.unwrap();
            for o in ofrep["flags"].as_array().unwrap() {
                let p = flag(&answer, o["key"].as_str().unwrap());
                assert_eq!(p["value"], o["value"], "{context} {o}");
                assert_eq!(p["variant"], o["variant"], "{context} {o}");
                assert_eq!(p["reason"], o["reason"], "{context} {o}");
            }
        }
        // A match: rule 1 decided, rule 2 was not reached.
        let (_, answer) = evaluate(&c, &op, STAGING_APP, "", json!({"context": contexts[0]})).await;
        let f = flag(&answer, "new-checkout");
        assert_eq!(f["variant"], "on");
        assert_eq!(f["reason"], "TARGETING_MATCH");
        assert_eq!(f["matched_rule"], 1);
        assert_eq!(f["rules"][0]["outcome"], "matched");
        assert_eq!(f["rules"][1]["outcome"], "not_reached");
        // A miss, then a rollout: rule 1's condition failed on the email it saw.
        let (_, answer) = evaluate(&c, &op, STAGING_APP, "", json!({"context": contexts[1]})).await;
        let f = flag(&answer, "new-checkout");
        assert_eq!(f["reason"], "SPLIT");
        assert_eq!(f["matched_rule"], 2);
        assert_eq!(f["rules"][0]["outcome"], "missed");
        assert_eq!(f["rules"][0]["failed_condition"], 1);
        assert_eq!(f["rules"][0]["actual"], "x@example.com");
        assert!(
            f["rules"][0]["why"].as_str().unwrap().contains("email"),
            "{f}"
        );
        assert!(f["rules"][1]["bucket"].is_u64(), "{f}");
        // `theme`: country held, so the first failed condition is the second (plan absent).
        let t = flag(&answer, "theme");
        // What OFREP sends when rules exist and none matched (its enum has no DEFAULT).
        assert_eq!(t["reason"], "STATIC");
        assert_eq!(t["matched_rule"], Value::Null);
        assert_eq!(t["rules"][0]["failed_condition"], 2, "{t}");
        assert_eq!(t["rules"][0]["actual"], Value::Null, "{t}");
        assert!(
            t["rules"][0]["why"]
                .as_str()
                .unwrap()
                .contains("not in the context"),
            "{t}"
        );
        // One flag only.
        let (s, one) = evaluate(
            &c,
            &op,
            STAGING_APP,
            "",
            json!({"context": contexts[2], "flag": "theme"}),
        )
        .await;
        assert_eq!(s, 200, "{one}");
        assert_eq!(one["flags"].as_array().unwrap().len(), 1);
        assert_eq!(one["flags"][0]["variant"], "dark");
    });
}

#[tokio::test]
async fn playground_bad_input_names_the_field_and_the_post_read_needs_csrf() {
    raxx_testkit::each_backend!(|url| {
        let c = staging(&url).await;
        let op = c.operator("sam@raxx.test", &["staging-admins"]).await;
        let cases = [
            ("", json!({"context": [1, 2]}), 400, "context"),
            ("", json!({"context": "nope"}), 400, "context"),
            ("", json!({"context": {"targetingKey": 42}}), 400, "context"),
            ("", json!({"context": {}, "flag": "nope"}), 404, "flag"),
            ("", json!({"context": {}, "extra": 1}), 400, "context"),
            ("?promotion=1", json!({"context": {}}), 400, "promotion"),
            ("?promotion=abc", json!({"context": {}}), 400, "promotion"),
        ];
        for (query, body, status, field) in cases {
            let (s, answer) = evaluate(&c, &op, STAGING_APP, query, body.clone()).await;
            assert_eq!(s.as_u16(), status, "{body}: {answer}");
            assert_eq!(answer["field"], field, "{body}: {answer}");
            assert!(
                answer["message"].as_str().unwrap().contains(field),
                "{answer}"
            );
        }
        let (s, answer) = evaluate(&c, &op, "raxx-nope", "", json!({"context": {}})).await;
        assert_eq!(s, 404, "{answer}");
        // A session without the CSRF token, or a cross-site POST, is refused and audited.
        let resp = c
            .as_reader(&op)
            .post_json(
                &format!("/api/v1/apps/{STAGING_APP}/evaluate"),
                &json!({"context": {}}),
            )
            .await;
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "csrf");
        let resp = c
            .client()
            .post(c.url(&format!("/api/v1/apps/{STAGING_APP}/evaluate")))
            .headers(c.write_headers(&op))
            .header("origin", "https://evil.example")
            .json(&json!({"context": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        assert!(c.audit_count("flag.playground", "denied").await >= 2);
        // An operator without a flag role may not evaluate.
        let nobody = c.operator("nobody@raxx.test", &[]).await;
        let (s, _) = evaluate(&c, &nobody, STAGING_APP, "", json!({"context": {}})).await;
        assert_eq!(s, 403);
    });
}

#[tokio::test]
async fn the_playground_page_keeps_the_input_and_shows_why() {
    raxx_testkit::each_backend!(|url| {
        let c = staging(&url).await;
        let op = c.operator("sam@raxx.test", &["staging-admins"]).await;
        let page = format!("/apps/{STAGING_APP}/playground");
        let resp = c.as_reader(&op).get(&page).await;
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert!(html.contains("name=\"context\""), "{html}");
        assert!(
            !html.contains("name=\"promotion\""),
            "staging has no promotions"
        );
        let post = |context: &'static str| {
            c.client()
                .post(c.url(&page))
                .header("cookie", &op.cookie)
                .form(&[
                    ("_csrf", op.csrf.as_str()),
                    ("_target_env", "staging"),
                    ("context", context),
                    ("flag", ""),
                ])
                .send()
        };
        let resp = post("[\"not an object\"]").await.unwrap();
        assert_eq!(resp.status(), 400);
        let html = resp.text().await.unwrap();
        assert!(html.contains("context must be a JSON object"), "{html}");
        assert!(
            html.contains("[&quot;not an object&quot;]")
                || html.contains("[&#34;not an object&#34;]"),
            "input kept: {html}"
        );
        let resp = post("{\"targetingKey\": \"u-1\", \"email\": \"x@example.com\"}")
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert!(html.contains("because rule 2 matched"), "{html}");
        assert!(html.contains("condition 1"), "{html}");
        // Without the form's token: refused.
        let resp = c
            .client()
            .post(c.url(&page))
            .header("cookie", &op.cookie)
            .form(&[("_target_env", "staging"), ("context", "{}")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
    });
}

#[tokio::test]
async fn prod_evaluates_a_pending_promotions_proposed_state() {
    raxx_testkit::each_backend!(|url| {
        let staging = TestConsole::start(
            Env::Staging,
            &url,
            "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
        )
        .await;
        seed(&staging, STAGING_APP, &after()).await;
        let read = new_key(&staging, STAGING_APP, KeyKind::Read).await;
        let extra = format!(
            "staging_source_url = \"{}\"\nstaging_source_key = \"{read}\"\n\n[[apps]]\nname = \"{PROD_APP}\"\nenv = \"prod\"\npromote_from = \"{STAGING_APP}\"\n",
            staging.origin
        );
        let prod = TestConsole::start(Env::Prod, &another_db(&url).await, &extra).await;
        seed(&prod, PROD_APP, FLAGS).await;
        let alice = prod
            .operator("alice@raxx.test", &["production-admins"])
            .await;
        let resp = prod
            .as_operator(&alice)
            .post_json(
                "/api/v1/promotions",
                &json!({"app": PROD_APP, "flags": ["new-checkout"], "reason": "wider rollout"}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        // A user in the US: now the 10 % rollout decides; after approval the rollout
        // needs country DE/FR, so no rule matches.
        let context = json!({"context": {"targetingKey": "user-1", "country": "US"}});
        let (s, now) = evaluate(&prod, &alice, PROD_APP, "", context.clone()).await;
        assert_eq!(s, 200, "{now}");
        assert_eq!(flag(&now, "new-checkout")["reason"], "SPLIT");
        let (s, later) = evaluate(
            &prod,
            &alice,
            PROD_APP,
            &format!("?promotion={id}"),
            context,
        )
        .await;
        assert_eq!(s, 200, "{later}");
        assert_eq!(later["promotion"], id);
        let f = flag(&later, "new-checkout");
        assert_eq!(f["reason"], "STATIC", "{f}");
        assert_eq!(f["rules"][1]["outcome"], "missed");
        assert_eq!(f["rules"][1]["actual"], "US");
        // Prod itself did not change.
        let (_, again) = evaluate(
            &prod,
            &alice,
            PROD_APP,
            "",
            json!({"context": {"targetingKey": "user-1", "country": "US"}}),
        )
        .await;
        assert_eq!(flag(&again, "new-checkout")["reason"], "SPLIT");
        // Unknown promotion; a promotion that is no longer pending.
        let (s, e) = evaluate(
            &prod,
            &alice,
            PROD_APP,
            "?promotion=999",
            json!({"context": {}}),
        )
        .await;
        assert_eq!(
            (s.as_u16(), e["field"].as_str()),
            (404, Some("promotion")),
            "{e}"
        );
        let resp = prod
            .as_operator(&alice)
            .post_json(
                &format!("/api/v1/promotions/{id}/reject"),
                &json!({"reason": "not now"}),
            )
            .await;
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
        let (s, e) = evaluate(
            &prod,
            &alice,
            PROD_APP,
            &format!("?promotion={id}"),
            json!({"context": {}}),
        )
        .await;
        assert_eq!(
            (s.as_u16(), e["field"].as_str()),
            (400, Some("promotion")),
            "{e}"
        );
        // The page offers pending promotions on prod.
        let resp = prod
            .as_reader(&alice)
            .get(&format!("/apps/{PROD_APP}/playground"))
            .await;
        let html = resp.text().await.unwrap();
        assert!(html.contains("name=\"promotion\""), "{html}");
        drop(staging);
    });
}
