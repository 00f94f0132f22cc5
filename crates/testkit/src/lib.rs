//! Real consoles for tests: a server on `127.0.0.1:0`, its own fresh database (SQLite or
//! PostgreSQL), a client that sends the right `Host`, and operators signed in through a
//! real session row (the same one a passkey or login link creates).

use std::net::SocketAddr;

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::Config;
use raxx_store::Store;
use raxx_web::AppState;
pub use raxx_web::server::ServeOptions;
use reqwest::header::{HeaderMap, HeaderValue};

pub use raxx_store::testing::{database_urls, postgres_url, sqlite_url};

pub mod client;
pub mod contract;

pub use client::{ConsoleClient, Reply};

pub struct TestConsole {
    pub state: AppState,
    pub addr: SocketAddr,
    /// `http://<env>.localhost:<port>`: public_url, and what the client talks to.
    pub origin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// An app's keys from [`TestConsole::app_keys`]: secrets and ids.
#[derive(Clone, Debug)]
pub struct AppKeys {
    pub client: String,
    pub client_id: i64,
    pub deploy: String,
    pub deploy_id: i64,
}

/// A signed-in operator: the session cookie and its CSRF token.
#[derive(Clone, Debug)]
pub struct Operator {
    pub admin_id: i64,
    pub email: String,
    pub cookie: String,
    pub csrf: String,
    pub session_id: String,
}

impl TestConsole {
    /// Start a console of `env` on `db_url`, with `extra` appended to its config
    /// (apps, groups, ...). The config's public_url and database are set here.
    pub async fn start(env: Env, db_url: &str, extra: &str) -> TestConsole {
        Self::start_on_host(env, &format!("{env}.localhost"), db_url, extra).await
    }

    /// Like [`TestConsole::start`] with public_url on `host` (mapped to `env`). The soft
    /// WebAuthn authenticator only accepts plain-http origins on exactly `localhost`.
    pub async fn start_on_host(env: Env, host: &str, db_url: &str, extra: &str) -> TestConsole {
        Self::start_tweaked(env, host, db_url, extra, |_| {}).await
    }

    /// Like [`TestConsole::start_on_host`], with `tweak` applied to the resolved config
    /// after validation: for attack tests of what a config that bypassed start-up checks
    /// could do (the checks at the moment of the call must still hold).
    pub async fn start_tweaked(
        env: Env,
        host: &str,
        db_url: &str,
        extra: &str,
        tweak: impl FnOnce(&mut raxx_core::config::Resolved),
    ) -> TestConsole {
        Self::launch(env, host, db_url, extra, tweak, ServeOptions::default()).await
    }

    /// Like [`TestConsole::start`], served with `options` (a short header-read timeout,
    /// so a slow-client test waits a second rather than the production ten).
    pub async fn start_serving(
        env: Env,
        db_url: &str,
        extra: &str,
        options: ServeOptions,
    ) -> TestConsole {
        let host = format!("{env}.localhost");
        Self::launch(env, &host, db_url, extra, |_| {}, options).await
    }

    async fn launch(
        env: Env,
        host: &str,
        db_url: &str,
        extra: &str,
        tweak: impl FnOnce(&mut raxx_core::config::Resolved),
        options: ServeOptions,
    ) -> TestConsole {
        contract::install();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let origin = format!("http://{host}:{}", addr.port());
        let state = console_state(env, host, &origin, db_url, extra, tweak).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            let _ = raxx_web::server::serve_with(
                st,
                listener,
                async move {
                    let _ = rx.await;
                },
                options,
            )
            .await;
        });
        TestConsole {
            state,
            addr,
            origin,
            stop: Some(tx),
        }
    }

    pub fn env(&self) -> Env {
        self.state.env()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// A client that resolves this console's host to its socket and never follows redirects.
    pub fn client(&self) -> reqwest::Client {
        let host = self.state.cfg.host.clone();
        reqwest::Client::builder()
            .resolve(&host, self.addr)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// Like [`TestConsole::client`], with requests leaving from `source` (any address of
    /// 127.0.0.0/8 works on Linux): the server sees a different client address.
    pub fn client_from(&self, source: std::net::IpAddr) -> reqwest::Client {
        let host = self.state.cfg.host.clone();
        reqwest::Client::builder()
            .resolve(&host, self.addr)
            .local_address(source)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// A one-time login link token for `email`, as `raxx-console login-link` makes it.
    pub async fn login_link(&self, email: &str) -> String {
        let mut tx = self.store().begin().await.expect("begin");
        let token = tx.create_login_link(email).await.expect("login link");
        tx.record(AuditEvent::new(
            "cli",
            "auth.login_link.create",
            Outcome::Allowed,
        ))
        .await
        .expect("audit");
        tx.commit().await.expect("commit");
        token
    }

    /// A client key and a deploy key of `app`, issued in one audited transaction.
    pub async fn app_keys(&self, app: &str) -> AppKeys {
        let mut tx = self.store().begin().await.expect("begin");
        let (client, client_id) = tx
            .create_app_key(app, raxx_core::gate::KeyKind::Client, "sdk", "test")
            .await
            .expect("client key");
        let (deploy, deploy_id) = tx
            .create_app_key(app, raxx_core::gate::KeyKind::Deploy, "ci", "test")
            .await
            .expect("deploy key");
        tx.record(AuditEvent::new("test", "key.create", Outcome::Allowed))
            .await
            .expect("audit");
        tx.commit().await.expect("commit");
        AppKeys {
            client,
            client_id,
            deploy,
            deploy_id,
        }
    }

    /// An operator (created if new) in `groups`, signed in with a fresh session.
    pub async fn operator(&self, email: &str, groups: &[&str]) -> Operator {
        let store = self.store();
        let mut tx = store.begin().await.expect("begin");
        let admin = match store.admin_by_email(email).await.expect("lookup") {
            Some(a) => a,
            None => tx.create_admin(email, email).await.expect("create admin"),
        };
        for g in groups {
            tx.add_member(g, email, "test").await.expect("member");
        }
        let (token, session) = tx
            .create_session(
                admin.id,
                self.env(),
                self.state.policy,
                Some("raxx-testkit"),
                Some("127.0.0.1"),
            )
            .await
            .expect("session");
        tx.record(
            AuditEvent::new(admin.id.to_string(), "auth.login", Outcome::Allowed)
                .with("method", "testkit"),
        )
        .await
        .expect("audit");
        tx.commit().await.expect("commit");
        Operator {
            admin_id: admin.id,
            email: email.to_string(),
            cookie: format!("{}={token}", self.state.cfg.cookie_name()),
            csrf: session.csrf_token,
            session_id: session.id,
        }
    }

    /// Headers for a JSON write by `op` that names this console's env.
    pub fn write_headers(&self, op: &Operator) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(&op.cookie).expect("cookie"));
        h.insert(
            "x-csrf-token",
            HeaderValue::from_str(&op.csrf).expect("csrf"),
        );
        h.insert(
            "x-console-env",
            HeaderValue::from_static(if self.env() == Env::Prod {
                "prod"
            } else {
                "staging"
            }),
        );
        h
    }

    pub fn read_headers(&self, op: &Operator) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_str(&op.cookie).expect("cookie"));
        h
    }

    /// Count audit rows with this action and outcome.
    pub async fn audit_count(&self, action: &str, outcome: &str) -> i64 {
        let q = raxx_store::audit::AuditQuery {
            action: Some(action.to_string()),
            outcome: raxx_core::audit::Outcome::parse(outcome),
            limit: 500,
            ..Default::default()
        };
        self.store().audit_page(&q).await.expect("audit page").len() as i64
    }
}

