//! TLS to PostgreSQL, and failing fast on what cannot heal (issue 13, docs/deploy.md),
//! against a real server this test starts: `ssl=on` with a throwaway CA, and a
//! pg_hba.conf that rejects every plaintext TCP connection (`hostnossl … reject`) as
//! Heroku Postgres, RDS with `rds.force_ssl` and the like do. Without initdb/openssl the
//! test is skipped with a message — under `CI=true` it fails.
//!
//! One cluster for every case (initdb is the slow part on a shared machine); each case is
//! a named function run in turn.

use std::time::Duration;

use raxx_core::Env;
use raxx_core::config::CustomersConfig;
use raxx_store::Store;
use raxx_store::customers::CustomerDb;

use crate::deploy::*;

/// What "fail fast" means here: the process is done within this, on a busy machine.
const FAST: Duration = Duration::from_secs(5);

fn migrate(url: &str) -> (std::process::Output, Duration) {
    let dir = tempdir("tls-cfg");
    let cfg = dir.join("console.toml");
    std::fs::write(
        &cfg,
        "public_url = \"http://staging.localhost:1\"\nadmin_emails = [\"alice@raxx.test\"]\n",
    )
    .expect("config");
    console(
        &["migrate", "--config", cfg.to_str().expect("utf-8 path")],
        &[("DATABASE_URL", url)],
    )
}

