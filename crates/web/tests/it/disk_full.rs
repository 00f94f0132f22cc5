//! A database with no space left (issue 8, docs/reliability.md): a write is refused with
//! `503 {"error":"storage_full"}`, nothing is changed, reads (OFREP) go on, the database
//! is not corrupted, and writes work again once there is space.
//!
//! SQLite reports a full disk as `SQLITE_FULL`, and so it does when the file would grow
//! past `PRAGMA max_page_count`: the test pins that limit at the file's current size on
//! every connection of the console's own pool (the pragma is per connection), which is
//! a full disk as far as SQLite and the console can tell, without a test-only knob in
//! the console. "Freeing space" lifts the limit again. PostgreSQL's `disk_full` (SQLSTATE
//! 53100) goes through the same classification (`StoreError::is_storage_full`); the second
//! test checks that mapping with the SQLSTATE PostgreSQL sends.

use std::borrow::Cow;

use axum::response::IntoResponse;
use raxx_core::Env;
use raxx_store::StoreError;
use raxx_store::testing::query_string;
use raxx_testkit::{TestConsole, sqlite_url};
use raxx_web::kernel::error::AppError;
use serde_json::{Value, json};
use sqlx::Any;
use sqlx::pool::PoolConnection;

const APP: &str = "raxx-api-staging";

/// A flags file with `n` string flags of about 1 KB each (the new rows need new pages).
fn big_flags(n: usize, tag: &str) -> Value {
    let mut flags = serde_json::Map::new();
    for i in 0..n {
        flags.insert(
            format!("flag-{i}"),
            json!({
                "type": "string",
                "variants": {"a": format!("{tag}-{i}-{}", "x".repeat(1000)), "b": "short"},
                "default": "a",
            }),
        );
    }
    json!({"app": APP, "flags": flags})
}

/// `PUT` a flags file with the deploy key.
async fn put_flags(
    c: &TestConsole,
    deploy_key: &str,
    file: Value,
) -> reqwest::Result<reqwest::Response> {
    c.client()
        .put(c.url(&format!("/api/v1/apps/{APP}/flags")))
        .bearer_auth(deploy_key)
        .json(&file)
        .send()
        .await
}

/// `flag-0`'s value through OFREP (which must answer 200).
async fn flag_0(c: &TestConsole, client_key: &str) -> String {
    let r = c
        .client()
        .post(c.url("/ofrep/v1/evaluate/flags/flag-0"))
        .bearer_auth(client_key)
        .json(&json!({"context": {"targetingKey": "u1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every connection the pool may open, held at once (so each one gets the pragma).
async fn all_connections(c: &TestConsole) -> Vec<PoolConnection<Any>> {
    let pool = c.store().pool();
    let mut conns = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        conns.push(pool.acquire().await.expect("acquire"));
    }
    conns
}

/// `PRAGMA max_page_count` on every pooled connection: `None` pins it at the file's
/// current size (a full disk), `Some(n)` sets it to `n`.
async fn set_max_pages(c: &TestConsole, max: Option<i64>) {
    let mut conns = all_connections(c).await;
    for conn in &mut conns {
        let max = match max {
            Some(n) => n,
            None => sqlx::query_scalar::<_, i64>("PRAGMA page_count")
                .fetch_one(&mut **conn)
                .await
                .expect("page_count"),
        };
        let set: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "PRAGMA max_page_count = {max}"
        )))
        .fetch_one(&mut **conn)
        .await
        .expect("max_page_count");
        assert_eq!(set, max);
    }
}

#[tokio::test]
async fn a_full_sqlite_database_refuses_writes_with_storage_full_and_recovers() {
    let db = sqlite_url();
    let c = TestConsole::start(
        Env::Staging,
        &db,
        "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
    )
    .await;
    let keys = c.app_keys(APP).await;
    let (client_key, deploy_key) = (keys.client, keys.deploy);
    let http = c.client();
    let apply = |file: Value| put_flags(&c, &deploy_key, file);
    let eval = || flag_0(&c, &client_key);
    let r = apply(big_flags(3, "first")).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(eval().await.starts_with("first-0-"));
    let state = || async {
        (
            query_string(c.store(), "SELECT CAST(COUNT(*) AS TEXT) FROM console_audit_log").await,
            query_string(
                c.store(),
                "SELECT CAST(SUM(version) AS TEXT) || '/' || CAST(COUNT(*) AS TEXT) FROM console_flags",
            )
            .await,
            query_string(
                c.store(),
                "SELECT CAST(COUNT(*) AS TEXT) FROM console_flag_history",
            )
            .await,
        )
    };
    let before = state().await;

    // The disk is full.
    set_max_pages(&c, None).await;
    let r = apply(big_flags(200, "second")).await.unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "storage_full", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the database has no space left")
            && message.ends_with("nothing was changed"),
        "{body}"
    );
    assert_eq!(state().await, before, "nothing was changed");
    // Reads go on: OFREP still serves the state from before.
    assert!(eval().await.starts_with("first-0-"));
    assert_eq!(
        http.get(c.url("/readyz")).send().await.unwrap().status(),
        200
    );
    // A second attempt is refused the same way (the failed one left no broken connection).
    // The pool may have replaced the connection the refused write used (`before_acquire`
    // drops one SQLite left in a transaction), and a new connection has no page limit:
    // pin every connection again, as a disk that is still full would be for all of them.
    set_max_pages(&c, None).await;
    let r = apply(big_flags(200, "second")).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(state().await, before);
    assert_eq!(
        query_string(c.store(), "PRAGMA integrity_check").await,
        "ok"
    );
    assert!(
        c.store().audit_verify().await.unwrap().is_ok(),
        "the audit chain is intact"
    );

    // Space is freed: writes work again, without a restart.
    set_max_pages(&c, Some(1_073_741_823)).await;
    // More writes than the pool has connections: none of them is left stuck by the
    // refused writes (SQLite rolled those transactions back by itself; see
    // `Store::connect`, `before_acquire`).
    for i in 0..12 {
        let r = apply(big_flags(200 - i, "second")).await.unwrap();
        assert_eq!(r.status(), 200, "write {i}: {}", r.text().await.unwrap());
    }
    assert!(eval().await.starts_with("second-0-"));
    assert_ne!(state().await, before);
    assert_eq!(
        query_string(c.store(), "PRAGMA integrity_check").await,
        "ok"
    );
    assert!(c.store().audit_verify().await.unwrap().is_ok());
}

