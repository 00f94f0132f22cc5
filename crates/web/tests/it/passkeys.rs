//! Passkeys belong to their operator (SPEC §3, issue 19 items 1 and 2), over real HTTP with
//! a soft authenticator, on SQLite and PostgreSQL: no registration ceremony attaches a
//! credential to an existing operator; the operator adds one only signed in, after a fresh
//! assertion in the same session; "Your passkeys" lists, renames and removes (never the last
//! one by oneself); `console-session-admin` removes another operator's and ends their
//! sessions; every change is audited without passkey material and shown to the owner.

use raxx_core::Env;
use raxx_testkit::{Operator, TestConsole};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("raxx_console_"))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

/// The soft authenticator only accepts an http origin on exactly `localhost`.
async fn console(url: &str) -> TestConsole {
    TestConsole::start_on_host(Env::Prod, "localhost", url, "").await
}

/// The signed-in operator behind a session cookie, with its CSRF token.
async fn op_from_cookie(c: &TestConsole, cookie: String) -> Operator {
    let me: Value = c
        .client()
        .get(c.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Operator {
        admin_id: me["id"].as_i64().expect("signed in"),
        email: me["email"].as_str().unwrap().to_string(),
        cookie,
        csrf: me["csrf_token"].as_str().unwrap().to_string(),
        session_id: me["session_id"].as_str().unwrap().to_string(),
    }
}

/// Run an anonymous registration ceremony (bootstrap or invite) with `auth`.
async fn register(c: &TestConsole, auth: &mut SoftPasskey, body: Value) -> reqwest::Response {
    let client = c.client();
    let start = client
        .post(c.url("/auth/register/start"))
        .json(&body)
        .send()
        .await
        .unwrap();
    if start.status() != 200 {
        return start;
    }
    let start: Value = start.json().await.unwrap();
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

/// Sign in with `auth`; `None` when the authenticator holds no passkey of `email`.
async fn sign_in(c: &TestConsole, auth: &mut SoftPasskey, email: &str) -> Option<Operator> {
    let client = c.client();
    let start = client
        .post(c.url("/auth/login/start"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 200);
    let start: Value = start.json().await.unwrap();
    let rcr: RequestChallengeResponse = serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = auth
        .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
        .ok()?;
    let done = client
        .post(c.url("/auth/login/finish"))
        .json(&json!({"ceremony": start["ceremony"], "credential": credential}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    Some(op_from_cookie(c, session_cookie(&done).expect("cookie")).await)
}

/// The invite flow for a new address, end to end: returns the new operator, signed in.
async fn invited(c: &TestConsole, by: &Operator, email: &str, auth: &mut SoftPasskey) -> Operator {
    let url = invite(c, by, email).await.expect("invite created");
    let token = url.rsplit('/').next().unwrap().to_string();
    let done = register(
        c,
        auth,
        json!({"invite_token": token, "display_name": email}),
    )
    .await;
    assert_eq!(done.status(), 200, "{}", done.text().await.unwrap());
    op_from_cookie(c, session_cookie(&done).unwrap()).await
}

/// Create an invite; `Err(status)` when the console refuses it.
async fn invite(c: &TestConsole, by: &Operator, email: &str) -> Result<String, u16> {
    let r = c
        .client()
        .post(c.url("/api/v1/invites"))
        .headers(c.write_headers(by))
        .json(&json!({"email": email, "group": "production-admins"}))
        .send()
        .await
        .unwrap();
    if r.status() != 201 {
        return Err(r.status().as_u16());
    }
    let v: Value = r.json().await.unwrap();
    Ok(v["url"].as_str().unwrap().to_string())
}

async fn post(c: &TestConsole, op: &Operator, path: &str, body: Value) -> reqwest::Response {
    c.client()
        .post(c.url(path))
        .headers(c.write_headers(op))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn step_up(c: &TestConsole, op: &Operator, auth: &mut SoftPasskey) -> reqwest::Response {
    let start = post(c, op, "/api/v1/passkeys/step-up/start", json!({})).await;
    assert_eq!(start.status(), 200, "{}", start.text().await.unwrap());
    let start: Value = start.json().await.unwrap();
    let rcr: RequestChallengeResponse = serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = auth
        .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
        .expect("the owner's authenticator answers");
    post(
        c,
        op,
        "/api/v1/passkeys/step-up/finish",
        json!({"ceremony": start["ceremony"], "credential": credential}),
    )
    .await
}

/// Add a passkey held by `new` to `op`'s account (the step-up, if needed, comes first).
async fn add_passkey(
    c: &TestConsole,
    op: &Operator,
    new: &mut SoftPasskey,
    name: &str,
) -> reqwest::Response {
    let start = post(
        c,
        op,
        "/api/v1/passkeys/register/start",
        json!({"name": name}),
    )
    .await;
    if start.status() != 200 {
        return start;
    }
    let start: Value = start.json().await.unwrap();
    let ccr: CreationChallengeResponse =
        serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = new
        .do_registration(Url::parse(&c.origin).unwrap(), ccr)
        .expect("soft passkey registers");
    post(
        c,
        op,
        "/api/v1/passkeys/register/finish",
        json!({"ceremony": start["ceremony"], "credential": credential}),
    )
    .await
}

async fn list(c: &TestConsole, op: &Operator) -> Value {
    let r = c
        .client()
        .get(c.url("/api/v1/passkeys"))
        .headers(c.read_headers(op))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn passkey_count(c: &TestConsole, admin_id: i64) -> usize {
    c.store().passkeys_of(admin_id).await.unwrap().len()
}

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or_default();
    (status, v["error"].as_str().unwrap_or_default().to_string())
}

/// The attack of issue 19 item 1: a prod admin invites an existing operator's address, opens
/// the link herself and registers her own authenticator. Before the fix she was signed in as
/// bob. Now the invite is refused (409) or, if an invite for the address exists anyway, the
/// registration is refused: bob keeps exactly his own passkey and she cannot sign in as him.
#[tokio::test]
async fn an_invite_cannot_take_over_an_existing_operator() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let mut bobs = SoftPasskey::new(true);
        let bob = invited(&c, &lead, "bob@raxx.test", &mut bobs).await;
        assert_eq!(passkey_count(&c, bob.admin_id).await, 1);

        let mut hers = SoftPasskey::new(true);
        match invite(&c, &lead, "Bob@Raxx.test").await {
            Err(status) => assert_eq!(status, 409, "an invite for an existing operator"),
            Ok(link) => {
                let token = link.rsplit('/').next().unwrap().to_string();
                let r = register(
                    &c,
                    &mut hers,
                    json!({"invite_token": token, "display_name": "Bob"}),
                )
                .await;
                assert_eq!(r.status(), 409, "registration through the invite");
                assert!(session_cookie(&r).is_none());
            }
        }
        assert_eq!(passkey_count(&c, bob.admin_id).await, 1);
        assert!(
            sign_in(&c, &mut hers, "bob@raxx.test").await.is_none(),
            "her authenticator holds no passkey of bob"
        );
        assert!(sign_in(&c, &mut bobs, "bob@raxx.test").await.is_some());
        assert_eq!(c.audit_count("passkey.add", "allowed").await, 0);
    });
}

/// The same at the registration step, whatever invite creation does: an invite made while
/// the address had no operator, redeemed after one was created (by a login link here), must
/// not attach the redeemer's passkey to that operator. The invite stays unused.
#[tokio::test]
async fn a_registration_ceremony_never_attaches_to_an_existing_operator() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let link = invite(&c, &lead, "dana@raxx.test")
            .await
            .expect("new address");
        let token = link.rsplit('/').next().unwrap().to_string();
        // Dana's operator appears meanwhile (login link, config membership, ...).
        let dana = c.operator("dana@raxx.test", &[]).await;

        // Refused at the start of the ceremony ...
        let mut hers = SoftPasskey::new(true);
        let r = register(
            &c,
            &mut hers,
            json!({"invite_token": token, "display_name": "D"}),
        )
        .await;
        let (status, code) = error_code(r).await;
        assert!(
            status == 409 || status == 400,
            "registration for an existing operator: {status} {code}"
        );
        assert_eq!(passkey_count(&c, dana.admin_id).await, 0);

        // ... and at its finish, for a ceremony started before the operator existed.
        let link = invite(&c, &lead, "erin@raxx.test")
            .await
            .expect("new address");
        let token = link.rsplit('/').next().unwrap().to_string();
        let start: Value = c
            .client()
            .post(c.url("/auth/register/start"))
            .json(&json!({"invite_token": token, "display_name": "E"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let erin = c.operator("erin@raxx.test", &[]).await;
        let ccr: CreationChallengeResponse =
            serde_json::from_value(start["challenge"].clone()).unwrap();
        let credential = hers
            .do_registration(Url::parse(&c.origin).unwrap(), ccr)
            .unwrap();
        let done = c
            .client()
            .post(c.url("/auth/register/finish"))
            .json(&json!({"ceremony": start["ceremony"], "credential": credential}))
            .send()
            .await
            .unwrap();
        assert!(session_cookie(&done).is_none());
        assert_eq!(error_code(done).await, (409, "operator_exists".to_string()));
        assert_eq!(passkey_count(&c, erin.admin_id).await, 0);
        let invites = c.store().invites().await.unwrap();
        let erins = invites
            .iter()
            .find(|i| i.email == "erin@raxx.test")
            .unwrap();
        assert!(
            erins.accepted_at.is_none(),
            "the refused redemption changed nothing"
        );
    });
}

/// Bootstrap enrolment for a listed address whose operator exists without a passkey (made
/// by a login link) is refused: that operator adds a passkey signed in.
#[tokio::test]
async fn bootstrap_enrolment_never_attaches_to_an_existing_operator() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let root = c.operator("root@raxx.test", &[]).await;
        let mut hers = SoftPasskey::new(true);
        let r = register(
            &c,
            &mut hers,
            json!({"email": "root@raxx.test", "display_name": "R", "enrol_code": "test-enrol-code"}),
        )
        .await;
        assert_eq!(r.status(), 403);
        assert_eq!(passkey_count(&c, root.admin_id).await, 0);
        // The login page no longer offers bootstrap: every listed address has an operator.
        let login = c
            .client()
            .get(c.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!login.contains("data-passkey=\"register\""));
    });
}

