//! The token actions both the pages and the JSON API (and the sweep job) call: rotate,
//! revoke the previous credential, sync the config. Each ends in exactly one audited
//! transaction; every failure is audited as `error` (denials as `denied`).
//!
//! Provider calls run in a spawned task: if the request is dropped (client gone, server
//! timeout), the rotation still finishes, compensates or records itself.

use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::TokenConfig;
use raxx_core::gate::{Access, Class, Csrf, GateInput, Owner, Principal, Target, write_level};
use raxx_core::rbac::{EffectiveRoles, Resource, Role};
use raxx_providers::{
    Compensation, ConfigVarTarget, ErrorKind, HerokuConfig, HerokuProvider, ProviderError,
    Revocation, RotationFailure, Secret, TokenSpec,
};
use raxx_store::now_ms;
use raxx_store::tokens::ProviderToken;
use serde_json::json;
use url::Url;

use super::inventory::TokenId;
use crate::actor::Actor;
use crate::console::Console;
use crate::error::{Error, Kind, Result};

/// Grace period bounds (seconds) and default (SPEC §8: 24 h).
pub const GRACE_DEFAULT: i64 = 86_400;
pub const GRACE_MAX: i64 = 604_800;
/// How long a rotation or revocation may hold a provider token's lease.
const LEASE_MS: i64 = 5 * 60 * 1000;
/// The actor of the config sync.
pub const SYNC_ACTOR: &str = "system:config-sync";

/// What a rotation did. `secret` is set for app keys only, and shown once. `id` is the
/// token's id, the same before and after (SPEC §8).
#[derive(Debug)]
pub struct Rotation {
    pub id: TokenId,
    /// App keys: the new version's number (the previous one is `version - 1`).
    pub version: Option<usize>,
    pub app: String,
    pub name: String,
    pub noun: String,
    pub secret: Option<String>,
    pub grace_until: i64,
    pub new_authorization_id: Option<String>,
    pub previous_authorization_id: Option<String>,
    pub published_to: Vec<String>,
    /// Set when the grace period was 0 and deleting the previous authorization failed
    /// (the sweep retries it).
    pub warning: Option<String>,
    /// Who else needs the new credential (the prod console, for a staging read key).
    pub notice: Option<String>,
}

/// What "revoke previous now" ended.
#[derive(Debug)]
pub struct RevokedPrevious {
    pub id: TokenId,
    pub app: String,
    pub name: String,
    /// `version 1` (an app key) or the authorization id.
    pub previous: String,
    /// For providers: `deleted` or `already_gone`.
    pub how: &'static str,
}

/// `grace_seconds` as given (`None`: the default), checked against 0..=604800.
pub fn grace_seconds(given: Option<i64>) -> Result<i64> {
    match given {
        None => Ok(GRACE_DEFAULT),
        Some(g) if (0..=GRACE_MAX).contains(&g) => Ok(g),
        Some(g) => Err(Error::invalid(format!(
            "grace_seconds must be between 0 and {GRACE_MAX} (7 days), not {g}"
        ))),
    }
}

/// Parse a token id from a URL, refusing (and auditing) one that names nothing.
pub async fn parse_id(state: &Console, actor: &Actor, action: &str, raw: &str) -> Result<TokenId> {
    match TokenId::parse(raw) {
        Some(id) => Ok(id),
        None => Err(failed(
            state,
            actor,
            action,
            raw,
            None,
            Error::NotFound(format!(
                "there is no token `{raw}`; token ids look like key:12 or heroku:3"
            )),
        )
        .await),
    }
}

