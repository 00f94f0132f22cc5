//! Tamper evidence (issue 19 item 10, SPEC §6): each test first performs the attack a
//! database writer can do against the chain alone — truncate, wipe, rewrite and re-chain,
//! delete or forge checkpoints — then shows that the real `raxx-console audit verify`
//! with signed checkpoints refuses it (exit 1, naming what it found). Both databases.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{free_port, tempdir};
use raxx_core::Env;
use raxx_core::audit::{AuditEntry, AuditEvent, GENESIS_HASH, Outcome, chain_hash};
use raxx_store::Store;
use raxx_store::testing::{self, exec, query_string};

struct Run {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], cfg: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("CONSOLE_AUDIT_SIGNING_KEY")
        .env_remove("CONSOLE_AUDIT_SIGNING_KEY_FILE")
        .output()
        .expect("run raxx-console");
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

impl Run {
    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A console (config, key file, public key) on `db`, with rows written through the store.
struct Console {
    dir: PathBuf,
    cfg: PathBuf,
    public: String,
    store: Store,
    /// Every `audit_checkpoint` log line the CLI printed: the copy kept outside.
    kept: PathBuf,
}

async fn console(tag: &str, db: &str, extra: &str) -> Console {
    let dir = tempdir(tag);
    let key = dir.join("audit-key.pem");
    let cfg0 = support::config(&dir, "staging", free_port(), db, "");
    let made = run(&["audit", "keygen", "--out", key.to_str().unwrap()], &cfg0);
    assert!(made.ok, "{}", made.text());
    let public = made
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("keygen prints the public key")
        .to_string();
    let cfg = support::config(
        &dir,
        "staging",
        free_port(),
        db,
        &format!("[audit]\nsigning_key_file = \"{}\"\n{extra}", key.display()),
    );
    let printed = run(&["audit", "public-key"], &cfg);
    assert!(printed.ok, "{}", printed.text());
    assert_eq!(
        printed.stdout.trim(),
        public,
        "public-key prints the same key"
    );
    let store = Store::connect(db, Env::Staging).await.expect("connect");
    store.migrate().await.expect("migrate");
    let kept = dir.join("kept-checkpoints.log");
    std::fs::write(&kept, "").unwrap();
    Console {
        dir,
        cfg,
        public,
        store,
        kept,
    }
}

impl Console {
    async fn write_rows(&self, n: usize) {
        for i in 0..n {
            self.store
                .audit(AuditEvent::new("cli", "test.write", Outcome::Allowed).with("n", i))
                .await
                .expect("audit row");
        }
    }

    /// `audit checkpoint`, its log line appended to the outside copy (as a log shipper would).
    fn checkpoint(&self) {
        let r = run(&["audit", "checkpoint"], &self.cfg);
        assert!(r.ok, "{}", r.text());
        assert!(r.stderr.contains("audit_checkpoint"), "{}", r.text());
        let mut kept = std::fs::read_to_string(&self.kept).unwrap();
        kept.push_str(&r.stderr);
        std::fs::write(&self.kept, kept).unwrap();
    }

    fn verify(&self, with_file: bool) -> Run {
        let mut args = vec!["audit", "verify", "--public-key", self.public.as_str()];
        let kept = self.kept.to_str().unwrap().to_string();
        if with_file {
            args.extend(["--checkpoints", kept.as_str()]);
        }
        run(&args, &self.cfg)
    }

    async fn head(&self) -> (i64, String) {
        let id: i64 = query_string(
            &self.store,
            "SELECT CAST(last_id AS TEXT) FROM console_audit_head",
        )
        .await
        .parse()
        .unwrap();
        let hash = query_string(&self.store, "SELECT last_hash FROM console_audit_head").await;
        (id, hash)
    }

    /// The attacker's consistent truncation: delete rows after `keep`, move the head back.
    async fn truncate_to(&self, keep: i64) {
        exec(
            &self.store,
            &format!("DELETE FROM console_audit_log WHERE id > {keep}"),
        )
        .await;
        let hash = query_string(
            &self.store,
            &format!("SELECT hash FROM console_audit_log WHERE id = {keep}"),
        )
        .await;
        exec(
            &self.store,
            &format!("UPDATE console_audit_head SET last_id = {keep}, last_hash = '{hash}'"),
        )
        .await;
    }