/// A signed-in operator adds a backup only after a fresh assertion with one of their own
/// passkeys, in the same session; the step-up is used once.
#[tokio::test]
async fn a_backup_passkey_needs_a_fresh_assertion_in_the_same_session() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let mut main = SoftPasskey::new(true);
        let bob = invited(&c, &lead, "bob@raxx.test", &mut main).await;
        let mut backup = SoftPasskey::new(true);

        // A stolen session alone (no authenticator) cannot add a passkey.
        let r = add_passkey(&c, &bob, &mut backup, "backup").await;
        assert_eq!(error_code(r).await, (403, "step_up_required".into()));
        assert_eq!(passkey_count(&c, bob.admin_id).await, 1);
        assert_eq!(c.audit_count("passkey.add", "denied").await, 1);

        // A step-up in another session of bob does not count for this one.
        let other = sign_in(&c, &mut main, "bob@raxx.test").await.unwrap();
        assert_eq!(step_up(&c, &other, &mut main).await.status(), 200);
        let r = add_passkey(&c, &bob, &mut backup, "backup").await;
        assert_eq!(r.status(), 403);

        // A step-up ceremony started in one session cannot be finished in another.
        let start: Value = post(&c, &bob, "/api/v1/passkeys/step-up/start", json!({}))
            .await
            .json()
            .await
            .unwrap();
        let rcr: RequestChallengeResponse =
            serde_json::from_value(start["challenge"].clone()).unwrap();
        let cred = main
            .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
            .unwrap();
        let r = post(
            &c,
            &other,
            "/api/v1/passkeys/step-up/finish",
            json!({"ceremony": start["ceremony"], "credential": cred}),
        )
        .await;
        assert_eq!(r.status(), 400);

        // Another operator's passkey is no step-up for bob.
        let mut carols = SoftPasskey::new(true);
        let _carol = invited(&c, &lead, "carol@raxx.test", &mut carols).await;
        let start: Value = post(&c, &bob, "/api/v1/passkeys/step-up/start", json!({}))
            .await
            .json()
            .await
            .unwrap();
        let rcr: RequestChallengeResponse =
            serde_json::from_value(start["challenge"].clone()).unwrap();
        assert!(
            carols
                .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
                .is_err(),
            "the challenge names only bob's credentials"
        );

        // The real thing: step-up, then the backup.
        assert_eq!(step_up(&c, &bob, &mut main).await.status(), 200);
        let r = add_passkey(&c, &bob, &mut backup, "backup key").await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        assert_eq!(passkey_count(&c, bob.admin_id).await, 2);
        assert!(sign_in(&c, &mut backup, "bob@raxx.test").await.is_some());
        // The step-up was used: a third passkey needs a new one.
        let mut third = SoftPasskey::new(true);
        let r = add_passkey(&c, &bob, &mut third, "third").await;
        assert_eq!(r.status(), 403);
        assert_eq!(c.audit_count("passkey.add", "allowed").await, 1);
        assert_eq!(c.audit_count("passkey.step_up", "allowed").await, 2);

        // The owner is told.
        let l = list(&c, &bob).await;
        let notices = l["notices"].as_array().unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0]["kind"], "added");
        assert!(
            notices[0]["message"]
                .as_str()
                .unwrap()
                .contains("A new passkey “backup key” was added")
        );
    });
}

