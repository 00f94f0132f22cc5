//! A fake Heroku with a "current" deploy-bot authorization whose token sits in the
//! config vars of the given apps, and a provider pointed at it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use raxx_providers::fake::{FakeAuthorization, FakeHeroku, FakeOptions};
use raxx_providers::{ConfigVarTarget, HerokuConfig, HerokuProvider, Secret, TokenSpec};

pub const VAR: &str = "DEPLOY_BOT_KEY";
pub const STAGING: &str = "raxx-api-staging";
pub const WORKER: &str = "raxx-worker-staging";

pub struct World {
    pub fake: FakeHeroku,
    pub provider: HerokuProvider,
    pub current: FakeAuthorization,
    pub spec: TokenSpec,
}

pub async fn world(apps: &[&str]) -> World {
    world_with_timeout(apps, Duration::from_secs(5)).await
}

pub async fn world_with_timeout(apps: &[&str], timeout: Duration) -> World {
    let options = apps.iter().fold(
        FakeOptions::default().with_hang(Duration::from_secs(10)),
        |o, app| o.with_app(*app),
    );
    let fake = FakeHeroku::start_with(options)
        .await
        .expect("fake Heroku starts");
    let current = fake.seed_authorization(&["write-protected"], "deploy-bot (initial)");
    for app in apps {
        fake.set_config_var(app, VAR, current.token.expose());
        fake.set_config_var(app, "UNRELATED", "keep-me");
    }
    let provider = provider_for(&fake, fake.api_key(), timeout);
    let spec = TokenSpec {
        name: "deploy-bot".into(),
        current_authorization_id: Some(current.id.clone()),
        scope: None,
        config_vars: apps
            .iter()
            .map(|app| ConfigVarTarget::new(*app, VAR))
            .collect(),
    };
    World {
        fake,
        provider,
        current,
        spec,
    }
}

pub fn provider_for(fake: &FakeHeroku, api_key: Secret, timeout: Duration) -> HerokuProvider {
    HerokuProvider::new(
        HerokuConfig::new(api_key)
            .with_api_url(fake.api_url())
            .with_timeout(timeout),
    )
}

/// Everything a rotation may change: live authorizations (id -> token) and every app's
/// config vars.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub authorizations: BTreeMap<String, String>,
    pub config_vars: BTreeMap<String, BTreeMap<String, String>>,
}

pub fn snapshot(fake: &FakeHeroku, apps: &[&str]) -> Snapshot {
    Snapshot {
        authorizations: fake
            .authorizations()
            .into_iter()
            .map(|a| (a.id, a.token.expose().to_owned()))
            .collect(),
        config_vars: apps
            .iter()
            .map(|app| {
                let vars = fake
                    .config_vars(app)
                    .expect("app exists")
                    .into_iter()
                    .map(|(k, v)| (k, v.expose().to_owned()))
                    .collect();
                ((*app).to_owned(), vars)
            })
            .collect(),
    }
}

/// The (method, path) of every request the fake saw.
pub fn calls(fake: &FakeHeroku) -> Vec<(String, String, u16)> {
    fake.requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect()
}
