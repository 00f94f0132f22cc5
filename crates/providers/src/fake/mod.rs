//! A local fake of the Heroku Platform API, for tests and the demo: an axum server on
//! 127.0.0.1 that checks requests the way Heroku's public docs define them (the
//! `version=3` Accept header, bearer auth, JSON bodies of the right shape), keeps
//! authorizations and config vars in memory, logs every request, and can be told to
//! fail at any rotation step.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use raxx_providers::fake::{FailureMode, FakeHeroku, FakeOptions, Step};
//! let fake = FakeHeroku::start_with(FakeOptions::default().with_app("raxx-api-staging")).await?;
//! fake.fail_next(Step::Publish, FailureMode::Status(422));
//! // ... point a HerokuProvider at fake.api_url() with fake.api_key() ...
//! fake.shutdown().await
//! # }
//! ```

mod api;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

pub use crate::error::Step;
use crate::secret::Secret;

/// How the fake fails the request it is told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Answer this status with a Heroku-shaped error body (`{"id","message"}`); change
    /// nothing.
    Status(u16),
    /// Hold the answer until the client gives up (see `FakeOptions::hang`); change nothing.
    Timeout,
    /// Make the change, then hold the answer until the client gives up: the ambiguous
    /// case a careful client must undo.
    TimeoutAfterApplying,
    /// Answer the success status with a body that is not JSON; change nothing.
    GarbageBody,
    /// Make the change, then answer JSON that lacks what the step returns (a created
    /// authorization without `access_token.token`, config vars without the vars).
    WrongShape,
}

/// Settings for [`FakeHeroku::start_with`].
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Where to listen; `127.0.0.1:0` picks a free port.
    pub bind: SocketAddr,
    /// The API key the fake accepts as a bearer token (tokens of live authorizations are
    /// accepted too, as on Heroku).
    pub api_key: String,
    /// Apps that exist from the start, with no config vars.
    pub apps: Vec<String>,
    /// How long a `Timeout` failure holds its answer (the fake stops holding at
    /// shutdown).
    pub hang: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: FakeHeroku::DEFAULT_API_KEY.to_owned(),
            apps: Vec::new(),
            hang: Duration::from_secs(30),
        }
    }
}

impl FakeOptions {
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = api_key.into();
        self
    }

    pub fn with_app(mut self, app: impl Into<String>) -> Self {
        self.apps.push(app.into());
        self
    }

    pub fn with_hang(mut self, hang: Duration) -> Self {
        self.hang = hang;
        self
    }
}

/// An authorization as the fake holds it. `Debug` redacts the token.
#[derive(Debug, Clone)]
pub struct FakeAuthorization {
    pub id: String,
    pub description: Option<String>,
    pub scope: Vec<String>,
    pub token: Secret,
    pub access_token_id: String,
    pub expires_in: Option<u64>,
    pub created_at: String,
}

/// One request the fake received, in arrival order. Config var values in bodies are
/// replaced by `"<redacted>"`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The rotation step this endpoint serves, if any.
    pub step: Option<Step>,
    pub accept: Option<String>,
    /// The status answered; 504 for a request held until the client gave up.
    pub status: u16,
    /// The parsed JSON body, when there was one.
    pub body: Option<Value>,
}

