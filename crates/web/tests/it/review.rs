//! Reviews an approver can trust (issue 16 items 1, 2, 6) over real HTTP, on SQLite and
//! PostgreSQL: the frozen structured diff of a promotion (page, JSON, audit), restore after
//! a kill switch, and deep links that survive a passkey sign-in.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::FileFormat;
use raxx_core::gate::KeyKind;
use raxx_testkit::{Operator, TestConsole};
use reqwest::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const STAGING_APP: &str = "raxx-api-staging";
const PROD_APP: &str = "raxx-api-prod";

/// What prod holds at first (and staging too): a 10 % rollout behind an email rule, and a
/// flag that is disabled on purpose.
const BEFORE: &str = r#"
[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"
description = "New checkout flow"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[[flags.new-checkout.rules]]
rollout = { on = 10, off = 90 }

[flags.legacy-search]
type = "boolean"
variants = { on = true, off = false }
default = "on"
enabled = false
"#;

/// Staging after the change under review: the rollout moves to 50 % and gains a condition.
fn after() -> String {
    BEFORE.replace(
        "rollout = { on = 10, off = 90 }",
        "when = [{ attr = \"country\", op = \"in\", value = [\"DE\", \"FR\"] }]\nrollout = { on = 50, off = 50 }",
    )
}

async fn another_db(url: &str) -> String {
    if url.starts_with("sqlite") {
        raxx_testkit::sqlite_url()
    } else {
        raxx_testkit::postgres_url().await.expect("postgres")
    }
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

fn flags_of(app: &str, body: &str) -> raxx_core::flags::AppFlags {
    raxx_core::flags::parse_flags_file(&format!("app = \"{app}\"\n{body}"), FileFormat::Toml)
        .expect("flags parse")
}

async fn seed(c: &TestConsole, app: &str, body: &str) {
    c.store()
        .apply_flags(
            &flags_of(app, body),
            "seed",
            AuditEvent::new("test", "flag.seed", Outcome::Allowed),
        )
        .await
        .unwrap();
}

struct Pair {
    staging: TestConsole,
    prod: TestConsole,
    alice: Operator,
    bob: Operator,
}

async fn pair(url: &str) -> Pair {
    let staging = TestConsole::start(
        Env::Staging,
        url,
        "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
    )
    .await;
    seed(&staging, STAGING_APP, &after()).await;
    let read = new_key(&staging, STAGING_APP, KeyKind::Read).await;
    let extra = format!(
        "staging_source_url = \"{}\"\nstaging_source_key = \"{read}\"\n\n[[apps]]\nname = \"{PROD_APP}\"\nenv = \"prod\"\npromote_from = \"{STAGING_APP}\"\n",
        staging.origin
    );
    let prod = TestConsole::start(Env::Prod, &another_db(url).await, &extra).await;
    seed(&prod, PROD_APP, BEFORE).await;
    let alice = prod
        .operator("alice@raxx.test", &["production-admins"])
        .await;
    let bob = prod.operator("bob@raxx.test", &["production-admins"]).await;
    Pair {
        staging,
        prod,
        alice,
        bob,
    }
}

async fn post_json(c: &TestConsole, op: &Operator, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = c
        .client()
        .post(c.url(path))
        .headers(c.write_headers(op))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_json(c: &TestConsole, op: &Operator, path: &str) -> (StatusCode, Value) {
    let resp = c
        .client()
        .get(c.url(path))
        .headers(c.read_headers(op))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn page(c: &TestConsole, op: &Operator, path: &str) -> String {
    let resp = c
        .client()
        .get(c.url(path))
        .headers(c.read_headers(op))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

async fn audit_rows(c: &TestConsole, action: &str) -> Vec<raxx_core::audit::AuditEntry> {
    c.store()
        .audit_page(&raxx_store::audit::AuditQuery {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn promotion_count(c: &TestConsole, op: &Operator) -> usize {
    let (s, list) = get_json(c, op, "/api/v1/promotions").await;
    assert_eq!(s, 200);
    list.as_array().map_or(0, Vec::len)
}

const ROLLOUT_PHRASE: &str = "rule 2: rollout off 90% → 50%, on 10% → 50%";
const CONDITION_PHRASE: &str = "rule 2: condition added: country in [";

/// The issue's walk-through: the reviewer sees the rollout move and the added condition;
/// after approval and a later kill switch the applied promotion still shows exactly that,
/// with the drift in its own panel; JSON and audit carry the same frozen review.
#[tokio::test]
async fn the_review_is_frozen_at_queue_time_and_survives_apply_and_a_kill() {
    raxx_testkit::each_backend!(|url| {
        let p = pair(&url).await;
        let (s, created) = post_json(
            &p.prod,
            &p.alice,
            "/api/v1/promotions",
            json!({"app": PROD_APP, "flags": ["new-checkout"], "reason": "wider rollout"}),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        assert_eq!(created["kind"], "staging");
        let review = created["review"].clone();
        assert_eq!(review["source"], "frozen");
        let flag = &review["flags"][0];
        assert_eq!(flag["flag"], "new-checkout");
        assert_eq!(flag["mark"], "changed");
        let rule = &flag["rules"][1];
        assert_eq!(rule["mark"], "changed");
        assert_eq!(rule["conditions"][0]["mark"], "added");
        assert_eq!(rule["conditions"][0]["new"]["attr"], "country");
        let on = rule["serve"]["weights"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["variant"] == "on")
            .unwrap()
            .clone();
        assert_eq!(
            on,
            json!({"variant": "on", "mark": "changed", "old": 10, "new": 50})
        );
        assert_eq!(flag["rules"][0]["mark"], "same");
        let changes: Vec<&str> = flag["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes[0].starts_with(CONDITION_PHRASE), "{changes:?}");
        assert_eq!(changes[1], ROLLOUT_PHRASE);
        let hash = review["hash"].as_str().unwrap().to_owned();
        assert_eq!(hash.len(), 64);

        // The reviewer's page shows both, marked at the level of the condition and the %.
        let html = page(&p.prod, &p.bob, &format!("/promotions/{id}")).await;
        assert!(html.contains(ROLLOUT_PHRASE), "rollout phrase on the page");
        assert!(
            html.contains(CONDITION_PHRASE),
            "condition phrase on the page"
        );
        assert!(html.contains("<tr class=\"diff-changed sub\"><td class=\"sign\" title=\"changed\">~<span class=\"sr-only\">changed</span></td><th scope=\"row\">rollout on</th><td><code>10 %</code></td><td><code>50 %</code></td></tr>"), "the 10 % → 50 % row");
        assert!(
            html.contains("<th scope=\"row\">when</th><td><code>—</code></td><td><code>country in"),
            "the added condition row"
        );
        assert!(html.contains(&hash), "the review hash is shown");
        assert!(html.contains("Compared with prod now"));
        // JSON agrees with what the create answer said.
        let (s, detail) = get_json(&p.prod, &p.bob, &format!("/api/v1/promotions/{id}")).await;
        assert_eq!(s, 200);
        assert_eq!(detail["review"], review);
        assert_eq!(detail["review_hash"], hash.as_str());

        // Bob approves what he saw.
        let (s, b) = post_json(
            &p.prod,
            &p.bob,
            &format!("/api/v1/promotions/{id}/approve"),
            json!({"content_hash": created["content_hash"]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        for action in [
            "flag.promotion.queue",
            "flag.promotion.approve",
            "flag.promotion.apply",
        ] {
            let rows = audit_rows(&p.prod, action).await;
            let row = rows
                .iter()
                .find(|r| r.event.outcome == Outcome::Allowed)
                .unwrap_or_else(|| panic!("{action} row"));
            assert_eq!(
                row.event.context["review"]["hash"],
                hash.as_str(),
                "{action}"
            );
            assert_eq!(
                row.event.context["review"]["flags"], review["flags"],
                "{action}: small reviews are inline"
            );
        }

        // A later kill switch: the applied promotion still shows what was applied.
        let (s, k) = post_json(
            &p.prod,
            &p.alice,
            &format!("/api/v1/apps/{PROD_APP}/flags/new-checkout/kill"),
            json!({"reason": "incident 7"}),
        )
        .await;
        assert_eq!(s, 200, "{k}");
        let html = page(&p.prod, &p.bob, &format!("/promotions/{id}")).await;
        assert!(html.contains("applied"), "status applied");
        assert!(html.contains(ROLLOUT_PHRASE), "still the rollout move");
        assert!(html.contains(CONDITION_PHRASE), "still the added condition");
        assert!(html.contains("as it was approved"));
        assert!(
            !html.contains("<li>enabled true → false</li>"),
            "the frozen change never reads the kill"
        );
        assert!(
            html.contains("enabled false → true"),
            "drift, in its own panel"
        );
        let (_, detail) = get_json(&p.prod, &p.bob, &format!("/api/v1/promotions/{id}")).await;
        assert_eq!(
            detail["review"], review,
            "JSON review unchanged by the kill"
        );
        assert_eq!(
            detail["flags"][0]["change"]["kind"], "changed",
            "drift is reported"
        );
        drop(p.staging);
    });
}

/// A large review is stored once: audit rows carry its hash and where it is.
#[tokio::test]
async fn a_large_review_is_referenced_by_hash_in_audit_rows() {
    raxx_testkit::each_backend!(|url| {
        let p = pair(&url).await;
        // Many variants make the review large.
        let mut big = String::from(
            "\n[flags.big]\ntype = \"integer\"\ndefault = \"v0\"\n[flags.big.variants]\n",
        );
        for i in 0..80 {
            big.push_str(&format!("v{i} = {i}\n"));
        }
        seed(&p.staging, STAGING_APP, &format!("{}{big}", after())).await;
        let (s, created) = post_json(
            &p.prod,
            &p.alice,
            "/api/v1/promotions",
            json!({"app": PROD_APP, "flags": ["big"], "reason": "big"}),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        let hash = created["review"]["hash"].as_str().unwrap().to_owned();
        assert_eq!(
            created["review"]["flags"][0]["variants"]
                .as_array()
                .unwrap()
                .len(),
            80
        );
        let rows = audit_rows(&p.prod, "flag.promotion.queue").await;
        let ctx = &rows[0].event.context["review"];
        assert_eq!(ctx["hash"], hash.as_str());
        assert!(
            ctx["stored_in"]
                .as_str()
                .unwrap()
                .contains("console_flag_promotions"),
            "{ctx}"
        );
        assert_eq!(ctx["flags"], json!([{"flag": "big", "mark": "added"}]));
    });
}

/// Promotions from before frozen reviews still display: rebuilt from the flag history and
/// said so, or "frozen diff not recorded" when the history lacks the base.
#[tokio::test]
async fn promotions_from_before_frozen_reviews_still_display_honestly() {
    raxx_testkit::each_backend!(|url| {
        let p = pair(&url).await;
        let (s, created) = post_json(
            &p.prod,
            &p.alice,
            "/api/v1/promotions",
            json!({"app": PROD_APP, "flags": ["new-checkout"], "reason": "old row"}),
        )
        .await;
        assert_eq!(s, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        raxx_store::testing::exec(
            p.prod.store(),
            &format!("UPDATE console_flag_promotions SET review = NULL, review_hash = NULL, base_flags = NULL WHERE id = {id}"),
        )
        .await;
        let (_, detail) = get_json(&p.prod, &p.bob, &format!("/api/v1/promotions/{id}")).await;
        assert_eq!(detail["review"]["source"], "reconstructed");
        assert_eq!(detail["review"]["hash"], Value::Null);
        assert_eq!(
            detail["review"]["flags"], created["review"]["flags"],
            "the history holds the base version: the same diff"
        );
        let html = page(&p.prod, &p.bob, &format!("/promotions/{id}")).await;
        assert!(html.contains("Frozen diff not recorded"));
        assert!(html.contains("rebuilt from the flag history"));
        assert!(html.contains(ROLLOUT_PHRASE));

        // Without the base version in the history: nothing is invented.
        raxx_store::testing::exec(
            p.prod.store(),
            "DELETE FROM console_flag_history WHERE flag_key = 'new-checkout'",
        )
        .await;
        raxx_store::testing::exec(
            p.prod.store(),
            "UPDATE console_flags SET version = version + 100 WHERE flag_key = 'new-checkout'",
        )
        .await;
        let (_, detail) = get_json(&p.prod, &p.bob, &format!("/api/v1/promotions/{id}")).await;
        assert_eq!(detail["review"]["source"], "not_recorded");
        assert_eq!(detail["review"]["flags"], json!([]));
        let html = page(&p.prod, &p.bob, &format!("/promotions/{id}")).await;
        assert!(html.contains("Frozen diff not recorded"));
        assert!(!html.contains(ROLLOUT_PHRASE));
    });
}

/// Restore after a kill: only `enabled = true` on the prod definition, two-person, bound to
/// the content hash and base version; refused (409, nothing queued) when not killed.
#[tokio::test]
async fn a_killed_flag_is_restored_through_a_reviewed_promotion() {
    raxx_testkit::each_backend!(|url| {
        let p = pair(&url).await;
        let restore = format!("/api/v1/apps/{PROD_APP}/flags/new-checkout/restore");
        // Not killed: enabled.
        let (s, b) = post_json(&p.prod, &p.alice, &restore, json!({"reason": "x"})).await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(b["error"], "not_killed");
        assert!(b["message"].as_str().unwrap().contains("is enabled"), "{b}");
        // Disabled, but not by the kill switch.
        let (s, b) = post_json(
            &p.prod,
            &p.alice,
            &format!("/api/v1/apps/{PROD_APP}/flags/legacy-search/restore"),
            json!({"reason": "x"}),
        )
        .await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(b["error"], "not_killed");
        assert!(
            b["message"].as_str().unwrap().contains("kill switch"),
            "{b}"
        );
        // Unknown flag, no reason, no body.
        let (s, b) = post_json(
            &p.prod,
            &p.alice,
            &format!("/api/v1/apps/{PROD_APP}/flags/nope/restore"),
            json!({"reason": "x"}),
        )
        .await;
        assert_eq!(s, 404, "{b}");
        assert_eq!(
            promotion_count(&p.prod, &p.alice).await,
            0,
            "nothing queued"
        );
        assert_eq!(p.prod.audit_count("flag.restore", "allowed").await, 0);
        let page_html = page(
            &p.prod,
            &p.alice,
            &format!("/apps/{PROD_APP}/flags/new-checkout"),
        )
        .await;
        assert!(
            !page_html.contains("/restore\""),
            "no Restore on an enabled flag"
        );

        // Kill it, then restore.
        let (s, _) = post_json(
            &p.prod,
            &p.bob,
            &format!("/api/v1/apps/{PROD_APP}/flags/new-checkout/kill"),
            json!({"reason": "incident 9"}),
        )
        .await;
        assert_eq!(s, 200);
        let killed =
            p.prod.store().flag_state(PROD_APP).await.unwrap().flags["new-checkout"].clone();
        assert!(!killed.flag.enabled);
        let page_html = page(
            &p.prod,
            &p.alice,
            &format!("/apps/{PROD_APP}/flags/new-checkout"),
        )
        .await;
        assert!(
            page_html.contains(&format!(
                "action=\"/apps/{PROD_APP}/flags/new-checkout/restore\""
            )),
            "Restore offered"
        );
        let (s, b) = post_json(&p.prod, &p.alice, &restore, json!({"reason": " "})).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"], "reason_required");
        let (s, r) = post_json(
            &p.prod,
            &p.alice,
            &restore,
            json!({"reason": "incident 9 fixed"}),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        assert_eq!(r["kind"], "restore");
        assert_eq!(r["status"], "pending");
        assert_eq!(r["flags"].as_array().unwrap().len(), 1);
        assert_eq!(r["flags"][0]["base_version"], killed.version);
        let mut want = killed.flag.clone();
        want.enabled = true;
        assert_eq!(
            r["flags"][0]["new"],
            serde_json::to_value(&want).unwrap(),
            "prod's definition, enabled: staging's 50 % does not ride along"
        );
        assert_eq!(
            r["review"]["flags"][0]["changes"],
            json!(["enabled false → true"])
        );
        let id = r["id"].as_i64().unwrap();
        assert_eq!(p.prod.audit_count("flag.restore", "allowed").await, 1);

        // Two-person: the requester cannot approve it.
        let (s, b) = post_json(
            &p.prod,
            &p.alice,
            &format!("/api/v1/promotions/{id}/approve"),
            json!({}),
        )
        .await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(b["error"], "self_approval");
        // Bound to the content hash.
        let (s, b) = post_json(
            &p.prod,
            &p.bob,
            &format!("/api/v1/promotions/{id}/approve"),
            json!({"content_hash": "00"}),
        )
        .await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(b["error"], "content_changed");
        let html = page(&p.prod, &p.bob, &format!("/promotions/{id}")).await;
        assert!(html.contains("Restore #"));
        assert!(html.contains("only <code>enabled = true</code>"));
        let (s, b) = post_json(
            &p.prod,
            &p.bob,
            &format!("/api/v1/promotions/{id}/approve"),
            json!({"content_hash": r["content_hash"]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let now = p.prod.store().flag_state(PROD_APP).await.unwrap().flags["new-checkout"].clone();
        assert_eq!(now.flag, want);
        assert_eq!(now.version, killed.version + 1);
        // Restored: a second restore is refused.
        let (s, b) = post_json(&p.prod, &p.alice, &restore, json!({"reason": "again"})).await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(promotion_count(&p.prod, &p.alice).await, 1);
    });
}

/// A restore bound to base versions: prod moving after it was queued makes it stale.
#[tokio::test]
async fn a_restore_goes_stale_when_prod_moves_under_it() {
    raxx_testkit::each_backend!(|url| {
        let p = pair(&url).await;
        let flag = format!("/api/v1/apps/{PROD_APP}/flags/new-checkout");
        let (s, _) = post_json(
            &p.prod,
            &p.bob,
            &format!("{flag}/kill"),
            json!({"reason": "i"}),
        )
        .await;
        assert_eq!(s, 200);
        let (s, r) = post_json(
            &p.prod,
            &p.alice,
            &format!("{flag}/restore"),
            json!({"reason": "ok"}),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        // A staging promotion of the same flag lands first.
        let (s, q) = post_json(
            &p.prod,
            &p.alice,
            "/api/v1/promotions",
            json!({"app": PROD_APP, "flags": ["new-checkout"], "reason": "r"}),
        )
        .await;
        assert_eq!(s, 201, "{q}");
        let (s, _) = post_json(
            &p.prod,
            &p.bob,
            &format!("/api/v1/promotions/{}/approve", q["id"]),
            json!({}),
        )
        .await;
        assert_eq!(s, 200);
        let (s, b) = post_json(
            &p.prod,
            &p.bob,
            &format!("/api/v1/promotions/{}/approve", r["id"]),
            json!({}),
        )
        .await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(b["error"], "stale");
    });
}

/// Restore is a prod write: the staging console has no such action, a flag reader cannot.
#[tokio::test]
async fn restore_is_a_prod_flag_admin_write() {
    raxx_testkit::each_backend!(|url| {
        let p = pair(&url).await;
        let op = p
            .staging
            .operator("sam@raxx.test", &["staging-admins"])
            .await;
        let (s, b) = post_json(
            &p.staging,
            &op,
            &format!("/api/v1/apps/{STAGING_APP}/flags/new-checkout/restore"),
            json!({"reason": "x"}),
        )
        .await;
        assert!(s == 403 || s == 404, "{s} {b}");
        let reader = p.prod.operator("rita@raxx.test", &[]).await;
        let (s, b) = post_json(
            &p.prod,
            &reader,
            &format!("/api/v1/apps/{PROD_APP}/flags/new-checkout/restore"),
            json!({"reason": "x"}),
        )
        .await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(promotion_count(&p.prod, &p.alice).await, 0);
    });
}

// ------------------------------------------------------------------ deep links (item 6)

async fn register(c: &TestConsole, auth: &mut SoftPasskey, email: &str) {
    let client = c.client();
    let start: Value = client
        .post(c.url("/auth/register/start"))
        .json(&json!({"email": email, "display_name": "Root", "enrol_code": "test-enrol-code"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ccr: CreationChallengeResponse =
        serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = auth
        .do_registration(Url::parse(&c.origin).unwrap(), ccr)
        .expect("soft passkey registers");
    let done = client
        .post(c.url("/auth/register/finish"))
        .json(&json!({"ceremony": start["ceremony"], "credential": credential}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
}

async fn sign_in_with_next(
    c: &TestConsole,
    auth: &mut SoftPasskey,
    email: &str,
    next: Value,
) -> Value {
    let client = c.client();
    let start: Value = client
        .post(c.url("/auth/login/start"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rcr: RequestChallengeResponse = serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = auth
        .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
        .expect("soft passkey signs");
    let resp = client
        .post(c.url("/auth/login/finish"))
        .json(&json!({"ceremony": start["ceremony"], "credential": credential, "next": next}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_signed_out_page_get_redirects_to_login_with_next() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        for (path, want) in [
            ("/promotions/4", "/login?next=%2Fpromotions%2F4"),
            (
                "/audit?action=flag.kill&outcome=allowed",
                "/login?next=%2Faudit%3Faction%3Dflag.kill%26outcome%3Dallowed",
            ),
            ("/", "/login"),
        ] {
            let r = c.client().get(c.url(path)).send().await.unwrap();
            assert_eq!(r.status().as_u16() / 100, 3, "{path}");
            assert_eq!(r.headers()["location"], want, "{path}");
        }
        // JSON stays JSON: no redirect.
        let r = c
            .client()
            .get(c.url("/api/v1/promotions"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // The login page carries a safe next into the passkey form, and nothing else.
        let html = c
            .client()
            .get(c.url("/login?next=%2Fpromotions%2F4"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("data-next=\"/promotions/4\""), "next kept");
        for attack in [
            "https://evil.example/",
            "//evil.example",
            "/%5Cevil.example",
            "%2F%2Fevil.example",
            "/%09/evil.example",
            "javascript:alert(1)",
            "/login",
        ] {
            let html = c
                .client()
                .get(c.url(&format!("/login?next={attack}")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!html.contains("data-next"), "{attack} must not be carried");
            assert!(!html.contains("evil.example"), "{attack} is not echoed");
        }
    });
}

#[tokio::test]
async fn a_passkey_sign_in_lands_on_next_and_never_off_site() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start_on_host(Env::Staging, "localhost", &url, "").await;
        let mut auth = SoftPasskey::new(true);
        register(&c, &mut auth, "root@raxx.test").await;
        let done = sign_in_with_next(&c, &mut auth, "root@raxx.test", json!("/promotions/4")).await;
        assert_eq!(done["redirect"], "/promotions/4");
        let done = sign_in_with_next(
            &c,
            &mut auth,
            "root@raxx.test",
            json!("/audit?action=flag.kill"),
        )
        .await;
        assert_eq!(done["redirect"], "/audit?action=flag.kill");
        for attack in [
            "https://evil.example/promotions/4",
            "//evil.example/promotions/4",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "",
        ] {
            let done = sign_in_with_next(&c, &mut auth, "root@raxx.test", json!(attack)).await;
            assert_eq!(done["redirect"], "/", "{attack:?}");
        }
        let done = sign_in_with_next(&c, &mut auth, "root@raxx.test", Value::Null).await;
        assert_eq!(done["redirect"], "/");
    });
}
