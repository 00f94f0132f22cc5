//! The status part of `raxx-console demo` (docs/jobs.md): two checks per demo app — the
//! console's own `/healthz` (OK) and `payments`, a tiny local endpoint the user can flip
//! with one `curl` — and a faster `status-poll` so a flip shows within seconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use raxx_core::Env;

/// What `/<env>/health` answers: 0 ok, 1 down (503), 2 degraded (slow).
#[derive(Default)]
struct Modes {
    staging: AtomicU8,
    prod: AtomicU8,
}

impl Modes {
    fn of(&self, env: &str) -> Option<&AtomicU8> {
        match env {
            "staging" => Some(&self.staging),
            "prod" => Some(&self.prod),
            _ => None,
        }
    }
}

const MODE_NAMES: [&str; 3] = ["ok", "down", "degraded"];

pub struct DemoHealth {
    addr: SocketAddr,
}

impl DemoHealth {
    /// Bind 127.0.0.1:8099 (or any free port when it is taken).
    pub async fn start() -> anyhow::Result<DemoHealth> {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:8099").await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot bind the demo health endpoint")?,
        };
        let addr = listener.local_addr()?;
        let router = Router::new()
            .route("/{env}/health", get(health))
            .route("/{env}/toggle", post(toggle))
            .with_state(Arc::new(Modes::default()));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "the demo health endpoint stopped");
            }
        });
        Ok(DemoHealth { addr })
    }

    /// `text` (a demo config whose last `[[apps]]` is the env's demo app) with its checks
    /// and a 10-second status-poll.
    pub fn add_to(&self, text: String, env: Env, console: &str) -> String {
        format!(
            r#"{text}
# Status checks (SPEC §10), on the last [[apps]] above. `payments` is a local endpoint the
# demo serves; flip it with: curl -X POST http://{addr}/{env}/toggle
[[apps.checks]]
name = "console"
url = "{console}/healthz"
expect_status = 200
timeout_ms = 2000
interval_seconds = 10

[[apps.checks]]
name = "payments"
url = "http://{addr}/{env}/health"
expect_status = 200
timeout_ms = 1000
interval_seconds = 10

[jobs.status-poll]
schedule = "*/10 * * * * *"
"#,
            addr = self.addr
        )
    }

    pub fn print_help(&self) {
        println!(
            "Status grid: each demo app has two checks, `console` (its console's /healthz) and `payments`."
        );
        println!(
            "  Flip `payments` (each call cycles ok → down → degraded → ok), then watch /status (polled every 10 s,"
        );
        println!("  or press \"Run now\" on /jobs):");
        for env in Env::ALL {
            println!("    curl -X POST http://{}/{env}/toggle", self.addr);
        }
    }
}

async fn health(
    State(modes): State<Arc<Modes>>,
    Path(env): Path<String>,
) -> (StatusCode, &'static str) {
    match modes.of(&env).map(|m| m.load(Ordering::SeqCst)) {
        None => (StatusCode::NOT_FOUND, "no such env\n"),
        Some(1) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "payments: down (flipped by the demo)\n",
        ),
        Some(2) => {
            // Over half the check's 1000 ms timeout: degraded.
            tokio::time::sleep(Duration::from_millis(700)).await;
            (StatusCode::OK, "payments: slow\n")
        }
        Some(_) => (StatusCode::OK, "payments: ok\n"),
    }
}

async fn toggle(State(modes): State<Arc<Modes>>, Path(env): Path<String>) -> (StatusCode, String) {
    match modes.of(&env) {
        None => (StatusCode::NOT_FOUND, "no such env\n".into()),
        Some(m) => {
            let next = (m.load(Ordering::SeqCst) + 1) % 3;
            m.store(next, Ordering::SeqCst);
            (
                StatusCode::OK,
                format!("{env} payments is now {}\n", MODE_NAMES[next as usize]),
            )
        }
    }
}
