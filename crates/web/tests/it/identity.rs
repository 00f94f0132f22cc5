//! Identity attacks over real HTTP (issue 19): invites that would take over an operator,
//! two-person review by one person, invites that outlive their creator's authority,
//! enrolment-code guessing, lockout of an owner by strangers, and link scanners burning
//! login links. Each test performs the attack and checks it fails, on SQLite and
//! PostgreSQL. docs/security.md ("Identity and sign-in") lists them.

use std::net::{IpAddr, Ipv4Addr};

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_testkit::{Operator, TestConsole};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ATTACKER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OWNER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn set_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("raxx_console_"))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

async fn start_registration(
    c: &TestConsole,
    client: &reqwest::Client,
    body: Value,
) -> reqwest::Response {
    client
        .post(c.url("/auth/register/start"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Start and finish a passkey registration with `auth`; the finish response.
async fn register(
    c: &TestConsole,
    client: &reqwest::Client,
    auth: &mut SoftPasskey,
    body: Value,
) -> reqwest::Response {
    let start = start_registration(c, client, body).await;
    assert_eq!(start.status(), 200, "{}", start.text().await.unwrap());
    let start: Value = start.json().await.unwrap();
    finish_registration(c, client, auth, &start).await
}

async fn finish_registration(
    c: &TestConsole,
    client: &reqwest::Client,
    auth: &mut SoftPasskey,
    start: &Value,
) -> reqwest::Response {
    let ccr: CreationChallengeResponse =
        serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = auth
        .do_registration(Url::parse(&c.origin).unwrap(), ccr)
        .expect("soft passkey registers");
    client
        .post(c.url("/auth/register/finish"))
        .json(&json!({"ceremony": start["ceremony"], "credential": credential}))
        .send()
        .await
        .unwrap()
}

async fn sign_in(
    c: &TestConsole,
    client: &reqwest::Client,
    auth: &mut SoftPasskey,
    email: &str,
) -> reqwest::Response {
    let start = client
        .post(c.url("/auth/login/start"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 200, "{}", start.text().await.unwrap());
    let start: Value = start.json().await.unwrap();
    let rcr: RequestChallengeResponse = serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = auth
        .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
        .expect("soft passkey signs");
    client
        .post(c.url("/auth/login/finish"))
        .json(&json!({"ceremony": start["ceremony"], "credential": credential}))
        .send()
        .await
        .unwrap()
}

async fn me(c: &TestConsole, cookie: &str) -> Value {
    c.client()
        .get(c.url("/api/v1/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn invite(c: &TestConsole, by: &Operator, email: &str) -> (u16, Value) {
    let r = c
        .client()
        .post(c.url("/api/v1/invites"))
        .headers(c.write_headers(by))
        .json(&json!({"email": email, "group": "production-admins"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn token_of(url: &Value) -> String {
    url.as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// Insert an invite as if it had been created earlier (before its address had an operator).
async fn raw_invite(c: &TestConsole, email: &str, by: i64) -> String {
    let mut tx = c.store().begin().await.unwrap();
    let (token, _) = tx
        .create_invite(email, "production-admins", by)
        .await
        .unwrap();
    tx.record(AuditEvent::new("test", "invite.create", Outcome::Allowed))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    token
}

async fn passkey_count(c: &TestConsole, email: &str) -> usize {
    match c.store().admin_by_email(email).await.unwrap() {
        Some(a) => c.store().passkeys_of(a.id).await.unwrap().len(),
        None => 0,
    }
}

/// Bob joins through an invite and registers his own passkey.
async fn bob_with_passkey(c: &TestConsole, lead: &Operator) -> SoftPasskey {
    let (s, b) = invite(c, lead, "bob@raxx.test").await;
    assert_eq!(s, 201, "{b}");
    let mut bob_key = SoftPasskey::new(true);
    let done = register(
        c,
        &c.client(),
        &mut bob_key,
        json!({"invite_token": token_of(&b["url"]), "display_name": "Bob"}),
    )
    .await;
    assert_eq!(done.status(), 200);
    bob_key
}

#[tokio::test]
async fn an_invite_for_an_existing_operator_cannot_take_over_their_account() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start_on_host(Env::Prod, "localhost", &url, "").await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let eve = c.operator("eve@raxx.test", &["production-admins"]).await;
        let _bob_key = bob_with_passkey(&c, &lead).await;
        assert_eq!(passkey_count(&c, "bob@raxx.test").await, 1);

        // The attack: eve invites bob@ and opens the link herself. Refused at creation.
        let (s, b) = invite(&c, &eve, "bob@raxx.test").await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(b["error"], "operator_exists");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .contains("bob@raxx.test is already an operator"),
            "{b}"
        );
        assert_eq!(c.audit_count("invite.create", "denied").await, 1);

        // An invite made before bob existed (here: put in the table) is refused at redemption.
        let token = raw_invite(&c, "bob@raxx.test", eve.admin_id).await;
        let client = c.client();
        let start = start_registration(
            &c,
            &client,
            json!({"invite_token": token, "display_name": "Eve"}),
        )
        .await;
        assert_eq!(start.status(), 409);
        let e: Value = start.json().await.unwrap();
        assert_eq!(e["error"], "operator_exists");

        // A registration started while the address was free, finished after it was taken.
        let token = raw_invite(&c, "carol@raxx.test", eve.admin_id).await;
        let start = start_registration(
            &c,
            &client,
            json!({"invite_token": token, "display_name": "Eve"}),
        )
        .await;
        assert_eq!(start.status(), 200);
        let start: Value = start.json().await.unwrap();
        let carol = c.operator("carol@raxx.test", &[]).await;
        let mut eve_key = SoftPasskey::new(true);
        let finish = finish_registration(&c, &client, &mut eve_key, &start).await;
        assert_eq!(finish.status(), 409);
        assert!(set_cookie(&finish).is_none(), "no session for the attacker");
        assert_eq!(passkey_count(&c, "carol@raxx.test").await, 0);
        assert_eq!(passkey_count(&c, "bob@raxx.test").await, 1);
        assert!(c.store().groups_of(&carol.email).await.unwrap().is_empty());
        assert!(c.audit_count("invite.accept", "denied").await >= 2);
    });
}

#[tokio::test]
async fn a_second_pending_invite_for_one_address_is_refused() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let (s, first) = invite(&c, &lead, "new@raxx.test").await;
        assert_eq!(s, 201);
        let (s, b) = invite(&c, &lead, "NEW@raxx.test").await;
        assert_eq!(s, 409, "{b}");
        assert_eq!(b["error"], "invite_pending");
        // Once the first is revoked, a new one may be sent.
        let id = first["id"].as_i64().unwrap();
        let rv = c
            .as_operator(&lead)
            .post(&format!("/api/v1/invites/{id}/revoke"))
            .await;
        assert_eq!(rv.status(), 200);
        assert_eq!(invite(&c, &lead, "new@raxx.test").await.0, 201);
        assert_eq!(c.audit_count("invite.create", "allowed").await, 2);
    });
}

/// Issue 19 item 1, the race: concurrent invites for one address. The database holds at
/// most one pending invite per address (a unique partial index), so whichever commits
/// second is the sequential duplicate: the same 409 `invite_pending`, audited.
#[tokio::test]
async fn concurrent_invites_for_one_address_create_one() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        // The store refuses a second pending invite even without the handler's check
        // (what a request that read "no pending invite" before the other committed does).
        let mut tx = c.store().begin().await.unwrap();
        tx.create_invite("race@raxx.test", "production-admins", lead.admin_id)
            .await
            .unwrap();
        tx.record(AuditEvent::new("test", "invite.create", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = c.store().begin().await.unwrap();
        let second = tx
            .create_invite("Race@raxx.test", "production-admins", lead.admin_id)
            .await;
        assert!(
            matches!(&second, Err(raxx_store::StoreError::Conflict(m)) if m.starts_with(raxx_store::auth::PENDING_INVITE_CONFLICT)),
            "{second:?}"
        );
        tx.rollback().await.unwrap();

        // Over HTTP: eight concurrent POSTs for one new address.
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let req = c
                .client()
                .post(c.url("/api/v1/invites"))
                .headers(c.write_headers(&lead))
                .json(&json!({"email": "twins@raxx.test", "group": "production-admins"}));
            sends.spawn(async move {
                let r = req.send().await.unwrap();
                (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or(Value::Null),
                )
            });
        }
        let answers = sends.join_all().await;
        let created = answers.iter().filter(|(s, _)| *s == 201).count();
        assert_eq!(created, 1, "{url}: {answers:?}");
        for (s, b) in answers.iter().filter(|(s, _)| *s != 201) {
            assert_eq!(
                (*s, b["error"].as_str()),
                (409, Some("invite_pending")),
                "{url}: {b}"
            );
        }
        let pending = c
            .store()
            .invites()
            .await
            .unwrap()
            .into_iter()
            .filter(|i| i.email == "twins@raxx.test" && i.state(raxx_store::now_ms()) == "pending")
            .count();
        assert_eq!(pending, 1);
        assert!(c.audit_count("invite.create", "denied").await >= 7);
    });
}

const PROD_APP: &str = r#"
[[apps]]
name = "raxx-api-prod"
env = "prod"
"#;

/// A pending promotion of `raxx-api-prod` requested by `requester`.
async fn queued_promotion(c: &TestConsole, requester: i64) -> i64 {
    let file = "app = \"raxx-api-prod\"\n\n[flags.new-checkout]\ntype = \"boolean\"\nvariants = { on = true, off = false }\ndefault = \"on\"\n";
    let flags =
        raxx_core::flags::parse_flags_file(file, raxx_core::flags::FileFormat::Toml).unwrap();
    let flag = flags.flags.values().next().unwrap().clone();
    let new = raxx_core::promotion::NewPromotion::queue(
        "raxx-api-prod",
        requester,
        "ship it",
        vec![raxx_core::promotion::PromotedFlag {
            key: flag.key.clone(),
            new: Some(flag),
            base_version: None,
        }],
        raxx_store::now_ms(),
    )
    .unwrap();
    c.store()
        .queue_promotion(
            new,
            &[],
            AuditEvent::new(
                requester.to_string(),
                "flag.promotion.queue",
                Outcome::Allowed,
            ),
        )
        .await
        .unwrap()
        .id
}

async fn approve(c: &TestConsole, op: &Operator, id: i64) -> (u16, Value) {
    let r = c
        .client()
        .post(c.url(&format!("/api/v1/promotions/{id}/approve")))
        .headers(c.write_headers(op))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Join `email` through an invite from `by`; signed in with the new session.
async fn invited_operator(c: &TestConsole, by: &Operator, email: &str) -> Operator {
    let (s, b) = invite(c, by, email).await;
    assert_eq!(s, 201, "{b}");
    let mut key = SoftPasskey::new(true);
    let done = register(
        c,
        &c.client(),
        &mut key,
        json!({"invite_token": token_of(&b["url"]), "display_name": email}),
    )
    .await;
    assert_eq!(done.status(), 200);
    let cookie = set_cookie(&done).unwrap();
    let m = me(c, &cookie).await;
    let admin = c.store().admin_by_email(email).await.unwrap().unwrap();
    Operator {
        admin_id: admin.id,
        email: email.to_string(),
        cookie,
        csrf: m["csrf_token"].as_str().unwrap().to_string(),
        session_id: String::new(),
    }
}

#[tokio::test]
async fn an_approver_in_the_requesters_invite_line_is_refused_self_approval() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start_on_host(Env::Prod, "localhost", &url, PROD_APP).await;
        let alice = c.operator("alice@raxx.test", &["production-admins"]).await;
        let bob = c.operator("bob@raxx.test", &["production-admins"]).await;
        // Alice invites a second account of her own, and that one invites a third.
        let sock = invited_operator(&c, &alice, "alice.sock@raxx.test").await;
        assert_eq!(
            c.store().invited_by(sock.admin_id).await.unwrap(),
            Some(alice.admin_id),
            "the operator records who invited it"
        );
        let sock2 = invited_operator(&c, &sock, "alice.sock2@raxx.test").await;

        // The requester's invitees, at any depth, cannot approve.
        let id = queued_promotion(&c, alice.admin_id).await;
        for reviewer in [&sock, &sock2] {
            let (s, b) = approve(&c, reviewer, id).await;
            assert_eq!(s, 403, "{b}");
            assert_eq!(b["error"], "self_approval");
            assert!(
                b["message"]
                    .as_str()
                    .unwrap()
                    .contains("an approver must not be an operator the requester brought in"),
                "{b}"
            );
        }
        // Symmetrically, the operator who invited the requester cannot approve either.
        let theirs = queued_promotion(&c, sock.admin_id).await;
        let (s, b) = approve(&c, &alice, theirs).await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(b["error"], "self_approval");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .contains("you invited the requester")
        );
        assert!(c.audit_count("flag.promotion.approve", "denied").await >= 3);

        // An independent operator approves, and it applies.
        let (s, b) = approve(&c, &bob, id).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["status"], "applied");
    });
}

