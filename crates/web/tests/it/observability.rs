//! Metrics an SRE can alert on, over real HTTP: bounded labels, unmatched/405/421 counted,
//! process metrics and build info, `promtool check metrics` on the real /metrics output,
//! `promtool check rules` on deploy/prometheus/alerts.yml. Also the headers and the one JSON
//! error envelope on answers no handler wrote (405, 413). SQLite and PostgreSQL.

use std::io::Write;
use std::process::{Command, Stdio};

use raxx_core::Env;
use raxx_testkit::TestConsole;
use serde_json::Value;

/// `promtool`, or `None` outside CI when it is not installed (CI never skips).
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("promtool");
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "promtool is not installed (apt-get install prometheus); CI never skips this check"
    );
    eprintln!("promtool not found: skipping the promtool half of this test");
    None
}

async fn scrape(c: &TestConsole) -> String {
    let r = c
        .client()
        .get(c.url("/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.expect("text")
}

#[tokio::test]
async fn metrics_bound_every_label_count_unrouted_answers_and_pass_promtool() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, "").await;
        let client = c.client();
        // 200 made-up methods to /healthz, and one of 3,000 characters.
        for i in 0..200 {
            let m = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).expect("method");
            client
                .request(m, c.url("/healthz"))
                .send()
                .await
                .expect("send");
        }
        // And one real probe, so /healthz has its latency histogram.
        let ok = client.get(c.url("/healthz")).send().await.expect("healthz");
        assert_eq!(ok.status(), 200);
        let long = reqwest::Method::from_bytes("X".repeat(3000).as_bytes()).expect("method");
        let _ = client.request(long, c.url("/healthz")).send().await;
        // No such path; a path with the wrong method; another Host.
        let nope = client
            .get(c.url("/wp-admin/setup.php"))
            .send()
            .await
            .expect("send");
        assert_eq!(nope.status(), 404);
        let not_allowed = client
            .delete(c.url("/api/v1/me"))
            .send()
            .await
            .expect("send");
        assert_eq!(not_allowed.status(), 405);
        let other_host = reqwest::Client::new()
            .get(format!("http://{}/login", c.addr))
            .header("host", "evil.example")
            .send()
            .await
            .expect("send");
        assert_eq!(other_host.status(), 421);

        let text = scrape(&c).await;
        assert!(!text.contains("BREW"), "a made-up method became a label");
        assert!(!text.contains("XXXXXXXX"), "a long method became a label");
        assert!(
            text.lines().any(|l| l.starts_with(
                "raxx_http_requests_total{method=\"other\",route=\"method_not_allowed\""
            )),
            "{text}"
        );
        for route in ["unmatched", "method_not_allowed", "misdirected"] {
            assert!(
                text.contains(&format!("route=\"{route}\"")),
                "no {route} series:\n{text}"
            );
        }
        assert!(!text.contains("wp-admin"), "a raw path became a label");
        for series in [
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
            "raxx_database_up 1",
            "raxx_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"}",
        ] {
            assert!(text.contains(series), "no `{series}`:\n{text}");
        }
        assert!(
            text.contains(&format!(
                "raxx_build_info{{version=\"{}\",env=\"staging\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        // Every sample line is short: no label value carries request input.
        assert!(text.lines().all(|l| l.len() < 400), "a long sample line");

        if let Some(promtool) = promtool() {
            let mut child = Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("promtool runs");
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}\n--- metrics:\n{text}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
}

#[tokio::test]
async fn the_alert_rules_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/prometheus/alerts.yml"
    );
    let out = Command::new(promtool)
        .args(["check", "rules", rules])
        .output()
        .expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 7 rules found"), "{said}");
    let text = std::fs::read_to_string(rules).expect("rules");
    for alert in [
        "RaxxConsoleDown",
        "RaxxDatabaseDown",
        "RaxxAuditCheckpointStale",
        "RaxxJobFailing",
        "RaxxCheckDown",
        "RaxxHighErrorRate",
    ] {
        assert!(text.contains(&format!("alert: {alert}")), "no {alert}");
    }
}

#[tokio::test]
async fn the_audit_chain_and_its_uncovered_rows_are_scraped_from_the_database() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, "").await;
        // An audited write, so the chain is not empty; no signing key: no checkpoint yet.
        let _op = c.operator("ann@raxx.test", &["staging-admins"]).await;
        let length = c.store().audit_chain_length().await.expect("length");
        assert!(length > 0, "{url}: the sign-in was audited");
        let text = scrape(&c).await;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse::<f64>().ok())
        };
        // The scrape's own audit rows may have moved the chain on; never backwards.
        let scraped = value("raxx_audit_chain_length").expect("chain length");
        assert!(scraped >= length as f64, "{url}: {text}");
        assert_eq!(
            value("raxx_audit_rows_uncovered"),
            Some(scraped),
            "{url}: {text}"
        );
    });
}

fn security_headers(r: &reqwest::Response) {
    let h = r.headers();
    for name in [
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
        "x-frame-options",
        "permissions-policy",
        "cross-origin-opener-policy",
    ] {
        assert!(h.contains_key(name), "{} answer lacks {name}", r.status());
    }
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert!(
        h["permissions-policy"]
            .to_str()
            .expect("pp")
            .contains("camera=()")
    );
}

#[tokio::test]
async fn errors_no_handler_wrote_get_the_envelope_and_the_security_headers() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, "").await;
        let client = c.client();

        let page = client.get(c.url("/login")).send().await.expect("send");
        assert!(
            page.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/html")
        );
        security_headers(&page);

        // 405: JSON envelope, the Allow header kept.
        let r = client
            .delete(c.url("/api/v1/me"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 405);
        security_headers(&r);
        assert!(r.headers().contains_key("allow"));
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "method_not_allowed");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));

        // 413 from the server's body limit (over 1 MiB, refused before any handler).
        let big = vec![b'x'; 2 * 1024 * 1024];
        let r = client
            .put(c.url("/api/v1/apps/raxx-api-staging/flags"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 413);
        security_headers(&r);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "too_large");

        // 421 and 404 too.
        let r = reqwest::Client::new()
            .get(format!("http://{}/login", c.addr))
            .header("host", "evil.example")
            .send()
            .await
            .expect("send");
        security_headers(&r);
        let r = client
            .get(c.url("/api/v1/nothing"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 404);
        security_headers(&r);
    });
}

#[tokio::test]
async fn operators_are_enabled_over_json_too() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let admin = c.operator("lead@raxx.test", &["production-admins"]).await;
        let other = c.operator("temp@raxx.test", &[]).await;
        let client = c.client();
        let post = |path: String| {
            client
                .post(c.url(&path))
                .headers(c.write_headers(&admin))
                .send()
        };
        let r = post(format!("/api/v1/operators/{}/disable", other.admin_id))
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        assert_eq!(c.audit_count("operator.enable", "allowed").await, 0);
        let r = post(format!("/api/v1/operators/{}/enable", other.admin_id))
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["disabled"], false);
        assert_eq!(c.audit_count("operator.enable", "allowed").await, 1);
        let row = c
            .store()
            .admin_by_id(other.admin_id)
            .await
            .expect("read")
            .expect("row");
        assert!(!row.disabled, "the operator is enabled again");
        // No CSRF token: refused, nothing changes.
        let r = client
            .post(c.url(&format!("/api/v1/operators/{}/enable", other.admin_id)))
            .headers(c.read_headers(&admin))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 403);
        // An unknown operator: 404 in the envelope.
        let r = post("/api/v1/operators/999999/enable".into())
            .await
            .expect("send");
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "not_found");
    });
}
