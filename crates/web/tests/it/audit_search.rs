//! The audit log as an operator searches it (issue 17): actors by email or its start,
//! targets as the table shows them, actions by part of their name, free text, relative
//! ranges, reads hidden by default, a row view and exports naming the actor's email.
//! Every test runs on SQLite and PostgreSQL over real HTTP.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_testkit::{Operator, TestConsole};
use serde_json::Value;

/// Rows as they would be written by real actions, by two operators, plus a promotion
/// that carried flag `theme`.
async fn seed(c: &TestConsole) -> (Operator, Operator, i64) {
    let alice = c.operator("alice@raxx.test", &["production-admins"]).await;
    let bob = c.operator("bob@raxx.test", &["production-admins"]).await;
    let store = c.store();
    let mut tx = store.begin().await.unwrap();
    let promotion: i64 = sqlx::query_scalar(
        "INSERT INTO console_flag_promotions (target_app, requested_by, reason, flags, content_hash, status, created_at, expires_at) VALUES ('web', $1, 'ship it', '[{\"key\":\"theme\",\"new\":null,\"base_version\":null}]', 'h', 'pending', 1, 2) RETURNING id",
    )
    .bind(alice.admin_id)
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.record(
        AuditEvent::new(alice.admin_id.to_string(), "flag.kill", Outcome::Allowed)
            .target("flag", "theme")
            .app("web")
            .reason("checkout broke at 50% rollout"),
    )
    .await
    .unwrap();
    tx.record(
        AuditEvent::new(
            alice.admin_id.to_string(),
            "flag.promotion.queue",
            Outcome::Allowed,
        )
        .target("promotion", promotion.to_string())
        .app("web"),
    )
    .await
    .unwrap();
    tx.record(
        AuditEvent::new(bob.admin_id.to_string(), "token.rotate", Outcome::Allowed)
            .target("token", "key:1")
            .app("web")
            .reason("quarterly"),
    )
    .await
    .unwrap();
    tx.record(
        AuditEvent::new("system:job:rotation", "token.grace_end", Outcome::Allowed)
            .target("token", "key:1")
            .app("web"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (alice, bob, promotion)
}

async fn entries(c: &TestConsole, op: &Operator, query: &str) -> Vec<Value> {
    let resp = c
        .client()
        .get(c.url(&format!("/api/v1/audit?{query}")))
        .headers(c.read_headers(op))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{query}");
    let body: Value = resp.json().await.unwrap();
    body["entries"].as_array().cloned().unwrap_or_default()
}

fn actions(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn actors_are_found_by_email_its_start_or_id() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let (alice, bob, _) = seed(&c).await;
        let id = alice.admin_id.to_string();
        for actor in [id.as_str(), "alice@raxx.test", "ALICE@raxx.test", "ali"] {
            let rows = entries(&c, &bob, &format!("actor={}&reads=hide", urlenc(actor))).await;
            assert!(!rows.is_empty(), "actor {actor} found nothing");
            assert!(
                rows.iter().all(|r| r["actor"] == id.as_str()),
                "actor {actor}: {rows:?}"
            );
            assert!(actions(&rows).contains(&"flag.kill".to_string()));
        }
        // A literal actor string still works; an unknown one finds nothing.
        let jobs = entries(&c, &bob, "actor=system:job:rotation").await;
        assert_eq!(actions(&jobs), ["token.grace_end"]);
        assert!(entries(&c, &bob, "actor=nobody@raxx.test").await.is_empty());
    });
}

#[tokio::test]
async fn targets_are_found_as_the_table_shows_them_and_a_flag_finds_its_promotions() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let (alice, _, promotion) = seed(&c).await;
        for target in ["flag theme", "flag theme (web)"] {
            let rows = entries(&c, &alice, &format!("target={}", urlenc(target))).await;
            let mut got = actions(&rows);
            got.sort();
            assert_eq!(got, ["flag.kill", "flag.promotion.queue"], "{target}");
            let pid = promotion.to_string();
            assert!(rows.iter().any(|r| r["target_id"] == pid.as_str()));
        }
        // Another app's flag of the same name is another target.
        assert!(
            entries(&c, &alice, "target=flag%20theme%20(api)")
                .await
                .is_empty()
        );
        // A bare id finds every type; a type narrows.
        let tokens = entries(&c, &alice, "target=key:1").await;
        assert_eq!(tokens.len(), 2);
        assert!(entries(&c, &alice, "target=flag%20key:1").await.is_empty());
        // An operator target by email, as the table shows it.
        let shown = format!("operator alice@raxx.test (#{})", alice.admin_id);
        let by_email = entries(&c, &alice, "target=operator%20alice@raxx.test").await;
        let by_shown = entries(&c, &alice, &format!("target={}", urlenc(&shown))).await;
        assert_eq!(by_email.len(), by_shown.len());
    });
}

