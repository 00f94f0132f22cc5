//! The Heroku provider: OAuth authorizations and app config vars through the Heroku
//! Platform API (`Accept: application/vnd.heroku+json; version=3`, bearer auth).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Map, Value, json};
use url::Url;

use crate::error::{ErrorKind, ProviderError, Step};
use crate::http::http_client_builder;
use crate::rotation::{
    ConfigVarTarget, NewCredential, ProviderFuture, Revocation, Rotated, RotationFailure,
    TokenProvider, TokenSpec, rotate,
};
use crate::secret::Secret;

pub const DEFAULT_API_URL: &str = "https://api.heroku.com";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The media type every Platform API request must accept.
pub const HEROKU_ACCEPT: &str = "application/vnd.heroku+json; version=3";

const PROVIDER: &str = "Heroku";
/// How much of a non-JSON error body is quoted in a message.
const QUOTE_LIMIT: usize = 200;

/// How to reach Heroku. The API key comes from an env var named in config (never from
/// the config file itself).
#[derive(Debug, Clone)]
pub struct HerokuConfig {
    /// `heroku_api_url`; tests point it at [`crate::fake::FakeHeroku`].
    pub api_url: Url,
    pub api_key: Secret,
    /// Per request.
    pub timeout: Duration,
    /// When set, the only Heroku apps whose config vars may be written (the console's own
    /// env's apps): checked again at the moment of every call, before anything is created.
    pub allowed_apps: Option<std::collections::BTreeSet<String>>,
}

impl HerokuConfig {
    /// The public API with the default timeout.
    pub fn new(api_key: Secret) -> Self {
        Self {
            api_url: Url::parse(DEFAULT_API_URL).expect("DEFAULT_API_URL is a valid URL"),
            api_key,
            timeout: DEFAULT_TIMEOUT,
            allowed_apps: None,
        }
    }

    /// Refuse to write config vars of any Heroku app not in `apps`.
    pub fn with_allowed_apps(mut self, apps: impl IntoIterator<Item = String>) -> Self {
        self.allowed_apps = Some(apps.into_iter().collect());
        self
    }

    pub fn with_api_url(mut self, api_url: Url) -> Self {
        self.api_url = api_url;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Rotates Heroku OAuth authorizations and the config vars that hold their tokens.
/// `Debug` shows the API key as `<redacted>`.
#[derive(Debug, Clone)]
pub struct HerokuProvider {
    api_url: Url,
    api_key: Secret,
    client: reqwest::Client,
    allowed_apps: Option<std::collections::BTreeSet<String>>,
}

impl HerokuProvider {
    /// # Panics
    /// Only if the TLS backend cannot initialise (see [`crate::http_client`]).
    pub fn new(config: HerokuConfig) -> Self {
        let client = http_client_builder(config.timeout)
            // The API never redirects; following one would send the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("building the HTTP client (rustls with bundled roots) cannot fail");
        Self {
            api_url: config.api_url,
            api_key: config.api_key,
            client,
            allowed_apps: config.allowed_apps,
        }
    }

    /// The first config var target outside the allowed apps, if any.
    fn foreign_target<'a>(&self, spec: &'a TokenSpec) -> Option<&'a str> {
        let allowed = self.allowed_apps.as_ref()?;
        spec.config_vars
            .iter()
            .map(|t| t.app.as_str())
            .find(|app| !allowed.contains(*app))
    }

    /// Steps 1 and 2 (see [`crate::rotation::rotate`]): create a new authorization with
    /// the same scope, write its token to every configured config var, and delete it
    /// again if that fails. The previous authorization keeps working.
    pub async fn rotate(&self, spec: &TokenSpec) -> Result<Rotated, RotationFailure> {
        rotate(self, spec).await
    }

    /// Step 3: delete the previous authorization, after the grace period or at "revoke
    /// previous now". Safe to retry: one that is already gone is `AlreadyGone`.
    pub async fn revoke_previous(
        &self,
        authorization_id: &str,
    ) -> Result<Revocation, ProviderError> {
        self.delete_authorization(authorization_id).await
    }