fn migrated(url: &str) {
    let (out, _) = migrate(url);
    assert!(
        out.status.success(),
        "migrate {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("migrated"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `migrate` ends at once with one line containing every `want`.
fn refused_fast(url: &str, want: &[&str]) -> String {
    let (out, took) = migrate(url);
    let line = error_line(&out);
    assert!(took < FAST, "took {took:?} to refuse {url}: {line}");
    for w in want {
        assert!(line.contains(w), "{url}: want `{w}` in: {line}");
    }
    line
}

async fn uses_tls(url: &str) -> bool {
    let store = Store::connect(url, Env::Staging).await.expect("connect");
    let on = raxx_store::testing::query_string(
        &store,
        "SELECT CAST(ssl AS TEXT) FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await;
    store.close().await;
    on == "true"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls() {
    let Some(pg) = TlsCluster::create("tls") else {
        return;
    };
    let ca = pg.pki.ca.display().to_string();
    require_connects_without_a_root_certificate(&pg).await;
    verify_full_connects_to_the_name_on_the_certificate(&pg, &ca).await;
    verify_full_refuses_a_certificate_for_another_name(&pg, &ca);
    verify_full_refuses_a_certificate_from_another_ca(&pg);
    plaintext_is_refused_at_once(&pg);
    a_wrong_password_or_unknown_database_is_refused_at_once(&pg);
    the_customers_database_speaks_tls_too(&pg, &ca).await;
}

async fn require_connects_without_a_root_certificate(pg: &TlsCluster) {
    // Heroku's DATABASE_URL: self-signed server certificate, sslmode=require.
    let url = pg.url("127.0.0.1", "console", "sslmode=require");
    migrated(&url);
    assert!(uses_tls(&url).await, "sslmode=require must encrypt");
    // The default (prefer) upgrades to TLS where the server offers it.
    assert!(uses_tls(&pg.url("localhost", "console", "")).await);
}

async fn verify_full_connects_to_the_name_on_the_certificate(pg: &TlsCluster, ca: &str) {
    let url = pg.url(
        "localhost",
        "console",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    migrated(&url);
    assert!(uses_tls(&url).await);
    // verify-ca checks the chain, not the name; require + a root certificate is verify-ca.
    migrated(&pg.url(
        "127.0.0.1",
        "console",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ));
    migrated(&pg.url(
        "127.0.0.1",
        "console",
        &format!("sslmode=require&sslrootcert={ca}"),
    ));
}

fn verify_full_refuses_a_certificate_for_another_name(pg: &TlsCluster, ca: &str) {
    // The certificate names `localhost`; connecting as 127.0.0.1 is another name.
    let line = refused_fast(
        &pg.url(
            "127.0.0.1",
            "console",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &["TLS handshake", "certificate", "127.0.0.1", "sslmode"],
    );
    assert!(
        line.contains("cannot open the database postgres://"),
        "{line}"
    );
}

fn verify_full_refuses_a_certificate_from_another_ca(pg: &TlsCluster) {
    let dir = tempdir("other-ca");
    let Some(other) = Pki::create(&dir, "other-ca") else {
        return;
    };
    refused_fast(
        &pg.url(
            "localhost",
            "console",
            &format!("sslmode=verify-full&sslrootcert={}", other.ca.display()),
        ),
        &["TLS handshake", "certificate"],
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn plaintext_is_refused_at_once(pg: &TlsCluster) {
    refused_fast(
        &pg.url("127.0.0.1", "console", "sslmode=disable"),
        &["pg_hba.conf", "sslmode=require"],
    );
}

fn a_wrong_password_or_unknown_database_is_refused_at_once(pg: &TlsCluster) {
    let url = format!(
        "postgres://pwuser:wrong-password@127.0.0.1:{}/console?sslmode=require",
        pg.port
    );
    let line = refused_fast(&url, &["password", "check the user and password"]);
    assert!(!line.contains("wrong-password"), "password leaked: {line}");
    migrated(&format!(
        "postgres://pwuser:right-password@127.0.0.1:{}/console?sslmode=require",
        pg.port
    ));
    refused_fast(
        &pg.url("127.0.0.1", "no_such_db", "sslmode=require"),
        &["no_such_db", "does not exist", "database name"],
    );
}

async fn the_customers_database_speaks_tls_too(pg: &TlsCluster, ca: &str) {
    let url = pg.url(
        "localhost",
        "customers",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let seed = Store::connect(&url, Env::Staging).await.expect("connect");
    raxx_store::testing::exec(
        &seed,
        "CREATE TABLE customers (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL)",
    )
    .await;
    raxx_store::testing::exec(
        &seed,
        "INSERT INTO customers VALUES (1, 'dana@example.test', 'Dana', 'active', 0)",
    )
    .await;
    seed.close().await;
    let console_url = pg.url("localhost", "console", "sslmode=require");
    let cfg = |database_url: String| CustomersConfig {
        database_url,
        table: "customers".into(),
        columns: Default::default(),
    };
    let db = CustomerDb::open(&console_url, Env::Staging, Some(&cfg(url.clone()))).expect("open");
    let found = db.search("dana", 0, 10).await.expect("search over TLS");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].email, "dana@example.test");

    // The wrong name on the certificate: the page says what to fix, in one line.
    let wrong = pg.url(
        "127.0.0.1",
        "customers",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let db = CustomerDb::open(&console_url, Env::Staging, Some(&cfg(wrong))).expect("open");
    let e = db
        .search("", 0, 10)
        .await
        .expect_err("wrong name")
        .to_string();
    assert!(
        e.contains("TLS handshake") && e.contains("[customers] database_url"),
        "{e}"
    );
    // Plaintext to a TLS-only server.
    let plain = pg.url("127.0.0.1", "customers", "sslmode=disable");
    let db = CustomerDb::open(&console_url, Env::Staging, Some(&cfg(plain))).expect("open");
    let e = db
        .search("", 0, 10)
        .await
        .expect_err("plaintext")
        .to_string();
    assert!(e.contains("pg_hba.conf") && !e.contains('\n'), "{e}");
    // Bad options stop the start, naming the setting.
    let e = CustomerDb::open(
        &console_url,
        Env::Staging,
        Some(&cfg(pg.url("localhost", "customers", "sslmode=on"))),
    )
    .expect_err("bad sslmode");
    assert!(
        e.starts_with("[customers] database_url: unknown sslmode `on`"),
        "{e}"
    );
}

/// Only what can heal is retried: with nothing listening yet, `migrate` keeps trying
/// (and says so) instead of giving up.
#[test]
fn a_database_that_is_not_up_yet_is_waited_for() {
    let dir = tempdir("wait");
    let cfg = dir.join("console.toml");
    std::fs::write(&cfg, "public_url = \"http://staging.localhost:1\"\n").expect("config");
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["migrate", "--config"])
        .arg(&cfg)
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{port}/console?sslmode=require"),
        )
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).expect("log"))
        .spawn()
        .expect("spawn migrate");
    std::thread::sleep(Duration::from_secs(4));
    let still_trying = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    assert!(still_trying, "gave up on a refused connection: {log}");
    assert!(log.contains("retrying"), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}