    /// The attacker's consistent rewrite: change row `id`'s actor, recompute every hash
    /// from there on and the head, as anyone who can write the database can.
    async fn rewrite_and_rechain(&self, id: i64, actor: &str) {
        let mut rows: Vec<AuditEntry> = Vec::new();
        self.store
            .audit_scan(|e| {
                rows.push(e);
                Ok(())
            })
            .await
            .unwrap();
        let mut prev = GENESIS_HASH.to_string();
        for r in rows.iter_mut() {
            if r.id == id {
                r.event.actor = actor.to_string();
            }
            if r.id >= id {
                r.prev_hash = prev.clone();
                r.hash = chain_hash(&prev, r.id, r.at, &r.event);
                exec(
                    &self.store,
                    &format!(
                        "UPDATE console_audit_log SET actor = '{}', prev_hash = '{}', hash = '{}' WHERE id = {}",
                        r.event.actor, r.prev_hash, r.hash, r.id
                    ),
                )
                .await;
            }
            prev = r.hash.clone();
        }
        exec(
            &self.store,
            &format!("UPDATE console_audit_head SET last_hash = '{prev}'"),
        )
        .await;
    }
}

fn assert_fails(r: &Run, want: &str) {
    assert_eq!(r.code, Some(1), "verify must exit 1:\n{}", r.text());
    assert!(r.stdout.contains(want), "want `{want}` in:\n{}", r.text());
    assert!(r.stdout.contains("audit verify FAILED"), "{}", r.text());
}

#[tokio::test]
async fn truncating_the_newest_rows_and_moving_the_head_back_is_caught_by_the_kept_checkpoints() {
    for db in testing::database_urls().await {
        let c = console("cp-trunc", &db, "").await;
        c.write_rows(12).await;
        c.checkpoint();
        c.write_rows(3).await;
        c.checkpoint();
        let ok = c.verify(true);
        assert!(ok.ok, "intact before the attack: {}", ok.text());
        assert!(
            ok.stdout.contains("rows 1..15 match signed checkpoint 2"),
            "{}",
            ok.text()
        );

        // The attack: drop the newest rows, move the head back, delete the checkpoints
        // that covered them. The chain alone is consistent again.
        c.truncate_to(8).await;
        exec(&c.store, "DELETE FROM console_audit_checkpoints").await;
        assert_eq!(
            c.store.audit_verify().await.unwrap(),
            Ok(8),
            "the attack succeeds against the chain and head alone"
        );
        let db_only = c.verify(false);
        assert!(db_only.ok, "{}", db_only.text());
        assert!(
            db_only
                .stdout
                .contains("NOT PROVEN: checkpoints were read from the database only"),
            "without the kept copy verify says what it cannot prove: {}",
            db_only.text()
        );

        let r = c.verify(true);
        assert_fails(
            &r,
            "the log ends at row 8 but checkpoint 1 covers rows up to 12: rows 9..12 were deleted",
        );
        assert!(
            r.stdout.contains("is missing from the database"),
            "{}",
            r.text()
        );
    }
}

#[tokio::test]
async fn truncation_that_leaves_the_checkpoints_is_caught_from_the_database_alone() {
    for db in testing::database_urls().await {
        let c = console("cp-trunc-db", &db, "").await;
        c.write_rows(10).await;
        c.checkpoint();
        c.truncate_to(4).await;
        let r = c.verify(false);
        assert_fails(&r, "rows 5..10 were deleted");
    }
}

#[tokio::test]
async fn a_rewritten_and_rechained_old_row_is_caught_by_the_signed_checkpoint() {
    for db in testing::database_urls().await {
        let c = console("cp-rewrite", &db, "").await;
        c.write_rows(10).await;
        c.checkpoint();
        c.write_rows(5).await;
        let before = c.head().await;

        c.rewrite_and_rechain(3, "mallory").await;
        assert_ne!(
            c.head().await,
            before,
            "the head was moved to the forged chain"
        );
        assert_eq!(
            c.store.audit_verify().await.unwrap(),
            Ok(15),
            "the attack succeeds against the chain and head alone"
        );
        let r = c.verify(false);
        assert_fails(
            &r,
            "row 10 does not have the hash that signed checkpoint 1 recorded",
        );

        // Re-pointing the checkpoint at the forged hash needs the key: its signature fails.
        let forged =
            query_string(&c.store, "SELECT hash FROM console_audit_log WHERE id = 10").await;
        exec(
            &c.store,
            &format!("UPDATE console_audit_checkpoints SET last_hash = '{forged}' WHERE seq = 1"),
        )
        .await;
        let r = c.verify(false);
        assert_fails(&r, "checkpoint 1 in the database has a bad signature");
    }
}

#[tokio::test]
async fn a_wiped_log_is_caught() {
    for db in testing::database_urls().await {
        let c = console("cp-wipe", &db, "").await;
        c.write_rows(6).await;
        c.checkpoint();
        exec(&c.store, "DELETE FROM console_audit_log").await;
        exec(
            &c.store,
            &format!("UPDATE console_audit_head SET last_id = 0, last_hash = '{GENESIS_HASH}'"),
        )
        .await;
        assert_eq!(
            c.store.audit_verify().await.unwrap(),
            Ok(0),
            "an empty log with a reset head looks like a new console to the chain alone"
        );
        let r = c.verify(false);
        assert_fails(
            &r,
            "the log is empty (it was wiped) but checkpoint 1 covers rows up to 6",
        );

        // Wiping the checkpoints as well: the copy kept outside still says otherwise.
        exec(&c.store, "DELETE FROM console_audit_checkpoints").await;
        let r = c.verify(true);
        assert_fails(&r, "the log is empty (it was wiped)");
    }
}

#[tokio::test]
async fn checkpoints_deleted_from_the_database_but_kept_outside_are_missed() {
    for db in testing::database_urls().await {
        let c = console("cp-del", &db, "").await;
        c.write_rows(4).await;
        c.checkpoint();
        c.write_rows(4).await;
        c.checkpoint();
        exec(
            &c.store,
            "DELETE FROM console_audit_checkpoints WHERE seq = 1",
        )
        .await;
        let r = c.verify(false);
        assert_fails(&r, "checkpoints 1..1 were deleted");
        exec(&c.store, "DELETE FROM console_audit_checkpoints").await;
        let r = c.verify(true);
        assert_fails(&r, "checkpoint 2 (in the external file, line");
        assert!(
            r.stdout
                .contains("is missing from the database: checkpoints were deleted"),
            "{}",
            r.text()
        );
    }
}

#[tokio::test]
async fn a_checkpoint_forged_with_another_key_is_refused() {
    for db in testing::database_urls().await {
        let c = console("cp-forge", &db, "").await;
        c.write_rows(5).await;
        c.checkpoint();
        c.write_rows(5).await;
        // The attacker rewrites row 2, re-chains, drops the real checkpoint and signs the
        // forged chain with a key of their own, through the console's own CLI.
        c.rewrite_and_rechain(2, "mallory").await;
        exec(&c.store, "DELETE FROM console_audit_checkpoints").await;
        let mallory_key = c.dir.join("mallory.pem");
        let made = run(
            &["audit", "keygen", "--out", mallory_key.to_str().unwrap()],
            &c.cfg,
        );
        assert!(made.ok, "{}", made.text());
        let text = std::fs::read_to_string(&c.cfg).unwrap();
        let forger_cfg = c.dir.join("forger.toml");
        let key_line = text
            .lines()
            .find(|l| l.starts_with("signing_key_file"))
            .unwrap()
            .to_string();
        std::fs::write(
            &forger_cfg,
            text.replace(
                &key_line,
                &format!("signing_key_file = \"{}\"", mallory_key.display()),
            ),
        )
        .unwrap();
        let forged = run(&["audit", "checkpoint"], &forger_cfg);
        assert!(forged.ok, "{}", forged.text());
        // Verified with the forger's own config key it looks fine…
        let fooled = run(&["audit", "verify"], &forger_cfg);
        assert!(fooled.ok, "{}", fooled.text());
        // …but with the console's real public key it is refused.
        let r = c.verify(false);
        assert_fails(&r, "which is not among the public keys given");
        let r = c.verify(true);
        assert_fails(
            &r,
            "row 5 does not have the hash that signed checkpoint 1 recorded",
        );
        // A wrong `--public-key` value is a clear error, not a pass.
        let bad = run(&["audit", "verify", "--public-key", "ed25519:nope"], &c.cfg);
        assert!(
            !bad.ok && bad.stderr.contains("--public-key"),
            "{}",
            bad.text()
        );
    }
}

#[tokio::test]
async fn a_tampered_external_copy_is_refused() {
    for db in testing::database_urls().await {
        let c = console("cp-ext", &db, "").await;
        c.write_rows(3).await;
        c.checkpoint();
        let kept = std::fs::read_to_string(&c.kept).unwrap();
        let line = kept
            .lines()
            .find(|l| l.contains("audit_checkpoint"))
            .unwrap();
        let changed = line
            .replace("last_id=3", "last_id=2")
            .replace("rows=3", "rows=2");
        assert_ne!(changed, line);
        std::fs::write(&c.kept, format!("{changed}\n")).unwrap();
        let r = c.verify(true);
        assert_fails(&r, "in the external file, line 1 has a bad signature");
    }
}

#[tokio::test]
async fn without_a_key_verify_says_what_it_could_not_prove() {
    for db in testing::database_urls().await {
        let dir = tempdir("cp-nokey");
        let cfg = support::config(&dir, "staging", free_port(), &db, "");
        let store = Store::connect(&db, Env::Staging).await.unwrap();
        store.migrate().await.unwrap();
        store
            .audit(AuditEvent::new("cli", "test.write", Outcome::Allowed))
            .await
            .unwrap();
        let r = run(&["audit", "verify"], &cfg);
        assert!(r.ok, "an intact chain still passes: {}", r.text());
        for want in [
            "audit chain intact: 1 rows",
            "WARNING: no public key given (--public-key) and no audit signing key configured",
            "NOT PROVEN: rows 1..1",
            "NOT PROVEN: no public key was given",
        ] {
            assert!(r.stdout.contains(want), "want `{want}` in {}", r.text());
        }
        let pk = run(&["audit", "public-key"], &cfg);
        assert!(
            !pk.ok && pk.stderr.contains("no audit signing key is configured"),
            "{}",
            pk.text()
        );

        // `serve` says so at start-up, in one WARN line.
        let port = free_port();
        let cfg = support::config(&dir, "staging", port, &db, "");
        let (mut child, log) = serve(&cfg, &dir, "nokey");
        wait_ready(port).await;
        stop(&mut child).await;
        let text = std::fs::read_to_string(&log).unwrap();
        let warns: Vec<_> = text
            .lines()
            .filter(|l| l.contains("audit checkpoints are OFF"))
            .collect();
        assert_eq!(warns.len(), 1, "{text}");
        assert!(warns[0].contains("WARN"), "{text}");
    }
}

fn serve(cfg: &Path, dir: &Path, tag: &str) -> (std::process::Child, PathBuf) {
    let log = dir.join(format!("serve-{tag}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["serve", "--config"])
        .arg(cfg)
        .env_remove("CONSOLE_AUDIT_SIGNING_KEY")
        .env_remove("CONSOLE_AUDIT_SIGNING_KEY_FILE")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn serve");
    (child, log)
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve on {port} did not become ready");
}

/// SIGTERM (a graceful stop: the checkpointer signs what is left), then wait.
async fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..400 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // Not a thread sleep: the test's webhook receiver runs on this runtime.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not stop on SIGTERM");
}

/// Two `serve` processes on one database, both with the key: they write checkpoints as
/// rows arrive (never two with one seq, never one the chain disagrees with), emit each as
/// one log line and POST it to the webhook, and sign the rest at shutdown.
#[tokio::test]
async fn two_instances_write_one_coherent_series_of_checkpoints_to_the_log_and_the_webhook() {
    use std::sync::{Arc, Mutex};
    for db in testing::database_urls().await {
        // A webhook receiver on loopback that fails its first call (to exercise the retry).
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = {
            let got = got.clone();
            let calls = calls.clone();
            axum::Router::new().route(
                "/hook/s3cr3t",
                axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                    let got = got.clone();
                    let calls = calls.clone();
                    async move {
                        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        got.lock().unwrap().push(v);
                        axum::http::StatusCode::OK
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook_port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let c = console(
            "cp-multi",
            &db,
            &format!(
                "checkpoint_rows = 4\ncheckpoint_seconds = 1\ncheckpoint_webhook_url = \"http://127.0.0.1:{hook_port}/hook/s3cr3t\"\n"
            ),
        )
        .await;
        let text = std::fs::read_to_string(&c.cfg).unwrap();
        let mut procs = Vec::new();
        for tag in ["a", "b"] {
            let port = free_port();
            let cfg = c.dir.join(format!("serve-{tag}.toml"));
            let listen = text
                .lines()
                .find(|l| l.starts_with("listen"))
                .unwrap()
                .to_string();
            let public = text
                .lines()
                .find(|l| l.starts_with("public_url"))
                .unwrap()
                .to_string();
            std::fs::write(
                &cfg,
                text.replace(&listen, &format!("listen = \"127.0.0.1:{port}\""))
                    .replace(
                        &public,
                        &format!("public_url = \"http://staging.localhost:{port}\""),
                    ),
            )
            .unwrap();
            let (child, log) = serve(&cfg, &c.dir, tag);
            wait_ready(port).await;
            procs.push((child, log));
        }
        for _ in 0..5 {
            c.write_rows(3).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        // Both instances race for the checkpoints for a while.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        c.write_rows(1).await;
        let mut logs = String::new();
        for (mut child, log) in procs {
            stop(&mut child).await;
            logs.push_str(&std::fs::read_to_string(&log).unwrap());
        }
        std::fs::write(&c.kept, &logs).unwrap();

        let in_db = c.store.audit_checkpoints().await.unwrap();
        assert!(in_db.len() >= 3, "checkpoints were written: {in_db:?}");
        let seqs: Vec<i64> = in_db.iter().map(|cp| cp.seq).collect();
        assert_eq!(seqs, (1..=in_db.len() as i64).collect::<Vec<_>>());
        assert!(
            in_db.windows(2).all(|w| w[0].last_id < w[1].last_id),
            "{in_db:?}"
        );
        let (head, _) = c.head().await;
        assert_eq!(
            in_db.last().unwrap().last_id,
            head,
            "the last rows were signed at shutdown"
        );
        let logged = logs
            .lines()
            .filter(|l| l.contains("audit_checkpoint env="))
            .count();
        assert_eq!(logged, in_db.len(), "each checkpoint logged once:\n{logs}");
        assert!(
            !logs.contains("s3cr3t"),
            "the webhook URL's secret path is never logged"
        );

        let r = c.verify(true);
        assert!(r.ok, "{}", r.text());
        assert!(
            r.stdout.contains(&format!(
                "rows 1..{head} match signed checkpoint {}",
                in_db.len()
            )),
            "{}",
            r.text()
        );
        assert!(
            r.stdout
                .contains(&format!("rows 1..{head} are anchored outside")),
            "{}",
            r.text()
        );

        let posted = got.lock().unwrap().clone();
        let mut posted_seqs: Vec<i64> = posted.iter().filter_map(|v| v["seq"].as_i64()).collect();
        posted_seqs.sort();
        assert_eq!(
            posted_seqs, seqs,
            "every checkpoint reached the webhook, the refused one after a retry"
        );
        assert_eq!(
            serde_json::to_value(&in_db[0]).unwrap(),
            posted.iter().find(|v| v["seq"] == 1).cloned().unwrap()
        );
        server.abort();
    }
}
