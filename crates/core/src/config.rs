//! The console's configuration: a TOML file plus env-var overrides (SPEC §11).
//! Parsing and validation are pure; the CLI reads the file and the process env.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::client_ip::{ForwardedHeader, TrustedProxies};
use crate::env::{Env, default_env_for_host};
use crate::rbac::{EnvScope, Role};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub public_url: Option<String>,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// Addresses enrolled into the env's admin group on their first passkey registration.
    #[serde(default)]
    pub admin_emails: Vec<String>,
    pub admin_enrol_code: Option<String>,
    /// Prod only: the staging console whose flags are promoted, and its read key.
    pub staging_source_url: Option<String>,
    pub staging_source_key: Option<String>,
    #[serde(default = "default_heroku_api_url")]
    pub heroku_api_url: String,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub environments: BTreeMap<String, Env>,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    pub customers: Option<CustomersConfig>,
    #[serde(default)]
    pub jobs: BTreeMap<String, JobConfig>,
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    /// `[audit]`: the checkpoint signing key and intervals (docs/audit.md).
    #[serde(default)]
    pub audit: crate::audit::settings::AuditConfig,
    /// Reverse proxies (CIDRs) whose forwarding header names the client (`client_ip.rs`).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The header those proxies maintain: `X-Forwarded-For` (default) or `Forwarded`.
    #[serde(default)]
    pub client_ip_header: ForwardedHeader,
    /// A flag no OFREP evaluation reached for this many days is marked stale (docs/flags.md).
    #[serde(default = "default_flag_stale_days")]
    pub flag_stale_days: u32,
    /// `[[notify]]`: where the console sends notifications (docs/flags.md, docs/jobs.md).
    #[serde(default)]
    pub notify: Vec<NotifyConfig>,
}

fn default_flag_stale_days() -> u32 {
    30
}

/// The events a `[[notify]]` target can subscribe to (`*`: all of them).
pub const NOTIFY_EVENTS: &[&str] = &[
    "promotion.queued",
    "promotion.approved",
    "promotion.applied",
    "promotion.rejected",
    "promotion.stale",
    "promotion.expired",
    "flag.killed",
    "token.rotation_failed",
    "token.expiring",
    "check.changed",
    "job.failing",
];

/// How a notification is shaped: a generic JSON document, or a Slack incoming-webhook
/// payload (`{"text": ...}`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    Webhook,
    Slack,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Webhook => "webhook",
            NotifyKind::Slack => "slack",
        }
    }
}

/// One `[[notify]]` target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// A name for the audit trail and the jobs page (default: `notify-<n>`).
    pub name: Option<String>,
    pub kind: NotifyKind,
    /// Where to POST. Often carries a secret in its path (Slack): never logged or audited
    /// beyond scheme, host and port.
    #[serde(skip_serializing)]
    pub url: String,
    pub events: Vec<String>,
}

impl NotifyConfig {
    /// The target's name: `name`, else `notify-<n>` (1-based position in the config).
    pub fn display_name(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("notify-{}", index + 1))
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event)
    }
}

/// A URL with its path and query cut: what may be logged and audited of a notify target.
pub fn redacted_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}/…", u.scheme()),
            (Some(h), None) => format!("{}://{h}/…", u.scheme()),
            _ => format!("{}:…", u.scheme()),
        },
        Err(_) => "(not a URL)".into(),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_database_url() -> String {
    "sqlite://data/console.db".into()
}
fn default_heroku_api_url() -> String {
    "https://api.heroku.com".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    #[serde(default = "default_idle")]
    pub idle_minutes: u32,
    #[serde(default = "default_absolute")]
    pub absolute_hours: u32,
}