#[tokio::test]
async fn actions_by_part_of_their_name_and_free_text() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let (alice, _, _) = seed(&c).await;
        assert_eq!(
            actions(&entries(&c, &alice, "action=kill").await),
            ["flag.kill"]
        );
        let mut promo = actions(&entries(&c, &alice, "action=promotion").await);
        promo.dedup();
        assert_eq!(promo, ["flag.promotion.queue"]);
        assert!(
            entries(&c, &alice, "action=no-such-action")
                .await
                .is_empty()
        );
        // The old prefix form keeps working.
        let tokens = actions(&entries(&c, &alice, "action=token.*").await);
        assert_eq!(tokens, ["token.grace_end", "token.rotate"]);
        // Free text over action, target and reason, ignoring case; % is a character.
        assert_eq!(
            actions(&entries(&c, &alice, "q=CHECKOUT").await),
            ["flag.kill"]
        );
        assert_eq!(
            actions(&entries(&c, &alice, "q=50%25").await),
            ["flag.kill"]
        );
        assert_eq!(
            actions(&entries(&c, &alice, "q=quarter").await),
            ["token.rotate"]
        );
        assert!(entries(&c, &alice, "q=%25%25%25").await.is_empty());
        let theme = actions(&entries(&c, &alice, "q=theme").await);
        assert_eq!(theme, ["flag.kill"]);
        // Relative ranges: everything seeded is within the last hour; bad values are 400.
        assert!(!entries(&c, &alice, "range=1h&action=kill").await.is_empty());
        let bad = c.as_reader(&alice).get("/api/v1/audit?range=2y").await;
        assert_eq!(bad.status(), 400);
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["error"], "invalid");
    });
}

#[tokio::test]
async fn the_viewer_and_dashboard_hide_reads_unless_asked() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let (alice, _, _) = seed(&c).await;
        let page = |q: &'static str| {
            let c = &c;
            let alice = &alice;
            async move {
                c.client()
                    .get(c.url(&format!("/audit{q}")))
                    .headers(c.read_headers(alice))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        // Reading the log twice writes audit.view rows...
        page("").await;
        let html = page("").await;
        assert!(c.audit_count("audit.view", "allowed").await >= 2);
        // ...which the default view leaves out, and the toggle shows.
        assert!(
            !html.contains("<code>audit.view</code>"),
            "reads shown by default"
        );
        assert!(html.contains("<code>flag.kill</code>"));
        let shown = page("?reads=show").await;
        assert!(shown.contains("<code>audit.view</code>"));
        assert!(shown.contains("name=\"reads\" type=\"checkbox\" value=\"show\" checked"));
        let dash = c
            .client()
            .get(c.url("/"))
            .headers(c.read_headers(&alice))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(dash.contains("<code>flag.kill</code>"));
        assert!(!dash.contains("<code>audit.view</code>"));
        // Actor and target cells are filters.
        assert!(html.contains(&format!("href=\"/audit?actor={}\"", alice.admin_id)));
        assert!(html.contains("href=\"/audit?target=flag%20theme%20%28web%29\""));
        // Denied reads stay visible: a refusal is never hidden.
        let eve = c.operator("eve@raxx.test", &[]).await;
        let refused = c.as_reader(&eve).get("/api/v1/audit").await;
        assert_eq!(refused.status(), 403);
        let html = page("?outcome=denied").await;
        assert!(
            html.contains("<code>audit.view</code>"),
            "a denied read was hidden"
        );
    });
}

#[tokio::test]
async fn a_row_opens_in_full_and_exports_name_the_actor() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let (alice, _, _) = seed(&c).await;
        let kill = entries(&c, &alice, "action=kill").await.remove(0);
        let id = kill["id"].as_i64().unwrap();
        let json: Value = c
            .client()
            .get(c.url(&format!("/api/v1/audit/{id}")))
            .headers(c.read_headers(&alice))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(json["actor_email"], "alice@raxx.test");
        assert_eq!(json["hash"], kill["hash"]);
        let html = c
            .client()
            .get(c.url(&format!("/audit/{id}")))
            .headers(c.read_headers(&alice))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for part in [
            kill["hash"].as_str().unwrap(),
            kill["prev_hash"].as_str().unwrap(),
            "checkout broke at 50% rollout",
            "alice@raxx.test",
        ] {
            assert!(html.contains(part), "the row view lacks {part}");
        }
        for (path, status) in [
            ("/audit/abc", 400),
            ("/audit/99999999", 404),
            ("/audit/0", 400),
        ] {
            let resp = c.as_reader(&alice).get(path).await;
            assert_eq!(resp.status(), status, "{path}");
        }
        // Someone without the audit role may not open a row.
        let eve = c.operator("eve@raxx.test", &[]).await;
        let refused = c.as_reader(&eve).get(&format!("/api/v1/audit/{id}")).await;
        assert_eq!(refused.status(), 403);
        // Exports carry the email beside the id.
        let csv = c
            .client()
            .get(c.url("/audit/export?format=csv&action=kill"))
            .headers(c.read_headers(&alice))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines = csv.lines();
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("id,time,actor,actor_email,")
        );
        let row = lines.next().unwrap();
        assert!(
            row.contains(&format!("\"{}\",\"alice@raxx.test\"", alice.admin_id)),
            "{row}"
        );
        let jsonl = c
            .client()
            .get(c.url("/audit/export?format=jsonl&action=kill"))
            .headers(c.read_headers(&alice))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
        assert_eq!(first["actor_email"], "alice@raxx.test");
    });
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