/// A running fake. Dropping it stops the server; [`FakeHeroku::shutdown`] also waits
/// for it.
pub struct FakeHeroku {
    addr: SocketAddr,
    api_key: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl FakeHeroku {
    pub const DEFAULT_API_KEY: &'static str = "fake-heroku-api-key";

    /// On 127.0.0.1 with a free port, [`Self::DEFAULT_API_KEY`] and no apps.
    pub async fn start() -> io::Result<Self> {
        Self::start_with(FakeOptions::default()).await
    }

    pub async fn start_with(options: FakeOptions) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = State {
            api_key: options.api_key.clone(),
            authorizations: BTreeMap::new(),
            apps: options
                .apps
                .iter()
                .map(|app| (app.clone(), BTreeMap::new()))
                .collect(),
            failures: VecDeque::new(),
            log: Vec::new(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            hang: options.hang,
            stopped: stopped.clone(),
        });
        let app = api::router(shared.clone());
        let mut until_stopped = stopped;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // An error means the handle is gone: stop as well.
                    let _ = until_stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Self {
            addr,
            api_key: options.api_key,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL as a `Url`, for `HerokuConfig::with_api_url`.
    pub fn api_url(&self) -> Url {
        Url::parse(&self.base_url()).expect("an http URL built from a socket address parses")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> Secret {
        Secret::new(self.api_key.clone())
    }

    /// Make an app exist (with no config vars); no-op if it does.
    pub fn add_app(&self, app: &str) {
        self.state().apps.entry(app.to_owned()).or_default();
    }

    /// Set a config var directly, creating the app if needed.
    pub fn set_config_var(&self, app: &str, var: &str, value: &str) {
        self.state()
            .apps
            .entry(app.to_owned())
            .or_default()
            .insert(var.to_owned(), value.to_owned());
    }

    /// An app's config vars, or `None` if the app does not exist.
    pub fn config_vars(&self, app: &str) -> Option<BTreeMap<String, Secret>> {
        self.state().apps.get(app).map(|vars| {
            vars.iter()
                .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
                .collect()
        })
    }

    pub fn config_var(&self, app: &str, var: &str) -> Option<Secret> {
        self.state()
            .apps
            .get(app)
            .and_then(|vars| vars.get(var))
            .map(|v| Secret::new(v.clone()))
    }

    /// Create an authorization directly (the "current" one a test rotates away from).
    pub fn seed_authorization(&self, scope: &[&str], description: &str) -> FakeAuthorization {
        let scope = scope.iter().map(|s| (*s).to_owned()).collect();
        let authorization = api::new_authorization(scope, Some(description.to_owned()), None);
        self.state()
            .authorizations
            .insert(authorization.id.clone(), authorization.clone());
        authorization
    }

    pub fn authorization(&self, id: &str) -> Option<FakeAuthorization> {
        self.state().authorizations.get(id).cloned()
    }

    /// Every live authorization, ordered by id.
    pub fn authorizations(&self) -> Vec<FakeAuthorization> {
        self.state().authorizations.values().cloned().collect()
    }

    /// Fail the next request of `step` (Create: `POST /oauth/authorizations`, Publish:
    /// `PATCH /apps/{app}/config-vars`, Revoke: `DELETE /oauth/authorizations/{id}`).
    /// Requests that fail validation (Accept, auth, body) do not count.
    pub fn fail_next(&self, step: Step, mode: FailureMode) {
        self.fail_on(step, 0, mode);
    }

    /// Let `skip` requests of `step` through, then fail the next one. Failures for the
    /// same step queue up: the next one starts counting after this one fired.
    pub fn fail_on(&self, step: Step, skip: usize, mode: FailureMode) {
        self.state()
            .failures
            .push_back(FailureRule { step, skip, mode });
    }

    /// Failures told but not fired yet.
    pub fn pending_failures(&self) -> usize {
        self.state().failures.len()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().log.clone()
    }

    /// Serve until `signal` completes (e.g. `tokio::signal::ctrl_c()`), then stop.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> io::Result<()> {
        signal.await;
        self.shutdown().await
    }

    /// Stop accepting, let requests in flight finish (held answers end at once), and
    /// wait for the server to exit.
    pub async fn shutdown(mut self) -> io::Result<()> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Drop for FakeHeroku {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl std::fmt::Debug for FakeHeroku {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHeroku")
            .field("addr", &self.addr)
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What the server task and the handle share.
struct Shared {
    state: Mutex<State>,
    hang: Duration,
    stopped: watch::Receiver<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take the fake down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct State {
    api_key: String,
    authorizations: BTreeMap<String, FakeAuthorization>,
    apps: BTreeMap<String, BTreeMap<String, String>>,
    failures: VecDeque<FailureRule>,
    log: Vec<RecordedRequest>,
}

impl State {
    /// The failure for this request of `step`, if one is due.
    fn take_failure(&mut self, step: Step) -> Option<FailureMode> {
        let index = self.failures.iter().position(|rule| rule.step == step)?;
        let rule = &mut self.failures[index];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        self.failures.remove(index).map(|rule| rule.mode)
    }

    fn accepts_bearer(&self, token: &str) -> bool {
        token == self.api_key
            || self
                .authorizations
                .values()
                .any(|a| a.token.expose() == token)
    }
}

#[derive(Debug, Clone, Copy)]
struct FailureRule {
    step: Step,
    skip: usize,
    mode: FailureMode,
}