fn default_idle() -> u32 {
    30
}
fn default_absolute() -> u32 {
    12
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_minutes: default_idle(),
            absolute_hours: default_absolute(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub name: String,
    pub env: Env,
    pub promote_from: Option<String>,
    pub heroku_app: Option<String>,
    #[serde(default)]
    pub checks: Vec<CheckConfig>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Browser origins allowed to call OFREP with this app's client key (CORS): exact
    /// origins like `https://app.example`; `*` (any origin) only when written.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    pub name: String,
    pub url: String,
    #[serde(default = "default_expect")]
    pub expect_status: u16,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    /// Optional; when given it must be the console's env.
    pub env: Option<Env>,
}

fn default_expect() -> u16 {
    200
}
fn default_timeout_ms() -> u64 {
    2000
}
fn default_interval() -> u64 {
    60
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    #[serde(default = "default_provider")]
    pub provider: String,
    pub authorization_id: Option<String>,
    pub api_key_env: Option<String>,
    /// Demo and tests only: the key itself, accepted only while heroku_api_url is on this machine (a local fake); real keys come from api_key_env (see docs/tokens.md).
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub config_vars: Vec<ConfigVarTarget>,
    pub max_age_days: Option<u32>,
}

fn default_provider() -> String {
    "local".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigVarTarget {
    pub app: String,
    pub var: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CustomersConfig {
    pub database_url: String,
    #[serde(default = "default_customer_table")]
    pub table: String,
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

fn default_customer_table() -> String {
    "customers".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub schedule: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub webhook_url: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub grants: Vec<GrantConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    pub role: String,
    pub env_scope: EnvScope,
}

/// A start-up refusal, in one line that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The env-var overrides of SPEC §11.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("CONSOLE_PUBLIC_URL", "public_url"),
    ("CONSOLE_LISTEN", "listen"),
    ("DATABASE_URL", "database_url"),
    ("ADMIN_EMAIL", "admin_emails"),
    ("ADMIN_ENROL_CODE", "admin_enrol_code"),
    ("CONSOLE_STAGING_SOURCE_URL", "staging_source_url"),
    ("CONSOLE_STAGING_SOURCE_KEY", "staging_source_key"),
    ("CONSOLE_TRUSTED_PROXIES", "trusted_proxies"),
];

/// Whether `origin` may stand in an app's `cors_origins`: `*`, or exactly an origin as a
/// browser sends it in `Origin` (`scheme://host[:port]`, lowercase, no path, no slash).
pub fn check_cors_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let url = Url::parse(origin).map_err(|e| format!("`{origin}` is not an origin: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{origin}` must be an http or https origin"));
    }
    let serialized = url.origin().ascii_serialization();
    if serialized != origin {
        return Err(format!(
            "`{origin}` must be written exactly as browsers send it: `{serialized}` (no path, no trailing slash, lowercase host, no default port)"
        ));
    }
    Ok(())
}

/// Whether an `Origin` header value is allowed by a list of `cors_origins`.
pub fn cors_origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|a| a == "*" || a == origin)
}

