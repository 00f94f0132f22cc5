//! Reliability with real `raxx-console serve` processes (issue 8, docs/reliability.md):
//! three instances on one PostgreSQL run each scheduled job tick once; a promotion approved
//! at the same moment on two instances applies once; an instance killed with SIGKILL in
//! the middle of flags applies leaves no change without its audit row (both backends).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use raxx_core::Env;
use raxx_store::Store;
use raxx_store::testing::{postgres_url, query_string, sqlite_url};
use serde_json::{Value, json};

struct Proc {
    child: Child,
    port: u16,
    cfg: PathBuf,
    host: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "raxx-rel-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// A config for one instance on `port`: public host `<env>.localhost:<port>`.
fn config(dir: &Path, env: &str, port: u16, db: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("console-{env}-{port}.toml"));
    std::fs::write(
        &path,
        format!(
            "public_url = \"http://{env}.localhost:{port}\"\nlisten = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nadmin_emails = [\"alice@raxx.test\", \"bob@raxx.test\", \"carol@raxx.test\"]\nadmin_enrol_code = \"reliability\"\n{extra}\n"
        ),
    )
    .expect("write config");
    path
}

fn cli(args: &[&str], cfg: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("run raxx-console")
}

fn last_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

async fn spawn(cfg: PathBuf, port: u16, env: &str) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let p = Proc {
        child,
        port,
        cfg,
        host: format!("{env}.localhost"),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance on {port} did not become ready");
}

async fn start(dir: &Path, env: &str, db: &str, extra: &str) -> Proc {
    let port = free_port();
    spawn(config(dir, env, port, db, extra), port, env).await
}

impl Proc {
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(&self.host, ([127, 0, 0, 1], self.port).into())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.host, self.port)
    }

    /// Sign `email` in with a break-glass link: (cookie, csrf token).
    async fn login(&self, email: &str) -> (String, String) {
        let link = last_line(&cli(&["login-link", "--email", email], &self.cfg));
        let resp = self.client().get(&link).send().await.expect("open link");
        assert_eq!(resp.status(), 303, "login link for {email}");
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let me: Value = self
            .client()
            .get(self.url("/api/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (cookie, me["csrf_token"].as_str().unwrap_or_default().into())
    }

    async fn post(
        &self,
        who: &(String, String),
        env: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .client()
            .post(self.url(path))
            .header("cookie", &who.0)
            .header("x-csrf-token", &who.1)
            .header("x-console-env", env)
            .json(&body)
            .send()
            .await
            .expect("post");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

async fn count(store: &Store, sql: &str) -> i64 {
    query_string(store, &format!("SELECT CAST(({sql}) AS TEXT)"))
        .await
        .parse()
        .expect("a count")
}

fn audit_verify(cfg: &Path) {
    let out = cli(&["audit", "verify"], cfg);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("audit chain intact"), "{text}");
}

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
    let runs = "SELECT COUNT(*) FROM console_job_runs WHERE job = 'session-purge' AND run_kind = 'schedule'";
    let ticks = "SELECT COUNT(DISTINCT tick) FROM console_job_runs WHERE job = 'session-purge' AND run_kind = 'schedule'";
    let (runs_n, ticks_n) = (count(&store, runs).await, count(&store, ticks).await);
    assert!(runs_n >= 3, "a per-second job ran {runs_n} times in 4.5 s");
    assert_eq!(runs_n, ticks_n, "a tick ran on more than one instance");
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM console_job_leases WHERE job = 'session-purge'"
        )
        .await,
        ticks_n,
        "one lease per tick"
    );
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