/// Rotate a token (dual-phase). `grace` must come from [`grace_seconds`].
pub async fn rotate(
    state: &Console,
    actor: &Actor,
    id: &TokenId,
    grace: Result<i64>,
) -> Result<Rotation> {
    const ACTION: &str = "token.rotate";
    let target = id.to_string();
    let grace = match grace {
        Ok(g) => g,
        Err(e) => return Err(failed(state, actor, ACTION, &target, None, e).await),
    };
    super::sync_inventory(state).await?;
    match id {
        TokenId::Key(key_id) => rotate_key(state, actor, *key_id, grace).await,
        TokenId::Provider { .. } => {
            let token = provider_token(state, actor, ACTION, id).await?;
            check_target(state, actor, ACTION, &target, &token.app).await?;
            if let Some(prev) = &token.previous_authorization_id {
                let until = token.previous_grace_until.unwrap_or(0);
                let err = Error::Conflict {
                    kind: Kind::Conflict,
                    code: "grace_pending",
                    message: format!(
                        "the previous authorization {prev} of {} is still live (grace until {} UTC); revoke it first (revoke-previous) or wait for the sweep",
                        token.name,
                        crate::fmt_time(until)
                    ),
                };
                return Err(failed(state, actor, ACTION, &target, Some(&token.app), err).await);
            }
            let task_state = state.clone();
            let task_actor = actor.clone();
            let task_id = id.clone();
            tokio::spawn(async move {
                rotate_provider(&task_state, &task_actor, &task_id, token, grace).await
            })
            .await
            .map_err(|e| Error::Internal(format!("the rotation task failed: {e}")))?
        }
    }
}

async fn rotate_key(state: &Console, actor: &Actor, token_id: i64, grace: i64) -> Result<Rotation> {
    const ACTION: &str = "token.rotate";
    let target = format!("key:{token_id}");
    let key = key_token(state, actor, ACTION, token_id).await?;
    check_target(state, actor, ACTION, &target, &key.app).await?;
    let now = now_ms();
    let grace_until = now + grace * 1000;
    let mut tx = state.store.begin().await?;
    let (secret, new, version) = match tx
        .rotate_app_key_token(token_id, grace_until, &actor.name(), now)
        .await
    {
        Ok(done) => done,
        Err(e) => {
            tx.rollback().await?;
            let err = match Error::from(e) {
                Error::Conflict { message, .. } => Error::Conflict {
                    kind: Kind::Conflict,
                    code: if message.contains("grace period") {
                        "grace_pending"
                    } else {
                        "not_rotatable"
                    },
                    message,
                },
                other => other,
            };
            return Err(failed(state, actor, ACTION, &target, Some(&key.app), err).await);
        }
    };
    tx.record(
        actor
            .event(ACTION, Outcome::Allowed)
            .target("token", target.clone())
            .app(key.app.clone())
            .with("provider", "local")
            .with("kind", key.kind.as_str())
            .with("token_name", key.name.clone())
            .with("version", version)
            .with("previous_version", version - 1)
            .with("new_version_id", new.id)
            .with("grace_seconds", grace)
            .with("grace_until", grace_until),
    )
    .await?;
    tx.commit().await?;
    Ok(Rotation {
        id: TokenId::Key(token_id),
        version: Some(version),
        noun: format!("{} key", key.kind.as_str()),
        notice: super::depends::notice(state, &key),
        app: key.app,
        name: key.name,
        secret: Some(secret),
        grace_until,
        new_authorization_id: None,
        previous_authorization_id: None,
        published_to: Vec::new(),
        warning: None,
    })
}

/// The newest version of the app key token `key:<token_id>`, refusing (and auditing) an
/// id that names no token. An id of a later version (what rotations answered before
/// tokens kept their id) is told which token it belongs to.
async fn key_token(
    state: &Console,
    actor: &Actor,
    action: &str,
    token_id: i64,
) -> Result<raxx_store::keys::AppKey> {
    let target = format!("key:{token_id}");
    if let Some(newest) = state.store.app_key_versions(token_id).await?.pop() {
        return Ok(newest);
    }
    let message = match state.store.app_key(token_id).await? {
        Some(v) => format!(
            "there is no token {target}: it is a former version of key:{}; act on key:{}",
            v.token_id, v.token_id
        ),
        None => format!("there is no token {target}"),
    };
    Err(failed(
        state,
        actor,
        action,
        &target,
        None,
        Error::NotFound(message),
    )
    .await)
}

