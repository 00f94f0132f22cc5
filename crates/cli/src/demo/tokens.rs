//! The tokens part of `raxx-console demo` (docs/tokens.md): a Heroku fake in this
//! process, so rotating `deploy-bot` really creates, publishes and deletes
//! authorizations; a control endpoint that makes the fake fail; a client key per demo
//! app to rotate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::KeyKind;
use raxx_providers::fake::{FailureMode, FakeHeroku, FakeOptions, Step};
use raxx_web::AppState;

const APPS: [(Env, &str); 2] = [
    (Env::Staging, "raxx-api-staging"),
    (Env::Prod, "raxx-api-prod"),
];
const VAR: &str = "DEPLOY_BOT_KEY";

/// The running fake, its control endpoint, and the authorization each app's
/// `deploy-bot` starts with.
pub struct DemoHeroku {
    fake: Arc<FakeHeroku>,
    control: SocketAddr,
    seeded: Vec<(Env, String)>,
}

impl DemoHeroku {
    pub async fn start() -> anyhow::Result<DemoHeroku> {
        let mut options = FakeOptions::default();
        for (_, app) in APPS {
            options = options.with_app(app);
        }
        let fake = FakeHeroku::start_with(options)
            .await
            .context("cannot start the Heroku fake")?;
        let mut seeded = Vec::new();
        for (env, app) in APPS {
            let auth = fake.seed_authorization(
                &["write-protected"],
                &format!("raxx-console demo deploy-bot ({app})"),
            );
            fake.set_config_var(app, VAR, auth.token.expose());
            seeded.push((env, auth.id));
        }
        let fake = Arc::new(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the Heroku fake's control endpoint")?;
        let control = listener.local_addr()?;
        let router = Router::new()
            .route("/", get(show))
            .route("/fail/{step}", post(fail))
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "the Heroku fake's control endpoint stopped");
            }
        });
        Ok(DemoHeroku {
            fake,
            control,
            seeded,
        })
    }

    /// `text` (a demo config) with `heroku_api_url` pointing at the fake and the
    /// `deploy-bot` and `client` tokens of the env's demo app; checked to land on that app.
    pub fn add_to(&self, text: String, env: Env) -> anyhow::Result<String> {
        let (_, app) = APPS
            .iter()
            .find(|(e, _)| *e == env)
            .context("no demo app for this env")?;
        let auth = self
            .seeded
            .iter()
            .find(|(e, _)| *e == env)
            .map(|(_, id)| id.as_str())
            .context("no seeded authorization for this env")?;
        let top = format!(
            "heroku_api_url = \"{}\"   # the in-process Heroku fake (docs/tokens.md)\n",
            self.fake.base_url()
        );
        // Top-level keys must come before the first table: after the header comment.
        let text = match text.split_once('\n') {
            Some((first, rest)) if first.starts_with('#') => format!("{first}\n{top}{rest}"),
            _ => format!("{top}{text}"),
        };
        let out = format!(
            r#"{text}
# Tokens (SPEC §8). `[[apps.tokens]]` belongs to the last [[apps]] above, {app}.
[[apps.tokens]]
name = "deploy-bot"
provider = "heroku"
authorization_id = "{auth}"
# Demo only: the fake's own key, accepted because heroku_api_url is on this machine.
# A real console names an env var instead: api_key_env = "HEROKU_API_KEY".
api_key = "{key}"
config_vars = [{{ app = "{app}", var = "{VAR}" }}]
max_age_days = 90

[[apps.tokens]]
name = "client"
provider = "local"
max_age_days = 90
"#,
            key = FakeHeroku::DEFAULT_API_KEY,
        );
        let parsed = raxx_core::config::Config::parse(&out, |_| None)?;
        let landed = parsed
            .apps
            .iter()
            .find(|a| a.name == *app)
            .is_some_and(|a| a.tokens.iter().any(|t| t.name == "deploy-bot"));
        anyhow::ensure!(landed, "the demo's deploy-bot token did not land on {app}");
        Ok(out)
    }

    pub fn print_help(&self) {
        let control = format!("http://{}", self.control);
        println!("Tokens: each app has a Heroku token `deploy-bot`, rotated against a Heroku fake");
        println!(
            "in this process ({}), and a client key. Open Tokens on either console.",
            self.fake.base_url()
        );
        println!("  see the fake's authorizations and which one each config var holds:");
        println!("    curl {control}/");
        println!("  make the next rotation fail at step 2 (publishing), then rotate deploy-bot:");
        println!("    curl -X POST {control}/fail/publish");
        println!(
            "  other steps and modes: /fail/create, /fail/revoke; ?mode=500|422|timeout|garbage|wrong-shape"
        );
    }
}