impl Config {
    /// Parse a config file's text (empty text is the all-defaults config) and apply
    /// env-var overrides from `vars` (a lookup, so tests need not touch the process env).
    pub fn parse(text: &str, vars: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            ConfigError(match line {
                Some(l) => format!("config line {l}: {msg}"),
                None => format!("config: {msg}"),
            })
        })?;
        for (var, _) in ENV_OVERRIDES {
            let Some(value) = vars(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match *var {
                "CONSOLE_PUBLIC_URL" => cfg.public_url = Some(value),
                "CONSOLE_LISTEN" => cfg.listen = value,
                "DATABASE_URL" => cfg.database_url = value,
                "ADMIN_EMAIL" => {
                    cfg.admin_emails = value.split(',').map(str::to_string).collect();
                }
                "ADMIN_ENROL_CODE" => cfg.admin_enrol_code = Some(value),
                "CONSOLE_STAGING_SOURCE_URL" => cfg.staging_source_url = Some(value),
                "CONSOLE_STAGING_SOURCE_KEY" => cfg.staging_source_key = Some(value),
                "CONSOLE_TRUSTED_PROXIES" => {
                    cfg.trusted_proxies = value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                _ => {}
            }
        }
        cfg.audit.apply_env(&vars);
        cfg.admin_emails = cfg
            .admin_emails
            .iter()
            .map(|e| normalise_email(e))
            .filter(|e| !e.is_empty())
            .collect();
        Ok(cfg)
    }

    /// Validate and derive the active env. Every refusal names what to fix.
    pub fn resolve(self) -> Result<Resolved, ConfigError> {
        let raw = self.public_url.clone().unwrap_or_else(|| {
            format!("http://localhost:{}", port_of(&self.listen).unwrap_or(8080))
        });
        let public_url = Url::parse(&raw)
            .map_err(|e| ConfigError(format!("public_url `{raw}` is not a URL: {e}")))?;
        if !matches!(public_url.scheme(), "http" | "https") {
            return err(format!("public_url `{raw}` must be http or https"));
        }
        if public_url.path() != "/" || public_url.query().is_some() {
            return err(format!(
                "public_url `{raw}` must be an origin with no path (e.g. https://console.raxx.app)"
            ));
        }
        let host = public_url
            .host_str()
            .ok_or_else(|| ConfigError(format!("public_url `{raw}` has no host")))?
            .to_ascii_lowercase();
        let env = match self
            .environments
            .get(&host)
            .copied()
            .or_else(|| default_env_for_host(&host))
        {
            Some(env) => env,
            None => {
                return err(format!(
                    "the host `{host}` of public_url is not mapped to an environment: add `\"{host}\" = \"staging\"` or `= \"prod\"` under [environments]"
                ));
            }
        };
        self.validate_for(env)?;
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))?;
        let origin = public_url.origin().ascii_serialization();
        Ok(Resolved {
            env,
            host,
            host_with_port: public_url.port().map_or_else(
                || public_url.host_str().unwrap_or_default().to_string(),
                |p| format!("{}:{p}", public_url.host_str().unwrap_or_default()),
            ),
            origin,
            https: public_url.scheme() == "https",
            trusted_proxies,
            config: self,
        })
    }

    fn validate_for(&self, env: Env) -> Result<(), ConfigError> {
        self.audit.validate().map_err(ConfigError)?;
        if self.session.idle_minutes == 0 || self.session.absolute_hours == 0 {
            return err("[session] idle_minutes and absolute_hours must be at least 1");
        }
        let mut names = std::collections::BTreeSet::new();
        for app in &self.apps {
            if !valid_name(&app.name) {
                return err(format!(
                    "app name `{}` may only hold letters, digits, `-`, `_` and `.`",
                    app.name
                ));
            }
            if !names.insert(&app.name) {
                return err(format!("app `{}` is listed twice in [[apps]]", app.name));
            }
            if app.env != env {
                return err(format!(
                    "app `{}` belongs to {} but this is the {env} console: a console only knows apps of its own env; remove it from this config",
                    app.name, app.env
                ));
            }
            if app.promote_from.is_some() && env != Env::Prod {
                return err(format!(
                    "app `{}`: promote_from is only for prod apps",
                    app.name
                ));
            }
            for origin in &app.cors_origins {
                if let Err(why) = check_cors_origin(origin) {
                    return err(format!("app `{}`: cors_origins: {why}", app.name));
                }
            }
            for check in &app.checks {
                if check.env.is_some_and(|e| e != env) {
                    return err(format!(
                        "check `{}` of app `{}` targets another env; a console checks its own env only",
                        check.name, app.name
                    ));
                }
                if Url::parse(&check.url).is_err() {
                    return err(format!(
                        "check `{}` of app `{}`: `{}` is not a URL",
                        check.name, app.name, check.url
                    ));
                }
            }
            for token in &app.tokens {
                if !matches!(token.provider.as_str(), "local" | "heroku") {
                    return err(format!(
                        "token `{}` of app `{}`: unknown provider `{}` (local or heroku)",
                        token.name, app.name, token.provider
                    ));
                }
            }
        }
        // Every external object this console writes to belongs to an app of its env.
        for app in &self.apps {
            if let Some(heroku) = &app.heroku_app {
                self.heroku_write_target(env, heroku)
                    .map_err(|why| ConfigError(format!("app `{}`: heroku_app {why}", app.name)))?;
            }
            for token in app.tokens.iter().filter(|t| t.provider == "heroku") {
                for target in &token.config_vars {
                    self.heroku_write_target(env, &target.app).map_err(|why| {
                        ConfigError(format!(
                            "token `{}` of app `{}`: config_vars app {why}",
                            token.name, app.name
                        ))
                    })?;
                }
            }
        }
        for (name, job) in &self.jobs {
            if let Some(hook) = &job.webhook_url
                && let Some(other) = self.env_of_url(hook).filter(|e| *e != env)
            {
                return err(format!(
                    "[jobs.{name}] webhook_url points at a {other} console, but this is the {env} console; a console never writes to the other env"
                ));
            }
        }
        self.validate_notify(env)?;
        if self.flag_stale_days == 0 {
            return err("flag_stale_days must be at least 1");
        }
        if env == Env::Staging
            && (self.staging_source_url.is_some() || self.staging_source_key.is_some())
        {
            return err("staging_source_url and staging_source_key are for the prod console only");
        }
        for (name, group) in &self.groups {
            for grant in &group.grants {
                let role: Role = grant
                    .role
                    .parse()
                    .map_err(|e: String| ConfigError(format!("[groups.{name}]: {e}")))?;
                let other = match env {
                    Env::Staging => EnvScope::Prod,
                    Env::Prod => EnvScope::Staging,
                };
                if grant.env_scope == other {
                    return err(format!(
                        "[groups.{name}] grants {role} with env_scope = \"{}\", but this is the {env} console; grant it on the {} console's config instead",
                        other.as_str(),
                        env.other()
                    ));
                }
            }
        }
        for email in &self.admin_emails {
            if !plausible_email(email) {
                return err(format!("admin_emails: `{email}` is not an email address"));
            }
        }
        if let Some(code) = &self.admin_enrol_code
            && code.trim().len() < 8
        {
            return err("admin_enrol_code must be at least 8 characters");
        }
        Ok(())
    }
}