    async fn create_authorization(&self, spec: &TokenSpec) -> Result<NewCredential, ProviderError> {
        let fail = |kind| ProviderError::new(PROVIDER, Step::Create, &spec.name, kind);
        // Checked before anything is created: an app of another env is never written.
        if let Some(app) = self.foreign_target(spec) {
            return Err(fail(ErrorKind::Config(format!(
                "token {} names the Heroku app {app}, which is not an app of this console's env; nothing was created",
                spec.name
            ))));
        }
        // Checked before anything is created: a token that reaches no app cannot rotate.
        if spec.config_vars.is_empty() {
            return Err(fail(ErrorKind::Config(format!(
                "token {} has no config_vars, so a new token would reach no app",
                spec.name
            ))));
        }
        let scope = match (&spec.scope, &spec.current_authorization_id) {
            (Some(scope), _) if !scope.is_empty() => scope.clone(),
            (Some(_), _) => {
                return Err(fail(ErrorKind::Config(format!(
                    "token {} has an empty scope",
                    spec.name
                ))));
            }
            (None, Some(current)) => self.scope_of(spec, current).await?,
            (None, None) => {
                return Err(fail(ErrorKind::Config(format!(
                    "token {} has no scope and no current authorization to copy it from",
                    spec.name
                ))));
            }
        };
        let rotation = uuid::Uuid::new_v4().simple().to_string();
        let description = format!(
            "raxx-console token {} (rotation {})",
            spec.name,
            &rotation[..8]
        );

        let body = json!({ "scope": scope, "description": description });
        let answer = self
            .request(Step::Create, &spec.name, Method::POST, &["oauth", "authorizations"], Some(&body), &[])
            .await
            .map_err(|mut e| {
                if e.kind == ErrorKind::Timeout {
                    e.left_behind.push(format!(
                        "Heroku may have created an authorization described \"{description}\" before the timeout; delete it if it exists"
                    ));
                }
                e
            })?;
        let value = parse_json(&answer).map_err(fail)?;

        let id = value
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                fail(ErrorKind::BadResponse(
                    "no authorization \"id\" in the answer".into(),
                ))
            })?;
        let token = value
            .pointer("/access_token/token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let Some(token) = token else {
            // Created but unusable: delete it rather than leave an untracked credential.
            let mut e = fail(ErrorKind::BadResponse(
                "no \"access_token.token\" in the answer".into(),
            ));
            if let Err(undo) = self.delete_authorization(id).await {
                e.left_behind.push(format!(
                    "authorization {id} was created and could not be deleted again ({}): delete it by hand",
                    undo.reason()
                ));
            }
            return Err(e);
        };
        Ok(NewCredential {
            authorization_id: id.to_owned(),
            secret: Secret::new(token),
            description,
            expires_in: value
                .pointer("/access_token/expires_in")
                .and_then(Value::as_u64),
        })
    }

    /// The scope of an existing authorization, so the new one gets the same.
    async fn scope_of(
        &self,
        spec: &TokenSpec,
        authorization_id: &str,
    ) -> Result<Vec<String>, ProviderError> {
        let fail = |kind| ProviderError::new(PROVIDER, Step::Create, &spec.name, kind);
        let answer = self
            .request(
                Step::Create,
                &spec.name,
                Method::GET,
                &["oauth", "authorizations", authorization_id],
                None,
                &[],
            )
            .await?;
        let value = parse_json(&answer).map_err(fail)?;
        let scope: Option<Vec<String>> =
            value.get("scope").and_then(Value::as_array).map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            });
        match scope {
            Some(scope) if !scope.is_empty() => Ok(scope),
            _ => Err(fail(ErrorKind::BadResponse(format!(
                "current authorization {authorization_id} shows no \"scope\" to copy"
            )))),
        }
    }

    /// Step 2. Reads every app's current values first, so that a failure on any app can
    /// put back the ones already written.
    async fn publish_config_vars(
        &self,
        spec: &TokenSpec,
        secret: &Secret,
    ) -> Result<(), ProviderError> {
        if let Some(app) = self.foreign_target(spec) {
            return Err(ProviderError::new(
                PROVIDER,
                Step::Publish,
                &spec.name,
                ErrorKind::Config(format!(
                    "token {} names the Heroku app {app}, which is not an app of this console's env",
                    spec.name
                )),
            ));
        }
        let apps = group_by_app(&spec.config_vars);
        if apps.is_empty() {
            return Err(ProviderError::new(
                PROVIDER,
                Step::Publish,
                &spec.name,
                ErrorKind::Config(format!("token {} has no config_vars", spec.name)),
            ));
        }

        let mut before = Vec::with_capacity(apps.len());
        for (app, vars) in &apps {
            let current = self.read_config_vars(app, &[secret]).await?;
            let previous: BTreeMap<String, Option<Secret>> = vars
                .iter()
                .map(|var| (var.clone(), current.get(var).cloned()))
                .collect();
            before.push((app.as_str(), previous));
        }

        // The previous values are secrets too: keep them out of any message.
        let scrub: Vec<&Secret> = std::iter::once(secret)
            .chain(
                before
                    .iter()
                    .flat_map(|(_, previous)| previous.values().flatten()),
            )
            .collect();
        for (i, (app, vars)) in apps.iter().enumerate() {
            let values = vars
                .iter()
                .map(|var| (var.clone(), Some(secret.clone())))
                .collect();
            let Err(mut error) = self.write_config_vars(app, &values, &scrub).await else {
                continue;
            };
            // A timeout or an odd answer may hide a write that happened: put that app
            // back too. A clear refusal means this app was not written.
            let maybe_written = matches!(
                error.kind,
                ErrorKind::Timeout | ErrorKind::Network(_) | ErrorKind::BadResponse(_)
            );
            let touched = if maybe_written {
                &before[..=i]
            } else {
                &before[..i]
            };
            for (app, previous) in touched {
                if let Err(undo) = self.write_config_vars(app, previous, &scrub).await {
                    let vars: Vec<&str> = previous.keys().map(String::as_str).collect();
                    error.left_behind.push(format!(
                        "{app} {} may still hold the new token: putting back the previous values failed ({})",
                        vars.join(", "),
                        undo.reason()
                    ));
                }
            }
            return Err(error);
        }
        Ok(())
    }

    async fn read_config_vars(
        &self,
        app: &str,
        scrub: &[&Secret],
    ) -> Result<BTreeMap<String, Secret>, ProviderError> {
        let answer = self
            .request(
                Step::Publish,
                app,
                Method::GET,
                &["apps", app, "config-vars"],
                None,
                scrub,
            )
            .await?;
        let fail = |kind| ProviderError::new(PROVIDER, Step::Publish, app, kind);
        let value = parse_json(&answer).map_err(fail)?;
        let Value::Object(map) = value else {
            return Err(fail(ErrorKind::BadResponse(
                "config vars are not a JSON object".into(),
            )));
        };
        Ok(map
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, Secret::new(s))))
            .collect())
    }

    /// PATCH the given vars (`None` removes a var) and check the answer shows them.
    async fn write_config_vars(
        &self,
        app: &str,
        values: &BTreeMap<String, Option<Secret>>,
        scrub: &[&Secret],
    ) -> Result<(), ProviderError> {
        let body: Map<String, Value> = values
            .iter()
            .map(|(var, value)| {
                let value = value
                    .as_ref()
                    .map_or(Value::Null, |s| Value::String(s.expose().to_owned()));
                (var.clone(), value)
            })
            .collect();
        let body = Value::Object(body);
        let answer = self
            .request(
                Step::Publish,
                app,
                Method::PATCH,
                &["apps", app, "config-vars"],
                Some(&body),
                scrub,
            )
            .await?;
        let fail = |kind| ProviderError::new(PROVIDER, Step::Publish, app, kind);
        let Value::Object(after) = parse_json(&answer).map_err(fail)? else {
            return Err(fail(ErrorKind::BadResponse(
                "config vars are not a JSON object".into(),
            )));
        };
        for (var, want) in values {
            let shown = after.get(var).and_then(Value::as_str);
            if shown != want.as_ref().map(Secret::expose) {
                return Err(fail(ErrorKind::BadResponse(format!(
                    "the answer does not show {var} with the value just written"
                ))));
            }
        }
        Ok(())
    }

    async fn delete_authorization(
        &self,
        authorization_id: &str,
    ) -> Result<Revocation, ProviderError> {
        let result = self
            .request(
                Step::Revoke,
                authorization_id,
                Method::DELETE,
                &["oauth", "authorizations", authorization_id],
                None,
                &[],
            )
            .await;
        match result {
            Ok(_) => Ok(Revocation::Deleted),
            // Only Heroku's own not_found counts: a 404 from a wrong base URL is an error.
            Err(e)
                if e.status() == Some(404)
                    && matches!(&e.kind, ErrorKind::Http { message, .. } if message.ends_with("(not_found)")) =>
            {
                Ok(Revocation::AlreadyGone)
            }
            Err(e) => Err(e),
        }
    }

    /// One Platform API call. Error statuses, transport failures and timeouts become a
    /// `ProviderError` for `step`; `scrub` lists secrets to cut out of any message (the
    /// API key always is).
    async fn request(
        &self,
        step: Step,
        target: &str,
        method: Method,
        path: &[&str],
        body: Option<&Value>,
        scrub: &[&Secret],
    ) -> Result<Vec<u8>, ProviderError> {
        let fail = |kind| ProviderError::new(PROVIDER, step, target, kind);
        let clean = |text: &str| {
            scrub
                .iter()
                .fold(self.api_key.scrub(text), |text, secret| secret.scrub(&text))
        };
        let url = self.url(path).map_err(fail)?;
        let mut request = self
            .client
            .request(method, url)
            .header(ACCEPT, HEROKU_ACCEPT)
            .bearer_auth(self.api_key.expose());
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| fail(transport_error(&e, &clean)))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| fail(transport_error(&e, &clean)))?;
        if !status.is_success() {
            return Err(fail(ErrorKind::Http {
                status: status.as_u16(),
                message: clean(&heroku_error_message(&bytes)),
            }));
        }
        Ok(bytes.to_vec())
    }

    fn url(&self, path: &[&str]) -> Result<Url, ErrorKind> {
        let bad = || {
            ErrorKind::Config(format!(
                "heroku_api_url {} is not an http(s) base URL",
                self.api_url
            ))
        };
        if !matches!(self.api_url.scheme(), "http" | "https") {
            return Err(bad());
        }
        let mut url = self.api_url.clone();
        url.path_segments_mut()
            .map_err(|_| bad())?
            .pop_if_empty()
            .extend(path);
        Ok(url)
    }
}

