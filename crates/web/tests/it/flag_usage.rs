//! Flag usage and staleness (issue 16 item 4) over real HTTP, on SQLite and PostgreSQL:
//! OFREP evaluations are counted in memory and appear after a flush (by the background
//! task too), in the flags API and on the pages; a flag not evaluated for
//! `flag_stale_days` is stale; two consoles on one database add up.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::FileFormat;
use raxx_core::gate::KeyKind;
use raxx_store::flag_usage::UsageDelta;
use raxx_testkit::TestConsole;
use serde_json::{Value, json};

const APP: &str = "raxx-api-staging";
const CONFIG: &str =
    "flag_stale_days = 30\n\n[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n";

const FLAGS: &str = r#"
[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"

[flags.theme]
type = "string"
variants = { light = "light", dark = "dark" }
default = "light"

[flags.old-banner]
type = "boolean"
variants = { on = true, off = false }
default = "off"
"#;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

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

async fn seed(c: &TestConsole) {
    let flags =
        raxx_core::flags::parse_flags_file(&format!("app = \"{APP}\"\n{FLAGS}"), FileFormat::Toml)
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

async fn evaluate(c: &TestConsole, key: &str, path: &str) {
    let resp = c
        .client()
        .post(c.url(path))
        .bearer_auth(key)
        .json(&json!({"context": {"targetingKey": "u-1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
}

async fn usage(c: &TestConsole, key: &str) -> Value {
    let resp = c
        .client()
        .get(c.url(&format!("/api/v1/apps/{APP}/flags")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let mut out = serde_json::Map::new();
    for f in body["flags"].as_array().unwrap() {
        out.insert(f["key"].as_str().unwrap().into(), f["usage"].clone());
    }
    Value::Object(out)
}

#[tokio::test]
async fn evaluations_are_counted_flushed_and_shown_with_staleness() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, CONFIG).await;
        seed(&c).await;
        let client = new_key(&c, APP, KeyKind::Client).await;
        let read = new_key(&c, APP, KeyKind::Read).await;
        // `old-banner` was last evaluated 40 days ago: stale.
        c.store()
            .add_flag_usage(&[UsageDelta {
                app: APP.into(),
                flag_key: "old-banner".into(),
                evaluations: 5,
                at: raxx_store::now_ms() - 40 * DAY_MS,
            }])
            .await
            .unwrap();
        let flushes = c.state.flag_cache.usage().flushes();
        for _ in 0..7 {
            evaluate(&c, &client, "/ofrep/v1/evaluate/flags/new-checkout").await;
        }
        evaluate(&c, &client, "/ofrep/v1/evaluate/flags/theme").await;
        // Nothing is written per evaluation: before a flush the database has none
        // (unless the background flush ran meanwhile, every few seconds).
        let before = usage(&c, &read).await;
        if c.state.flag_cache.usage().flushes() == flushes {
            assert_eq!(before["new-checkout"]["evaluations"], 0, "{before}");
            assert_eq!(before["new-checkout"]["last_evaluated_at"], Value::Null);
            assert_eq!(
                before["new-checkout"]["stale"], false,
                "a new flag is not stale"
            );
        }
        assert_eq!(before["old-banner"]["stale"], true, "{before}");
        c.state.flag_cache.usage().flush(c.store()).await.unwrap();
        let after = usage(&c, &read).await;
        assert_eq!(after["new-checkout"]["evaluations"], 7, "{after}");
        assert_eq!(after["theme"]["evaluations"], 1, "{after}");
        assert!(after["new-checkout"]["last_evaluated_at"].is_i64());
        assert_eq!(after["new-checkout"]["stale"], false);
        assert_eq!(after["old-banner"]["evaluations"], 5);
        assert_eq!(after["old-banner"]["stale"], true);
        assert_eq!(after["old-banner"]["stale_days"], 30);
        // A bulk evaluation counts every flag, and a flush adds to the stored count; the
        // background task flushes on its own (every few seconds).
        evaluate(&c, &client, "/ofrep/v1/evaluate/flags").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut seen = Value::Null;
        while std::time::Instant::now() < deadline {
            seen = usage(&c, &read).await;
            if seen["new-checkout"]["evaluations"] == 8 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert_eq!(seen["new-checkout"]["evaluations"], 8, "{seen}");
        assert_eq!(seen["theme"]["evaluations"], 2, "{seen}");
        // Evaluating the stale flag clears its badge.
        assert_eq!(seen["old-banner"]["evaluations"], 6, "{seen}");
        assert_eq!(seen["old-banner"]["stale"], false, "{seen}");
        // The pages show the counts and the badge.
        c.store()
            .add_flag_usage(&[UsageDelta {
                app: APP.into(),
                flag_key: "ghost".into(),
                evaluations: 1,
                at: 0,
            }])
            .await
            .unwrap();
        let op = c.operator("sam@raxx.test", &["staging-admins"]).await;
        let html = c
            .client()
            .get(c.url(&format!("/apps/{APP}/flags")))
            .headers(c.read_headers(&op))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("id=\"usage-new-checkout\""), "{html}");
        assert!(html.contains("Usage"), "{html}");
        assert!(
            !html.contains("ghost"),
            "only flags of the app's state are listed"
        );
    });
}

#[tokio::test]
async fn the_stale_badge_is_on_the_flags_pages() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, CONFIG).await;
        seed(&c).await;
        c.store()
            .add_flag_usage(&[UsageDelta {
                app: APP.into(),
                flag_key: "old-banner".into(),
                evaluations: 5,
                at: raxx_store::now_ms() - 31 * DAY_MS,
            }])
            .await
            .unwrap();
        let op = c.operator("sam@raxx.test", &["staging-admins"]).await;
        let get = |path: String| {
            let req = c.client().get(c.url(&path)).headers(c.read_headers(&op));
            async move { req.send().await.unwrap().text().await.unwrap() }
        };
        let list = get(format!("/apps/{APP}/flags")).await;
        let row = list
            .split("id=\"usage-old-banner\"")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .expect("usage row");
        assert!(row.contains("badge stale"), "{row}");
        let fresh = list
            .split("id=\"usage-theme\"")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .expect("usage row");
        assert!(!fresh.contains("badge stale"), "{fresh}");
        let detail = get(format!("/apps/{APP}/flags/old-banner")).await;
        assert!(detail.contains("badge stale"), "{detail}");
        assert!(detail.contains("5 OFREP evaluations"), "{detail}");
        let detail = get(format!("/apps/{APP}/flags/theme")).await;
        assert!(!detail.contains("badge stale"), "{detail}");
    });
}

#[tokio::test]
async fn two_consoles_on_one_database_add_up() {
    raxx_testkit::each_backend!(|url| {
        let a = TestConsole::start(Env::Staging, &url, CONFIG).await;
        let b = TestConsole::start(Env::Staging, &url, CONFIG).await;
        seed(&a).await;
        let client = new_key(&a, APP, KeyKind::Client).await;
        let read = new_key(&a, APP, KeyKind::Read).await;
        for _ in 0..3 {
            evaluate(&a, &client, "/ofrep/v1/evaluate/flags/theme").await;
        }
        for _ in 0..4 {
            evaluate(&b, &client, "/ofrep/v1/evaluate/flags/theme").await;
        }
        a.state.flag_cache.usage().flush(a.store()).await.unwrap();
        b.state.flag_cache.usage().flush(b.store()).await.unwrap();
        // Counted again after the first flush: added, not overwritten.
        evaluate(&a, &client, "/ofrep/v1/evaluate/flags/theme").await;
        a.state.flag_cache.usage().flush(a.store()).await.unwrap();
        let seen = usage(&b, &read).await;
        assert_eq!(seen["theme"]["evaluations"], 8, "{seen}");
    });
}
