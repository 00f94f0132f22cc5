//! Pages an operator meets when something goes wrong or changes (issue 17): error pages in
//! the layout with the operator's navigation, the 421 as a page for browsers, the sign-in
//! page after a session ended (and the way back), forms that keep what was typed, the
//! status grid that reloads itself, jobs in words, the favicon and title per env.
//! Every test runs on SQLite and, with RAXX_TEST_PG, on PostgreSQL.

use raxx_core::Env;
use raxx_store::checks::{CheckResult, CheckStatus};
use raxx_testkit::{Operator, TestConsole};

const PROD_APPS: &str = r#"
[[apps]]
name = "raxx-api-prod"
env = "prod"
[[apps.checks]]
name = "healthz"
url = "http://127.0.0.1:9/healthz"
"#;

const STAGING_APPS: &str = r#"
[[apps]]
name = "raxx-api-staging"
env = "staging"
"#;

fn apps(env: Env) -> &'static str {
    match env {
        Env::Prod => PROD_APPS,
        Env::Staging => STAGING_APPS,
    }
}

async fn get(c: &TestConsole, op: Option<&Operator>, path: &str) -> (u16, String, String) {
    let mut req = c.client().get(c.url(path)).header("accept", "text/html");
    if let Some(op) = op {
        req = req.headers(c.read_headers(op));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, location, resp.text().await.unwrap_or_default())
}

async fn post_form(
    c: &TestConsole,
    cookie: &str,
    path: &str,
    form: &str,
    referer: Option<&str>,
) -> (u16, String) {
    let mut req = c
        .client()
        .post(c.url(path))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string());
    if let Some(r) = referer {
        req = req.header("referer", r);
    }
    let resp = req.send().await.expect("request");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn error_pages_have_the_layout_and_the_navigation_the_operator_may_use() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, PROD_APPS).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;

        // 404 signed in: the layout, with the admin's navigation (the audit log among it).
        let (status, _, html) = get(&c, Some(&lead), "/no/such/page").await;
        assert_eq!(status, 404, "{html}");
        assert!(html.contains("class=\"env-pill env-prod\""), "{html}");
        assert!(html.contains("href=\"/audit\""), "the admin's nav: {html}");
        assert!(html.contains("Sign out"), "{html}");
        // Signed out: the layout without any navigation.
        let (status, _, html) = get(&c, None, "/no/such/page").await;
        assert_eq!(status, 404);
        assert!(html.contains("Not found") && !html.contains("href=\"/audit\""));

        // 403 from the gate (a form prepared for the other env): the operator's real nav.
        let form = format!(
            "_csrf={}&_target_env=staging&email=x%40raxx.test&group=production-admins",
            lead.csrf
        );
        let (status, html) = post_form(&c, &lead.cookie, "/invites", &form, None).await;
        assert_eq!(status, 403, "{html}");
        assert!(html.contains("Wrong environment"), "{html}");
        assert!(
            html.contains("href=\"/audit\"") && html.contains("href=\"/invites\""),
            "the nav this operator is entitled to: {html}"
        );

        // 404 from a handler (a page route): same layout and nav.
        let (status, _, html) = get(&c, Some(&lead), "/promotions/987654").await;
        assert_eq!(status, 404, "{html}");
        assert!(html.contains("href=\"/audit\""), "{html}");
    });
}

#[tokio::test]
async fn a_misdirected_browser_gets_a_page_and_an_api_client_json() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, STAGING_APPS).await;
        let raw = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{}", c.url("").rsplit(':').next().unwrap());
        let resp = raw
            .get(format!("{base}/audit"))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 421);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = resp.text().await.unwrap();
        assert!(html.contains("Wrong address for this console"), "{html}");
        assert!(html.contains(&format!("href=\"{}/\"", c.url(""))), "{html}");
        assert!(html.contains("class=\"env-pill env-staging\""), "{html}");

        for (path, accept) in [("/api/v1/me", "text/html"), ("/audit", "application/json")] {
            let resp = raw
                .get(format!("{base}{path}"))
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 421);
            let v: serde_json::Value = resp.json().await.expect("JSON for API clients");
            assert_eq!(v["error"], "misdirected", "{path}");
        }
    });
}

