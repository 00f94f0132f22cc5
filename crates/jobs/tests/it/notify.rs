//! Notifications (issue 16 item 5) against real consoles and a local receiver that fails
//! on command, on SQLite and PostgreSQL: an event's outbox rows are written in its own
//! transaction (a rolled-back change sends nothing), delivered by `notify-delivery` with
//! retries and back-off, each attempt audited without the URL's secret path; the generic
//! webhook carries the deep link (which opens the review through sign-in); Slack gets
//! `{"text": ...}`; a failing job is notified.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::FileFormat;
use raxx_core::gate::KeyKind;
use raxx_jobs::notify_delivery::deliver;
use raxx_store::audit::AuditQuery;
use raxx_store::jobs::{RunKind, RunOutcome};
use raxx_store::now_ms;
use raxx_testkit::TestConsole;
use serde_json::{Value, json};
use tokio::sync::Mutex;

const PROD_APP: &str = "raxx-api-prod";
const STAGING_APP: &str = "raxx-api-staging";
const SECRET: &str = "T000/B000/s3cr3t-path";

const FLAGS: &str = r#"
[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"
"#;

#[derive(Default)]
struct Receiver {
    /// Answer 503 to this many requests, then 200.
    fail_next: AtomicU32,
    got: Mutex<Vec<(String, Value)>>,
}

async fn receiver() -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver::default());
    let shared = r.clone();
    let app = Router::new().route(
        "/hooks/{kind}/{*rest}",
        post(
            move |axum::extract::Path((kind, _rest)): axum::extract::Path<(String, String)>,
                  _h: HeaderMap,
                  body: String| {
                let r = shared.clone();
                async move {
                    if r.fail_next
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    r.got.lock().await.push((kind, v));
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (r, format!("http://{addr}/hooks"))
}

fn notify_config(base: &str, events: &str) -> String {
    format!(
        "[[notify]]\nname = \"ops-hook\"\nkind = \"webhook\"\nurl = \"{base}/webhook/{SECRET}?token=abc\"\nevents = [{events}]\n\n\
         [[notify]]\nname = \"ops-slack\"\nkind = \"slack\"\nurl = \"{base}/slack/{SECRET}\"\nevents = [{events}]\n"
    )
}

async fn seed(c: &TestConsole, app: &str, body: &str) {
    let flags =
        raxx_core::flags::parse_flags_file(&format!("app = \"{app}\"\n{body}"), FileFormat::Toml)
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

async fn another_db(url: &str) -> String {
    if url.starts_with("sqlite") {
        raxx_testkit::sqlite_url()
    } else {
        raxx_testkit::postgres_url().await.expect("postgres")
    }
}

async fn deliveries(c: &TestConsole) -> Vec<raxx_core::audit::AuditEntry> {
    c.store()
        .audit_page(&AuditQuery {
            action: Some("notify.deliver".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_kill_switch_is_delivered_with_retries_and_each_attempt_is_audited() {
    raxx_testkit::each_backend!(|url| {
        let (rx, base) = receiver().await;
        let extra = format!(
            "[[apps]]\nname = \"{PROD_APP}\"\nenv = \"prod\"\n\n{}",
            notify_config(&base, "\"flag.killed\"")
        );
        let c = TestConsole::start(Env::Prod, &url, &extra).await;
        seed(&c, PROD_APP, FLAGS).await;
        let op = c.operator("alice@raxx.test", &["production-admins"]).await;
        // A refused kill (no such flag) queues nothing.
        let resp = c
            .as_operator(&op)
            .post_json(
                &format!("/api/v1/apps/{PROD_APP}/flags/nope/kill"),
                &json!({"reason": "incident 7"}),
            )
            .await;
        assert!(resp.status().is_client_error());
        assert!(c.store().notifications(10).await.unwrap().is_empty());
        let resp = c
            .as_operator(&op)
            .post_json(
                &format!("/api/v1/apps/{PROD_APP}/flags/new-checkout/kill"),
                &json!({"reason": "incident 7"}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        // Queued in the kill's transaction, not sent by the request.
        let queued = c.store().notifications(10).await.unwrap();
        assert_eq!(queued.len(), 2, "{queued:?}");
        assert!(
            queued
                .iter()
                .all(|q| q.event == "flag.killed" && q.delivered_at.is_none())
        );
        assert!(rx.got.lock().await.is_empty());
        // The receiver fails the first two attempts.
        rx.fail_next.store(2, Ordering::SeqCst);
        let now = now_ms();
        let first = deliver(&c.state, "system:notify-delivery", now)
            .await
            .unwrap();
        assert_eq!((first.delivered, first.failed), (0, 2), "{first:?}");
        // Backing off: nothing is due right away.
        let again = deliver(&c.state, "system:notify-delivery", now + 1_000)
            .await
            .unwrap();
        assert_eq!(again.delivered + again.failed, 0, "{again:?}");
        let later = deliver(&c.state, "system:notify-delivery", now + 11_000)
            .await
            .unwrap();
        assert_eq!(later.delivered, 2, "{later:?}");
        let got = rx.got.lock().await.clone();
        let hook = &got.iter().find(|(k, _)| k == "webhook").expect("webhook").1;
        assert_eq!(hook["event"], "flag.killed");
        assert_eq!(hook["env"], "prod");
        assert_eq!(
            hook["link"],
            format!("{}/apps/{PROD_APP}/flags/new-checkout", c.origin)
        );
        let slack = &got.iter().find(|(k, _)| k == "slack").expect("slack").1;
        assert_eq!(slack.as_object().unwrap().len(), 1, "{slack}");
        assert!(
            slack["text"].as_str().unwrap().contains("new-checkout"),
            "{slack}"
        );
        // Delivered rows are not sent again.
        let done = deliver(&c.state, "system:notify-delivery", now + 3_600_000)
            .await
            .unwrap();
        assert_eq!(done.delivered + done.failed, 0);
        // Four attempts audited: two failures with the status, two deliveries; never the
        // secret path or query of the URL.
        let rows = deliveries(&c).await;
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows.iter()
                .filter(|r| r.event.outcome == Outcome::Error)
                .count(),
            2
        );
        assert!(rows.iter().any(|r| r.event.context["status"] == 503));
        for r in &rows {
            let text = serde_json::to_string(&r.event).unwrap();
            assert!(
                !text.contains("s3cr3t") && !text.contains("token=abc"),
                "{text}"
            );
        }
    });
}

#[tokio::test]
async fn a_queued_promotion_notifies_reviewers_with_a_deep_link_through_sign_in() {
    raxx_testkit::each_backend!(|url| {
        let (rx, base) = receiver().await;
        let staging = TestConsole::start(
            Env::Staging,
            &url,
            "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
        )
        .await;
        seed(
            &staging,
            STAGING_APP,
            &FLAGS.replace("default = \"off\"", "default = \"on\""),
        )
        .await;
        let read = new_key(&staging, STAGING_APP, KeyKind::Read).await;
        let extra = format!(
            "staging_source_url = \"{}\"\nstaging_source_key = \"{read}\"\n\n[[apps]]\nname = \"{PROD_APP}\"\nenv = \"prod\"\npromote_from = \"{STAGING_APP}\"\n\n{}",
            staging.origin,
            notify_config(&base, "\"promotion.queued\", \"promotion.rejected\"")
        );
        let prod = TestConsole::start(Env::Prod, &another_db(&url).await, &extra).await;
        seed(&prod, PROD_APP, FLAGS).await;
        let alice = prod
            .operator("alice@raxx.test", &["production-admins"])
            .await;
        let resp = prod
            .as_operator(&alice)
            .post_json(
                "/api/v1/promotions",
                &json!({"app": PROD_APP, "flags": ["new-checkout"], "reason": "turn it on"}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let report = deliver(&prod.state, "system:notify-delivery", now_ms())
            .await
            .unwrap();
        assert_eq!(report.delivered, 2, "{report:?}");
        let got = rx.got.lock().await.clone();
        let hook = &got.iter().find(|(k, _)| k == "webhook").unwrap().1;
        assert_eq!(hook["event"], "promotion.queued");
        let link = format!("{}/promotions/{id}", prod.origin);
        assert_eq!(hook["link"], link);
        let slack = &got.iter().find(|(k, _)| k == "slack").unwrap().1;
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains(&format!("<{link}|")),
            "{slack}"
        );
        // The link opens the review after sign-in.
        let r = prod.client().get(&link).send().await.unwrap();
        assert_eq!(r.status().as_u16() / 100, 3);
        assert_eq!(
            r.headers()["location"],
            format!("/login?next=%2Fpromotions%2F{id}")
        );
        // Events nobody subscribed to are not queued (the kill switch here).
        let before = prod.store().notifications(50).await.unwrap().len();
        let resp = prod
            .as_operator(&alice)
            .post_json(
                &format!("/api/v1/apps/{PROD_APP}/flags/new-checkout/kill"),
                &json!({"reason": "incident"}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(prod.store().notifications(50).await.unwrap().len(), before);
        drop(staging);
    });
}

#[tokio::test]
async fn a_rolled_back_change_sends_nothing_and_a_failing_job_is_notified() {
    raxx_testkit::each_backend!(|url| {
        let (rx, base) = receiver().await;
        let extra = format!(
            "[[apps]]\nname = \"{PROD_APP}\"\nenv = \"prod\"\n\n{}",
            notify_config(&base, "\"*\"")
        );
        let c = TestConsole::start(Env::Prod, &url, &extra).await;
        // An audited kill that is rolled back (dropped before commit): no outbox row.
        let mut tx = c.store().begin().await.unwrap();
        tx.record(
            AuditEvent::new("7", "flag.kill", Outcome::Allowed)
                .target("flag", "new-checkout")
                .app(PROD_APP),
        )
        .await
        .unwrap();
        drop(tx);
        assert!(c.store().notifications(10).await.unwrap().is_empty());
        // A failed job run is notified, with a link to the jobs page.
        let run = c
            .store()
            .start_job_run("status-poll", now_ms(), RunKind::Manual, "test")
            .await
            .unwrap();
        c.store()
            .finish_job_run(run, RunOutcome::Failed, "the database did not answer")
            .await
            .unwrap();
        let queued = c.store().notifications(10).await.unwrap();
        assert_eq!(queued.len(), 2, "{queued:?}");
        assert!(queued.iter().all(|q| q.event == "job.failing"));
        deliver(&c.state, "system:notify-delivery", now_ms())
            .await
            .unwrap();
        let got = rx.got.lock().await.clone();
        let hook = &got.iter().find(|(k, _)| k == "webhook").unwrap().1;
        assert_eq!(hook["event"], "job.failing");
        assert_eq!(hook["link"], format!("{}/jobs", c.origin));
        // A run that went well is not.
        let run = c
            .store()
            .start_job_run("status-poll", now_ms(), RunKind::Manual, "test")
            .await
            .unwrap();
        c.store()
            .finish_job_run(run, RunOutcome::Ok, "fine")
            .await
            .unwrap();
        assert_eq!(c.store().notifications(10).await.unwrap().len(), 2);
    });
}

#[tokio::test]
async fn expiring_tokens_are_reminded_once_a_day_with_a_link_to_the_tokens_page() {
    raxx_testkit::each_backend!(|url| {
        let (rx, base) = receiver().await;
        let extra = format!(
            "[[apps]]\nname = \"{PROD_APP}\"\nenv = \"prod\"\n\n[[apps.tokens]]\nname = \"client\"\nprovider = \"local\"\nmax_age_days = 90\n\n{}",
            notify_config(&base, "\"token.expiring\"")
        );
        let c = TestConsole::start(Env::Prod, &url, &extra).await;
        let sweep = "system:token-rotation-sweep";
        // Nothing expiring: no reminder, no row.
        raxx_actions::tokens::rotation_sweep(&c.state, sweep)
            .await
            .unwrap();
        assert!(c.store().notifications(10).await.unwrap().is_empty());
        // A client key older than its 90-day max age needs a person.
        new_key(&c, PROD_APP, KeyKind::Client).await;
        sqlx::query("UPDATE console_app_keys SET created_at = $1 WHERE app = $2")
            .bind(now_ms() - 100 * 86_400_000)
            .bind(PROD_APP)
            .execute(c.store().pool())
            .await
            .unwrap();
        let report = raxx_actions::tokens::rotation_sweep(&c.state, sweep)
            .await
            .unwrap();
        assert_eq!(report.expiring.len(), 1, "{report:?}");
        let queued = c.store().notifications(10).await.unwrap();
        assert_eq!(queued.len(), 2, "one per target: {queued:?}");
        assert!(queued.iter().all(|q| q.event == "token.expiring"));
        assert_eq!(
            c.audit_count("token.expiring", "allowed").await,
            1,
            "queued with its own audit row"
        );
        // The hourly sweep does not repeat the reminder within a day.
        raxx_actions::tokens::rotation_sweep(&c.state, sweep)
            .await
            .unwrap();
        assert_eq!(c.store().notifications(10).await.unwrap().len(), 2);
        deliver(&c.state, "system:notify-delivery", now_ms())
            .await
            .unwrap();
        let got = rx.got.lock().await.clone();
        let hook = &got.iter().find(|(k, _)| k == "webhook").expect("webhook").1;
        assert_eq!(hook["event"], "token.expiring");
        assert_eq!(hook["link"], format!("{}/tokens", c.origin));
        let slack = &got.iter().find(|(k, _)| k == "slack").expect("slack").1;
        assert!(
            slack["text"].as_str().unwrap().contains("need a person"),
            "{slack}"
        );
    });
}
