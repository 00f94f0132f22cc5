//! Issue 19 items 6 and 9, for sign-in: failed sign-ins from nobody (an unknown account,
//! a bad passkey assertion) and the throttle's refusals cannot flood the audit chain. They
//! are aggregated like the gate's anonymous denials (`raxx_store::anon_denials`): per
//! (interval, source, route, reason) the first is a chained row in full, the rest a count
//! flushed as one summary row. The per-(account, source) throttle still counts every one.
//! Over real HTTP, SQLite and PostgreSQL.

use std::net::{IpAddr, Ipv4Addr};

use raxx_core::Env;
use raxx_core::audit::Outcome;
use raxx_testkit::TestConsole;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ATTACKER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OWNER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Denied chained rows of sign-in actions (not the summaries), and every refusal counted
/// (chained rows, summary counts and pending aggregates).
async fn sign_in_denials(c: &TestConsole) -> (i64, i64) {
    let (mut single, mut counted) = (0, 0);
    for action in ["auth.login", "auth.register", "auth.rate_limited"] {
        let q = raxx_store::audit::AuditQuery {
            action: Some(action.into()),
            outcome: Some(Outcome::Denied),
            limit: 500,
            ..Default::default()
        };
        for r in c.store().audit_page(&q).await.expect("audit page") {
            if r.event.context["aggregated"] == true {
                counted += r.event.context["count"].as_i64().unwrap_or(0);
            } else {
                single += 1;
                counted += 1;
            }
        }
    }
    let pending: i64 = c
        .store()
        .anon_aggregates()
        .await
        .expect("aggregates")
        .iter()
        .filter(|a| a.action.starts_with("auth."))
        .map(|a| a.count)
        .sum();
    (single, counted + pending)
}

async fn bootstrap(c: &TestConsole, client: &reqwest::Client, auth: &mut SoftPasskey) {
    let start = client
        .post(c.url("/auth/register/start"))
        .json(&json!({"email": "root@raxx.test", "display_name": "Root", "enrol_code": "test-enrol-code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 200);
    let start: Value = start.json().await.unwrap();
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

/// A sign-in for root whose assertion was tampered with: refused as a bad assertion.
async fn bad_assertion(
    c: &TestConsole,
    client: &reqwest::Client,
    auth: &mut SoftPasskey,
) -> reqwest::StatusCode {
    let start = client
        .post(c.url("/auth/login/start"))
        .json(&json!({"email": "root@raxx.test"}))
        .send()
        .await
        .unwrap();
    if start.status() != 200 {
        return start.status();
    }
    let start: Value = start.json().await.unwrap();
    let rcr: RequestChallengeResponse = serde_json::from_value(start["challenge"].clone()).unwrap();
    let credential = auth
        .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
        .expect("soft passkey signs");
    let mut credential = serde_json::to_value(credential).unwrap();
    let sig = credential["response"]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    credential["response"]["signature"] = json!(format!("{flipped}{}", &sig[1..]));
    client
        .post(c.url("/auth/login/finish"))
        .json(&json!({"ceremony": start["ceremony"], "credential": credential}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn five_hundred_failed_sign_ins_write_a_handful_of_chained_rows() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start_on_host(Env::Staging, "localhost", &url, "").await;
        let mut auth = SoftPasskey::new(true);
        bootstrap(&c, &c.client_from(OWNER_IP), &mut auth).await;
        let attacker = c.client_from(ATTACKER_IP);
        let (single_before, _) = sign_in_denials(&c).await;
        let mut statuses = std::collections::BTreeMap::new();
        // Bad assertions on a real account, then 500 sign-in starts for unknown accounts.
        for _ in 0..20 {
            *statuses
                .entry(bad_assertion(&c, &attacker, &mut auth).await.as_u16())
                .or_insert(0) += 1;
        }
        for i in 0..500 {
            let r = attacker
                .post(c.url("/auth/login/start"))
                .json(&json!({"email": format!("ghost{}@raxx.test", i % 7)}))
                .send()
                .await
                .unwrap();
            *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
        }
        // The throttle still refuses this source once it has failed too often.
        assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
        assert_eq!(
            statuses.get(&401).copied(),
            Some(20),
            "bad assertions: {statuses:?}"
        );
        let (single, counted) = sign_in_denials(&c).await;
        assert!(
            single - single_before <= 6,
            "520 failed sign-ins wrote {} chained rows of their own",
            single - single_before
        );
        // Every refusal is still counted (nothing lost, only aggregated).
        assert!(counted >= 520, "{counted} of 520 refusals recorded");
        // The owner, from elsewhere, still signs in (per-(account, source) throttle).
        let owner = c.client_from(OWNER_IP);
        let start = owner
            .post(c.url("/auth/login/start"))
            .json(&json!({"email": "root@raxx.test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), 200, "the owner is not locked out");
        let start: Value = start.json().await.unwrap();
        let rcr: RequestChallengeResponse =
            serde_json::from_value(start["challenge"].clone()).unwrap();
        let credential = auth
            .do_authentication(Url::parse(&c.origin).unwrap(), rcr)
            .expect("soft passkey signs");
        let done = owner
            .post(c.url("/auth/login/finish"))
            .json(&json!({"ceremony": start["ceremony"], "credential": credential}))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
    });
}

#[tokio::test]
async fn guessing_the_enrolment_code_writes_a_handful_of_chained_rows() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start_on_host(Env::Staging, "localhost", &url, "").await;
        let attacker = c.client_from(ATTACKER_IP);
        let (single_before, _) = sign_in_denials(&c).await;
        let mut statuses = std::collections::BTreeMap::new();
        // The listed address with wrong codes, and addresses that are not listed.
        for i in 0..250 {
            let email = if i % 2 == 0 {
                "root@raxx.test".to_string()
            } else {
                format!("guess{i}@raxx.test")
            };
            let r = attacker
                .post(c.url("/auth/register/start"))
                .json(&json!({"email": email, "display_name": "X", "enrol_code": format!("code-{i}")}))
                .send()
                .await
                .unwrap();
            *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
        }
        assert_eq!(
            statuses.keys().copied().collect::<Vec<_>>(),
            [403, 429],
            "{statuses:?}"
        );
        let (single, counted) = sign_in_denials(&c).await;
        assert!(
            single - single_before <= 3,
            "250 wrong enrolment codes wrote {} chained rows of their own",
            single - single_before
        );
        assert!(counted >= 250, "{counted} of 250 refusals recorded");
        // The real admin, from elsewhere, still enrols with the code.
        let mut auth = SoftPasskey::new(true);
        bootstrap(&c, &c.client_from(OWNER_IP), &mut auth).await;
    });
}