#[tokio::test]
async fn an_ended_session_says_so_on_sign_in_and_keeps_the_way_back() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, PROD_APPS).await;
        let cookie_name = c.state.cfg.cookie_name();

        // A cookie that signs nobody in any more (purged, or never valid): "expired".
        let stale = format!("{cookie_name}=rxs_not-a-live-session");
        let resp = c
            .client()
            .get(c.url("/audit?action=flag.kill"))
            .header("cookie", &stale)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        let to = resp.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(
            to, "/login?next=%2Faudit%3Faction%3Dflag.kill&reason=expired",
            "deep link and reason"
        );
        let (status, _, html) = get(&c, None, &to).await;
        assert_eq!(status, 200);
        assert!(
            html.contains("Your session expired — sign in again."),
            "{html}"
        );
        assert!(
            html.contains("data-next=\"/audit?action=flag.kill\""),
            "{html}"
        );

        // No cookie at all: the deep link, no notice.
        let (status, to, _) = get(&c, None, "/audit").await;
        assert_eq!((status, to.as_str()), (303, "/login?next=%2Faudit"));
        let (_, _, html) = get(&c, None, "/login?next=%2Faudit&reason=made-up").await;
        assert!(!html.contains("session expired") && !html.contains("made-up"));

        // A session ended elsewhere: "ended"; a submit with it gets a sign-in link back to
        // the page it came from (same-origin Referer only).
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let mut tx = c.store().begin().await.unwrap();
        tx.revoke_session(&lead.session_id).await.unwrap();
        tx.record(raxx_core::audit::AuditEvent::new(
            "test",
            "session.revoke",
            raxx_core::audit::Outcome::Allowed,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let (status, to, _) = get(&c, Some(&lead), "/invites").await;
        assert_eq!(
            (status, to.as_str()),
            (303, "/login?next=%2Finvites&reason=ended")
        );
        let (_, _, html) = get(&c, None, &to).await;
        assert!(
            html.contains("Your session was ended — sign in again."),
            "{html}"
        );

        let form = format!(
            "_csrf={}&_target_env=prod&email=x%40raxx.test&group=production-admins",
            lead.csrf
        );
        let from = c.url("/invites?tab=pending");
        let (status, html) = post_form(&c, &lead.cookie, "/invites", &form, Some(&from)).await;
        assert_eq!(status, 401, "{html}");
        assert!(html.contains("Sign in again"), "{html}");
        assert!(
            html.contains("/login?next=%2Finvites%3Ftab%3Dpending&#38;reason=ended"),
            "{html}"
        );
        // An off-site Referer is never a way back.
        let (status, html) = post_form(
            &c,
            &lead.cookie,
            "/invites",
            &form,
            Some("http://evil.example/invites"),
        )
        .await;
        assert_eq!(status, 401);
        assert!(html.contains("href=\"/login?reason=ended\""), "{html}");
        assert!(!html.contains("evil.example"));
    });
}

#[tokio::test]
async fn the_invite_form_keeps_what_was_typed_and_shows_what_groups_grant() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, PROD_APPS).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;

        // No group is chosen for the operator.
        let (status, _, html) = get(&c, Some(&lead), "/invites").await;
        assert_eq!(status, 200);
        assert!(
            html.contains("<option value=\"\" selected>Choose a group…</option>"),
            "{html}"
        );
        assert!(!html.contains("\" selected>production-admins"), "{html}");
        // What each group grants here.
        assert!(html.contains("<dt>production-admins</dt>"), "{html}");
        assert!(html.contains("console-invite-admin"), "{html}");

        // Submitted without a group: the form again, the email kept, the group marked.
        let form = format!(
            "_csrf={}&_target_env=prod&email=typed%40raxx.test&group=",
            lead.csrf
        );
        let (status, html) = post_form(&c, &lead.cookie, "/invites", &form, None).await;
        assert_eq!(status, 422, "{html}");
        assert!(html.contains("value=\"typed@raxx.test\""), "{html}");
        assert!(
            html.contains("Choose the group the invitee joins."),
            "{html}"
        );
        assert!(html.contains("aria-invalid=\"true\""), "{html}");
        assert_eq!(c.audit_count("invite.create", "allowed").await, 0);

        // A bad address: kept and marked too.
        let form = format!(
            "_csrf={}&_target_env=prod&email=not-an-address&group=production-admins",
            lead.csrf
        );
        let (status, html) = post_form(&c, &lead.cookie, "/invites", &form, None).await;
        assert_eq!(status, 422, "{html}");
        assert!(html.contains("value=\"not-an-address\""), "{html}");
        assert!(
            html.contains("<option value=\"production-admins\" selected>"),
            "{html}"
        );

        // A good one: created; the table names who invited and when it was accepted.
        let form = format!(
            "_csrf={}&_target_env=prod&email=new%40raxx.test&group=production-admins",
            lead.csrf
        );
        let (status, html) = post_form(&c, &lead.cookie, "/invites", &form, None).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Invite link (shown once)"));
        assert!(html.contains("<th scope=\"col\">Invited by</th>"));
        assert!(html.contains("<th scope=\"col\">Accepted</th>"));
        assert!(
            html.contains("data-label=\"Invited by\">lead@raxx.test</td>"),
            "{html}"
        );
        assert_eq!(c.audit_count("invite.create", "allowed").await, 1);
    });
}

