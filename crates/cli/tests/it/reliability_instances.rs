//! Reliability with real `raxx-console serve` processes (issue 8, docs/reliability.md):
//! three instances on one PostgreSQL run each scheduled job tick once; a promotion approved
//! at the same moment on two instances applies once; an instance killed with SIGKILL in
//! the middle of flags applies leaves no change without its audit row (both backends).

use std::time::{Duration, Instant};

use raxx_core::Env;
use raxx_store::Store;
use raxx_store::testing::{postgres_url, sqlite_url};
use serde_json::json;

use crate::support::*;

const EVERY_SECOND: &str = r#"
[jobs.session-purge]
schedule = "* * * * * *"
[jobs.status-poll]
schedule = "0 0 0 1 1 *"
enabled = false
[jobs.token-rotation-sweep]
schedule = "0 0 0 1 1 *"
enabled = false
[jobs.promotion-expiry]
schedule = "0 0 0 1 1 *"
enabled = false
[jobs.audit-digest]
schedule = "0 0 0 1 1 *"
enabled = false
[jobs.notify-delivery]
schedule = "0 0 0 1 1 *"
enabled = false
"#;

#[tokio::test]
async fn reliability_each_job_tick_runs_once_across_three_instances() {
    let Some(db) = postgres_url().await else {
        return;
    };
    let dir = tempdir("ticks");
    let a = start(&dir, "prod", &db, EVERY_SECOND).await;
    let b = start(&dir, "prod", &db, EVERY_SECOND).await;
    let c = start(&dir, "prod", &db, EVERY_SECOND).await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let store = Store::connect(&db, Env::Prod).await.expect("connect");
    // The instances keep ticking while we count: count only the ticks before the newest
    // lease, whose run rows are all written, so the three counts see the same ticks.
    let cut = count(
        &store,
        "SELECT MAX(tick) FROM console_job_leases WHERE job = 'session-purge'",
    )
    .await;
    let of_session_purge = format!("job = 'session-purge' AND tick < {cut}");
    let runs = format!(
        "SELECT COUNT(*) FROM console_job_runs WHERE {of_session_purge} AND run_kind = 'schedule'"
    );
    let ticks = format!(
        "SELECT COUNT(DISTINCT tick) FROM console_job_runs WHERE {of_session_purge} AND run_kind = 'schedule'"
    );
    let leases = format!("SELECT COUNT(*) FROM console_job_leases WHERE {of_session_purge}");
    let (runs_n, ticks_n) = (count(&store, &runs).await, count(&store, &ticks).await);
    assert!(runs_n >= 2, "a per-second job ran {runs_n} times in 4.5 s");
    assert_eq!(runs_n, ticks_n, "a tick ran on more than one instance");
    assert_eq!(count(&store, &leases).await, ticks_n, "one lease per tick");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM console_job_runs WHERE job <> 'session-purge' AND run_kind = 'schedule'").await,
        0,
        "disabled jobs never ran"
    );
    drop((a, b));
    audit_verify(&c.cfg);
}

const STAGING_APPS: &str = "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n\n[[apps]]\nname = \"raxx-web-staging\"\nenv = \"staging\"\n";

fn flags_file(app: &str, theme: &str) -> String {
    format!(
        "app = \"{app}\"\n\n[flags.new-checkout]\ntype = \"boolean\"\nvariants = {{ on = true, off = false }}\ndefault = \"on\"\n\n[flags.theme]\ntype = \"string\"\nvariants = {{ light = \"light\", dark = \"dark\" }}\ndefault = \"{theme}\"\n"
    )
}