#[tokio::test]
async fn invites_die_with_their_creators_authority() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let temp = c.operator("temp@raxx.test", &["production-admins"]).await;
        let quit = c.operator("quit@raxx.test", &["production-admins"]).await;
        let (_, by_temp) = invite(&c, &temp, "a@raxx.test").await;
        let (_, by_quit) = invite(&c, &quit, "b@raxx.test").await;

        // Disabling temp revokes temp's pending invite.
        let r = c
            .as_operator(&lead)
            .post(&format!("/api/v1/operators/{}/disable", temp.admin_id))
            .await;
        assert_eq!(r.status(), 200);
        let page = c
            .client()
            .get(by_temp["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 404, "revoked with its creator");

        // Taking quit out of the group that gave the invite role revokes quit's invite.
        let r = c
            .as_operator(&lead)
            .delete(&format!(
                "/api/v1/operators/{}/groups/production-admins",
                quit.admin_id
            ))
            .await;
        assert_eq!(r.status(), 200);
        let page = c
            .client()
            .get(by_quit["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 404);
        let states: Vec<(String, &'static str)> = c
            .store()
            .invites()
            .await
            .unwrap()
            .iter()
            .map(|i| (i.email.clone(), i.state(raxx_store::now_ms())))
            .collect();
        assert!(
            states.contains(&("a@raxx.test".into(), "revoked")),
            "{states:?}"
        );
        assert!(
            states.contains(&("b@raxx.test".into(), "revoked")),
            "{states:?}"
        );

        // A role lost any other way (config, the database) is caught at redemption.
        let (_, by_lead) = invite(&c, &lead, "c@raxx.test").await;
        let mut tx = c.store().begin().await.unwrap();
        tx.remove_member("production-admins", "lead@raxx.test")
            .await
            .unwrap();
        tx.record(AuditEvent::new(
            "config",
            "rbac.reconcile",
            Outcome::Allowed,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let start = start_registration(
            &c,
            &c.client(),
            json!({"invite_token": token_of(&by_lead["url"]), "display_name": "C"}),
        )
        .await;
        assert_eq!(start.status(), 409);
        let e: Value = start.json().await.unwrap();
        assert_eq!(e["error"], "invite_void");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("no longer holds the invite role"),
            "{e}"
        );
    });
}

#[tokio::test]
async fn the_enrolment_code_is_throttled_per_address_and_account() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start_on_host(Env::Staging, "localhost", &url, "").await;
        let attacker = c.client_from(ATTACKER_IP);
        let guess = |code: String| {
            let r = attacker.post(c.url("/auth/register/start")).json(
                &json!({"email": "root@raxx.test", "display_name": "Root", "enrol_code": code}),
            );
            async move { r.send().await.unwrap() }
        };
        for i in 0..raxx_core::throttle::MAX_PER_ACCOUNT_SOURCE {
            assert_eq!(guess(format!("guess-{i}")).await.status(), 403);
        }
        // Even the right code is refused from this address now.
        let limited = guess("test-enrol-code".into()).await;
        assert_eq!(limited.status(), 429);
        let body: Value = limited.json().await.unwrap();
        assert_eq!(body["error"], "rate_limited");
        assert!(c.audit_count("auth.rate_limited", "denied").await >= 1);
        // The real admin, elsewhere, enrols.
        let mut key = SoftPasskey::new(true);
        let done = register(
            &c,
            &c.client_from(OWNER_IP),
            &mut key,
            json!({"email": "root@raxx.test", "display_name": "Root", "enrol_code": "test-enrol-code"}),
        )
        .await;
        assert_eq!(done.status(), 200);
    });
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_owner_out_from_another() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start_on_host(Env::Staging, "localhost", &url, "").await;
        let mut root_key = SoftPasskey::new(true);
        let done = register(
            &c,
            &c.client(),
            &mut root_key,
            json!({"email": "root@raxx.test", "display_name": "Root", "enrol_code": "test-enrol-code"}),
        )
        .await;
        assert_eq!(done.status(), 200);

        // 100+ anonymous failures naming root@ from one address.
        let attacker = c.client_from(ATTACKER_IP);
        let fail = |client: &reqwest::Client| {
            let r = client.post(c.url("/auth/register/start")).json(
                &json!({"email": "root@raxx.test", "display_name": "x", "enrol_code": "nope"}),
            );
            async move { r.send().await.unwrap().status().as_u16() }
        };
        for _ in 0..raxx_core::throttle::MAX_PER_ACCOUNT_SOURCE {
            assert_eq!(fail(&attacker).await, 403);
        }
        assert_eq!(fail(&attacker).await, 429, "the failing address is cut off");

        // The owner, from another address, signs in at once.
        let owner = c.client_from(OWNER_IP);
        let signed = sign_in(&c, &owner, &mut root_key, "root@raxx.test").await;
        assert_eq!(signed.status(), 200, "{}", signed.text().await.unwrap());
        let cookie = set_cookie(&signed).unwrap();
        assert_eq!(me(&c, &cookie).await["email"], "root@raxx.test");

        // The account backs off: a failure from a third address is answered slowly, not refused.
        let other = c.client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        let t = std::time::Instant::now();
        assert_eq!(fail(&other).await, 403);
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(1_500),
            "back-off after {} failures elsewhere: {:?}",
            raxx_core::throttle::MAX_PER_ACCOUNT_SOURCE,
            t.elapsed()
        );
    });
}