/// What PostgreSQL sends when it cannot extend a file (`could not extend file …: No space
/// left on device`, SQLSTATE 53100).
#[derive(Debug)]
struct PgError(&'static str);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not extend file: No space left on device")
    }
}

impl std::error::Error for PgError {}

impl sqlx::error::DatabaseError for PgError {
    fn message(&self) -> &str {
        "could not extend file \"base/16384/16402\": No space left on device"
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.0))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

async fn answer(e: StoreError) -> (u16, Value) {
    let resp = AppError::from(e).into_response();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn storage_errors_of_both_databases_map_to_clear_answers() {
    let db = |code: &'static str| StoreError::Db(sqlx::Error::Database(Box::new(PgError(code))));
    // Full: PostgreSQL disk_full, SQLite SQLITE_FULL (13; extended codes keep 13 low).
    for code in ["53100", "13", "269"] {
        let (status, body) = answer(db(code)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("storage_full")),
            "{code}"
        );
    }
    assert!(db("53100").is_storage_full() && !db("53100").is_unavailable());
    // Class 53's other conditions (memory, connection slots, limits) and the server
    // shutting down or starting up: the database is unavailable for now.
    for code in [
        "53000", "53200", "53300", "53400", "57P01", "57P02", "57P03", "08006",
    ] {
        let (status, body) = answer(db(code)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("unavailable")),
            "{code}"
        );
    }
    // Read-only is still read-only, a data exception still the request's fault.
    assert_eq!(answer(db("25006")).await.1["error"], "read_only");
    assert_eq!(answer(db("1032")).await.1["error"], "read_only");
    assert_eq!(answer(db("22021")).await.1["error"], "invalid");
    // Codes that merely contain the digits are none of these.
    for code in ["1301", "5310", "42P01", "2067"] {
        let (status, _) = answer(db(code)).await;
        assert_eq!(status, 500, "{code}");
    }
}