/// Steps 1 and 2 at the provider, then the inventory; with grace 0, step 3 at once.
async fn rotate_provider(
    state: &Console,
    actor: &Actor,
    id: &TokenId,
    token: ProviderToken,
    grace: i64,
) -> Result<Rotation> {
    const ACTION: &str = "token.rotate";
    let target = id.to_string();
    let app = token.app.clone();
    check_write_targets(state, actor, ACTION, &target, &token).await?;
    let (provider, spec) = match provider_for(state, &token) {
        Ok(p) => p,
        Err(e) => return Err(failed(state, actor, ACTION, &target, Some(&app), e).await),
    };
    claim(state, actor, ACTION, &target, &token).await?;
    let outcome = provider.rotate(&spec).await;
    let rotated = match outcome {
        Ok(r) => r,
        Err(failure) => {
            let message = failure.to_string();
            if let Err(e) = state
                .store
                .release_provider_token(token.id, Some(&message))
                .await
            {
                tracing::error!(error = %e, token = %target, "could not release a token lease");
            }
            let event = actor
                .event(ACTION, Outcome::Error)
                .target("token", target.clone())
                .app(app.clone())
                .reason(message.clone())
                .with("provider", token.provider.clone())
                .with("token_name", token.name.clone())
                .with("failed_step", failure.step().number())
                .with("step_name", step_name(failure.step()))
                .with("compensation", compensation(&failure))
                .with("changed_nothing", failure.changed_nothing());
            audit_or_log(state, event).await;
            return Err(provider_error(&failure.error, message));
        }
    };
    let now = now_ms();
    let grace_until = now + grace * 1000;
    let published: Vec<String> = rotated.published_to.iter().map(|t| t.to_string()).collect();
    let recorded = async {
        let mut tx = state.store.begin().await?;
        tx.record_rotation(
            token.id,
            token.authorization_id.as_deref(),
            &rotated.new_authorization_id,
            grace_until,
            &actor.name(),
            now,
        )
        .await?;
        tx.record(
            actor
                .event(ACTION, Outcome::Allowed)
                .target("token", target.clone())
                .app(app.clone())
                .with("provider", token.provider.clone())
                .with("token_name", token.name.clone())
                .with("new_authorization_id", rotated.new_authorization_id.clone())
                .with(
                    "previous_authorization_id",
                    rotated.previous_authorization_id.clone(),
                )
                .with("published_to", published.clone())
                .with("grace_seconds", grace)
                .with("grace_until", grace_until),
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = recorded {
        // The provider holds the new token and the apps use it; only the record failed.
        let message = format!(
            "{} was rotated at {} (new authorization {}, published to {}), but the console could not record it ({e}); set authorization_id = \"{}\" for this token in the config and restart",
            token.name,
            super::inventory::provider_label(&token.provider),
            rotated.new_authorization_id,
            published.join(", "),
            rotated.new_authorization_id
        );
        let _ = state
            .store
            .release_provider_token(token.id, Some(&message))
            .await;
        let event = actor
            .event(ACTION, Outcome::Error)
            .target("token", target.clone())
            .app(app.clone())
            .reason(message.clone());
        audit_or_log(state, event).await;
        return Err(Error::Internal(message));
    }
    let mut warning = None;
    if grace == 0 && rotated.previous_authorization_id.is_some() {
        let fresh = provider_token(state, actor, "token.revoke_previous", id).await?;
        if let Err(e) = revoke_provider_previous(state, actor, id, fresh).await {
            warning = Some(format!(
                "the rotation succeeded, but deleting the previous authorization failed: {e}; the sweep retries it"
            ));
        }
    }
    Ok(Rotation {
        id: id.clone(),
        version: None,
        notice: None,
        noun: format!(
            "{} token",
            super::inventory::provider_label(&token.provider)
        ),
        app,
        name: token.name,
        secret: None,
        grace_until,
        new_authorization_id: Some(rotated.new_authorization_id),
        previous_authorization_id: rotated.previous_authorization_id,
        published_to: published,
        warning,
    })
}

/// End the previous credential's grace period now.
pub async fn revoke_previous(
    state: &Console,
    actor: &Actor,
    id: &TokenId,
) -> Result<RevokedPrevious> {
    const ACTION: &str = "token.revoke_previous";
    let target = id.to_string();
    super::sync_inventory(state).await?;
    match id {
        TokenId::Key(token_id) => {
            let key = key_token(state, actor, ACTION, *token_id).await?;
            check_target(state, actor, ACTION, &target, &key.app).await?;
            let mut tx = state.store.begin().await?;
            let now = now_ms();
            let previous = match tx.revoke_previous_app_key_token(*token_id, now).await {
                Ok(p) => p,
                Err(e) => {
                    tx.rollback().await?;
                    let err = no_previous(Error::from(e));
                    return Err(failed(state, actor, ACTION, &target, Some(&key.app), err).await);
                }
            };
            tx.record(
                actor
                    .event(ACTION, Outcome::Allowed)
                    .target("token", target.clone())
                    .app(key.app.clone())
                    .with("provider", "local")
                    .with("previous_version_id", previous.id),
            )
            .await?;
            tx.commit().await?;
            let number = state
                .store
                .app_key_versions(*token_id)
                .await?
                .iter()
                .position(|v| v.id == previous.id)
                .map_or(0, |i| i + 1);
            Ok(RevokedPrevious {
                id: id.clone(),
                app: key.app,
                name: key.name,
                previous: format!("version {number}"),
                how: "revoked",
            })
        }
        TokenId::Provider { .. } => {
            let token = provider_token(state, actor, ACTION, id).await?;
            check_target(state, actor, ACTION, &target, &token.app).await?;
            let task_state = state.clone();
            let task_actor = actor.clone();
            let task_id = id.clone();
            tokio::spawn(async move {
                revoke_provider_previous(&task_state, &task_actor, &task_id, token).await
            })
            .await
            .map_err(|e| Error::Internal(format!("the revocation task failed: {e}")))?
        }
    }
}

/// Step 3: delete the previous authorization at the provider, then forget it.
async fn revoke_provider_previous(
    state: &Console,
    actor: &Actor,
    id: &TokenId,
    token: ProviderToken,
) -> Result<RevokedPrevious> {
    const ACTION: &str = "token.revoke_previous";
    let target = id.to_string();
    let app = token.app.clone();
    let Some(previous) = token.previous_authorization_id.clone() else {
        let err = no_previous(Error::Conflict {
            kind: Kind::Conflict,
            code: "conflict",
            message: format!("{target} has no previous authorization to delete"),
        });
        return Err(failed(state, actor, ACTION, &target, Some(&app), err).await);
    };
    let (provider, _) = match provider_for(state, &token) {
        Ok(p) => p,
        Err(e) => return Err(failed(state, actor, ACTION, &target, Some(&app), e).await),
    };
    claim(state, actor, ACTION, &target, &token).await?;
    let how = match provider.revoke_previous(&previous).await {
        Ok(Revocation::Deleted) => "deleted",
        Ok(Revocation::AlreadyGone) => "already_gone",
        Err(error) => {
            let message = error.to_string();
            let _ = state
                .store
                .release_provider_token(token.id, Some(&message))
                .await;
            let event = actor
                .event(ACTION, Outcome::Error)
                .target("token", target.clone())
                .app(app.clone())
                .reason(message.clone())
                .with("provider", token.provider.clone())
                .with("token_name", token.name.clone())
                .with("failed_step", error.step.number())
                .with("step_name", step_name(error.step))
                .with("previous_authorization_id", previous.clone());
            audit_or_log(state, event).await;
            return Err(provider_error(&error, message));
        }
    };
    let recorded = async {
        let mut tx = state.store.begin().await?;
        tx.clear_previous(token.id, &previous).await?;
        tx.record(
            actor
                .event(ACTION, Outcome::Allowed)
                .target("token", target.clone())
                .app(app.clone())
                .with("provider", token.provider.clone())
                .with("token_name", token.name.clone())
                .with("previous_authorization_id", previous.clone())
                .with("revocation", how),
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = recorded {
        let _ = state.store.release_provider_token(token.id, None).await;
        // Deleting is idempotent: the next attempt finds it gone and records that.
        return Err(Error::from(e));
    }
    Ok(RevokedPrevious {
        id: id.clone(),
        app,
        name: token.name,
        previous,
        how,
    })
}

/// The provider token `id` names, refusing (and auditing) an unknown or removed one.
async fn provider_token(
    state: &Console,
    actor: &Actor,
    action: &str,
    id: &TokenId,
) -> Result<ProviderToken> {
    let TokenId::Provider { provider, id: n } = id else {
        return Err(Error::Internal("not a provider token id".into()));
    };
    let found = state
        .store
        .provider_token(*n)
        .await?
        .filter(|t| &t.provider == provider && t.is_active());
    match found {
        Some(t) => Ok(t),
        None => {
            let err = Error::NotFound(format!("there is no token {id}"));
            Err(failed(state, actor, action, &id.to_string(), None, err).await)
        }
    }
}

/// The token's config entry and a provider client for it, or a clear `provider_config`
/// error (a missing env var is named; the key itself never appears).
fn provider_for(state: &Console, token: &ProviderToken) -> Result<(HerokuProvider, TokenSpec)> {
    let (cfg, url, key) = provider_setup(state, token)?;
    let provider = HerokuProvider::new(
        HerokuConfig::new(key)
            .with_api_url(url)
            .with_allowed_apps(heroku_write_targets(state)),
    );
    let spec = TokenSpec {
        name: token.name.clone(),
        current_authorization_id: token.authorization_id.clone(),
        scope: (!cfg.scope.is_empty()).then(|| cfg.scope.clone()),
        config_vars: cfg
            .config_vars
            .iter()
            .map(|t| ConfigVarTarget::new(t.app.clone(), t.var.clone()))
            .collect(),
    };
    Ok((provider, spec))
}

/// The Heroku apps this console may write to: its own env's apps (issue 19 item 11). The
/// provider refuses every other app at the moment of the call.
pub fn heroku_write_targets(state: &Console) -> Vec<String> {
    let cfg = &state.cfg.config;
    cfg.apps
        .iter()
        .filter(|a| a.env == state.env())
        .flat_map(|a| [a.heroku_app_name().to_string(), a.name.clone()])
        .filter(|h| cfg.heroku_write_target(state.env(), h).is_ok())
        .collect()
}

/// Every Heroku app a provider token would write to must be one of this console's env
/// (re-checked here, at the call, whatever start-up accepted): an object of the gate whose
/// env is this console's only when [`raxx_core::config::Config::heroku_write_target`]
/// accepts it. Refused (`env_mismatch`, audited) otherwise; nothing is created at the
/// provider.
async fn check_write_targets(
    state: &Console,
    actor: &Actor,
    action: &str,
    target: &str,
    token: &ProviderToken,
) -> Result<()> {
    let Some(cfg) = token_config(state, token) else {
        return Ok(());
    };
    let env = state.env();
    for t in &cfg.config_vars {
        let (heroku_env, why) = match state.cfg.config.heroku_write_target(env, &t.app) {
            Ok(()) => (env, String::new()),
            Err(why) => (env.other(), why),
        };
        let object = Target {
            env: Some(heroku_env),
            app: Some(&token.app),
            owner: Owner::Nobody,
        };
        let what = format!(
            "{} would write the config var {} of the Heroku app {}{}",
            token.name,
            t.var,
            t.app,
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        );
        authorize_actor(state, actor, action, target, object, &what).await?;
    }
    Ok(())
}

/// The one object decision for a token action, whoever acts: an operator through
/// [`Ctx::authorize`]; a job (`system:<job>`) through [`crate::gate::authorize_unattended`]
/// with its system principal and the token write role of this env. Same decision, same
/// denial row.
async fn authorize_actor(
    state: &Console,
    actor: &Actor,
    action: &str,
    target: &str,
    object: Target<'_>,
    what: &str,
) -> Result<()> {
    match actor {
        Actor::Operator(caller) => caller.authorize(state, object, what).await,
        Actor::System(who) => {
            let env = state.env();
            let principal = Principal::System {
                job: who.strip_prefix("system:").unwrap_or(who).to_string(),
                roles: EffectiveRoles::from_roles([Role::new(Resource::Token, write_level(env))]),
            };
            let input = GateInput {
                active_env: env,
                class: Class::Write,
                access: Access::Role(Resource::Token),
                only_env: None,
                principal: &principal,
                csrf: Csrf::Valid,
                claimed_env: Some(env),
                target_env: None,
                target_app: None,
                own_object: false,
            };
            let base = actor.event(action, Outcome::Denied).target("token", target);
            crate::gate::authorize_unattended(state, &input, object, what, base)
                .await
                .map_err(Error::Denied)
        }
    }
}

fn provider_setup<'a>(
    state: &'a Console,
    token: &ProviderToken,
) -> Result<(&'a TokenConfig, Url, Secret)> {
    let config_error = |message: String| Error::Conflict {
        kind: Kind::Misconfigured,
        code: "provider_config",
        message: format!("{message}; nothing was changed"),
    };
    let cfg = token_config(state, token).ok_or_else(|| {
        config_error(format!(
            "token {} of {} is no longer in this console's config",
            token.name, token.app
        ))
    })?;
    if token.provider != "heroku" {
        return Err(config_error(format!(
            "the console cannot rotate {} tokens",
            token.provider
        )));
    }
    let url = heroku_api_url(state).map_err(config_error)?;
    let key = api_key_for(cfg, &url).map_err(config_error)?;
    Ok((cfg, url, key))
}

pub fn token_config<'a>(state: &'a Console, token: &ProviderToken) -> Option<&'a TokenConfig> {
    state
        .cfg
        .app(&token.app)?
        .tokens
        .iter()
        .find(|t| t.name == token.name && t.provider == token.provider)
}

pub fn heroku_api_url(state: &Console) -> Result<Url, String> {
    let raw = &state.cfg.config.heroku_api_url;
    Url::parse(raw).map_err(|e| format!("heroku_api_url `{raw}` is not a URL: {e}"))
}

/// The provider API key: from the env var `api_key_env` names; else, for a local fake
/// only, the config's `api_key`. The error names what to set, never a value.
pub fn api_key_for(cfg: &TokenConfig, api_url: &Url) -> Result<Secret, String> {
    if let Some(var) = &cfg.api_key_env {
        if let Ok(value) = std::env::var(var)
            && !value.trim().is_empty()
        {
            return Ok(Secret::new(value.trim()));
        }
        if cfg.api_key.is_none() {
            return Err(format!(
                "the env var {var} (api_key_env of token {}) is not set on this console's host",
                cfg.name
            ));
        }
    }
    match &cfg.api_key {
        Some(key) if is_local(api_url) => Ok(Secret::new(key.clone())),
        Some(_) => Err(format!(
            "token {}: api_key in the config file is only accepted with a heroku_api_url on this machine (a local fake); put real keys in an env var named by api_key_env",
            cfg.name
        )),
        None => Err(format!(
            "token {} has no api_key_env: name the env var that holds the provider API key",
            cfg.name
        )),
    }
}

fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => raxx_providers::is_localhost_name(d),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Start-up check of the tokens config: what `api_key_for` would refuse for a literal
/// key (a missing env var is only reported when a rotation needs it).
pub fn check_config(state: &Console) -> Result<(), String> {
    let url = heroku_api_url(state)?;
    for app in &state.cfg.config.apps {
        for t in app.tokens.iter().filter(|t| t.api_key.is_some()) {
            if !is_local(&url) {
                return Err(format!(
                    "token {} of {}: api_key in the config file is only accepted with a heroku_api_url on this machine (a local fake); use api_key_env",
                    t.name, app.name
                ));
            }
        }
    }
    Ok(())
}

/// Take the token's lease or refuse with `rotation_in_progress`.
async fn claim(
    state: &Console,
    actor: &Actor,
    action: &str,
    target: &str,
    token: &ProviderToken,
) -> Result<()> {
    let now = now_ms();
    if state
        .store
        .claim_provider_token(token.id, now, now + LEASE_MS)
        .await?
    {
        return Ok(());
    }
    let err = Error::Conflict {
        kind: Kind::Conflict,
        code: "rotation_in_progress",
        message: format!(
            "another rotation or revocation of {} is in progress; try again in a minute",
            token.name
        ),
    };
    Err(failed(state, actor, action, target, Some(&token.app), err).await)
}

/// The token's app as an object of the gate: it must be an app of this console's env.
/// An app this console's config does not name has no env of this console: it is treated
/// as the other env's (refused), never as ours.
pub(super) async fn check_target(
    state: &Console,
    actor: &Actor,
    action: &str,
    target: &str,
    app: &str,
) -> Result<()> {
    let app_env = state
        .cfg
        .app(app)
        .map(|a| a.env)
        .unwrap_or(state.env().other());
    let object = Target {
        env: Some(app_env),
        app: Some(app),
        owner: Owner::Nobody,
    };
    authorize_actor(
        state,
        actor,
        action,
        target,
        object,
        &format!("the app {app}"),
    )
    .await
}

/// Audit a failed action as `error` and hand the error back.
async fn failed(
    state: &Console,
    actor: &Actor,
    action: &str,
    target: &str,
    app: Option<&str>,
    err: Error,
) -> Error {
    let mut event = actor
        .event(action, Outcome::Error)
        .target("token", target)
        .reason(err.to_string())
        .with("code", err.code());
    if let Some(app) = app {
        event = event.app(app);
    }
    audit_or_log(state, event).await;
    err
}

async fn audit_or_log(state: &Console, event: AuditEvent) {
    if let Err(e) = state.store.audit(event).await {
        tracing::error!(error = %e, "could not audit a token action");
    }
}

fn no_previous(err: Error) -> Error {
    match err {
        Error::Conflict { message, .. } => Error::Conflict {
            kind: Kind::Conflict,
            code: "no_previous",
            message,
        },
        other => other,
    }
}

fn provider_error(error: &ProviderError, message: String) -> Error {
    let (kind, code) = match error.kind {
        ErrorKind::Timeout => (Kind::UpstreamTimeout, "provider_timeout"),
        ErrorKind::Config(_) => (Kind::Misconfigured, "provider_config"),
        _ => (Kind::Upstream, "provider_error"),
    };
    Error::Conflict {
        kind,
        code,
        message,
    }
}

fn step_name(step: raxx_providers::Step) -> &'static str {
    match step {
        raxx_providers::Step::Create => "create",
        raxx_providers::Step::Publish => "publish",
        raxx_providers::Step::Revoke => "revoke",
    }
}

fn compensation(failure: &RotationFailure) -> serde_json::Value {
    match &failure.compensation {
        Compensation::NothingToUndo => json!("nothing_to_undo"),
        Compensation::NewAuthorizationDeleted { authorization_id } => {
            json!({"new_authorization_deleted": authorization_id})
        }
        Compensation::NewAuthorizationKept {
            authorization_id, ..
        } => json!({"new_authorization_kept": authorization_id}),
    }
}

/// Whether the console could rotate this provider token without a person.
pub fn manual_reason(state: &Console, token: &ProviderToken) -> Option<String> {
    provider_setup(state, token).err().map(|e| e.to_string())
}