/// An operator with no passkey at all (signed in by a login link) adds a first one without
/// a step-up, but only shortly after signing in.
#[tokio::test]
async fn a_first_passkey_is_added_only_right_after_signing_in() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let dana = c.operator("dana@raxx.test", &[]).await;
        let mut first = SoftPasskey::new(true);
        let r = add_passkey(&c, &dana, &mut first, "laptop").await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        assert!(sign_in(&c, &mut first, "dana@raxx.test").await.is_some());

        let erin = c.operator("erin@raxx.test", &[]).await;
        raxx_store::testing::exec(
            c.store(),
            &format!(
                "UPDATE console_sessions SET created_at = created_at - 660000 WHERE id = '{}'",
                erin.session_id
            ),
        )
        .await;
        let mut late = SoftPasskey::new(true);
        let r = add_passkey(&c, &erin, &mut late, "late").await;
        assert_eq!(error_code(r).await, (403, "step_up_required".into()));
        assert_eq!(passkey_count(&c, erin.admin_id).await, 0);
    });
}

/// List, rename, remove; the last one cannot be removed by its owner; the page and the
/// dashboard show the changes; the gate's CSRF and env checks apply to these writes.
#[tokio::test]
async fn owners_list_rename_and_remove_but_never_their_last_passkey() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let mut main = SoftPasskey::new(true);
        let bob = invited(&c, &lead, "bob@raxx.test", &mut main).await;
        let l = list(&c, &bob).await;
        let only = &l["passkeys"][0];
        let only_id = only["id"].as_i64().unwrap();
        assert!(only["created_at"].as_i64().is_some());
        assert!(only.get("passkey").is_none() && only.get("cred_id").is_none());

        // The last one: a clear 409, nothing changed, the refusal audited.
        let del = c
            .as_operator(&bob)
            .delete(&format!("/api/v1/passkeys/{only_id}"))
            .await;
        let code: Value = del.json().await.unwrap_or_default();
        assert_eq!(
            (
                del.status().as_u16(),
                code["error"].as_str().unwrap_or_default()
            ),
            (409, "last_passkey")
        );
        assert_eq!(passkey_count(&c, bob.admin_id).await, 1);

        // Rename: bad names are refused with the name kept; good ones apply.
        for bad in ["", "   ", &"x".repeat(61), "a\u{7}b"] {
            let r = c
                .client()
                .patch(c.url(&format!("/api/v1/passkeys/{only_id}")))
                .headers(c.write_headers(&bob))
                .json(&json!({"name": bad}))
                .send()
                .await
                .unwrap();
            assert_eq!(error_code(r).await, (400, "invalid".into()), "{bad:?}");
        }
        let r = c
            .client()
            .patch(c.url(&format!("/api/v1/passkeys/{only_id}")))
            .headers(c.write_headers(&bob))
            .json(&json!({"name": "work laptop"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Nobody renames another operator's passkey.
        let r = c
            .client()
            .patch(c.url(&format!("/api/v1/passkeys/{only_id}")))
            .headers(c.write_headers(&lead))
            .json(&json!({"name": "mine now"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        // A write without CSRF or without the env is refused by the gate.
        let mut h = c.write_headers(&bob);
        h.remove("x-csrf-token");
        let r = c
            .client()
            .patch(c.url(&format!("/api/v1/passkeys/{only_id}")))
            .headers(h)
            .json(&json!({"name": "nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await, (403, "csrf".into()));
        let mut h = c.write_headers(&bob);
        h.remove("x-console-env");
        let r = post(&c, &bob, "/api/v1/passkeys/step-up/start", json!({})).await;
        assert_eq!(r.status(), 200);
        let r = c
            .client()
            .post(c.url("/api/v1/passkeys/register/start"))
            .headers(h)
            .json(&json!({"name": "nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await, (403, "env_mismatch".into()));
        assert_eq!(list(&c, &bob).await["passkeys"][0]["name"], "work laptop");

        // Add a backup, remove the first one through the page's form.
        assert_eq!(step_up(&c, &bob, &mut main).await.status(), 200);
        let mut backup = SoftPasskey::new(true);
        assert_eq!(
            add_passkey(&c, &bob, &mut backup, "backup").await.status(),
            201
        );
        let page = c
            .client()
            .get(c.url("/passkeys"))
            .headers(c.read_headers(&bob))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("work laptop") && page.contains("backup"));
        assert!(page.contains(&format!("/passkeys/{only_id}/remove")));
        let form = c
            .client()
            .post(c.url(&format!("/passkeys/{only_id}/remove")))
            .header("cookie", &bob.cookie)
            .form(&[("_csrf", bob.csrf.as_str()), ("_target_env", "prod")])
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 303);
        assert_eq!(passkey_count(&c, bob.admin_id).await, 1);
        assert!(sign_in(&c, &mut main, "bob@raxx.test").await.is_none());
        assert!(sign_in(&c, &mut backup, "bob@raxx.test").await.is_some());
        // Removing one's own passkey keeps one's sessions.
        assert_eq!(
            c.client()
                .get(c.url("/api/v1/me"))
                .headers(c.read_headers(&bob))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        // The dashboard shows both changes until they are dismissed.
        let next = sign_in(&c, &mut backup, "bob@raxx.test").await.unwrap();
        let dash = |op: Operator| {
            let c = &c;
            async move {
                c.client()
                    .get(c.url("/"))
                    .headers(c.read_headers(&op))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        let d = dash(next.clone()).await;
        assert!(d.contains("A new passkey “backup” was added"), "{d}");
        assert!(d.contains("A passkey “work laptop” was removed"));
        let ack = post(&c, &next, "/api/v1/passkeys/notices/ack", json!({})).await;
        assert_eq!(ack.json::<Value>().await.unwrap()["acknowledged"], 2);
        assert!(!dash(next.clone()).await.contains("passkey-notices"));
        assert!(
            list(&c, &next).await["notices"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(c.audit_count("passkey.remove", "allowed").await, 1);
        assert_eq!(c.audit_count("passkey.remove", "denied").await, 1);
        assert_eq!(c.audit_count("passkey.rename", "allowed").await, 1);
    });
}

/// `console-session-admin` removes another operator's passkey (even the last one): audited,
/// that operator's sessions end, and they are told who did it. Without the role: 403.
#[tokio::test]
async fn a_session_admin_removes_another_operators_passkey_and_ends_their_sessions() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let lead = c.operator("lead@raxx.test", &["production-admins"]).await;
        let nora = c.operator("nora@raxx.test", &[]).await;
        let mut bobs = SoftPasskey::new(true);
        let bob = invited(&c, &lead, "bob@raxx.test", &mut bobs).await;
        let id = list(&c, &bob).await["passkeys"][0]["id"].as_i64().unwrap();

        let del = |op: Operator| {
            let c = &c;
            async move {
                c.client()
                    .delete(c.url(&format!("/api/v1/passkeys/{id}")))
                    .headers(c.write_headers(&op))
                    .send()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            error_code(del(nora.clone()).await).await,
            (403, "forbidden".into())
        );
        let r = c
            .as_reader(&nora)
            .get(&format!("/api/v1/operators/{}/passkeys", bob.admin_id))
            .await;
        assert_eq!(r.status(), 403);
        assert_eq!(passkey_count(&c, bob.admin_id).await, 1);

        let r = c
            .as_reader(&lead)
            .get(&format!("/api/v1/operators/{}/passkeys", bob.admin_id))
            .await;
        assert_eq!(r.json::<Value>().await.unwrap()["passkeys"][0]["id"], id);
        let page = c
            .as_reader(&lead)
            .get(&format!("/operators/{}/passkeys", bob.admin_id))
            .await;
        assert_eq!(page.status(), 200);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains(&format!("/passkeys/{id}/remove"))
        );

        let r = del(lead.clone()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(passkey_count(&c, bob.admin_id).await, 0);
        let me = c.as_reader(&bob).get("/api/v1/me").await;
        assert_eq!(me.status(), 401, "bob's sessions ended");
        let rows = c
            .store()
            .audit_page(&raxx_store::audit::AuditQuery {
                action: Some("passkey.remove".into()),
                outcome: raxx_core::audit::Outcome::parse("allowed"),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event.actor, lead.admin_id.to_string());
        assert_eq!(rows[0].event.context["own"], false);
        assert_eq!(rows[0].event.context["sessions_ended"], 1);

        // Bob, back through a login link, reads who removed it.
        let back = c.operator("bob@raxx.test", &[]).await;
        let notices = list(&c, &back).await["notices"].clone();
        assert!(
            notices[0]["message"]
                .as_str()
                .unwrap()
                .contains("was removed from your account on"),
            "{notices}"
        );
        assert!(
            notices[0]["message"]
                .as_str()
                .unwrap()
                .contains("by lead@raxx.test")
        );
    });
}

/// No passkey material in the audit log: neither a credential id nor any part of the stored
/// public key appears in any audit row after adding, using and removing passkeys.
#[tokio::test]
async fn passkey_changes_are_audited_without_passkey_material() {
    raxx_testkit::each_backend!(|url| {
        let c = console(&url).await;
        let dana = c.operator("dana@raxx.test", &["production-admins"]).await;
        let mut first = SoftPasskey::new(true);
        assert_eq!(
            add_passkey(&c, &dana, &mut first, "one").await.status(),
            201
        );
        let signed = sign_in(&c, &mut first, "dana@raxx.test").await.unwrap();
        assert_eq!(step_up(&c, &signed, &mut first).await.status(), 200);
        let mut second = SoftPasskey::new(true);
        assert_eq!(
            add_passkey(&c, &signed, &mut second, "two").await.status(),
            201
        );
        let stored = c.store().passkeys_of(dana.admin_id).await.unwrap();
        let secrets: Vec<String> = stored
            .iter()
            .flat_map(|p| {
                let v: Value = serde_json::from_str(&p.passkey).unwrap();
                let mut parts = vec![p.cred_id.clone()];
                collect_strings(&v, &mut parts);
                parts
            })
            .filter(|s| s.len() >= 16)
            .collect();
        assert!(!secrets.is_empty());
        let id = stored[0].id;
        let r = c
            .as_operator(&signed)
            .delete(&format!("/api/v1/passkeys/{id}"))
            .await;
        assert_eq!(r.status(), 200);
        let rows = c
            .store()
            .audit_page(&raxx_store::audit::AuditQuery {
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(rows.len() >= 5);
        for row in &rows {
            let text = serde_json::to_string(&row.event).unwrap();
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "audit row {text} holds passkey material"
                );
            }
        }
    });
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}