#[tokio::test]
async fn opening_a_login_link_or_sending_head_changes_nothing_and_only_the_post_signs_in() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, "").await;
        let token = c.login_link("root@raxx.test").await;
        let link = c.url(&format!("/auth/link/{token}"));
        // Previewers and scanners: HEAD and GET, several times.
        for _ in 0..3 {
            let head = c.client().head(&link).send().await.unwrap();
            assert_eq!(head.status(), 200);
            assert!(set_cookie(&head).is_none());
            let get = c.client().get(&link).send().await.unwrap();
            assert_eq!(get.status(), 200);
            assert!(set_cookie(&get).is_none());
        }
        assert_eq!(c.audit_count("auth.login_link", "allowed").await, 0);
        // A cross-site POST is refused and does not use the link.
        let cross = c
            .client()
            .post(c.url("/auth/link"))
            .header("sec-fetch-site", "cross-site")
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), 403);
        assert!(set_cookie(&cross).is_none());
        let evil_origin = c
            .client()
            .post(c.url("/auth/link"))
            .header("origin", "https://evil.example")
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(evil_origin.status(), 403);
        // The page's own POST signs in.
        let post = c
            .client()
            .post(c.url("/auth/link"))
            .header("sec-fetch-site", "same-origin")
            .header("origin", &c.origin)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 303);
        assert_eq!(post.headers().get("location").unwrap(), "/");
        let cookie = set_cookie(&post).unwrap();
        assert_eq!(me(&c, &cookie).await["email"], "root@raxx.test");
        // Reopened: the page says it was used.
        let again = c.client().get(&link).send().await.unwrap();
        assert_eq!(again.status(), 410);
        let html = again.text().await.unwrap();
        assert!(html.contains("used already"), "{html}");
        assert!(
            !html.contains("name=\"token\""),
            "no button for a used link"
        );
    });
}

