//! Customers (SPEC §9) against real consoles, on SQLite and PostgreSQL: the console's
//! database and the customers database are both of the backend under test.

use raxx_core::Env;
use raxx_core::config::Config;
use raxx_store::Store;
use raxx_store::audit::AuditQuery;
use raxx_store::testing::exec;
use raxx_testkit::{TestConsole, postgres_url, sqlite_url};
use serde_json::{Value, json};

/// A fresh, empty database of the same backend as `url`.
async fn fresh_like(url: &str) -> String {
    if url.starts_with("sqlite:") {
        sqlite_url()
    } else {
        postgres_url().await.expect("RAXX_TEST_PG is set")
    }
}

type Row = (i64, &'static str, &'static str, &'static str);

const STAGING_ROWS: &[Row] = &[
    (1, "qa.one@qa.raxx.test", "QA One", "active"),
    (2, "qa.two@qa.raxx.test", "QA Two", "active"),
    (
        3,
        "qa.percent@qa.raxx.test",
        "QA <b>Bold</b> Tester",
        "active",
    ),
];

const PROD_ROWS: &[Row] = &[
    (501, "ada.demo@customers.raxx.test", "Ada Demo", "active"),
    (
        502,
        "grace.sample@customers.raxx.test",
        "Grace Sample",
        "active",
    ),
    (
        503,
        "alan.fictional@customers.raxx.test",
        "Alan Fictional",
        "suspended",
    ),
];

/// A customers database at `url` with the default table and `rows`.
async fn customers_db(url: &str, env: Env, rows: &[Row]) {
    let store = Store::connect(url, env)
        .await
        .expect("connect customers db");
    exec(
        &store,
        "CREATE TABLE customers (id BIGINT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL)",
    )
    .await;
    for (id, email, name, status) in rows {
        exec(
            &store,
            &format!("INSERT INTO customers VALUES ({id}, '{email}', '{name}', '{status}', 1767571200000)"),
        )
        .await;
    }
    store.close().await;
}

async fn customer_status(url: &str, env: Env, id: i64) -> String {
    let store = Store::connect(url, env)
        .await
        .expect("connect customers db");
    let s = raxx_store::testing::query_string(
        &store,
        &format!("SELECT status FROM customers WHERE id = {id}"),
    )
    .await;
    store.close().await;
    s
}

/// A console of `env` on `url` whose customers database is a fresh one holding `rows`.
async fn console_with_customers(env: Env, url: &str, rows: &[Row]) -> (TestConsole, String) {
    let cust = fresh_like(url).await;
    customers_db(&cust, env, rows).await;
    let console = TestConsole::start(
        env,
        url,
        &format!("[customers]\ndatabase_url = \"{cust}\"\n"),
    )
    .await;
    (console, cust)
}

async fn get_json(c: &TestConsole, op: &raxx_testkit::Operator, path: &str) -> (u16, Value) {
    let resp = c
        .client()
        .get(c.url(path))
        .headers(c.read_headers(op))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_html(c: &TestConsole, op: &raxx_testkit::Operator, path: &str) -> (u16, String) {
    let resp = c
        .client()
        .get(c.url(path))
        .headers(c.read_headers(op))
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn post_json(
    c: &TestConsole,
    op: &raxx_testkit::Operator,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let resp = c
        .client()
        .post(c.url(path))
        .headers(c.write_headers(op))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn customer_fields_are_masked_without_the_reader_role() {
    raxx_testkit::each_backend!(|url| {
        let (prod, _) = console_with_customers(Env::Prod, &url, PROD_ROWS).await;
        let admin = prod
            .operator("padmin@raxx.test", &["production-admins"])
            .await;
        let nobody = prod.operator("nobody@raxx.test", &[]).await;

        let (status, body) = get_json(&prod, &admin, "/api/v1/customers?q=ada").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["masked"], false);
        assert_eq!(
            body["customers"][0]["email"],
            "ada.demo@customers.raxx.test"
        );
        assert_eq!(body["customers"][0]["name"], "Ada Demo");

        // Masked viewers look customers up by id only (issue 19 item 12): a search by
        // id finds the customer, masked; see also the prefix attack test below.
        let (status, body) = get_json(&prod, &nobody, "/api/v1/customers?q=501").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["masked"], true);
        assert_eq!(body["search"], "id_only");
        assert_eq!(body["customers"][0]["email"], "a***@c***.test");
        assert_eq!(body["customers"][0]["name"], "A*** D***");
        let (_, one) = get_json(&prod, &nobody, "/api/v1/customers/502").await;
        assert_eq!(one["email"], "g***@c***.test", "{one}");

        for path in ["/customers?q=501", "/customers/501"] {
            let (status, html) = get_html(&prod, &nobody, path).await;
            assert_eq!(status, 200, "{path}");
            assert!(!html.contains("ada.demo@"), "{path} leaks an email");
            assert!(!html.contains("Ada Demo"), "{path} leaks a name");
            assert!(html.contains("a***@c***.test"), "{path}");
            let (_, html) = get_html(&prod, &admin, path).await;
            assert!(html.contains("ada.demo@customers.raxx.test"), "{path}");
        }

        // staging-admins hold console-customer-reader on staging: unmasked there.
        let (staging, _) =
            console_with_customers(Env::Staging, &fresh_like(&url).await, STAGING_ROWS).await;
        let qa = staging.operator("qa@raxx.test", &["staging-admins"]).await;
        let (_, body) = get_json(&staging, &qa, "/api/v1/customers?q=qa.one").await;
        assert_eq!(body["masked"], false);
        assert_eq!(body["customers"][0]["email"], "qa.one@qa.raxx.test");
    });
}

/// The attack of issue 19 item 12: an operator with no customer role extends an
/// email-prefix search one character at a time until the masked address is whole.
/// Masked viewers may look up by id only, so no prefix (nor an empty search, which lists
/// customers in email order) answers anything.
#[tokio::test]
async fn a_masked_viewer_cannot_recover_an_email_by_extending_a_prefix() {
    raxx_testkit::each_backend!(|url| {
        let (prod, _) = console_with_customers(Env::Prod, &url, PROD_ROWS).await;
        let nobody = prod.operator("curious@raxx.test", &[]).await;
        let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789.@-_".chars().collect();
        let mut recovered = String::new();
        'extend: for _ in 0..40 {
            for ch in &alphabet {
                let guess = format!("{recovered}{ch}");
                let q: String = url::form_urlencoded::byte_serialize(guess.as_bytes()).collect();
                let (status, body) =
                    get_json(&prod, &nobody, &format!("/api/v1/customers?q={q}")).await;
                assert_eq!(status, 200, "{body}");
                let hit = body["customers"]
                    .as_array()
                    .is_some_and(|rows| !rows.is_empty());
                if hit {
                    recovered = guess;
                    continue 'extend;
                }
            }
            break;
        }
        assert_eq!(
            recovered, "",
            "a prefix search answered a masked viewer: recovered `{recovered}`"
        );
        // The page answers the same way, and says why.
        for path in [
            "/customers?q=a",
            "/customers?q=ada.demo%40",
            "/customers?q=",
        ] {
            let (status, html) = get_html(&prod, &nobody, path).await;
            assert_eq!(status, 200, "{path}");
            assert!(!html.contains("a***@c***.test"), "{path} lists a customer");
            assert!(html.contains("looked up by id only"), "{path} says why");
        }
        let (_, body) = get_json(&prod, &nobody, "/api/v1/customers?q=").await;
        assert_eq!(body["customers"], json!([]), "no listing in email order");
        assert!(
            body["note"]
                .as_str()
                .is_some_and(|n| n.contains("console-customer-reader"))
        );
        // An operator holding the role still searches by prefix.
        let admin = prod
            .operator("padmin@raxx.test", &["production-admins"])
            .await;
        let (_, body) = get_json(&prod, &admin, "/api/v1/customers?q=ada").await;
        assert_eq!(
            body["customers"][0]["email"],
            "ada.demo@customers.raxx.test"
        );
        assert_eq!(body["search"], "email_prefix_or_id");
    });
}

#[tokio::test]
async fn each_console_reads_only_its_own_customers() {
    raxx_testkit::each_backend!(|url| {
        let (staging, _) = console_with_customers(Env::Staging, &url, STAGING_ROWS).await;
        let (prod, _) = console_with_customers(Env::Prod, &fresh_like(&url).await, PROD_ROWS).await;
        let qa = staging.operator("qa@raxx.test", &["staging-admins"]).await;
        // Every read route of the staging console, asked for prod's customers.
        let (_, body) = get_json(&staging, &qa, "/api/v1/customers?q=ada").await;
        assert_eq!(body["customers"], json!([]), "{body}");
        let (_, body) = get_json(&staging, &qa, "/api/v1/customers?q=501").await;
        assert_eq!(body["customers"], json!([]), "{body}");
        let (status, _) = get_json(&staging, &qa, "/api/v1/customers/501").await;
        assert_eq!(status, 404);
        let (status, html) = get_html(&staging, &qa, "/customers/501").await;
        assert_eq!(status, 404);
        assert!(!html.contains("ada.demo"));
        let (_, all) = get_json(&staging, &qa, "/api/v1/customers?q=").await;
        assert_eq!(all["customers"].as_array().map(Vec::len), Some(3), "{all}");
        let admin = prod
            .operator("padmin@raxx.test", &["production-admins"])
            .await;
        let (_, all) = get_json(&prod, &admin, "/api/v1/customers?q=qa").await;
        assert_eq!(all["customers"], json!([]), "{all}");
    });
}

#[tokio::test]
async fn the_config_refuses_the_console_database_as_customers_database() {
    raxx_testkit::each_backend!(|url| {
        let text = format!(
            "public_url = \"http://prod.localhost:1\"\ndatabase_url = \"{url}\"\n[customers]\ndatabase_url = \"{url}\"\n"
        );
        let cfg = Config::parse(&text, |_| None).unwrap().resolve().unwrap();
        let err = raxx_web::customers::open_customer_db(&cfg).unwrap_err();
        assert!(err.contains("console's own database"), "{err}");
        assert!(!err.contains('\n'));
        let store = Store::connect(&url, Env::Prod).await.unwrap();
        let state = raxx_web::AppState::new(cfg, store, None);
        assert!(
            state.is_err(),
            "a console sharing its database with customers must not start"
        );
        // Unsafe column names are refused too.
        let text = format!(
            "public_url = \"http://prod.localhost:1\"\ndatabase_url = \"{url}\"\n[customers]\ndatabase_url = \"sqlite://elsewhere.db\"\ncolumns = {{ email = \"email; DROP TABLE customers\" }}\n"
        );
        let cfg = Config::parse(&text, |_| None).unwrap().resolve().unwrap();
        let err = raxx_web::customers::open_customer_db(&cfg).unwrap_err();
        assert!(err.contains("columns.email"), "{err}");
    });
}

#[tokio::test]
async fn the_embedded_fixture_is_per_env_and_refused_by_the_other_env() {
    // The fixture sits beside a SQLite console database; give each console its own folder.
    let dir = std::env::temp_dir().join(format!("raxx-fixture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let staging_db = format!("sqlite://{}/staging.db", dir.display());
    let prod_db = format!("sqlite://{}/prod.db", dir.display());
    let staging = TestConsole::start(Env::Staging, &staging_db, "").await;
    let prod = TestConsole::start(Env::Prod, &prod_db, "").await;
    let qa = staging.operator("qa@raxx.test", &["staging-admins"]).await;
    let admin = prod
        .operator("padmin@raxx.test", &["production-admins"])
        .await;
    let (status, s) = get_json(&staging, &qa, "/api/v1/customers?q=qa.").await;
    assert_eq!(status, 200, "{s}");
    assert!(
        s["customers"].as_array().is_some_and(|a| a.len() >= 10),
        "{s}"
    );
    let (_, p) = get_json(&prod, &admin, "/api/v1/customers?q=").await;
    let prod_emails: Vec<&str> = p["customers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["email"].as_str())
        .collect();
    assert!(!prod_emails.is_empty());
    assert!(
        prod_emails.iter().all(|e| !e.starts_with("qa.")),
        "{prod_emails:?}"
    );
    assert!(dir.join("customers-staging.db").exists());
    assert!(dir.join("customers-prod.db").exists());

    // A staging console configured with prod's fixture refuses to read it.
    let wrong = TestConsole::start(
        Env::Staging,
        &sqlite_url(),
        &format!(
            "[customers]\ndatabase_url = \"sqlite://{}/customers-prod.db\"\n",
            dir.display()
        ),
    )
    .await;
    let op = wrong.operator("qa@raxx.test", &["staging-admins"]).await;
    let (status, html) = get_html(&wrong, &op, "/customers").await;
    assert_eq!(status, 503);
    assert!(html.contains("belongs to the prod console"), "{html}");
    assert!(!html.contains("ada.demo"));
}

#[tokio::test]
async fn suspending_on_prod_needs_the_admin_role_and_a_reason_and_is_audited() {
    raxx_testkit::each_backend!(|url| {
        let (prod, cust) = console_with_customers(Env::Prod, &url, PROD_ROWS).await;
        let admin = prod
            .operator("padmin@raxx.test", &["production-admins"])
            .await;
        let nobody = prod.operator("nobody@raxx.test", &[]).await;

        let (status, body) =
            post_json(&prod, &admin, "/api/v1/customers/501/suspend", json!({})).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap_or("").contains("reason"),
            "{body}"
        );
        let (status, _) = post_json(
            &prod,
            &admin,
            "/api/v1/customers/501/suspend",
            json!({"reason": "  "}),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(customer_status(&cust, Env::Prod, 501).await, "active");

        let (status, body) = post_json(
            &prod,
            &nobody,
            "/api/v1/customers/501/suspend",
            json!({"reason": "x"}),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
        assert_eq!(prod.audit_count("customer.suspend", "denied").await, 1);

        let (status, body) = post_json(
            &prod,
            &admin,
            "/api/v1/customers/501/suspend",
            json!({"reason": "chargeback fraud, ticket 4411"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["customer"]["status"], "suspended");
        assert_eq!(customer_status(&cust, Env::Prod, 501).await, "suspended");
        assert_eq!(prod.audit_count("customer.suspend", "allowed").await, 1);
        let rows = prod
            .store()
            .audit_page(&AuditQuery {
                action: Some("customer.suspend".into()),
                outcome: raxx_core::audit::Outcome::parse("allowed"),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        let e = &rows[0].event;
        assert_eq!(e.reason.as_deref(), Some("chargeback fraud, ticket 4411"));
        assert_eq!(e.target_id.as_deref(), Some("501"));
        assert_eq!(e.actor, admin.admin_id.to_string());
        assert_eq!(e.context["before"]["status"], "active");
        assert_eq!(e.context["after"]["status"], "suspended");
        assert_eq!(e.context["before"]["email"], "a***@c***.test");
        let ctx = e.context.to_string();
        assert!(
            !ctx.contains("ada.demo") && !ctx.contains("Ada Demo"),
            "{ctx}"
        );

        // Suspending twice is a conflict and changes nothing; reactivating works.
        let (status, _) = post_json(
            &prod,
            &admin,
            "/api/v1/customers/501/suspend",
            json!({"reason": "again"}),
        )
        .await;
        assert_eq!(status, 409);
        let (status, _) = post_json(
            &prod,
            &admin,
            "/api/v1/customers/501/reactivate",
            json!({"reason": "resolved"}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(customer_status(&cust, Env::Prod, 501).await, "active");
        assert_eq!(prod.audit_count("customer.reactivate", "allowed").await, 1);

        // The page form: a change of email, with the guard fields, masked in the audit.
        let form = [
            ("email", "grace.new@customers.raxx.test"),
            ("reason", "customer asked by phone"),
            ("_csrf", admin.csrf.as_str()),
            ("_target_env", "prod"),
        ];
        let resp = prod
            .client()
            .post(prod.url("/customers/502/email"))
            .headers(prod.read_headers(&admin))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        let (_, one) = get_json(&prod, &admin, "/api/v1/customers/502").await;
        assert_eq!(one["email"], "grace.new@customers.raxx.test");
        let rows = prod
            .store()
            .audit_page(&AuditQuery {
                action: Some("customer.change_email".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows[0].event.context["after"]["email"], "g***@c***.test");
        assert!(!rows[0].event.context.to_string().contains("grace.new"));
        // A form that names the wrong env changes nothing.
        let form = [
            ("reason", "x"),
            ("_csrf", admin.csrf.as_str()),
            ("_target_env", "staging"),
        ];
        let resp = prod
            .client()
            .post(prod.url("/customers/502/suspend"))
            .headers(prod.read_headers(&admin))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        assert_eq!(customer_status(&cust, Env::Prod, 502).await, "active");

        // A refused form keeps what was typed and marks the field; nothing changes.
        let form = [
            ("email", "not-an-email"),
            ("reason", "customer asked by phone, ticket 8812"),
            ("_csrf", admin.csrf.as_str()),
            ("_target_env", "prod"),
        ];
        let resp = prod
            .client()
            .post(prod.url("/customers/502/email"))
            .headers(prod.read_headers(&admin))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("value=\"customer asked by phone, ticket 8812\""),
            "the reason is kept"
        );
        assert!(
            html.contains("value=\"not-an-email\" aria-invalid=\"true\""),
            "the email is kept and marked"
        );
        assert!(html.contains("class=\"field-error\" id=\"e-email-err\""));
        let (_, one) = get_json(&prod, &admin, "/api/v1/customers/502").await;
        assert_eq!(
            one["email"], "grace.new@customers.raxx.test",
            "nothing changed"
        );
        let form = [
            ("reason", "   "),
            ("_csrf", admin.csrf.as_str()),
            ("_target_env", "prod"),
        ];
        let resp = prod
            .client()
            .post(prod.url("/customers/502/suspend"))
            .headers(prod.read_headers(&admin))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let html = resp.text().await.unwrap();
        assert!(html.contains("id=\"s-reason-err\""), "the reason is marked");
        assert!(
            html.contains("<h1>Customer 502</h1>"),
            "the customer's page, not a bare error"
        );
        assert_eq!(customer_status(&cust, Env::Prod, 502).await, "active");
    });
}

#[tokio::test]
async fn staging_admins_cannot_change_customers_on_staging() {
    raxx_testkit::each_backend!(|url| {
        let (staging, cust) = console_with_customers(Env::Staging, &url, STAGING_ROWS).await;
        let qa = staging.operator("qa@raxx.test", &["staging-admins"]).await;
        let (status, body) = post_json(
            &staging,
            &qa,
            "/api/v1/customers/1/suspend",
            json!({"reason": "test"}),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"], "forbidden");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("console-customer-user"),
            "{body}"
        );
        assert_eq!(staging.audit_count("customer.suspend", "denied").await, 1);
        assert_eq!(customer_status(&cust, Env::Staging, 1).await, "active");
        // The controls are not rendered for them.
        let (_, html) = get_html(&staging, &qa, "/customers/1").await;
        assert!(html.contains("qa.one@qa.raxx.test"));
        assert!(
            !html.contains("/customers/1/suspend"),
            "a control they cannot use is rendered"
        );
    });
}

#[tokio::test]
async fn when_the_audit_row_cannot_be_written_the_customer_is_not_changed() {
    raxx_testkit::each_backend!(|url| {
        let (prod, cust) = console_with_customers(Env::Prod, &url, PROD_ROWS).await;
        let admin = prod
            .operator("padmin@raxx.test", &["production-admins"])
            .await;
        exec(
            prod.store(),
            "ALTER TABLE console_audit_log RENAME TO console_audit_log_away",
        )
        .await;
        let (status, _) = post_json(
            &prod,
            &admin,
            "/api/v1/customers/501/suspend",
            json!({"reason": "fraud"}),
        )
        .await;
        assert!(status >= 500, "{status}");
        assert_eq!(customer_status(&cust, Env::Prod, 501).await, "active");
        exec(
            prod.store(),
            "ALTER TABLE console_audit_log_away RENAME TO console_audit_log",
        )
        .await;
    });
}

#[tokio::test]
async fn a_customers_database_that_is_down_or_mis_mapped_gets_a_clear_error_page() {
    raxx_testkit::each_backend!(|url| {
        for (extra, want) in [
            (
                "[customers]\ndatabase_url = \"postgres://nobody@127.0.0.1:1/customers\"\n"
                    .to_string(),
                "is it running",
            ),
            (String::new(), "check [customers] table and columns"),
        ] {
            let extra = if extra.is_empty() {
                let cust = fresh_like(&url).await;
                customers_db(&cust, Env::Prod, PROD_ROWS).await;
                format!(
                    "[customers]\ndatabase_url = \"{cust}\"\ncolumns = {{ email = \"mail\" }}\n"
                )
            } else {
                extra
            };
            let prod = TestConsole::start(Env::Prod, &url, &extra).await;
            let admin = prod
                .operator("padmin@raxx.test", &["production-admins"])
                .await;
            let (status, html) = get_html(&prod, &admin, "/customers?q=a").await;
            assert_eq!(status, 503, "{html}");
            assert!(
                html.contains("The customers database is unavailable"),
                "{html}"
            );
            assert!(html.contains(want), "{html}");
            assert!(html.contains("data-env=\"prod\""));
            let (status, body) = get_json(&prod, &admin, "/api/v1/customers?q=a").await;
            assert_eq!(
                (status, body["error"].as_str()),
                (503, Some("customers_unavailable")),
                "{body}"
            );
            let (status, _) = post_json(
                &prod,
                &admin,
                "/api/v1/customers/501/suspend",
                json!({"reason": "x"}),
            )
            .await;
            assert_eq!(status, 503);
            // The rest of the console keeps working.
            for path in ["/", "/status", "/jobs", "/api/v1/me"] {
                let (status, _) = get_html(&prod, &admin, path).await;
                assert_eq!(status, 200, "{path}");
            }
        }
    });
}

#[tokio::test]
async fn a_search_is_data_never_sql_or_html() {
    raxx_testkit::each_backend!(|url| {
        let (staging, _) = console_with_customers(Env::Staging, &url, STAGING_ROWS).await;
        let qa = staging.operator("qa@raxx.test", &["staging-admins"]).await;
        for q in [
            "' OR 1=1 --",
            "%",
            "_",
            "qa.one' OR '1'='1",
            "1 OR 1=1",
            "\"; DROP TABLE customers; --",
        ] {
            let resp = staging
                .client()
                .get(staging.url("/api/v1/customers"))
                .query(&[("q", q)])
                .headers(staging.read_headers(&qa))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{q}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["customers"], json!([]), "{q} matched: {body}");
        }
        let (_, all) = get_json(&staging, &qa, "/api/v1/customers").await;
        assert_eq!(
            all["customers"].as_array().map(Vec::len),
            Some(3),
            "the table survived"
        );
        let resp = staging
            .client()
            .get(staging.url("/customers"))
            .query(&[("q", "<script>alert(1)</script>")])
            .headers(staging.read_headers(&qa))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let html = resp.text().await.unwrap();
        assert!(
            !html.contains("<script>alert(1)"),
            "the search was echoed as HTML"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                || html.contains("&#60;script&#62;"),
            "{html}"
        );
        // Stored values are escaped too.
        let (_, html) = get_html(&staging, &qa, "/customers?q=qa.percent").await;
        assert!(!html.contains("<b>Bold</b>"), "{html}");
        assert!(
            html.contains("&lt;b&gt;Bold&lt;/b&gt;") || html.contains("&#60;b&#62;Bold"),
            "{html}"
        );
    });
}
