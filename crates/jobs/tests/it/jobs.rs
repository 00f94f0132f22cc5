//! The console's jobs against real consoles and real HTTP endpoints, on SQLite and
//! PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use raxx_actions::Console;
use raxx_core::Env;
use raxx_core::config::{AppConfig, CheckConfig};
use raxx_jobs::Scheduler;
use raxx_store::audit::AuditQuery;
use raxx_store::checks::CheckStatus;
use raxx_store::jobs::RunOutcome;
use raxx_store::now_ms;
use raxx_testkit::TestConsole;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Endpoints that answer well, badly, slowly, never; `/toggle` answers 200 until flipped.
async fn check_server(up: Arc<AtomicBool>) -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
        )
        .route("/nocontent", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "ok, eventually"
            }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "too late"
            }),
        )
        .route(
            "/toggle",
            get(move || {
                let up = up.clone();
                async move {
                    if up.load(Ordering::SeqCst) {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A server that answers every connection with bytes that are not HTTP.
async fn garbage_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock
                .write_all(b"\x00\x01\x02 definitely not HTTP \xff\xfe\r\n\r\n")
                .await;
            let _ = sock.shutdown().await;
        }
    });
    addr
}

async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn check(name: &str, url: String, timeout_ms: u64) -> String {
    format!(
        "[[apps.checks]]\nname = \"{name}\"\nurl = \"{url}\"\ntimeout_ms = {timeout_ms}\ninterval_seconds = 1\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_poll_records_ok_degraded_and_down_and_never_crashes() {
    raxx_testkit::each_backend!(|url| {
        let up = Arc::new(AtomicBool::new(true));
        let server = check_server(up.clone()).await;
        let garbage = garbage_server().await;
        let closed = closed_port().await;
        let p = server.port();
        let mut extra = "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n".to_string();
        // A name under .localhost resolves to loopback on its own.
        extra += &check("ok", format!("http://checks.localhost:{p}/ok"), 2000);
        extra += &check("fail", format!("http://127.0.0.1:{p}/fail"), 2000);
        extra += &check("nocontent", format!("http://127.0.0.1:{p}/nocontent"), 2000);
        extra += &check("slow", format!("http://127.0.0.1:{p}/slow"), 500);
        extra += &check("hang", format!("http://127.0.0.1:{p}/hang"), 300);
        extra += &check(
            "garbage",
            format!("http://127.0.0.1:{}/", garbage.port()),
            1000,
        );
        extra += &check("closed", format!("http://127.0.0.1:{closed}/"), 1000);
        extra += &check("toggle", format!("http://127.0.0.1:{p}/toggle"), 2000);
        let console = TestConsole::start(Env::Staging, &url, &extra).await;
        let s = Scheduler::from_config(console.state.console()).unwrap();

        let started = std::time::Instant::now();
        let (outcome, message) = s.run_tick("status-poll", now_ms()).await.unwrap().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a hanging check held the run"
        );
        assert_eq!(outcome, RunOutcome::Ok, "{message}");
        assert!(message.starts_with("polled 8 check(s)"), "{message}");
        let latest = console.store().latest_check_results().await.unwrap();
        let of = |name: &str| {
            latest
                .iter()
                .find(|r| r.check == name)
                .unwrap_or_else(|| panic!("no result for {name}"))
                .clone()
        };
        assert_eq!(of("ok").status, CheckStatus::Ok);
        assert_eq!(of("ok").http_status, Some(200));
        assert_eq!(of("toggle").status, CheckStatus::Ok);
        assert_eq!(of("fail").status, CheckStatus::Down);
        assert_eq!(of("fail").http_status, Some(500));
        assert_eq!(of("nocontent").status, CheckStatus::Degraded);
        assert_eq!(of("slow").status, CheckStatus::Degraded);
        assert!(of("slow").error.unwrap().contains("slow"));
        let hang = of("hang");
        assert_eq!(hang.status, CheckStatus::Down);
        assert!(
            hang.error
                .as_deref()
                .unwrap()
                .contains("no answer within 300 ms"),
            "{hang:?}"
        );
        assert!(hang.latency_ms < 1500, "{hang:?}");
        assert_eq!(of("garbage").status, CheckStatus::Down);
        assert_eq!(of("garbage").http_status, None);
        assert_eq!(of("closed").status, CheckStatus::Down);
        assert!(of("closed").error.unwrap().contains("could not connect"));
        // No change yet: nothing audited.
        assert_eq!(console.audit_count("status.change", "allowed").await, 0);

        // Flip the endpoint: the next poll records the change and audits it.
        up.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (outcome, _) = s.run_tick("status-poll", now_ms()).await.unwrap().unwrap();
        assert_eq!(outcome, RunOutcome::Ok);
        let latest = console.store().latest_check_results().await.unwrap();
        let toggle = latest.iter().find(|r| r.check == "toggle").unwrap();
        assert_eq!(toggle.status, CheckStatus::Down);
        let changes = console
            .store()
            .audit_page(&AuditQuery {
                action: Some("status.change".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(changes.len(), 1, "{changes:?}");
        let e = &changes[0].event;
        assert_eq!(e.actor, "system:status-poll");
        assert_eq!(e.target_id.as_deref(), Some("raxx-api-staging/toggle"));
        assert_eq!(e.context["from"], "ok");
        assert_eq!(e.context["to"], "down");
        // The console is unharmed.
        let resp = console
            .client()
            .get(console.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(console.store().audit_verify().await.unwrap().is_ok());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_pointed_at_the_other_env_is_refused_and_audited() {
    raxx_testkit::each_backend!(|url| {
        let up = Arc::new(AtomicBool::new(true));
        let server = check_server(up).await;
        let ok_url = format!("http://127.0.0.1:{}/ok", server.port());
        let console = TestConsole::start(
            Env::Staging,
            &url,
            &format!(
                "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n{}",
                check("ok", ok_url.clone(), 2000)
            ),
        )
        .await;
        // A config that slipped a prod app past validation: the gate still refuses it.
        let mut cfg = (*console.state.cfg).clone();
        cfg.config.apps.push(AppConfig {
            name: "raxx-api-prod".into(),
            env: Env::Prod,
            promote_from: None,
            heroku_app: None,
            checks: vec![CheckConfig {
                name: "ok".into(),
                url: ok_url,
                expect_status: 200,
                timeout_ms: 2000,
                interval_seconds: 1,
                env: None,
            }],
            tokens: vec![],
            cors_origins: vec![],
        });
        let state = Console::new(cfg, console.store().clone(), None).unwrap();
        let s = Scheduler::from_config(state).unwrap();
        let (outcome, message) = s.run_tick("status-poll", now_ms()).await.unwrap().unwrap();
        assert_eq!(outcome, RunOutcome::Refused, "{message}");
        assert!(message.contains("raxx-api-prod/ok"), "{message}");
        assert!(
            message.starts_with("polled 1 check(s)"),
            "the staging check still ran: {message}"
        );
        let latest = console.store().latest_check_results().await.unwrap();
        assert!(
            latest.iter().all(|r| r.app != "raxx-api-prod"),
            "a prod check was written: {latest:?}"
        );
        let denied = console
            .store()
            .audit_page(&AuditQuery {
                action: Some("job.status-poll".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(denied.len(), 1);
        let e = &denied[0].event;
        assert_eq!(e.outcome.as_str(), "denied");
        assert_eq!(e.actor, "system:status-poll");
        assert_eq!(e.target_app.as_deref(), Some("raxx-api-prod"));
        assert_eq!(e.context["denial"], "env_mismatch");

        let (outcome, message) = s
            .run_tick("promotion-expiry", now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, RunOutcome::Refused, "{message}");
        assert_eq!(
            console.audit_count("job.promotion-expiry", "denied").await,
            1
        );

        // Straight at the gate: a system principal of staging and a prod target.
        let ctx = raxx_jobs::JobCtx::new(
            console.state.console(),
            "session-purge",
            raxx_core::rbac::Resource::Session,
            0,
            raxx_store::jobs::RunKind::Manual,
        );
        assert!(
            ctx.authorize(Env::Staging, "sessions", "staging", None)
                .await
                .is_ok()
        );
        assert!(
            ctx.authorize(Env::Prod, "sessions", "prod", None)
                .await
                .is_err()
        );
        assert_eq!(console.audit_count("job.session-purge", "denied").await, 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_digest_posts_the_summary_to_the_webhook() {
    raxx_testkit::each_backend!(|url| {
        let seen: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
        let store = seen.clone();
        let app = Router::new()
            .route(
                "/hook/secret-token",
                post(move |axum::Json(v): axum::Json<Value>| {
                    let store = store.clone();
                    async move {
                        *store.lock().await = Some(v);
                        StatusCode::NO_CONTENT
                    }
                }),
            )
            .route("/broken", post(|| async { StatusCode::BAD_GATEWAY }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let console = TestConsole::start(
            Env::Prod,
            &url,
            &format!(
                "[jobs.audit-digest]\nschedule = \"0 0 6 * * *\"\nwebhook_url = \"http://hooks.localhost:{port}/hook/secret-token\"\n"
            ),
        )
        .await;
        let nobody = console.operator("nobody@raxx.test", &[]).await;
        // One denial to count.
        let resp = console
            .as_operator(&nobody)
            .post("/api/v1/jobs/status-poll/run")
            .await;
        assert_eq!(resp.status().as_u16(), 403);
        let s = Scheduler::from_config(console.state.console()).unwrap();
        let (outcome, message) = s.run_tick("audit-digest", now_ms()).await.unwrap().unwrap();
        assert_eq!(outcome, RunOutcome::Ok, "{message}");
        let body = seen
            .lock()
            .await
            .clone()
            .expect("the webhook got the digest");
        assert_eq!(body["env"], "prod");
        assert!(body["total"].as_i64().unwrap() >= 2, "{body}");
        assert_eq!(body["denied"], 1);
        assert_eq!(body["recent_denials"][0]["action"], "job.run_now");
        let rows = console
            .store()
            .audit_page(&AuditQuery {
                action: Some("audit.digest".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event.actor, "system:audit-digest");
        assert_eq!(
            rows[0].event.context["webhook"],
            format!("http://hooks.localhost:{port}")
        );
        assert!(!rows[0].event.context.to_string().contains("secret-token"));

        // A webhook that fails: the run fails and the digest row says so.
        let broken = TestConsole::start(
            Env::Prod,
            &raxx_testkit::sqlite_url(),
            &format!("[jobs.audit-digest]\nschedule = \"0 0 6 * * *\"\nwebhook_url = \"http://127.0.0.1:{port}/broken\"\n"),
        )
        .await;
        let s = Scheduler::from_config(broken.state.console()).unwrap();
        let (outcome, message) = s.run_tick("audit-digest", now_ms()).await.unwrap().unwrap();
        assert_eq!(outcome, RunOutcome::Failed);
        assert!(message.contains("answered 502"), "{message}");
        assert_eq!(broken.audit_count("audit.digest", "error").await, 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_purge_expiry_and_sweep_run_through_the_gate() {
    raxx_testkit::each_backend!(|url| {
        let console = TestConsole::start(Env::Staging, &url, "").await;
        let _op = console.operator("qa@raxx.test", &["staging-admins"]).await;
        raxx_store::testing::exec(
            console.store(),
            "UPDATE console_sessions SET expires_at = 1000",
        )
        .await;
        let s = Scheduler::from_config(console.state.console()).unwrap();
        let (outcome, message) = s
            .run_tick("session-purge", now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (outcome, message.as_str()),
            (RunOutcome::Ok, "1 ended session(s) purged")
        );
        let rows = console
            .store()
            .audit_page(&AuditQuery {
                action: Some("session.purge".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event.actor, "system:session-purge");
        assert_eq!(rows[0].event.context["purged"], 1);
        let (_, message) = s
            .run_tick("session-purge", now_ms() + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message, "no ended sessions to purge");
        assert_eq!(console.audit_count("session.purge", "allowed").await, 1);

        let (outcome, message) = s
            .run_tick("promotion-expiry", now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, RunOutcome::Ok, "{message}");
        assert_eq!(message, "0 promotion(s) expired");
        let (outcome, message) = s
            .run_tick("token-rotation-sweep", now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, RunOutcome::Ok, "{message}");
    });
}

/// The gate matrix's job cell (issue 19 item 13): an operator asks, over real HTTP, for a
/// run of a job whose target is the other env's; the job's `system:<job>` actor is refused
/// by the same object decision as handlers, and its denial row has the one layout
/// (`denial` = the code, the object under `target` and `target_env`, no `code`/`error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_run_over_http_against_the_other_env_is_denied_in_the_one_layout() {
    raxx_testkit::each_backend!(|url| {
        let up = Arc::new(AtomicBool::new(true));
        let server = check_server(up).await;
        let ok_url = format!("http://127.0.0.1:{}/ok", server.port());
        let console = TestConsole::start(
            Env::Staging,
            &url,
            &format!(
                "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n{}",
                check("ok", ok_url.clone(), 2000)
            ),
        )
        .await;
        let mut cfg = (*console.state.cfg).clone();
        cfg.config.apps.push(AppConfig {
            name: "raxx-api-prod".into(),
            env: Env::Prod,
            promote_from: None,
            heroku_app: None,
            checks: vec![CheckConfig {
                name: "ok".into(),
                url: ok_url,
                expect_status: 200,
                timeout_ms: 2000,
                interval_seconds: 1,
                env: None,
            }],
            tokens: vec![],
            cors_origins: vec![],
        });
        let state = Console::new(cfg, console.store().clone(), None).unwrap();
        let sam = console.operator("sam@raxx.test", &["staging-admins"]).await;
        let resp = console
            .as_operator(&sam)
            .post("/api/v1/jobs/status-poll/run")
            .await;
        assert!(resp.status().is_success(), "{}", resp.status());
        let handle = Scheduler::from_config(state)
            .unwrap()
            .with_poll(Duration::from_millis(50))
            .spawn();
        let q = AuditQuery {
            action: Some("job.status-poll".into()),
            limit: 10,
            ..Default::default()
        };
        let mut denied = Vec::new();
        for _ in 0..200 {
            denied = console.store().audit_page(&q).await.unwrap();
            if !denied.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.stop().await;
        assert!(!denied.is_empty(), "the job's refusal was not audited");
        let e = &denied[0].event;
        assert_eq!(e.actor, "system:status-poll");
        assert_eq!(e.outcome.as_str(), "denied");
        assert_eq!(e.target_app.as_deref(), Some("raxx-api-prod"));
        assert_eq!(e.context["denial"], "env_mismatch", "{}", e.context);
        assert_eq!(e.context["target_env"], "prod", "{}", e.context);
        assert_eq!(
            e.context["target"], "check raxx-api-prod/ok",
            "{}",
            e.context
        );
        assert!(e.context.get("code").is_none(), "{}", e.context);
        assert!(e.context.get("error").is_none(), "{}", e.context);
        let latest = console.store().latest_check_results().await.unwrap();
        assert!(latest.iter().all(|r| r.app != "raxx-api-prod"));
    });
}
