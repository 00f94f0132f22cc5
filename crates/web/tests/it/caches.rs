//! The OFREP caches (API keys in `keycache.rs`, flag state in `flags/cache.rs`) serve from
//! memory only while the store's change signal says nothing changed, on both backends:
//! - a key revoked through the API is refused on the very next request;
//! - a key revoked, or flags changed, by another `Store` on the same database (another
//!   instance, the CLI) is seen within a bound: NOTIFY on PostgreSQL, `data_version` on
//!   SQLite. Those changes are plain SQL on the other pool, so that no `AuditTx` commit of
//!   this process moves the signal for them;
//! - while the signal is down, every request reads the database again.

use std::time::{Duration, Instant};

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::KeyKind;
use raxx_store::Store;
use raxx_store::testing::{exec, query_string};
use raxx_testkit::TestConsole;
use reqwest::StatusCode;
use serde_json::{Value, json};

const APP: &str = "raxx-api-staging";

struct World {
    c: TestConsole,
    /// The same database through another pool: "another instance".
    other: Store,
    client_key: String,
    client_id: i64,
}

async fn world(url: &str) -> World {
    let c = TestConsole::start(
        Env::Staging,
        url,
        &format!("[[apps]]\nname = \"{APP}\"\nenv = \"staging\"\n"),
    )
    .await;
    let keys = c.app_keys(APP).await;
    let (client_key, deploy_key) = (keys.client, keys.deploy);
    let client_id = keys.client_id;
    let put = c
        .client()
        .put(c.url(&format!("/api/v1/apps/{APP}/flags")))
        .bearer_auth(&deploy_key)
        .json(&json!({"app": APP, "flags": {"checkout": {"type": "boolean", "variants": {"on": true, "off": false}, "default": "on"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let signal = c.store().changes();
    let start = Instant::now();
    while !signal.is_live() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{url}: the change watcher goes live"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = Store::connect(url, Env::Staging).await.unwrap();
    World {
        c,
        other,
        client_key,
        client_id,
    }
}

/// OFREP's answer for `checkout` with `key`: the status and the value (if any).
async fn eval(c: &TestConsole, key: &str) -> (StatusCode, Value) {
    let resp = c
        .client()
        .post(c.url("/ofrep/v1/evaluate/flags/checkout"))
        .bearer_auth(key)
        .json(&json!({"context": {"targetingKey": "u1"}}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["value"].clone())
}

/// Warm both caches: the key and the flags are now served from memory.
async fn warm(w: &World) {
    for _ in 0..3 {
        let (status, value) = eval(&w.c, &w.client_key).await;
        assert_eq!(status, 200);
        assert_eq!(value, true);
    }
}

/// Polls OFREP until `done` holds for its answer; the time it took, or a panic after `limit`.
async fn seen_within(
    w: &World,
    limit: Duration,
    what: &str,
    done: impl Fn(StatusCode, &Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let (status, value) = eval(&w.c, &w.client_key).await;
        if done(status, &value) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: still {status} {value} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Another instance turns `checkout` off: the definition and the app's revision, as a
/// flags apply does, in plain SQL.
async fn turn_checkout_off_elsewhere(other: &Store) {
    let def = query_string(
        other,
        &format!(
            "SELECT definition FROM console_flags WHERE app = '{APP}' AND flag_key = 'checkout'"
        ),
    )
    .await;
    let mut def: Value = serde_json::from_str(&def).unwrap();
    assert_eq!(def["default"], "on", "{def}");
    def["default"] = json!("off");
    let def = def.to_string().replace('\'', "''");
    exec(
        other,
        &format!(
            "UPDATE console_flags SET definition = '{def}', version = version + 1 WHERE app = '{APP}' AND flag_key = 'checkout'"
        ),
    )
    .await;
    exec(
        other,
        &format!("UPDATE console_flag_apps SET revision = revision + 1 WHERE app = '{APP}'"),
    )
    .await;
}

#[tokio::test]
async fn a_key_revoked_through_the_api_is_refused_on_the_next_request() {
    raxx_testkit::each_backend!(|url| {
        let w = world(&url).await;
        warm(&w).await;
        let op = w.c.operator("ops@raxx.test", &["staging-admins"]).await;
        let rotate =
            w.c.client()
                .post(w.c.url(&format!("/api/v1/tokens/key:{}/rotate", w.client_id)))
                .headers(w.c.write_headers(&op))
                .json(&json!({"grace_seconds": 0}))
                .send()
                .await
                .unwrap();
        assert_eq!(rotate.status(), 200, "{}", rotate.text().await.unwrap());
        let body: Value = rotate.json().await.unwrap();
        let (status, _) = eval(&w.c, &w.client_key).await;
        assert_eq!(status, 401, "{url}: refused on the very next request");
        let new_key = body["secret"].as_str().unwrap();
        let (status, value) = eval(&w.c, new_key).await;
        assert_eq!((status.as_u16(), value), (200, json!(true)), "{url}");
        let (status, _) = eval(&w.c, &w.client_key).await;
        assert_eq!(status, 401, "{url}: and stays refused");
    });
}

#[tokio::test]
async fn a_flags_apply_through_the_api_is_served_on_the_next_request() {
    raxx_testkit::each_backend!(|url| {
        let w = world(&url).await;
        warm(&w).await;
        let mut tx = w.c.store().begin().await.unwrap();
        let (deploy_key, _) = tx
            .create_app_key(APP, KeyKind::Deploy, "ci-2", "test")
            .await
            .unwrap();
        tx.record(AuditEvent::new("test", "key.create", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        warm(&w).await;
        let put = w
            .c
            .client()
            .put(w.c.url(&format!("/api/v1/apps/{APP}/flags")))
            .bearer_auth(&deploy_key)
            .json(&json!({"app": APP, "flags": {"checkout": {"type": "boolean", "variants": {"on": true, "off": false}, "default": "off"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
        let (status, value) = eval(&w.c, &w.client_key).await;
        assert_eq!((status.as_u16(), value), (200, json!(false)), "{url}");
    });
}

#[tokio::test]
async fn changes_made_by_another_instance_are_seen_within_a_bound() {
    raxx_testkit::each_backend!(|url| {
        let w = world(&url).await;
        warm(&w).await;

        turn_checkout_off_elsewhere(&w.other).await;
        let took = seen_within(&w, Duration::from_secs(2), "flags change", |s, v| {
            s == 200 && *v == json!(false)
        })
        .await;
        eprintln!("{url}: flags change from another pool seen after {took:?}");

        exec(
            &w.other,
            &format!(
                "UPDATE console_app_keys SET revoked_at = {} WHERE id = {}",
                raxx_store::now_ms(),
                w.client_id
            ),
        )
        .await;
        let took = seen_within(&w, Duration::from_secs(2), "revocation", |s, _| s == 401).await;
        eprintln!("{url}: revocation from another pool seen after {took:?}");
        for _ in 0..3 {
            assert_eq!(eval(&w.c, &w.client_key).await.0, 401, "{url}");
        }
        w.other.close().await;
    });
}

#[tokio::test]
async fn while_the_signal_is_down_every_request_reads_the_database() {
    raxx_testkit::each_backend!(|url| {
        let w = world(&url).await;
        warm(&w).await;
        // As when the listener lost its connection (it stays down until it reconnects).
        w.c.store().changes().set_live(false);

        turn_checkout_off_elsewhere(&w.other).await;
        let (status, value) = eval(&w.c, &w.client_key).await;
        assert_eq!(
            (status.as_u16(), value),
            (200, json!(false)),
            "{url}: the next request reads the flags"
        );

        exec(
            &w.other,
            &format!(
                "UPDATE console_app_keys SET revoked_at = {} WHERE id = {}",
                raxx_store::now_ms(),
                w.client_id
            ),
        )
        .await;
        assert_eq!(
            eval(&w.c, &w.client_key).await.0,
            401,
            "{url}: the next request reads the key"
        );
        assert!(!w.c.store().changes().is_live(), "{url}");
        w.other.close().await;
    });
}

/// PostgreSQL only (SQLite readers do not wait for a writer's lock): with the key and flag
/// tables locked against reads by another session, OFREP still answers — from memory —
/// while nothing changed; once the signal is down it has to read, and waits.
#[tokio::test]
async fn a_fresh_ofrep_request_reads_nothing_from_the_database() {
    let Some(url) = raxx_store::testing::postgres_url().await else {
        return;
    };
    let w = world(&url).await;
    // An `AuditTx` commit anywhere in this process (the other tests of this file run in
    // parallel) moves the generation too, and the next request then reads: try again.
    let mut attempts = 0;
    let lock = loop {
        attempts += 1;
        warm(&w).await;
        let mut lock = w.other.pool().begin().await.unwrap();
        sqlx::query(
            "LOCK TABLE console_app_keys, console_flag_apps, console_flags IN ACCESS EXCLUSIVE MODE",
        )
        .execute(&mut *lock)
        .await
        .unwrap();
        let mut from_memory = true;
        for _ in 0..5 {
            match tokio::time::timeout(Duration::from_secs(1), eval(&w.c, &w.client_key)).await {
                Ok(answer) => assert_eq!(answer, (StatusCode::OK, json!(true))),
                Err(_) => {
                    from_memory = false;
                    break;
                }
            }
        }
        if from_memory {
            break lock;
        }
        lock.rollback().await.unwrap();
        assert!(attempts < 5, "OFREP kept waiting for the locked tables");
    };
    w.c.store().changes().set_live(false);
    let blocked = tokio::time::timeout(Duration::from_millis(500), eval(&w.c, &w.client_key)).await;
    assert!(blocked.is_err(), "not live: the request reads (and waits)");
    lock.rollback().await.unwrap();
    assert_eq!(
        eval(&w.c, &w.client_key).await,
        (StatusCode::OK, json!(true))
    );
    w.other.close().await;
}