impl Config {
    /// `[[notify]]` targets: a known kind, an https URL (http only on loopback), known
    /// events, and a host that is not the other env's (a console never writes to the other
    /// env: a staging console notifies only non-prod hosts). Every refusal names the field.
    fn validate_notify(&self, env: Env) -> Result<(), ConfigError> {
        let other = env.other();
        for (i, target) in self.notify.iter().enumerate() {
            let at = format!(
                "[[notify]] #{}{}",
                i + 1,
                target
                    .name
                    .as_deref()
                    .map(|n| format!(" `{n}`"))
                    .unwrap_or_default()
            );
            if let Some(name) = &target.name
                && !valid_name(name)
            {
                return err(format!(
                    "{at}: name may only hold letters, digits, `-`, `_` and `.`"
                ));
            }
            let url = Url::parse(&target.url)
                .map_err(|e| ConfigError(format!("{at}: url is not a URL ({e})")))?;
            let shown = redacted_url(&target.url);
            match url.scheme() {
                "https" => {}
                "http" if is_loopback_host(&url) => {}
                "http" => {
                    return err(format!(
                        "{at}: url {shown} must be https (http only on loopback: localhost, 127.0.0.1, ::1)"
                    ));
                }
                s => return err(format!("{at}: url scheme `{s}` must be https")),
            }
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            if names_env(&host, other) || self.env_of_url(&target.url).is_some_and(|e| e == other) {
                return err(format!(
                    "{at}: url host `{host}` is a {other} host, but this is the {env} console: a console notifies only its own env's targets"
                ));
            }
            let names_other_app = self
                .apps
                .iter()
                .filter_map(|a| a.promote_from.as_deref())
                .any(|app| host.split('.').any(|label| label == app));
            if names_other_app {
                return err(format!(
                    "{at}: url host `{host}` names a {other} app, but this is the {env} console"
                ));
            }
            if target.events.is_empty() {
                return err(format!(
                    "{at}: events is empty; list some of {} (or \"*\")",
                    NOTIFY_EVENTS.join(", ")
                ));
            }
            for e in &target.events {
                if e != "*" && !NOTIFY_EVENTS.contains(&e.as_str()) {
                    return err(format!(
                        "{at}: events: unknown event `{e}` (one of {}, or \"*\")",
                        NOTIFY_EVENTS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Name segments that mark an object as belonging to an env (`raxx-api-prod`).
fn env_markers(env: Env) -> &'static [&'static str] {
    match env {
        Env::Staging => &["staging", "stage", "stg"],
        Env::Prod => &["prod", "production", "prd", "live"],
    }
}

/// Whether `name` carries `env`'s marker as a `-`, `_` or `.` separated segment.
pub fn names_env(name: &str, env: Env) -> bool {
    name.to_ascii_lowercase()
        .split(['-', '_', '.'])
        .any(|seg| env_markers(env).contains(&seg))
}

impl AppConfig {
    /// The Heroku app this console app runs as: `heroku_app`, else its own name.
    pub fn heroku_app_name(&self) -> &str {
        self.heroku_app.as_deref().unwrap_or(&self.name)
    }
}

impl Config {
    /// May a console of `env` write to the Heroku app `heroku` (its config vars)? Only when
    /// it is the Heroku app of one of this console's apps (all of which are of `env`), is
    /// not named for the other env, and is not an app of the other env this config names
    /// (a prod app's `promote_from`). Checked at start-up and again at every call
    /// (issue 19 item 11: "nothing on a staging console is allowed to land in prod").
    /// The error completes "heroku_app …" / "config_vars app …".
    pub fn heroku_write_target(&self, env: Env, heroku: &str) -> Result<(), String> {
        let other = env.other();
        if names_env(heroku, other) {
            return Err(format!(
                "`{heroku}` is named for {other}, but this is the {env} console: a console writes only to its own env's apps"
            ));
        }
        if self
            .apps
            .iter()
            .any(|a| a.promote_from.as_deref() == Some(heroku))
        {
            return Err(format!(
                "`{heroku}` is a {other} app (a promote_from of this config), but this is the {env} console"
            ));
        }
        let ours = self
            .apps
            .iter()
            .any(|a| a.env == env && (a.heroku_app_name() == heroku || a.name == heroku));
        if !ours {
            return Err(format!(
                "`{heroku}` is not the Heroku app of any app of this {env} console: list it as an [[apps]] entry's heroku_app (or name) first"
            ));
        }
        Ok(())
    }

    /// The env a URL's host is mapped to (this config's [environments] or the built-in
    /// local names), if any.
    pub fn env_of_url(&self, raw: &str) -> Option<Env> {
        let url = Url::parse(raw).ok()?;
        let host = url.host_str()?.to_ascii_lowercase();
        // Only named consoles: the built-in `localhost` / `127.0.0.1` defaults say which env a
        // bare local console runs as, not that every loopback receiver is a console.
        self.environments.get(&host).copied().or_else(|| {
            matches!(host.as_str(), "staging.localhost" | "prod.localhost")
                .then(|| default_env_for_host(&host))
                .flatten()
        })
    }
}

fn port_of(listen: &str) -> Option<u16> {
    listen.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Emails are unique case-folded.
pub fn normalise_email(s: &str) -> String {
    s.trim().to_lowercase()
}

pub fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 254
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

/// A validated config with its derived env. Built once; the env never changes.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub env: Env,
    /// Host of public_url (no port), also the WebAuthn RP ID.
    pub host: String,
    /// What a request's `Host` header must equal.
    pub host_with_port: String,
    /// `scheme://host[:port]`, the WebAuthn origin and the base of every absolute URL.
    pub origin: String,
    pub https: bool,
    /// `trusted_proxies`, parsed.
    pub trusted_proxies: TrustedProxies,
    pub config: Config,
}

impl Resolved {
    /// An absolute URL on this console, built from public_url only.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin, path)
    }

    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.config.apps.iter().find(|a| a.name == name)
    }

    pub fn cookie_name(&self) -> String {
        if self.https {
            "__Host-raxx_console".into()
        } else {
            format!("raxx_console_{}", self.env)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        for ok in [
            "*",
            "https://app.example",
            "http://localhost:5173",
            "https://a.b.example",
        ] {
            assert_eq!(check_cors_origin(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://app.example/",
            "https://app.example/path",
            "https://App.example",
            "https://app.example:443",
            "app.example",
            "ftp://app.example",
            "",
            "*.example",
        ] {
            assert!(check_cors_origin(bad).is_err(), "{bad} accepted");
        }
        let allowed = vec!["https://app.example".to_string()];
        assert!(cors_origin_allowed(&allowed, "https://app.example"));
        assert!(!cors_origin_allowed(&allowed, "https://app.example.evil"));
        assert!(!cors_origin_allowed(&allowed, "http://app.example"));
        assert!(!cors_origin_allowed(&[], "https://app.example"));
        assert!(cors_origin_allowed(
            &["*".to_string()],
            "https://anything.example"
        ));
        let text = "public_url = \"http://staging.localhost\"\n[[apps]]\nname = \"a\"\nenv = \"staging\"\ncors_origins = [\"https://app.example/\"]\n";
        let e = Config::parse(text, no_vars).unwrap().resolve().unwrap_err();
        assert!(
            e.0.contains("cors_origins") && e.0.contains("trailing slash"),
            "{}",
            e.0
        );
    }

    fn resolve(text: &str) -> Result<Resolved, ConfigError> {
        Config::parse(text, no_vars)?.resolve()
    }

    #[test]
    fn env_comes_from_the_public_url_host() {
        assert_eq!(
            resolve("public_url = \"http://staging.localhost:8081\"")
                .unwrap()
                .env,
            Env::Staging
        );
        assert_eq!(
            resolve("public_url = \"http://prod.localhost:8080\"")
                .unwrap()
                .env,
            Env::Prod
        );
        let r = resolve("public_url = \"https://console.raxx.app\"\n[environments]\n\"console.raxx.app\" = \"prod\"\n").unwrap();
        assert_eq!(r.env, Env::Prod);
        assert_eq!(r.cookie_name(), "__Host-raxx_console");
        assert_eq!(r.url("/login"), "https://console.raxx.app/login");
        assert_eq!(resolve("").unwrap().env, Env::Staging);
    }

    #[test]
    fn every_startup_refusal_says_what_to_fix() {
        let cases: &[(&str, &str)] = &[
            (
                "public_url = \"https://console.raxx.app\"",
                "not mapped to an environment",
            ),
            (
                "public_url = \"ftp://prod.localhost\"",
                "must be http or https",
            ),
            ("public_url = \"http://prod.localhost/x\"", "no path"),
            ("public_url = 3", "config line 1"),
            ("bogus = 1", "unknown field"),
            (
                "public_url = \"http://staging.localhost\"\n[[apps]]\nname = \"raxx-api-prod\"\nenv = \"prod\"\n",
                "app `raxx-api-prod` belongs to prod",
            ),
            (
                "public_url = \"http://staging.localhost\"\n[groups.ops]\ngrants = [{ role = \"console-flag-admin\", env_scope = \"prod\" }]\n",
                "env_scope = \"prod\"",
            ),
            (
                "public_url = \"http://staging.localhost\"\n[groups.ops]\ngrants = [{ role = \"console-flag-boss\", env_scope = \"any\" }]\n",
                "is not a role",
            ),
            (
                "public_url = \"http://staging.localhost\"\n[[apps]]\nname = \"a\"\nenv = \"staging\"\n[[apps.checks]]\nname = \"c\"\nurl = \"http://x\"\nenv = \"prod\"\n",
                "targets another env",
            ),
            (
                "public_url = \"http://staging.localhost\"\nstaging_source_url = \"http://x\"",
                "prod console only",
            ),
            ("admin_emails = [\"not-an-email\"]", "not an email address"),
            (
                "environments = { \"x.test\" = \"production\" }",
                "config line 1",
            ),
            (
                "trusted_proxies = [\"10.0.0.0/8\", \"10.0.0.1/33\"]",
                "trusted_proxies: `10.0.0.1/33`: the prefix length must be 0 to 32",
            ),
            (
                "trusted_proxies = [\"router\"]",
                "trusted_proxies: `router` is not an IP address",
            ),
            ("client_ip_header = \"X-Real-IP\"", "config line 1"),
            // Issue 19 item 11: a staging console that would write to prod's Heroku app.
            (
                "public_url = \"http://staging.localhost\"\n[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n[[apps.tokens]]\nname = \"bot\"\nprovider = \"heroku\"\nconfig_vars = [{ app = \"raxx-api-prod\", var = \"K\" }]\n",
                "config_vars app `raxx-api-prod` is named for prod",
            ),
            (
                "public_url = \"http://staging.localhost\"\n[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\nheroku_app = \"raxx-api-production\"\n",
                "heroku_app `raxx-api-production` is named for prod",
            ),
            (
                "public_url = \"http://staging.localhost\"\n[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n[[apps.tokens]]\nname = \"bot\"\nprovider = \"heroku\"\nconfig_vars = [{ app = \"billing-api\", var = \"K\" }]\n",
                "not the Heroku app of any app of this staging console",
            ),
            (
                "public_url = \"http://prod.localhost\"\n[[apps]]\nname = \"raxx-api\"\nenv = \"prod\"\npromote_from = \"raxx-api-qa\"\n[[apps.tokens]]\nname = \"bot\"\nprovider = \"heroku\"\nconfig_vars = [{ app = \"raxx-api-qa\", var = \"K\" }]\n",
                "is a staging app (a promote_from",
            ),
            (
                "public_url = \"http://staging.localhost\"\n[jobs.audit-digest]\nschedule = \"0 0 6 * * *\"\nwebhook_url = \"http://prod.localhost:8080/hook\"\n",
                "webhook_url points at a prod console",
            ),
        ];
        for (text, want) in cases {
            let got = resolve(text).expect_err(text).0;
            assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
            assert!(!got.contains('\n'), "one line: {got:?}");
        }
    }

    #[test]
    fn env_vars_override_the_file() {
        let vars = |k: &str| match k {
            "ADMIN_EMAIL" => Some(" Alice@Raxx.Test ,bob@raxx.test".to_string()),
            "CONSOLE_PUBLIC_URL" => Some("http://prod.localhost:9000".to_string()),
            "DATABASE_URL" => Some("postgres://x/y".to_string()),
            _ => None,
        };
        let cfg = Config::parse("public_url = \"http://staging.localhost\"", vars).unwrap();
        assert_eq!(cfg.admin_emails, vec!["alice@raxx.test", "bob@raxx.test"]);
        assert_eq!(cfg.database_url, "postgres://x/y");
        let r = cfg.resolve().unwrap();
        assert_eq!(r.env, Env::Prod);
        assert_eq!(r.host_with_port, "prod.localhost:9000");
        assert_eq!(r.cookie_name(), "raxx_console_prod");
    }

    #[test]
    fn trusted_proxies_from_the_file_or_the_env() {
        let r = resolve(
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nclient_ip_header = \"Forwarded\"",
        )
        .unwrap();
        assert_eq!(r.trusted_proxies.blocks().len(), 2);
        assert!(r.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        assert_eq!(r.config.client_ip_header, ForwardedHeader::Forwarded);
        assert!(resolve("").unwrap().trusted_proxies.is_empty());
        let vars = |k: &str| {
            (k == "CONSOLE_TRUSTED_PROXIES").then(|| " 10.0.0.0/8 , 172.16.0.0/12".to_string())
        };
        let r = Config::parse("trusted_proxies = [\"192.168.0.0/16\"]", vars)
            .unwrap()
            .resolve()
            .unwrap();
        assert!(r.trusted_proxies.contains("172.20.0.1".parse().unwrap()));
        assert!(!r.trusted_proxies.contains("192.168.0.1".parse().unwrap()));
        let sloppy = |k: &str| (k == "CONSOLE_TRUSTED_PROXIES").then(|| "10.0.0.0/8,,".to_string());
        let r = Config::parse("", sloppy).unwrap().resolve().unwrap();
        assert_eq!(r.trusted_proxies.blocks().len(), 1);
        let bad = |k: &str| {
            (k == "CONSOLE_TRUSTED_PROXIES").then(|| "10.0.0.0/8,10.0.0.0/99".to_string())
        };
        let e = Config::parse("", bad).unwrap().resolve().unwrap_err().0;
        assert!(e.starts_with("trusted_proxies: `10.0.0.0/99`"), "{e}");
    }
}

#[cfg(test)]
mod notify_tests {
    use super::*;

    fn resolve(public_url: &str, notify: &str) -> Result<Resolved, ConfigError> {
        let text = format!("public_url = \"{public_url}\"\n{notify}");
        Config::parse(&text, |_| None)?.resolve()
    }

    fn target(url: &str, events: &str) -> String {
        format!(
            "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{url}\"\nevents = [{events}]\n"
        )
    }

    #[test]
    fn notify_targets_are_refused_naming_the_field() {
        let ok = resolve(
            "http://staging.localhost:8080",
            &target("https://hooks.example.com/x/y", "\"*\""),
        );
        assert!(ok.is_ok(), "{ok:?}");
        assert!(
            resolve(
                "http://staging.localhost:8080",
                &target("http://127.0.0.1:9/h", "\"flag.killed\"")
            )
            .is_ok()
        );
        let cases = [
            (
                target("http://hooks.example.com/s3cret", "\"*\""),
                "must be https",
            ),
            (target("not a url", "\"*\""), "url is not a URL"),
            (target("ftp://hooks.example.com/", "\"*\""), "scheme"),
            (
                target("https://hooks.prod.example.com/x", "\"*\""),
                "is a prod host",
            ),
            (target("https://hooks.example.com/x", ""), "events is empty"),
            (
                target("https://hooks.example.com/x", "\"flag.exploded\""),
                "unknown event `flag.exploded`",
            ),
        ];
        for (notify, want) in cases {
            let e = resolve("http://staging.localhost:8080", &notify).expect_err(&notify);
            assert!(e.0.contains("[[notify]] #1 `ops`"), "{e}");
            assert!(e.0.contains(want), "{notify}: {e}");
            assert!(
                !e.0.contains("s3cret"),
                "the URL's path is not repeated: {e}"
            );
        }
        // A prod console refuses a staging host the same way.
        let e = resolve(
            "http://prod.localhost:8080",
            &target("https://staging.example.com/", "\"*\""),
        )
        .expect_err("staging host");
        assert!(e.0.contains("is a staging host"), "{e}");
        let e = resolve(
            "http://prod.localhost:8080",
            "[[notify]]\nkind = \"teams\"\nurl = \"https://x.example\"\nevents = [\"*\"]\n",
        )
        .expect_err("kind");
        assert!(e.0.contains("kind") || e.0.contains("teams"), "{e}");
    }

    #[test]
    fn redacted_urls_keep_only_scheme_host_and_port() {
        assert_eq!(
            redacted_url("https://hooks.slack.com/services/T/B/secret?x=1"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redacted_url("http://127.0.0.1:9000/a"),
            "http://127.0.0.1:9000/…"
        );
    }
}
