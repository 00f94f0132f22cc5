//! Config loading, logging, start-up and shutdown shared by the commands.

use std::path::Path;

use anyhow::{Context, bail};
use raxx_core::config::{Config, Resolved};
use raxx_core::opaque::{hash_token, new_enrol_code};
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

/// Read the config — `--config`, else the TOML in `CONSOLE_CONFIG` (Heroku: no file),
/// else `console.toml` if present — apply env-var overrides and `PORT`, derive the env.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Resolved> {
    load_config_from(path, |k| std::env::var(k).ok())
}

fn load_config_from(
    path: Option<&Path>,
    vars: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Resolved> {
    let inline = vars("CONSOLE_CONFIG").filter(|v| !v.trim().is_empty());
    let default_file = Path::new("console.toml");
    let (text, from_env) = match (path, inline) {
        (Some(p), Some(_)) => bail!(
            "CONSOLE_CONFIG is set and so is --config {}: give the config one way",
            p.display()
        ),
        (Some(p), None) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the config file {}", p.display()))?,
            false,
        ),
        (None, Some(_)) if default_file.exists() => bail!(
            "CONSOLE_CONFIG is set and ./console.toml exists too: give the config one way (unset CONSOLE_CONFIG or remove the file)"
        ),
        (None, Some(text)) => (text, true),
        (None, None) if default_file.exists() => (
            std::fs::read_to_string(default_file).context("cannot read console.toml")?,
            false,
        ),
        (None, None) => (String::new(), false),
    };
    let listen_in_text = toml::from_str::<toml::Table>(&text)
        .map(|t| t.contains_key("listen"))
        .unwrap_or(false);
    let port_listen = listen_from_port(
        listen_in_text,
        vars("CONSOLE_LISTEN").as_deref(),
        vars("PORT").as_deref(),
    )?;
    let vars = |k: &str| match (k, &port_listen) {
        ("CONSOLE_LISTEN", Some(l)) => Some(l.clone()),
        _ => vars(k),
    };
    let cfg = Config::parse(&text, vars).map_err(|e| {
        if from_env {
            anyhow::anyhow!(
                "CONSOLE_CONFIG {}",
                e.0.strip_prefix("config ").unwrap_or(&e.0)
            )
        } else {
            e.into()
        }
    })?;
    Ok(cfg.resolve()?)
}

/// Heroku's `PORT`: the address to listen on when neither `listen` (in the config) nor
/// `CONSOLE_LISTEN` says one — all interfaces, since the platform's router connects from
/// outside the dyno. A `PORT` that is not a port number is refused, naming it.
fn listen_from_port(
    listen_in_config: bool,
    console_listen: Option<&str>,
    port: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let Some(port) = port.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let Some(n) = port
        .parse::<u16>()
        .ok()
        .filter(|n| *n > 0 && !port.starts_with('+'))
    else {
        bail!("PORT `{port}` is not a port number (1-65535)");
    };
    if listen_in_config || console_listen.is_some_and(|l| !l.trim().is_empty()) {
        tracing::warn!(
            "PORT={n} is ignored: listen (or CONSOLE_LISTEN) names the address to listen on"
        );
        return Ok(None);
    }
    Ok(Some(format!("0.0.0.0:{n}")))
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
    raxx_actions::tokens::start_up(&state).await?; // [[apps.tokens]] into the token inventory
    if env_code.is_none()
        && raxx_actions::signin::bootstrap_pending(&state)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_the_listen_address_only_when_nothing_else_names_one() {
        // (listen in config, CONSOLE_LISTEN, PORT, the listen address PORT gives)
        type Case<'a> = (bool, Option<&'a str>, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (false, None, Some("5000"), Some("0.0.0.0:5000")),
            (false, None, Some(" 443 "), Some("0.0.0.0:443")),
            (false, None, None, None),
            (false, None, Some(""), None),
            (true, None, Some("5000"), None),
            (false, Some("127.0.0.1:9000"), Some("5000"), None),
            (false, Some(" "), Some("5000"), Some("0.0.0.0:5000")),
        ];
        for (in_config, listen, port, want) in cases {
            assert_eq!(
                listen_from_port(*in_config, *listen, *port)
                    .unwrap()
                    .as_deref(),
                *want,
                "{in_config} {listen:?} {port:?}"
            );
        }
        for bad in ["web", "0", "65536", "-1", "+80", "80.0", "8080x"] {
            let e = listen_from_port(false, None, Some(bad))
                .unwrap_err()
                .to_string();
            assert_eq!(e, format!("PORT `{bad}` is not a port number (1-65535)"));
        }
        // Refused even where listen wins: a broken PORT is a broken deployment.
        assert!(listen_from_port(true, None, Some("web")).is_err());
    }

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_whole_config_can_come_from_console_config() {
        let toml = "public_url = \"https://console.raxx.app\"\n[environments]\n\"console.raxx.app\" = \"prod\"\n[[apps]]\nname = \"raxx-api-prod\"\nenv = \"prod\"\n";
        let leaked: &'static str = Box::leak(toml.to_string().into_boxed_str());
        let pairs: &'static [(&str, &str)] = Box::leak(Box::new([
            ("CONSOLE_CONFIG", leaked),
            ("PORT", "31337"),
            (
                "DATABASE_URL",
                "postgres://u@db.internal/console?sslmode=require",
            ),
        ]));
        let r = load_config_from(None, vars(pairs)).unwrap();
        assert_eq!(r.env, raxx_core::Env::Prod);
        assert_eq!(r.config.apps.len(), 1);
        assert_eq!(r.config.listen, "0.0.0.0:31337");
        assert!(r.config.database_url.ends_with("sslmode=require"));

        let e = load_config_from(None, vars(&[("CONSOLE_CONFIG", "apps = 3\nbogus = 1")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("CONSOLE_CONFIG line 1:"), "{e}");
        let e = load_config_from(
            Some(Path::new("/nonexistent.toml")),
            vars(&[("CONSOLE_CONFIG", "listen = \"127.0.0.1:1\"")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("give the config one way"), "{e}");
        // listen in CONSOLE_CONFIG wins over PORT.
        let r = load_config_from(
            None,
            vars(&[
                ("CONSOLE_CONFIG", "listen = \"127.0.0.1:7000\""),
                ("PORT", "5000"),
            ]),
        )
        .unwrap();
        assert_eq!(r.config.listen, "127.0.0.1:7000");
        let e = load_config_from(None, vars(&[("PORT", "web")]))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "PORT `web` is not a port number (1-65535)");
    }
}