/// Row counts of every console table but the audit log (HEAD may be audited, never change).
async fn table_counts(c: &TestConsole) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in [
        "console_admins",
        "console_passkeys",
        "console_sessions",
        "console_group_members",
        "console_login_links WHERE used_at IS NULL",
        "console_invites WHERE revoked_at IS NULL AND accepted_at IS NULL",
        "console_app_keys",
        "console_flags",
        "console_flag_promotions",
        "console_provider_tokens",
        "console_job_runs",
        "console_job_requests",
        "console_check_results",
        "console_ceremonies",
        "console_auth_failures",
    ] {
        let sql = format!("SELECT CAST(COUNT(*) AS TEXT) FROM {t}");
        out.push((
            t.to_string(),
            raxx_store::testing::query_string(c.store(), &sql).await,
        ));
    }
    out
}

#[tokio::test]
async fn head_on_every_get_route_changes_no_state() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Prod, &url, PROD_APP).await;
        let admin = c.operator("lead@raxx.test", &["production-admins"]).await;
        let token = c.login_link("root@raxx.test").await;
        let (_, inv) = invite(&c, &admin, "new@raxx.test").await;
        let before = table_counts(&c).await;
        for r in raxx_web::route_manifest()
            .iter()
            .filter(|r| r.method == axum::http::Method::GET)
        {
            let path = r
                .path
                .replace("{token}", &token)
                .replace("{file}", "app.css")
                .replace("{app}", "raxx-api-prod");
            let path = regex_lite_replace(&path);
            for signed_in in [false, true] {
                let mut req = c.client().head(c.url(&path));
                if signed_in {
                    req = req.headers(c.read_headers(&admin));
                }
                let resp = req.send().await.unwrap();
                assert!(
                    resp.status().as_u16() < 500,
                    "HEAD {path}: {}",
                    resp.status()
                );
                assert!(
                    set_cookie(&resp).is_none(),
                    "HEAD {path} set a session cookie"
                );
            }
        }
        assert_eq!(table_counts(&c).await, before, "HEAD changed state");
        // The invite link and the login link still work.
        let page = c
            .client()
            .get(inv["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let post = c
            .client()
            .post(c.url("/auth/link"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 303);
    });
}

/// Fill the remaining `{param}` segments of a route template with `1`.
fn regex_lite_replace(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "1"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
