//! Issue 19 item 11: a staging console must not be able to write to prod's Heroku app.
//! Start-up (and `config check`, which resolves the same config) refuses a token whose
//! `config_vars` or an app whose `heroku_app` names another env's app; and a config that
//! got past start-up anyway is refused again at the moment of the call, over real HTTP,
//! with nothing created at the provider. SQLite and PostgreSQL.

use raxx_core::Env;
use raxx_core::config::{Config, ConfigVarTarget};
use raxx_providers::fake::{FakeHeroku, FakeOptions};
use raxx_testkit::TestConsole;
use serde_json::Value;

const STAGING_APP: &str = "raxx-api-staging";
const PROD_APP: &str = "raxx-api-prod";
const VAR: &str = "DEPLOY_BOT_KEY";

fn staging_config(fake: &FakeHeroku, authorization: &str, target_app: &str) -> String {
    format!(
        r#"heroku_api_url = "{url}"

[[apps]]
name = "{STAGING_APP}"
env = "staging"

[[apps.tokens]]
name = "deploy-bot"
provider = "heroku"
authorization_id = "{authorization}"
api_key = "{key}"
config_vars = [{{ app = "{target_app}", var = "{VAR}" }}]
"#,
        url = fake.base_url(),
        key = FakeHeroku::DEFAULT_API_KEY,
    )
}

#[tokio::test]
async fn start_up_refuses_a_staging_token_that_names_a_prod_app() {
    let fake = FakeHeroku::start().await.expect("fake");
    for (extra, want) in [
        (
            staging_config(&fake, "a", PROD_APP),
            "config_vars app `raxx-api-prod` is named for prod",
        ),
        (
            format!(
                "[[apps]]\nname = \"{STAGING_APP}\"\nenv = \"staging\"\nheroku_app = \"{PROD_APP}\"\n"
            ),
            "heroku_app `raxx-api-prod` is named for prod",
        ),
    ] {
        let text = format!("public_url = \"http://staging.localhost:1\"\n{extra}");
        let got = Config::parse(&text, |_| None)
            .expect("parses")
            .resolve()
            .expect_err("a staging config naming a prod app must not start");
        assert!(got.0.contains(want), "{got}");
    }
    // The same config, naming its own staging app, starts.
    let text = format!(
        "public_url = \"http://staging.localhost:1\"\n{}",
        staging_config(&fake, "a", STAGING_APP)
    );
    assert!(Config::parse(&text, |_| None).unwrap().resolve().is_ok());
}

/// The config passed start-up naming the staging app; then (a bug, a hand-edited state, a
/// future reload) it names prod's app. A staging `console-token-user` rotation must still
/// not PATCH prod's config vars, nor create an authorization for it.
#[tokio::test]
async fn a_staging_rotation_is_refused_at_the_call_when_its_target_is_a_prod_app() {
    raxx_testkit::each_backend!(|url| {
        let fake = FakeHeroku::start_with(FakeOptions::default().with_app(STAGING_APP))
            .await
            .expect("fake heroku");
        fake.add_app(PROD_APP);
        fake.set_config_var(PROD_APP, VAR, "prod-value-untouched");
        let seeded = fake.seed_authorization(&["write-protected"], "deploy-bot (seeded)");
        let extra = staging_config(&fake, &seeded.id, STAGING_APP);
        let c =
            TestConsole::start_tweaked(Env::Staging, "staging.localhost", &url, &extra, |cfg| {
                cfg.config.apps[0].tokens[0].config_vars = vec![ConfigVarTarget {
                    app: PROD_APP.into(),
                    var: VAR.into(),
                }];
            })
            .await;
        let op = c.operator("qa@raxx.test", &["staging-admins"]).await;
        let inventory: Value = c
            .client()
            .get(c.url("/api/v1/tokens"))
            .headers(c.read_headers(&op))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = inventory
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["name"] == "deploy-bot"))
            .and_then(|t| t["id"].as_str())
            .expect("deploy-bot is listed")
            .to_string();
        let before = fake.requests().len();
        let resp = c
            .as_operator(&op)
            .post_json(
                &format!("/api/v1/tokens/{id}/rotate"),
                &serde_json::json!({"grace_seconds": 600}),
            )
            .await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 403, "{url}: {body}");
        assert_eq!(body["error"], "env_mismatch", "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains(PROD_APP)),
            "{body}"
        );
        let calls: Vec<_> = fake.requests()[before..]
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(calls.is_empty(), "nothing written at Heroku: {calls:?}");
        assert_eq!(
            fake.config_var(PROD_APP, VAR)
                .map(|s| s.expose().to_string()),
            Some("prod-value-untouched".into())
        );
        assert_eq!(fake.authorizations().len(), 1, "no authorization created");
        assert_eq!(c.audit_count("token.rotate", "denied").await, 1);
        assert_eq!(c.audit_count("token.rotate", "allowed").await, 0);
    });
}

/// The provider itself refuses, at the call, an app outside the ones it was given.
#[tokio::test]
async fn the_heroku_provider_refuses_an_app_it_was_not_allowed() {
    use raxx_providers::{HerokuConfig, HerokuProvider, TokenSpec};
    let fake = FakeHeroku::start_with(FakeOptions::default().with_app(STAGING_APP))
        .await
        .expect("fake");
    fake.add_app(PROD_APP);
    let seeded = fake.seed_authorization(&["write-protected"], "seeded");
    let provider = HerokuProvider::new(
        HerokuConfig::new(fake.api_key())
            .with_api_url(fake.api_url())
            .with_allowed_apps([STAGING_APP.to_string()]),
    );
    let spec = TokenSpec {
        name: "deploy-bot".into(),
        current_authorization_id: Some(seeded.id.clone()),
        scope: None,
        config_vars: vec![raxx_providers::ConfigVarTarget::new(PROD_APP, VAR)],
    };
    let failure = provider.rotate(&spec).await.expect_err("refused");
    assert!(failure.to_string().contains(PROD_APP), "{failure}");
    assert!(failure.changed_nothing());
    assert!(fake.requests().is_empty(), "no request reached Heroku");
    assert!(fake.config_var(PROD_APP, VAR).is_none());
}
