//! Faults with real `raxx-console serve` processes (issue 8, docs/reliability.md), on
//! SQLite and PostgreSQL: SIGKILL in the middle of key rotations and of promotion
//! approvals leaves no change without its audit row (and none the other way), and a
//! read-only database is refused at start-up with one clear line.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use raxx_core::Env;
use raxx_store::Store;
use raxx_store::testing::{database_urls, exec, sqlite_url};
use serde_json::{Value, json};

use crate::support::*;

const STAGING_APPS: &str = "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n\n[[apps]]\nname = \"raxx-web-staging\"\nenv = \"staging\"\n";

/// Wait until every counter reached `n` (the loops are well under way), at most 10 s.
async fn wait_for(progress: &[Arc<AtomicI64>], n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while progress.iter().any(|p| p.load(Ordering::SeqCst) < n) {
        assert!(Instant::now() < deadline, "the loops made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// SIGKILL a staging instance while two operators' loops rotate two keys (grace 0, so
/// each rotation's new key is rotated next), restart it, and check that every new key
/// has its `token.rotate` row and every row its key, one current key per lineage.
#[tokio::test]
async fn reliability_kill_9_during_key_rotations_leaves_no_key_without_its_audit_row() {
    for db in database_urls().await {
        let dir = tempdir("rotate");
        let port = free_port();
        let cfg = config(&dir, "staging", port, &db, STAGING_APPS);
        let console = spawn(cfg.clone(), port, "staging").await;
        let store = Store::connect(&db, Env::Staging).await.expect("connect");
        let apps = ["raxx-api-staging", "raxx-web-staging"];
        let alice = console.login("alice@raxx.test").await;
        let mut writers = Vec::new();
        let mut progress = Vec::new();
        for app in apps {
            last_line(&cli(
                &["keys", "create", "--app", app, "--kind", "client"],
                &cfg,
            ));
            let first = count(
                &store,
                &format!("SELECT MAX(id) FROM console_app_keys WHERE app = '{app}'"),
            )
            .await;
            let (client, url, who) = (console.client(), console.url(""), alice.clone());
            let done = Arc::new(AtomicI64::new(0));
            progress.push(done.clone());
            writers.push(tokio::spawn(async move {
                let (id, mut sent) = (first, 0i64);
                loop {
                    sent += 1;
                    let r = client
                        .post(format!("{url}/api/v1/tokens/key:{id}/rotate"))
                        .header("cookie", &who.0)
                        .header("x-csrf-token", &who.1)
                        .header("x-console-env", "staging")
                        .json(&json!({"grace_seconds": 0}))
                        .send()
                        .await;
                    let Ok(r) = r else {
                        return (done.load(Ordering::SeqCst), sent);
                    };
                    let status = r.status();
                    let Ok(body) = r.json::<Value>().await else {
                        return (done.load(Ordering::SeqCst), sent);
                    };
                    assert_eq!(status, 200, "{body}");
                    // The token keeps its id: the next rotation names the same one.
                    assert_eq!(body["id"], format!("key:{id}"), "{body}");
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        wait_for(&progress, 3).await;
        drop(console); // SIGKILL in the middle of the loops.
        let mut results = Vec::new();
        for w in writers {
            results.push(w.await.expect("writer"));
        }
        let port2 = free_port();
        let console = spawn(
            config(&dir, "staging", port2, &db, STAGING_APPS),
            port2,
            "staging",
        )
        .await;
        for (app, (ok, sent)) in apps.iter().zip(results) {
            let rotated = count(&store, &format!("SELECT COUNT(*) FROM console_app_keys WHERE app = '{app}' AND rotated_from IS NOT NULL")).await;
            let audited = count(&store, &format!("SELECT COUNT(*) FROM console_audit_log WHERE action = 'token.rotate' AND outcome = 'allowed' AND target_app = '{app}'")).await;
            assert!(
                rotated >= ok && rotated <= sent,
                "{db} {app}: {ok} ok, {sent} sent, {rotated} rotated"
            );
            assert_eq!(rotated, audited, "{db} {app}: keys vs token.rotate rows");
            let current = count(&store, &format!("SELECT COUNT(*) FROM console_app_keys k WHERE app = '{app}' AND revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM console_app_keys n WHERE n.rotated_from = k.id)")).await;
            assert_eq!(current, 1, "{db} {app}: current keys of the lineage");
        }
        for (sql, what) in [
            (
                // A token keeps its id across rotations (issue 17): rows name the token
                // (`key:<token_id>`), so new versions and rows are matched per token.
                "SELECT COUNT(*) FROM (SELECT token_id, COUNT(*) AS n FROM console_app_keys WHERE rotated_from IS NOT NULL GROUP BY token_id) v WHERE v.n <> (SELECT COUNT(*) FROM console_audit_log a WHERE a.action = 'token.rotate' AND a.outcome = 'allowed' AND a.target_id = 'key:' || CAST(v.token_id AS TEXT))",
                "a new key version without its token.rotate row",
            ),
            (
                "SELECT COUNT(*) FROM console_audit_log a WHERE a.action = 'token.rotate' AND a.outcome = 'allowed' AND NOT EXISTS (SELECT 1 FROM console_app_keys k WHERE k.rotated_from IS NOT NULL AND 'key:' || CAST(k.token_id AS TEXT) = a.target_id)",
                "a token.rotate row without its new key version",
            ),
            (
                "SELECT COUNT(*) - COUNT(DISTINCT rotated_from) FROM console_app_keys WHERE rotated_from IS NOT NULL",
                "a key rotated twice",
            ),
        ] {
            assert_eq!(count(&store, sql).await, 0, "{db}: {what}");
        }
        audit_verify(&console.cfg);
    }
}

fn many_flags(app: &str, n: usize) -> String {
    let mut s = format!("app = \"{app}\"\n");
    for i in 0..n {
        s.push_str(&format!("\n[flags.f{i}]\ntype = \"string\"\nvariants = {{ light = \"light\", dark = \"dark\" }}\ndefault = \"dark\"\n"));
    }
    s
}

/// A prod instance (SQLite or PostgreSQL) with a staging source; alice queues one
/// promotion per flag, bob approves them in a loop; SIGKILL mid-loop, restart: every
/// applied promotion has its history and audit rows, every flag its applied promotion.
#[tokio::test]
async fn reliability_kill_9_during_promotion_approvals_leaves_no_half_applied_promotion() {
    const FLAGS: usize = 40;
    for db in database_urls().await {
        let dir = tempdir("promo-kill");
        let staging = start(&dir, "staging", &sqlite_url(), STAGING_APPS).await;
        let file = dir.join("raxx-api-staging.flags.toml");
        std::fs::write(&file, many_flags("raxx-api-staging", FLAGS)).unwrap();
        last_line(&cli(
            &["flags", "apply", file.to_str().unwrap()],
            &staging.cfg,
        ));
        let read = last_line(&cli(
            &[
                "keys",
                "create",
                "--app",
                "raxx-api-staging",
                "--kind",
                "read",
            ],
            &staging.cfg,
        ));
        let extra = format!(
            "staging_source_url = \"http://staging.localhost:{}\"\nstaging_source_key = \"{read}\"\n\n[[apps]]\nname = \"raxx-api-prod\"\nenv = \"prod\"\npromote_from = \"raxx-api-staging\"\n",
            staging.port
        );
        let prod = start(&dir, "prod", &db, &extra).await;
        let alice = prod.login("alice@raxx.test").await;
        let bob = prod.login("bob@raxx.test").await;
        let mut ids = Vec::new();
        for i in 0..FLAGS {
            let (s, q) = prod
                .post(
                    &alice,
                    "prod",
                    "/api/v1/promotions",
                    json!({"app": "raxx-api-prod", "flags": [format!("f{i}")], "reason": "kill"}),
                )
                .await;
            assert_eq!(s, 201, "{q}");
            ids.push(q["id"].as_i64().unwrap());
        }
        let done = Arc::new(AtomicI64::new(0));
        let (client, url, who, d) = (prod.client(), prod.url(""), bob.clone(), done.clone());
        let approver = tokio::spawn(async move {
            let mut sent = 0i64;
            for id in ids {
                sent += 1;
                let r = client
                    .post(format!("{url}/api/v1/promotions/{id}/approve"))
                    .header("cookie", &who.0)
                    .header("x-csrf-token", &who.1)
                    .header("x-console-env", "prod")
                    .json(&json!({}))
                    .send()
                    .await;
                let Ok(r) = r else {
                    return (d.load(Ordering::SeqCst), sent);
                };
                let status = r.status();
                let Ok(body) = r.json::<Value>().await else {
                    return (d.load(Ordering::SeqCst), sent);
                };
                assert_eq!(status, 200, "{body}");
                d.fetch_add(1, Ordering::SeqCst);
            }
            panic!("all {FLAGS} approvals finished before the kill");
        });
        wait_for(&[done], 3).await;
        let cfg = prod.cfg.clone();
        drop(prod); // SIGKILL in the middle of the approvals.
        let (ok, sent) = approver.await.expect("approver");
        let port2 = free_port();
        let prod = spawn(config(&dir, "prod", port2, &db, &extra), port2, "prod").await;
        let store = Store::connect(&db, Env::Prod).await.expect("connect");
        let applied = count(
            &store,
            "SELECT COUNT(*) FROM console_flag_promotions WHERE status = 'applied'",
        )
        .await;
        assert!(
            applied >= ok && applied <= sent,
            "{db}: {ok} ok, {sent} sent, {applied} applied"
        );
        for (sql, want) in [
            (
                "SELECT COUNT(*) FROM console_flag_promotions WHERE status NOT IN ('applied', 'pending')",
                0,
            ),
            (
                "SELECT COUNT(*) FROM console_audit_log WHERE action = 'flag.promotion.apply' AND outcome = 'allowed'",
                applied,
            ),
            (
                "SELECT COUNT(*) FROM console_audit_log WHERE action = 'flag.promotion.approve' AND outcome = 'allowed'",
                applied,
            ),
            ("SELECT COUNT(*) FROM console_flag_approvals", applied),
            (
                "SELECT COUNT(*) FROM console_flag_history WHERE via = 'promotion'",
                applied,
            ),
            ("SELECT COUNT(*) FROM console_flag_history", applied),
            (
                "SELECT COUNT(*) FROM console_flags WHERE app = 'raxx-api-prod'",
                applied,
            ),
            // Applied without its history or audit row.
            (
                "SELECT COUNT(*) FROM console_flag_promotions p WHERE p.status = 'applied' AND (NOT EXISTS (SELECT 1 FROM console_flag_history h WHERE h.promotion_id = p.id) OR NOT EXISTS (SELECT 1 FROM console_audit_log a WHERE a.action = 'flag.promotion.apply' AND a.target_id = CAST(p.id AS TEXT)))",
                0,
            ),
            // A flag change without its promotion applied.
            (
                "SELECT COUNT(*) FROM console_flag_history h WHERE NOT EXISTS (SELECT 1 FROM console_flag_promotions p WHERE p.id = h.promotion_id AND p.status = 'applied')",
                0,
            ),
            (
                "SELECT COUNT(*) FROM console_flags f WHERE NOT EXISTS (SELECT 1 FROM console_flag_history h WHERE h.app = f.app AND h.flag_key = f.flag_key AND h.version = f.version)",
                0,
            ),
        ] {
            assert_eq!(count(&store, sql).await, want, "{db}: {sql}");
        }
        // The survivors are still pending and can be approved after the restart.
        let bob = prod.login("bob@raxx.test").await;
        let next = count(
            &store,
            "SELECT MIN(id) FROM console_flag_promotions WHERE status = 'pending'",
        )
        .await;
        let (s, body) = prod
            .post(
                &bob,
                "prod",
                &format!("/api/v1/promotions/{next}/approve"),
                json!({}),
            )
            .await;
        assert_eq!(s, 200, "{db}: {body}");
        audit_verify(&cfg);
    }
}

/// `serve` on a read-only database (SQLite `mode=ro`; PostgreSQL with
/// `default_transaction_read_only`) refuses to start with one line that says so, and
/// leaves the database as it was.
#[tokio::test]
async fn reliability_serve_on_a_read_only_database_fails_with_one_clear_line() {
    for db in database_urls().await {
        let dir = tempdir("ro");
        let rw = config(&dir, "staging", free_port(), &db, STAGING_APPS);
        last_line(&cli(&["migrate"], &rw));
        let store = Store::connect(&db, Env::Staging).await.expect("connect");
        let (ro_url, name) = if db.starts_with("sqlite:") {
            (format!("{db}?mode=ro"), None)
        } else {
            let name = db.rsplit('/').next().unwrap().to_string();
            exec(
                &store,
                &format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
            )
            .await;
            (db.clone(), Some(name))
        };
        let rows = count(&store, "SELECT COUNT(*) FROM console_audit_log").await;
        let out = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
            .args(["serve", "--config"])
            .arg(config(&dir, "staging", free_port(), &ro_url, STAGING_APPS))
            .env("NO_COLOR", "1")
            .output()
            .expect("serve");
        assert!(
            !out.status.success(),
            "{db}: serve started on a read-only database"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{db}: {stderr}");
        assert!(
            errors[0].contains("is read-only") && !errors[0].contains("code: 8"),
            "{db}: {stderr}"
        );
        if let Some(name) = name {
            exec(
                &store,
                &format!("ALTER DATABASE {name} RESET default_transaction_read_only"),
            )
            .await;
        }
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM console_audit_log").await,
            rows
        );
        audit_verify(&rw);
    }
}

/// One failed CLI command: exactly one `error` line on stderr, and it says `needle`
/// without sqlx's codes and wrapping.
fn assert_one_error_line(out: &std::process::Output, needle: &str, what: &str) {
    assert!(!out.status.success(), "{what}: succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{what}: {stderr}");
    assert!(
        errors[0].contains(needle)
            && !errors[0].contains("code:")
            && !errors[0].contains("error returned from database"),
        "{what}: {stderr}"
    );
}

/// The CLI's other commands on a read-only database (SQLite `mode=ro`; PostgreSQL with
/// `default_transaction_read_only`): the ones that write (`migrate` when there is
/// something to migrate, `login-link`, `keys create`) exit non-zero with one line saying
/// the database is read-only; `audit verify` and `audit export` only read, so they work.
#[tokio::test]
async fn reliability_cli_commands_on_a_read_only_database_say_so_in_one_line_or_just_read() {
    for db in database_urls().await {
        let dir = tempdir("ro-cli");
        let rw = config(&dir, "staging", free_port(), &db, STAGING_APPS);
        last_line(&cli(&["migrate"], &rw));
        last_line(&cli(
            &[
                "keys",
                "create",
                "--app",
                "raxx-api-staging",
                "--kind",
                "client",
            ],
            &rw,
        ));
        let store = Store::connect(&db, Env::Staging).await.expect("connect");
        // A database with nothing migrated yet, read-only too (SQLite: an empty file).
        let empty = sqlite_url();
        Store::connect(&empty, Env::Staging)
            .await
            .expect("create the empty file")
            .close()
            .await;
        let rows = count(&store, "SELECT COUNT(*) FROM console_audit_log").await;
        let keys = count(&store, "SELECT COUNT(*) FROM console_app_keys").await;
        // PostgreSQL: switched from the server's own database, so that no connection of
        // the test's is read-only when it switches back.
        let admin = match std::env::var("RAXX_TEST_PG") {
            Ok(base) if !db.starts_with("sqlite:") => {
                Some(Store::connect(&base, Env::Staging).await.expect("connect"))
            }
            _ => None,
        };
        let (ro_url, empty_ro_url, name) = if db.starts_with("sqlite:") {
            (format!("{db}?mode=ro"), format!("{empty}?mode=ro"), None)
        } else {
            let name = db.rsplit('/').next().unwrap().to_string();
            exec(
                admin.as_ref().unwrap(),
                &format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
            )
            .await;
            // PostgreSQL refuses even the migrator's `CREATE TABLE IF NOT EXISTS`.
            (db.clone(), db.clone(), Some(name))
        };
        let ro = config(&dir, "staging", free_port(), &ro_url, STAGING_APPS);
        let empty_ro = config(&dir, "staging", free_port(), &empty_ro_url, STAGING_APPS);
        let run = |args: &[&str], cfg: &std::path::Path| {
            Command::new(env!("CARGO_BIN_EXE_raxx-console"))
                .args(args)
                .arg("--config")
                .arg(cfg)
                .env("NO_COLOR", "1")
                .output()
                .expect("raxx-console")
        };

        let migrate = run(&["migrate"], &empty_ro);
        assert_one_error_line(&migrate, "is read-only", &format!("{db}: migrate"));
        let login = run(&["login-link", "--email", "alice@raxx.test"], &ro);
        assert_one_error_line(&login, "is read-only", &format!("{db}: login-link"));
        let key = run(
            &[
                "keys",
                "create",
                "--app",
                "raxx-api-staging",
                "--kind",
                "client",
            ],
            &ro,
        );
        assert_one_error_line(&key, "is read-only", &format!("{db}: keys create"));
        assert!(
            String::from_utf8_lossy(&key.stderr).contains(&format!(
                "error: the database {} is read-only: ",
                raxx_store::redact_url(&ro_url)
            )),
            "{db}: names the database: {}",
            String::from_utf8_lossy(&key.stderr)
        );

        // Reading works on the read-only database.
        let verify = run(&["audit", "verify"], &ro);
        let text = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success() && text.contains("audit chain intact"),
            "{db}: audit verify: {text}{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let export = run(&["audit", "export"], &ro);
        assert!(export.status.success(), "{db}: audit export");
        assert_eq!(
            String::from_utf8_lossy(&export.stdout).lines().count() as i64,
            rows,
            "{db}: audit export"
        );

        if let (Some(name), Some(admin)) = (name, admin) {
            exec(
                &admin,
                &format!("ALTER DATABASE {name} RESET default_transaction_read_only"),
            )
            .await;
            admin.close().await;
        }
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM console_audit_log").await,
            rows,
            "{db}: nothing written"
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM console_app_keys").await,
            keys
        );
        store.close().await;
        audit_verify(&rw);
    }
}

/// SIGTERM while `serve` runs a job every second and answers requests: it exits 0 within
/// its shutdown grace, no run is left `running`, every lease is released, and the audit
/// chain is intact.
#[tokio::test]
async fn reliability_sigterm_stops_serve_cleanly_with_no_run_or_lease_left_behind() {
    const JOBS: &str = "[jobs.session-purge]\nschedule = \"* * * * * *\"\n[jobs.status-poll]\nschedule = \"0 0 0 1 1 *\"\nenabled = false\n[jobs.token-rotation-sweep]\nschedule = \"0 0 0 1 1 *\"\nenabled = false\n[jobs.promotion-expiry]\nschedule = \"0 0 0 1 1 *\"\nenabled = false\n[jobs.audit-digest]\nschedule = \"0 0 0 1 1 *\"\nenabled = false\n[jobs.notify-delivery]\nschedule = \"0 0 0 1 1 *\"\nenabled = false\n";
    for db in database_urls().await {
        let dir = tempdir("sigterm");
        let mut console = start(&dir, "staging", &db, &format!("{STAGING_APPS}{JOBS}")).await;
        let store = Store::connect(&db, Env::Staging).await.expect("connect");
        let runs = "SELECT COUNT(*) FROM console_job_runs WHERE job = 'session-purge'";
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&store, runs).await < 2 {
            assert!(Instant::now() < deadline, "{db}: no job runs");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Requests keep coming while the signal arrives.
        let (client, url) = (console.client(), console.url("/readyz"));
        let load = tokio::spawn(async move {
            let mut ok = 0;
            while client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                ok += 1;
            }
            ok
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = Command::new("kill")
            .args(["-TERM", &console.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(25);
        let status = loop {
            if let Some(status) = console.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "{db}: serve did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(status.success(), "{db}: serve exited with {status}");
        assert!(load.await.unwrap() > 0);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM console_job_runs WHERE outcome = 'running'"
            )
            .await,
            0,
            "{db}: a run left running"
        );
        assert_eq!(
            store.unreleased_leases().await.unwrap(),
            0,
            "{db}: a lease left held"
        );
        store.close().await;
        audit_verify(&console.cfg);
    }
}
