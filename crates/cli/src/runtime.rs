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
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: shipped log lines (checkpoints) stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
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
    let store = connect(cfg).await?;
    store.migrate().await?;
    Ok(store)
}

/// For commands that only read (`audit verify`, `audit export`): like [`open_store`], but a
/// read-only database is read as it is (not migrated; its env fingerprint is still checked)
/// rather than refused.
pub async fn open_store_to_read(cfg: &Resolved) -> anyhow::Result<Store> {
    let store = connect(cfg).await?;
    match store.migrate().await {
        Ok(()) => {}
        Err(e) if e.is_read_only() => {
            store.check_env().await?;
            tracing::info!(
                "the database {} is read-only: reading it as it is, without migrating",
                raxx_store::redact_url(&cfg.config.database_url)
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(store)
}

async fn connect(cfg: &Resolved) -> anyhow::Result<Store> {
    let url = &cfg.config.database_url;
    Store::connect_with_retry(url, cfg.env, 20)
        .await
        .with_context(|| format!("cannot open the database {}", raxx_store::redact_url(url)))
}

/// A failed command as the one line the CLI prints after `error: `. A database that is
/// read-only or has no space left is named as such, in the database's own words (without
/// sqlx's codes and wrapping); anything else is the whole error chain.
pub fn error_line(e: &anyhow::Error, config: Option<&Path>) -> String {
    let Some(store_error) = e.chain().find_map(|c| {
        c.downcast_ref::<raxx_store::StoreError>()
            .filter(|s| s.is_read_only() || s.is_storage_full())
    }) else {
        return format!("{e:#}");
    };
    // The config loaded before the command failed, so it loads again here.
    let db = load_config(config)
        .map(|c| format!(" {}", raxx_store::redact_url(&c.config.database_url)))
        .unwrap_or_default();
    let why = store_error
        .database_message()
        .unwrap_or("the write was refused");
    if store_error.is_read_only() {
        format!(
            "the database{db} is read-only: {why}; nothing was written; point database_url at a writable database"
        )
    } else {
        format!(
            "the database{db} has no space left: {why}; the refused change was not made; free space and run the command again"
        )
    }
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