impl Drop for TestConsole {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Answers outside the published contracts fail the test (unless it failed already).
        let violations =
            contract::take_violations(&self.state.cfg.host_with_port.to_ascii_lowercase());
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "the console answered outside its contract:\n{}",
                violations.join("\n")
            );
        }
    }
}

/// Run `body` once per backend (SQLite always; PostgreSQL when configured, and always in CI).
#[macro_export]
macro_rules! each_backend {
    (|$url:ident| $body:block) => {
        for $url in $crate::database_urls().await {
            $body
        }
    };
}

/// The state of a console of `env` on `db_url` (migrated, config groups in place) whose
/// public URL is `origin`: what [`TestConsole`] serves and [`InProcess`] routes to.
async fn console_state(
    env: Env,
    host: &str,
    origin: &str,
    db_url: &str,
    extra: &str,
    tweak: impl FnOnce(&mut raxx_core::config::Resolved),
) -> AppState {
    let text = format!(
        "public_url = \"{origin}\"\ndatabase_url = \"{db_url}\"\nadmin_emails = [\"root@raxx.test\"]\nadmin_enrol_code = \"test-enrol-code\"\nenvironments = {{ \"{host}\" = \"{env}\" }}\n{extra}\n"
    );
    let cfg = Config::parse(&text, |_| None)
        .expect("config parses")
        .resolve()
        .expect("config resolves");
    let mut cfg = cfg;
    tweak(&mut cfg);
    let store = Store::connect(db_url, env).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
        .reconcile_config_groups(&cfg.config.groups)
        .await
        .expect("groups");
    let enrol = cfg
        .config
        .admin_enrol_code
        .as_deref()
        .map(raxx_core::opaque::hash_token);
    AppState::new(cfg, store, enrol).expect("state")
}

/// A console without a socket: the router built from the manifest, called in process with
/// `tower::ServiceExt::oneshot` (for tests of one answer that need no connection: no
/// client address, no header-read timeout).
pub struct InProcess {
    pub state: AppState,
    router: axum::Router,
    origin: String,
}

impl InProcess {
    /// A console of `env` on `db_url` with `extra` appended to its config.
    pub async fn start(env: Env, db_url: &str, extra: &str) -> InProcess {
        contract::install();
        let host = format!("{env}.localhost");
        let origin = format!("http://{host}");
        let state = console_state(env, &host, &origin, db_url, extra, |_| {}).await;
        InProcess {
            router: raxx_web::build_router(state.clone()),
            state,
            origin,
        }
    }

    /// Send `req` (a `Host` of this console is added when it has none).
    pub async fn oneshot(&self, mut req: axum::http::Request<axum::body::Body>) -> Reply {
        use tower::ServiceExt;
        if !req.headers().contains_key(axum::http::header::HOST) {
            let host = self.origin.trim_start_matches("http://");
            req.headers_mut().insert(
                axum::http::header::HOST,
                HeaderValue::from_str(host).expect("host header"),
            );
        }
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("the answer's body");
        Reply::new(
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// `GET path` on this console's host.
    pub async fn get(&self, path: &str) -> Reply {
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("request");
        self.oneshot(req).await
    }
}
