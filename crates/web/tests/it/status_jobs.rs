//! The status grid and the jobs page/API against real consoles, on SQLite and PostgreSQL.
//! (The jobs themselves, the scheduler and its leases are tested in crates/jobs/tests.)

use raxx_core::Env;
use raxx_store::checks::{CheckResult, CheckStatus};
use raxx_store::now_ms;
use raxx_testkit::{Operator, TestConsole};
use serde_json::Value;

fn apps(env: Env) -> String {
    let app = match env {
        Env::Staging => "raxx-api-staging",
        Env::Prod => "raxx-api-prod",
    };
    format!(
        r#"
[[apps]]
name = "{app}"
env = "{env}"
[[apps.checks]]
name = "healthz"
url = "http://127.0.0.1:9/healthz"
timeout_ms = 2000
[[apps.checks]]
name = "login"
url = "http://127.0.0.1:9/login"
[[apps.checks]]
name = "search"
url = "http://127.0.0.1:9/search"
[[apps.checks]]
name = "never"
url = "http://127.0.0.1:9/never"

[[apps]]
name = "{app}-worker"
env = "{env}"
[[apps.checks]]
name = "healthz"
url = "http://127.0.0.1:9/worker"
"#
    )
}

fn result(app: &str, check: &str, at: i64, status: CheckStatus, ms: i64) -> CheckResult {
    CheckResult {
        app: app.into(),
        check: check.into(),
        at,
        status,
        http_status: Some(if status == CheckStatus::Down {
            500
        } else {
            200
        }),
        latency_ms: ms,
        error: (status != CheckStatus::Ok).then(|| "answered 500, expected 200".into()),
    }
}

async fn get(c: &TestConsole, op: &Operator, path: &str) -> (u16, String) {
    let resp = c
        .client()
        .get(c.url(path))
        .headers(c.read_headers(op))
        .send()
        .await
        .expect("request");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn every_operator_sees_the_grid_and_the_drill_down_on_both_envs() {
    raxx_testkit::each_backend!(|url| {
        for env in Env::ALL {
            let db = if env == Env::Staging {
                url.clone()
            } else {
                fresh_like(&url).await
            };
            let c = TestConsole::start(env, &db, &apps(env)).await;
            let app = format!("raxx-api-{env}");
            let now = now_ms();
            let mut rows = Vec::new();
            // healthz: down a while ago, then ok since `now - 20 s`.
            rows.push(result(
                &app,
                "healthz",
                now - 60_000,
                CheckStatus::Down,
                2000,
            ));
            rows.push(result(&app, "healthz", now - 20_000, CheckStatus::Ok, 12));
            rows.push(result(&app, "healthz", now - 5_000, CheckStatus::Ok, 15));
            rows.push(result(&app, "login", now - 3_000, CheckStatus::Down, 5));
            rows.push(result(
                &app,
                "search",
                now - 3_000,
                CheckStatus::Degraded,
                1500,
            ));
            // The worker's only result is too old to trust: unknown.
            rows.push(result(
                &format!("{app}-worker"),
                "healthz",
                now - 3_600_000,
                CheckStatus::Ok,
                3,
            ));
            c.store().insert_check_results(&rows).await.unwrap();

            // An operator with no role at all.
            let op = c.operator("reader@raxx.test", &[]).await;
            let (status, body) = get(&c, &op, "/api/v1/status").await;
            assert_eq!(status, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["summary"]["ok"], 1, "{v}");
            assert_eq!(v["summary"]["down"], 1);
            assert_eq!(v["summary"]["degraded"], 1);
            assert_eq!(v["summary"]["unknown"], 2);
            let checks = &v["apps"][0]["checks"];
            let find = |name: &str| {
                checks
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["check"] == name)
                    .cloned()
                    .unwrap()
            };
            assert_eq!(find("healthz")["state"], "ok");
            assert_eq!(
                find("healthz")["since"],
                now - 20_000,
                "last change is when it came back"
            );
            assert_eq!(find("login")["state"], "down");
            assert_eq!(find("search")["state"], "degraded");
            assert_eq!(find("never")["state"], "unknown");
            assert_eq!(v["apps"][1]["checks"][0]["state"], "unknown");

            let (status, html) = get(&c, &op, "/status").await;
            assert_eq!(status, 200);
            for want in [
                "Degraded",
                "Down",
                "Unknown",
                &format!("/status/{app}/healthz"),
            ] {
                assert!(html.contains(want), "grid lacks {want}");
            }
            let (status, html) = get(&c, &op, &format!("/status/{app}/healthz")).await;
            assert_eq!(status, 200);
            assert!(html.contains("<svg"), "no chart");
            assert!(html.contains("role=\"img\""));
            assert!(html.contains("<title id=\"chart-title\">Latency of"));
            // Two answers are points on a line; the failure is a red mark, not a latency.
            assert_eq!(html.matches("<circle").count(), 2);
            assert_eq!(html.matches("<rect class=\"failure\"").count(), 1);
            assert!(html.contains("<polyline"));
            // Uptime and p95 per window: 2 of 3 up; p95 of the answered latencies.
            assert!(html.contains("<th scope=\"row\">last 1 h</th><td class=\"num\" data-label=\"Uptime\">66.7 %</td><td class=\"num\" data-label=\"p95 latency\">15 ms</td>"), "uptime row");
            assert!(!html.contains("<script"), "no script on the drill-down");
            assert!(
                html.contains("<caption class=\"sr-only\">Recent results"),
                "text fallback"
            );
            assert!(html.contains(">15</td>"), "the table lists each latency");
            assert!(
                !html.contains(">2000</td>"),
                "a failed result shows no latency"
            );
            let (_, body) = get(&c, &op, &format!("/api/v1/status/{app}/healthz")).await;
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["uptime"][0]["window"], "1 h");
            assert_eq!(v["uptime"][0]["uptime_pct"], 66.7);
            assert_eq!(v["uptime"][0]["p95_ms"], 15);
            assert_eq!(v["uptime"][2]["samples"], 3);
            let (status, _) = get(&c, &op, &format!("/status/{app}/nope")).await;
            assert_eq!(status, 404);
            let (status, _) = get(&c, &op, "/status/raxx-api-elsewhere/healthz").await;
            assert_eq!(status, 404);
            let (status, body) = get(&c, &op, &format!("/api/v1/status/{app}/search")).await;
            assert_eq!(status, 200);
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["recent"].as_array().map(Vec::len), Some(1));

            // The dashboard's tile.
            let (status, html) = get(&c, &op, "/").await;
            assert_eq!(status, 200);
            assert!(html.contains("1/5 OK"), "dashboard tile");
            assert!(html.contains("1 down"));
        }
    });
}