impl TokenProvider for HerokuProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn create<'a>(&'a self, spec: &'a TokenSpec) -> ProviderFuture<'a, NewCredential> {
        Box::pin(self.create_authorization(spec))
    }

    fn publish<'a>(&'a self, spec: &'a TokenSpec, secret: &'a Secret) -> ProviderFuture<'a, ()> {
        Box::pin(self.publish_config_vars(spec, secret))
    }

    fn revoke<'a>(&'a self, authorization_id: &'a str) -> ProviderFuture<'a, Revocation> {
        Box::pin(self.delete_authorization(authorization_id))
    }
}

/// Config var targets grouped per app, in first-seen order, duplicates dropped: one
/// PATCH per app.
fn group_by_app(targets: &[ConfigVarTarget]) -> Vec<(String, Vec<String>)> {
    let mut apps: Vec<(String, Vec<String>)> = Vec::new();
    for t in targets {
        match apps.iter_mut().find(|(app, _)| *app == t.app) {
            Some((_, vars)) if vars.contains(&t.var) => {}
            Some((_, vars)) => vars.push(t.var.clone()),
            None => apps.push((t.app.clone(), vec![t.var.clone()])),
        }
    }
    apps
}

/// A success body as JSON. The error names what was wrong, never the body's content
/// (which may hold a token).
fn parse_json(bytes: &[u8]) -> Result<Value, ErrorKind> {
    serde_json::from_slice(bytes).map_err(|e| {
        ErrorKind::BadResponse(format!(
            "the body is not JSON ({} bytes; {} at line {} column {})",
            bytes.len(),
            match e.classify() {
                serde_json::error::Category::Eof => "ends early",
                _ => "syntax error",
            },
            e.line(),
            e.column()
        ))
    })
}