/// The fake's state without a secret: authorizations, and which one each config var's
/// token belongs to.
async fn show(State(fake): State<Arc<FakeHeroku>>) -> String {
    let auths = fake.authorizations();
    let mut out = String::from("authorizations:\n");
    for a in &auths {
        out.push_str(&format!(
            "  {}  scope={}  {}\n",
            a.id,
            a.scope.join(","),
            a.description.as_deref().unwrap_or("")
        ));
    }
    out.push_str("config vars:\n");
    for (_, app) in APPS {
        for (var, value) in fake.config_vars(app).unwrap_or_default() {
            let holder = auths
                .iter()
                .find(|a| a.token.expose() == value.expose())
                .map_or_else(
                    || "a token of no live authorization".to_string(),
                    |a| format!("the token of {}", a.id),
                );
            out.push_str(&format!("  {app} {var}: {holder}\n"));
        }
    }
    let pending = fake.pending_failures();
    if pending > 0 {
        out.push_str(&format!("failures queued: {pending}\n"));
    }
    out
}

async fn fail(
    State(fake): State<Arc<FakeHeroku>>,
    Path(step): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> (axum::http::StatusCode, String) {
    let bad = |m: String| (axum::http::StatusCode::BAD_REQUEST, m + "\n");
    let step = match step.as_str() {
        "create" => Step::Create,
        "publish" => Step::Publish,
        "revoke" => Step::Revoke,
        other => return bad(format!("unknown step `{other}`: create, publish or revoke")),
    };
    let mode = match q.get("mode").map_or("500", String::as_str) {
        "timeout" => FailureMode::Timeout,
        "garbage" => FailureMode::GarbageBody,
        "wrong-shape" => FailureMode::WrongShape,
        status => match status.parse::<u16>() {
            Ok(s) if (400..600).contains(&s) => FailureMode::Status(s),
            _ => {
                return bad(format!(
                    "unknown mode `{status}`: a status 400-599, timeout, garbage or wrong-shape"
                ));
            }
        },
    };
    fake.fail_next(step, mode);
    (
        axum::http::StatusCode::OK,
        format!(
            "the next step {} request to the Heroku fake fails ({mode:?})\n",
            step.number()
        ),
    )
}

/// A client key for the console's demo app, unless it has a live one: something to
/// rotate. Its secret is not printed; rotating it shows a new one, once.
pub async fn seed_keys(state: &AppState) -> anyhow::Result<()> {
    let now = raxx_store::now_ms();
    for app in &state.cfg.config.apps {
        let keys = state.store.app_keys(Some(&app.name)).await?;
        if keys
            .iter()
            .any(|k| k.kind == KeyKind::Client && k.is_live(now))
        {
            continue;
        }
        let mut tx = state.store.begin().await?;
        let (_, id) = tx
            .create_app_key(&app.name, KeyKind::Client, "client", "cli")
            .await?;
        tx.record(
            AuditEvent::new("cli", "key.create", Outcome::Allowed)
                .target("token", format!("key:{id}"))
                .app(app.name.clone())
                .with("kind", "client")
                .with("via", "demo"),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}