async fn fresh_like(url: &str) -> String {
    if url.starts_with("sqlite:") {
        raxx_testkit::sqlite_url()
    } else {
        raxx_testkit::postgres_url().await.expect("RAXX_TEST_PG")
    }
}

async fn run_now(c: &TestConsole, op: &Operator, job: &str) -> (u16, Value) {
    let resp = c
        .client()
        .post(c.url(&format!("/api/v1/jobs/{job}/run")))
        .headers(c.write_headers(op))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn run_now_is_a_gated_audited_write_of_job() {
    raxx_testkit::each_backend!(|url| {
        let staging = TestConsole::start(Env::Staging, &url, "").await;
        let qa = staging.operator("qa@raxx.test", &["staging-admins"]).await;
        let nobody = staging.operator("nobody@raxx.test", &[]).await;
        // staging-admins hold console-job-user: enough on staging.
        let (status, body) = run_now(&staging, &qa, "session-purge").await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "queued");
        assert_eq!(staging.audit_count("job.run_now", "allowed").await, 1);
        let (status, body) = run_now(&staging, &nobody, "session-purge").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
        assert_eq!(staging.audit_count("job.run_now", "denied").await, 1);
        let (status, _) = run_now(&staging, &qa, "no-such-job").await;
        assert_eq!(status, 404);
        // Without the CSRF token, or naming the other env: refused, nothing queued.
        let resp = staging
            .client()
            .post(staging.url("/api/v1/jobs/status-poll/run"))
            .headers(staging.read_headers(&qa))
            .header("x-console-env", "staging")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let mut h = staging.write_headers(&qa);
        h.insert("x-console-env", "prod".parse().unwrap());
        let resp = staging
            .client()
            .post(staging.url("/api/v1/jobs/status-poll/run"))
            .headers(h)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "env_mismatch");
        let queued = staging.store().queued_job_requests().await.unwrap();
        assert_eq!(queued, vec![("session-purge".to_string(), 1)]);

        // The page: the jobs, and "Run now" only for those who may.
        let (status, html) = get(&staging, &qa, "/jobs").await;
        assert_eq!(status, 200);
        for job in raxx_core::jobs::JOB_NAMES {
            assert!(html.contains(job), "{job} missing");
        }
        assert!(html.contains("/jobs/status-poll/run"));
        assert!(html.contains("1 queued"));
        let (_, html) = get(&staging, &nobody, "/jobs").await;
        assert!(
            !html.contains("/jobs/status-poll/run"),
            "a control they cannot use"
        );
        let (status, body) = get(&staging, &nobody, "/api/v1/jobs").await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["jobs"].as_array().map(Vec::len), Some(6));
        assert_eq!(v["jobs"][3]["queued"], 1);

        // On prod the same write needs console-job-admin.
        let prod = TestConsole::start(Env::Prod, &fresh_like(&url).await, "").await;
        let staging_admin = prod.operator("qa@raxx.test", &["staging-admins"]).await;
        let prod_admin = prod
            .operator("padmin@raxx.test", &["production-admins"])
            .await;
        let (status, _) = run_now(&prod, &staging_admin, "audit-digest").await;
        assert_eq!(status, 403);
        let (status, _) = run_now(&prod, &prod_admin, "audit-digest").await;
        assert_eq!(status, 202);
        // The page form works with the guard fields.
        let form = [("_csrf", prod_admin.csrf.as_str()), ("_target_env", "prod")];
        let resp = prod
            .client()
            .post(prod.url("/jobs/status-poll/run"))
            .headers(prod.read_headers(&prod_admin))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        assert_eq!(prod.audit_count("job.run_now", "allowed").await, 2);
    });
}