/// A tmpfs mounted for one test, unmounted (and its folder removed) when dropped, even
/// when the test panics.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    /// A `size`-byte tmpfs owned by `owner`, or why one cannot be mounted here.
    fn mount(size: &str, owner: &str) -> Result<SmallDisk, String> {
        let dir = std::env::temp_dir().join(format!("raxx-full-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let run = |cmd: &str, args: &[&str]| -> Result<(), String> {
            let out = std::process::Command::new(cmd)
                .args(args)
                .output()
                .map_err(|e| format!("{cmd}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd} {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let path = dir.to_string_lossy().to_string();
        if let Err(e) = run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                &path,
            ],
        ) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
        let disk = SmallDisk { dir };
        run("chown", &[&format!("{owner}:{owner}"), &path])?;
        Ok(disk)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// PostgreSQL with no space left for its data files, for real: the console's database lives
/// in a tablespace on a 24 MB tmpfs, a ballast table fills it until PostgreSQL refuses to
/// extend a file (SQLSTATE 53100), then a flags apply is refused with `storage_full` and
/// changes nothing, OFREP and `/readyz` go on, and after the ballast is dropped writes work
/// again without a restart. Needs a local PostgreSQL (`RAXX_TEST_PG` on 127.0.0.1) and
/// root to mount the tmpfs; where either is missing the test says so loudly and stops
/// (docs/reliability.md).
#[tokio::test]
async fn a_full_postgresql_tablespace_refuses_writes_with_storage_full_and_recovers() {
    // Panics under CI=true when RAXX_TEST_PG is missing, like every PostgreSQL test.
    let Some(probe) = raxx_store::testing::postgres_url().await else {
        return;
    };
    let base = std::env::var("RAXX_TEST_PG").unwrap_or_default();
    if !(base.contains("@127.0.0.1") || base.contains("@localhost")) {
        eprintln!(
            "!! SKIPPED: the full-disk PostgreSQL test needs a local server (RAXX_TEST_PG={base})"
        );
        return;
    }
    let disk = match SmallDisk::mount("24m", "postgres") {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "!! SKIPPED: cannot mount a tmpfs for the full-disk PostgreSQL test ({e}); it needs root with CAP_SYS_ADMIN"
            );
            return;
        }
    };
    sqlx::any::install_default_drivers();
    let admin = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&probe)
        .await
        .expect("admin connection");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (space, dbname) = (format!("raxx_full_{id}"), format!("raxx_full_{id}"));
    let admin_exec = |sql: String| {
        let admin = admin.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&admin)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    admin_exec(format!(
        "CREATE TABLESPACE {space} LOCATION '{}'",
        disk.dir.display()
    ))
    .await;
    admin_exec(format!("CREATE DATABASE {dbname} TABLESPACE {space}")).await;
    let (prefix, _) = probe.rsplit_once('/').expect("url has a database");
    let url = format!("{prefix}/{dbname}");

    {
        let c = TestConsole::start(
            Env::Staging,
            &url,
            "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
        )
        .await;
        let keys = c.app_keys(APP).await;
        let (client_key, deploy_key) = (keys.client, keys.deploy);
        let http = c.client();
        let apply = |file: Value| put_flags(&c, &deploy_key, file);
        let eval = || flag_0(&c, &client_key);
        let r = apply(big_flags(3, "first")).await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert!(eval().await.starts_with("first-0-"));
        let flags_state = || async {
            query_string(
                c.store(),
                "SELECT CAST(SUM(version) AS TEXT) || '/' || CAST(COUNT(*) AS TEXT) || '/' || CAST((SELECT COUNT(*) FROM console_flag_history) AS TEXT) FROM console_flags",
            )
            .await
        };
        let before = flags_state().await;

        // Fill the tablespace: big rows first, then small ones, until PostgreSQL refuses.
        raxx_store::testing::exec(c.store(), "CREATE TABLE ballast (b TEXT)").await;
        raxx_store::testing::exec(
            c.store(),
            "ALTER TABLE ballast ALTER COLUMN b SET STORAGE PLAIN",
        )
        .await;
        let mut refused = None;
        for rows in [2000, 100, 1] {
            for _ in 0..10_000 {
                let fill = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO ballast SELECT repeat('x', 1500) FROM generate_series(1, {rows})"
                )))
                .execute(c.store().pool())
                .await;
                match fill {
                    Ok(_) => continue,
                    Err(sqlx::Error::Database(e)) => {
                        refused = e.code().map(|c| c.to_string());
                        break;
                    }
                    Err(e) => panic!("filling the disk: {e}"),
                }
            }
        }
        assert_eq!(
            refused.as_deref(),
            Some("53100"),
            "the tablespace filled up"
        );

        let r = apply(big_flags(200, "second")).await.unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "storage_full", "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("nothing was changed"),
            "{body}"
        );
        assert_eq!(flags_state().await, before, "nothing was changed");
        assert!(eval().await.starts_with("first-0-"), "OFREP goes on");
        assert_eq!(
            http.get(c.url("/readyz")).send().await.unwrap().status(),
            200
        );
        assert!(c.store().audit_verify().await.unwrap().is_ok());

        // Space is freed: the next write works, no restart.
        raxx_store::testing::exec(c.store(), "DROP TABLE ballast").await;
        let r = apply(big_flags(200, "second")).await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert!(eval().await.starts_with("second-0-"));
        assert_ne!(flags_state().await, before);
        assert!(c.store().audit_verify().await.unwrap().is_ok());
        c.store().pool().close().await;
    }
    admin_exec(format!("DROP DATABASE {dbname} WITH (FORCE)")).await;
    admin_exec(format!("DROP TABLESPACE {space}")).await;
    admin.close().await;
    drop(disk);
}