#[tokio::test]
async fn reliability_a_promotion_approved_on_two_instances_at_once_applies_once() {
    let Some(db) = postgres_url().await else {
        return;
    };
    let dir = tempdir("promo");
    // The staging source: its own SQLite database, flags applied with the CLI.
    let staging = start(&dir, "staging", &sqlite_url(), STAGING_APPS).await;
    let file = dir.join("raxx-api-staging.flags.toml");
    std::fs::write(&file, flags_file("raxx-api-staging", "dark")).unwrap();
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
    let a = start(&dir, "prod", &db, &extra).await;
    let b = start(&dir, "prod", &db, &extra).await;
    let alice = a.login("alice@raxx.test").await;
    let bob = a.login("bob@raxx.test").await;
    let carol = b.login("carol@raxx.test").await;

    let mut ids = Vec::new();
    for flag in ["new-checkout", "theme"] {
        let (s, q) = a
            .post(
                &alice,
                "prod",
                "/api/v1/promotions",
                json!({"app": "raxx-api-prod", "flags": [flag], "reason": "race"}),
            )
            .await;
        assert_eq!(s, 201, "{q}");
        ids.push(q["id"].as_i64().unwrap());
    }
    for id in &ids {
        let path = format!("/api/v1/promotions/{id}/approve");
        let (x, y) = tokio::join!(
            a.post(&bob, "prod", &path, json!({})),
            b.post(&carol, "prod", &path, json!({})),
        );
        let mut statuses = [x.0, y.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{x:?} {y:?}");
        let loser = if x.0 == 409 { &x.1 } else { &y.1 };
        assert_eq!(loser["error"], "not_pending", "{loser}");
    }
    let store = Store::connect(&db, Env::Prod).await.expect("connect");
    for (sql, want) in [
        (
            "SELECT COUNT(*) FROM console_audit_log WHERE action = 'flag.promotion.apply' AND outcome = 'allowed'",
            2,
        ),
        (
            "SELECT COUNT(*) FROM console_audit_log WHERE action = 'flag.promotion.approve' AND outcome = 'allowed'",
            2,
        ),
        (
            "SELECT COUNT(*) FROM console_flag_history WHERE via = 'promotion'",
            2,
        ),
        ("SELECT COUNT(*) FROM console_flag_approvals", 2),
        (
            "SELECT COUNT(*) FROM console_flag_promotions WHERE status = 'applied'",
            2,
        ),
    ] {
        assert_eq!(count(&store, sql).await, want, "{sql}");
    }
    audit_verify(&a.cfg);
}

/// SIGKILL a staging instance while two writers apply flags files in a loop, restart it,
/// and check that every change has exactly its audit row and the chain is intact.
#[tokio::test]
async fn reliability_kill_9_during_flags_applies_leaves_no_change_without_its_audit_row() {
    let mut dbs = vec![sqlite_url()];
    dbs.extend(postgres_url().await);
    for db in dbs {
        let dir = tempdir("kill");
        let port = free_port();
        let cfg = config(&dir, "staging", port, &db, STAGING_APPS);
        let console = spawn(cfg.clone(), port, "staging").await;
        let apps = ["raxx-api-staging", "raxx-web-staging"];
        let mut writers = Vec::new();
        for app in apps {
            let key = last_line(&cli(
                &["keys", "create", "--app", app, "--kind", "deploy"],
                &cfg,
            ));
            let client = console.client();
            let url = console.url(&format!("/api/v1/apps/{app}/flags"));
            writers.push(tokio::spawn(async move {
                // Sequential, alternating files: every committed apply changes `theme`.
                let mut ok = 0i64;
                let mut sent = 0i64;
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    let theme = if sent % 2 == 0 { "dark" } else { "light" };
                    sent += 1;
                    match client
                        .put(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/toml")
                        .body(flags_file(app, theme))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => ok += 1,
                        Ok(r) => panic!("apply answered {}", r.status()),
                        Err(_) => return (ok, sent),
                    }
                }
                panic!("the instance was never killed");
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        drop(console); // SIGKILL: the process gets no chance to finish anything.
        let mut results = Vec::new();
        for w in writers {
            results.push(w.await.expect("writer"));
        }
        // Restart on the same database: it starts, and the state is whole.
        let port2 = free_port();
        let console = spawn(
            config(&dir, "staging", port2, &db, STAGING_APPS),
            port2,
            "staging",
        )
        .await;
        let store = Store::connect(&db, Env::Staging).await.expect("connect");
        for (app, (ok, sent)) in apps.iter().zip(results) {
            assert!(ok >= 2, "{app}: only {ok} applies before the kill");
            let audited = count(&store, &format!("SELECT COUNT(*) FROM console_audit_log WHERE action = 'flag.apply' AND outcome = 'allowed' AND target_app = '{app}'")).await;
            let changes = count(&store, &format!("SELECT COUNT(*) FROM console_flag_history WHERE app = '{app}' AND flag_key = 'theme'")).await;
            let version = count(
                &store,
                &format!(
                    "SELECT version FROM console_flags WHERE app = '{app}' AND flag_key = 'theme'"
                ),
            )
            .await;
            // Every answered apply is there; at most the one in flight at the kill is too.
            assert!(
                audited >= ok && audited <= sent,
                "{app}: {ok} ok, {sent} sent, {audited} audited"
            );
            assert_eq!(
                changes, audited,
                "{app}: a change without its audit row, or the reverse"
            );
            assert_eq!(version, changes, "{app}: versions follow history");
        }
        audit_verify(&console.cfg);
    }
}