#[tokio::test]
async fn a_used_revoked_or_unknown_invite_says_which_and_what_to_do() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, PROD_APPS).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let mut tx = c.store().begin().await.unwrap();
        let (token, id) = tx
            .create_invite("carol@raxx.test", "production-admins", lead.admin_id)
            .await
            .unwrap();
        tx.record(raxx_core::audit::AuditEvent::new(
            "test",
            "invite.create",
            raxx_core::audit::Outcome::Allowed,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let (status, _, html) = get(&c, None, &format!("/invite/{token}")).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Join the PROD console"));

        let mut tx = c.store().begin().await.unwrap();
        tx.revoke_invite(id).await.unwrap();
        tx.record(raxx_core::audit::AuditEvent::new(
            "test",
            "invite.revoke",
            raxx_core::audit::Outcome::Allowed,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let (status, _, html) = get(&c, None, &format!("/invite/{token}")).await;
        assert_eq!(status, 404, "{html}");
        assert!(html.contains("This invite cannot be used"), "{html}");
        assert!(html.contains("this invite was revoked"), "{html}");
        assert!(html.contains("Ask the operator who invited you"), "{html}");
        assert!(!html.contains(&token), "no token echoed");

        let (status, _, html) = get(&c, None, "/invite/rxi_nonsense").await;
        assert_eq!(status, 404, "{html}");
        assert!(html.contains("this invite link is not valid"), "{html}");
    });
}

#[tokio::test]
async fn the_status_grid_reloads_itself_and_says_why_a_check_is_down() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, PROD_APPS).await;
        let op = c.operator("reader@raxx.test", &[]).await;
        c.store()
            .insert_check_results(&[CheckResult {
                app: "raxx-api-prod".into(),
                check: "healthz".into(),
                at: raxx_store::now_ms() - 2_000,
                status: CheckStatus::Down,
                http_status: Some(503),
                latency_ms: 4,
                error: Some("answered 503, expected 200".into()),
            }])
            .await
            .unwrap();
        let (status, _, html) = get(&c, Some(&op), "/status").await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains("<script src=\"/static/refresh.js\" defer></script>"),
            "{html}"
        );
        assert!(html.contains("data-refresh=\"30\""), "{html}");
        assert!(
            !html.contains("http-equiv=\"refresh\""),
            "no timed meta refresh (WCAG 2.2.1)"
        );
        let js = c
            .client()
            .get(c.url("/static/refresh.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(js.status().as_u16(), 200);
        assert!(
            html.contains("<span class=\"down-reason\">answered 503, expected 200</span>"),
            "{html}"
        );
    });
}

#[tokio::test]
async fn jobs_read_in_words_and_run_now_on_prod_asks_first() {
    raxx_testkit::each_backend!(|url| {
        for env in Env::ALL {
            let db = if env == Env::Staging {
                url.clone()
            } else if url.starts_with("sqlite:") {
                raxx_testkit::sqlite_url()
            } else {
                raxx_testkit::postgres_url().await.expect("RAXX_TEST_PG")
            };
            let c = TestConsole::start(env, &db, apps(env)).await;
            let group = if env == Env::Prod {
                "production-admins"
            } else {
                "staging-admins"
            };
            let op = c.operator("lead@raxx.test", &[group]).await;
            c.store()
                .publish_job_schedule(&raxx_store::jobs::PublishedSchedule {
                    job: "status-poll".into(),
                    schedule: "*/30 * * * * *".into(),
                    enabled: true,
                    next_run_at: None,
                    holder: "test".into(),
                    updated_at: raxx_store::now_ms(),
                })
                .await
                .unwrap();
            let (status, _, html) = get(&c, Some(&op), "/jobs").await;
            assert_eq!(status, 200, "{html}");
            let form = "<form method=\"post\" action=\"/jobs/status-poll/run\"";
            let confirm = "<details class=\"confirm-inline\"><summary>Run now<span class=\"sr-only\">: status-poll on PROD</span></summary>";
            match env {
                Env::Prod => {
                    assert!(html.contains(confirm), "{html}");
                    assert!(html.contains("Run <strong>status-poll</strong> now on <strong class=\"env-name\">PROD</strong>?"));
                }
                Env::Staging => {
                    assert!(
                        !html.contains("<details class=\"confirm-inline\">"),
                        "{html}"
                    );
                    assert!(html.contains(form), "{html}");
                    assert!(html.contains("Run now<span class=\"sr-only\">: status-poll on STAGING</span></button>"), "{html}");
                }
            }
            assert!(
                html.contains("every 30 seconds<br><code>*/30 * * * * *</code>"),
                "{html}"
            );
            // The visible words are the start of every Run button's accessible name.
            assert!(!html.contains("aria-label=\"Run "), "{html}");
        }
    });
}

#[tokio::test]
async fn each_console_has_its_own_favicon_and_puts_its_env_first_in_the_title() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, PROD_APPS).await;
        let op = c.operator("lead@raxx.test", &["production-admins"]).await;
        let (_, _, html) = get(&c, Some(&op), "/audit").await;
        assert!(
            html.contains("<title>PROD · Audit log · raxx console</title>"),
            "{html}"
        );
        assert!(
            html.contains("<link rel=\"icon\" href=\"/static/favicon-prod.svg\""),
            "{html}"
        );
        let resp = c
            .client()
            .get(c.url("/static/favicon-prod.svg"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], "image/svg+xml");
        assert!(resp.text().await.unwrap().contains("#b3261e"));
        let staging = c
            .client()
            .get(c.url("/static/favicon-staging.svg"))
            .send()
            .await
            .unwrap();
        assert!(staging.text().await.unwrap().contains("#0b6e4f"));
        // The header (pill and prod banner) sits in the sticky block.
        assert!(
            html.contains("<div class=\"chrome\">\n<div class=\"prod-banner\""),
            "{html}"
        );
    });
}