/// Heroku's error body is `{"id": "...", "message": "..."}`: "message (id)". Anything
/// else is quoted briefly.
fn heroku_error_message(bytes: &[u8]) -> String {
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) {
        let message = body.get("message").and_then(Value::as_str);
        let id = body.get("id").and_then(Value::as_str);
        match (message, id) {
            (Some(m), Some(id)) => return format!("{} ({})", printable(m), printable(id)),
            (Some(m), None) => return printable(m),
            (None, Some(id)) => return format!("({})", printable(id)),
            (None, None) => {}
        }
    }
    if bytes.is_empty() {
        return "no details in the answer".into();
    }
    let text = String::from_utf8_lossy(bytes);
    let quoted: String = printable(&text).chars().take(QUOTE_LIMIT).collect();
    format!("unexpected body: {quoted}")
}

fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn transport_error(error: &reqwest::Error, clean: &dyn Fn(&str) -> String) -> ErrorKind {
    if error.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    ErrorKind::Network(clean(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_grouped_per_app_in_order_without_duplicates() {
        let targets = [
            ConfigVarTarget::new("b", "X"),
            ConfigVarTarget::new("a", "Y"),
            ConfigVarTarget::new("b", "Z"),
            ConfigVarTarget::new("b", "X"),
        ];
        assert_eq!(
            group_by_app(&targets),
            vec![
                ("b".to_owned(), vec!["X".to_owned(), "Z".to_owned()]),
                ("a".to_owned(), vec!["Y".to_owned()]),
            ]
        );
    }

    #[test]
    fn heroku_error_bodies_become_message_and_id() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"id":"invalid_params","message":"Bad scope."}"#,
                "Bad scope. (invalid_params)",
            ),
            (br#"{"message":"only a message"}"#, "only a message"),
            (b"", "no details in the answer"),
            (
                b"<html>\nboom</html>",
                "unexpected body: <html> boom</html>",
            ),
            (br#"{"other":1}"#, r#"unexpected body: {"other":1}"#),
        ];
        for (body, want) in cases {
            assert_eq!(heroku_error_message(body), want);
        }
    }

    #[test]
    fn non_json_is_a_bad_response_that_quotes_nothing() {
        let Err(ErrorKind::BadResponse(why)) = parse_json(b"token=HRKU-secret") else {
            panic!("expected BadResponse");
        };
        assert!(!why.contains("HRKU"), "{why}");
        assert!(why.contains("not JSON"), "{why}");
    }

    #[test]
    fn urls_keep_a_base_path_and_escape_segments() {
        let provider = HerokuProvider::new(
            HerokuConfig::new(Secret::new("k"))
                .with_api_url(Url::parse("http://127.0.0.1:9/heroku/").unwrap()),
        );
        let url = provider.url(&["apps", "a b/c", "config-vars"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/heroku/apps/a%20b%2Fc/config-vars"
        );

        let bad = HerokuProvider::new(
            HerokuConfig::new(Secret::new("k")).with_api_url(Url::parse("mailto:x@y").unwrap()),
        );
        assert!(matches!(bad.url(&["apps"]), Err(ErrorKind::Config(_))));
    }
}