#[tokio::test]
async fn each_job_has_its_run_history_with_outcomes_and_durations() {
    use raxx_store::jobs::{RunKind, RunOutcome};
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, "").await;
        let op = c.operator("reader@raxx.test", &[]).await;
        let store = c.store();
        for (i, outcome) in [RunOutcome::Ok, RunOutcome::Failed, RunOutcome::Ok]
            .into_iter()
            .enumerate()
        {
            let id = store
                .start_job_run("status-poll", i as i64, RunKind::Schedule, "test")
                .await
                .unwrap();
            store
                .finish_job_run(
                    id,
                    outcome,
                    if outcome == RunOutcome::Failed {
                        "check timed out"
                    } else {
                        "3 checks"
                    },
                )
                .await
                .unwrap();
        }
        // Another job's run is not in this job's history.
        let other = store
            .start_job_run("session-purge", 9, RunKind::Manual, "test")
            .await
            .unwrap();
        store
            .finish_job_run(other, RunOutcome::Ok, "0 purged")
            .await
            .unwrap();

        let (status, body) = get(&c, &op, "/api/v1/jobs/status-poll").await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["runs"].as_array().map(Vec::len), Some(3));
        assert_eq!((v["ok"].as_i64(), v["failed"].as_i64()), (Some(2), Some(1)));
        assert!(v["median_ms"].is_i64());
        assert!(v["last_success_at"].is_i64());
        assert_eq!(v["runs"][1]["message"], "check timed out", "newest first");

        let (status, html) = get(&c, &op, "/jobs/status-poll").await;
        assert_eq!(status, 200);
        assert!(html.contains("2 ok · 1 failed · 0 refused"), "summary");
        assert!(html.contains("check timed out"));
        assert!(!html.contains("0 purged"), "another job's run");
        assert!(
            !html.contains("/jobs/status-poll/run"),
            "a reader gets no Run now"
        );
        let (_, list) = get(&c, &op, "/jobs").await;
        assert!(
            list.contains("href=\"/jobs/status-poll\""),
            "the jobs page links each job"
        );
        let (status, _) = get(&c, &op, "/jobs/no-such-job").await;
        assert_eq!(status, 404);
        let (status, body) = get(&c, &op, "/api/v1/jobs/no-such-job").await;
        assert_eq!(status, 404);
        assert!(body.contains("\"error\""));
    });
}
