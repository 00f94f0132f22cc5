//! A read-only database (issue 8, docs/reliability.md): SQLite opened with `mode=ro`,
//! PostgreSQL with `default_transaction_read_only = on` (a standby answers the same
//! SQLSTATE 25006). Reads keep working, writes answer `503 read_only` with a message that
//! says so, and the database is unchanged (same bytes on SQLite; the audit chain verifies).

use raxx_core::Env;
use raxx_core::config::Config;
use raxx_store::Store;
use raxx_store::testing::{exec, query_string};
use raxx_testkit::TestConsole;
use raxx_web::AppState;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const APPS: &str = "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n";

/// A second server over `db_url` with the test kit's config, without migrating or
/// reconciling anything (both write): the store is used as it is.
async fn serve_as_is(db_url: &str) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("http://staging.localhost:{}", addr.port());
    let text = format!(
        "public_url = \"{origin}\"\ndatabase_url = \"{db_url}\"\nadmin_emails = [\"root@raxx.test\"]\nadmin_enrol_code = \"test-enrol-code\"\nenvironments = {{ \"staging.localhost\" = \"staging\" }}\n{APPS}\n"
    );
    let cfg = Config::parse(&text, |_| None).unwrap().resolve().unwrap();
    let store = Store::connect(db_url, Env::Staging).await.expect("connect");
    let enrol = Some(raxx_core::opaque::hash_token("test-enrol-code"));
    let state = AppState::new(cfg, store, enrol).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = raxx_web::serve(state, listener, async move {
            let _ = rx.await;
        })
        .await;
    });
    (format!("http://staging.localhost:{}", addr.port()), tx)
}

/// The SQLite file's bytes (and its WAL's, if any).
fn sqlite_digest(url: &str) -> String {
    let path = url.trim_start_matches("sqlite://");
    let mut h = Sha256::new();
    for p in [path.to_string(), format!("{path}-wal")] {
        if let Ok(bytes) = std::fs::read(&p) {
            h.update(&bytes);
        }
    }
    format!("{:x}", h.finalize())
}

#[tokio::test]
async fn a_read_only_database_serves_reads_and_refuses_writes_with_read_only() {
    raxx_testkit::each_backend!(|url| {
        let sqlite = url.starts_with("sqlite:");
        let c = TestConsole::start(Env::Staging, &url, APPS).await;
        let op = c.operator("ops@raxx.test", &["staging-admins"]).await;
        let keys = c.app_keys("raxx-api-staging").await;
        let (client_key, deploy_key) = (keys.client, keys.deploy);
        let client_id = keys.client_id;
        let flags = json!({"app": "raxx-api-staging", "flags": {"checkout": {"type": "boolean", "variants": {"on": true, "off": false}, "default": "on"}}});
        let put = c
            .client()
            .put(c.url("/api/v1/apps/raxx-api-staging/flags"))
            .bearer_auth(&deploy_key)
            .json(&flags)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
        // Make the session's next request want to touch `last_seen_at` (a write).
        exec(
            c.store(),
            "UPDATE console_sessions SET last_seen_at = last_seen_at - 60000",
        )
        .await;
        let audit_rows = query_string(
            c.store(),
            "SELECT CAST(COUNT(*) AS TEXT) FROM console_audit_log",
        )
        .await;

        let (ro_url, db_name) = if sqlite {
            c.store().close().await; // last connection: the WAL is checkpointed
            (format!("{url}?mode=ro"), String::new())
        } else {
            let name = url.rsplit('/').next().unwrap().to_string();
            exec(
                c.store(),
                &format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
            )
            .await;
            (url.clone(), name)
        };
        let before = sqlite.then(|| sqlite_digest(&url));

        let (base, stop) = serve_as_is(&ro_url).await;
        let http = reqwest::Client::builder()
            .resolve("staging.localhost", ([127, 0, 0, 1], 0).into())
            .build()
            .unwrap();
        let send = |rb: reqwest::RequestBuilder| async move {
            let r = rb.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        };
        // Reads.
        let (s, me) = send(
            http.get(format!("{base}/api/v1/me"))
                .headers(c.read_headers(&op)),
        )
        .await;
        assert_eq!(s, 200, "{url}: {me}");
        let (s, got) = send(
            http.get(format!("{base}/api/v1/apps/raxx-api-staging/flags"))
                .headers(c.read_headers(&op)),
        )
        .await;
        assert_eq!(s, 200, "{url}: {got}");
        assert!(got.to_string().contains("checkout"), "{got}");
        let (s, tokens) = send(
            http.get(format!("{base}/api/v1/tokens"))
                .headers(c.read_headers(&op)),
        )
        .await;
        assert_eq!(s, 200, "{url}: {tokens}");
        let (s, eval) = send(
            http.post(format!("{base}/ofrep/v1/evaluate/flags/checkout"))
                .bearer_auth(&client_key)
                .json(&json!({"context": {"targetingKey": "u1"}})),
        )
        .await;
        assert_eq!((s, &eval["value"]), (200, &json!(true)), "{url}: {eval}");
        // Writes: a clear JSON error, not a 500.
        let mut flags2 = flags.clone();
        flags2["flags"]["checkout"]["default"] = json!("off");
        for (what, rb) in [
            (
                "flags apply",
                http.put(format!("{base}/api/v1/apps/raxx-api-staging/flags"))
                    .bearer_auth(&deploy_key)
                    .json(&flags2),
            ),
            (
                "key rotation",
                http.post(format!("{base}/api/v1/tokens/key:{client_id}/rotate"))
                    .headers(c.write_headers(&op))
                    .json(&json!({})),
            ),
            (
                "session revocation",
                http.delete(format!("{base}/api/v1/sessions/{}", op.session_id))
                    .headers(c.write_headers(&op)),
            ),
        ] {
            let (s, body) = send(rb).await;
            assert_eq!(s, 503, "{url}: {what}: {body}");
            assert_eq!(body["error"], "read_only", "{url}: {what}: {body}");
            assert!(
                body["message"].as_str().unwrap().contains("read-only"),
                "{body}"
            );
        }
        let _ = stop.send(());

        // Unchanged: same bytes (SQLite), same audit rows, an intact chain.
        let rw = if sqlite {
            assert_eq!(before, Some(sqlite_digest(&url)), "{url}: the file changed");
            Store::connect(&url, Env::Staging).await.unwrap()
        } else {
            exec(
                c.store(),
                &format!("ALTER DATABASE {db_name} RESET default_transaction_read_only"),
            )
            .await;
            c.store().clone()
        };
        assert_eq!(
            query_string(&rw, "SELECT CAST(COUNT(*) AS TEXT) FROM console_audit_log").await,
            audit_rows,
            "{url}"
        );
        let n = rw.audit_verify().await.unwrap().expect("chain intact");
        assert_eq!(n.to_string(), audit_rows);
    });
}
