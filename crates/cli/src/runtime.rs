//! Config loading, logging, start-up and shutdown shared by the commands.

use std::path::Path;

use anyhow::{Context, bail};
use raxx_core::config::{Config, Resolved};
use raxx_core::secret::{hash_token, new_enrol_code};
use raxx_store::Store;
use raxx_web::AppState;

pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Read `--config` (or `console.toml` if present), apply env-var overrides, derive the env.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Resolved> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the config file {}", p.display()))?,
        None if Path::new("console.toml").exists() => {
            std::fs::read_to_string("console.toml").context("cannot read console.toml")?
        }
        None => String::new(),
    };
    let cfg = Config::parse(&text, |k| std::env::var(k).ok())?;
    Ok(cfg.resolve()?)
}

/// Connect (retrying while the database is down), migrate, check the env fingerprint.
pub async fn open_store(cfg: &Resolved) -> anyhow::Result<Store> {
    let url = &cfg.config.database_url;
    let store = Store::connect_with_retry(url, cfg.env, 20)
        .await
        .with_context(|| format!("cannot open the database {}", raxx_store::redact_url(url)))?;
    store.migrate().await?;
    Ok(store)
}

/// Everything `serve` does before it listens: store, config groups, enrolment code.
/// Start-up writes, so a read-only database is refused with one clear line.
pub async fn prepare(cfg: Resolved) -> anyhow::Result<AppState> {
    let url = raxx_store::redact_url(&cfg.config.database_url);
    prepare_store(cfg).await.map_err(|e| {
        let read_only = e.chain().any(|c| {
            c.downcast_ref::<raxx_store::StoreError>()
                .is_some_and(raxx_store::StoreError::is_read_only)
        });
        if read_only {
            anyhow::anyhow!(
                "the database {url} is read-only: the console writes to it at start-up (config groups, token inventory, sessions); point database_url at a writable database"
            )
        } else {
            e
        }
    })
}

async fn prepare_store(cfg: Resolved) -> anyhow::Result<AppState> {
    let store = open_store(&cfg).await?;
    store.reconcile_config_groups(&cfg.config.groups).await?;
    let env_code = cfg
        .config
        .admin_enrol_code
        .as_deref()
        .map(|c| hash_token(c.trim()));
    let state = AppState::new(cfg, store, env_code.clone())?;
    raxx_web::tokens::start_up(&state).await?; // [[apps.tokens]] into the token inventory
    if env_code.is_none()
        && raxx_web::auth::bootstrap_pending(&state)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        let code = new_enrol_code();
        state
            .store
            .set_meta("enrol_code_hash", &hash_token(&code))
            .await?;
        // Printed once, to the log only; never stored in plaintext.
        tracing::warn!(
            "bootstrap pending for {}: enrolment code {code} (set ADMIN_ENROL_CODE to choose your own)",
            state.cfg.config.admin_emails.join(", ")
        );
    }
    Ok(state)
}

pub async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => Ok(l),
        Err(e) => bail!("cannot listen on {listen}: {e}"),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
