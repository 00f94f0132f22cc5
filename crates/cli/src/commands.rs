//! The CLI commands other than `demo`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::normalise_email;

use crate::runtime::{bind, load_config, open_store, open_store_to_read, prepare, shutdown_signal};

pub async fn serve(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let listen = cfg.config.listen.clone();
    tracing::info!(env = %cfg.env, origin = %cfg.origin, "starting the {} console", cfg.env);
    // A configured key that cannot be read stops the start here; none is one WARN line.
    let signing_key = raxx_jobs::checkpoints::load_key(&cfg.config.audit)?;
    let audit_cfg = cfg.config.audit.clone();
    if signing_key.is_none() {
        raxx_jobs::checkpoints::warn_without_key();
    }
    let state = prepare(cfg).await?;
    // A schedule that does not parse stops the start here, naming the job.
    let scheduler = raxx_jobs::Scheduler::from_config(state.console())?;
    let listener = bind(&listen).await?;
    tracing::info!("listening on {listen}");
    let checkpoints = signing_key.map(|key| {
        raxx_jobs::checkpoints::Checkpointer::new(state.store.clone(), key, &audit_cfg).spawn()
    });
    let jobs = scheduler.spawn();
    let served = raxx_web::serve(state, listener, shutdown_signal()).await;
    jobs.stop().await; // at a safe point: running jobs finish or stop, leases released
    if let Some(c) = checkpoints {
        c.stop().await; // signs the rows written since the last checkpoint
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    open_store(&cfg).await?;
    println!("migrated: the {} console's database is up to date", cfg.env);
    Ok(ExitCode::SUCCESS)
}

pub async fn login_link(config: Option<&Path>, email: &str) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let store = open_store(&cfg).await?;
    let url = issue_login_link(&cfg, &store, email).await?;
    println!(
        "One-time login link for {} on the {} console (valid 10 minutes, works once).",
        normalise_email(email),
        cfg.env.pill()
    );
    println!(
        "Paste it into the browser's address bar: it opens a confirmation page; press \"Sign in\" there. Opening the link alone (a preview, a scanner) does not use it up."
    );
    println!("{url}");
    Ok(ExitCode::SUCCESS)
}

/// A one-time login URL for `email` (an existing, enabled operator or an `ADMIN_EMAIL`
/// address); audited as `auth.login_link.create`.
pub async fn issue_login_link(
    cfg: &raxx_core::config::Resolved,
    store: &raxx_store::Store,
    email: &str,
) -> anyhow::Result<String> {
    let email = normalise_email(email);
    match store.admin_by_email(&email).await? {
        Some(a) if a.disabled => bail!("{email} is disabled on the {} console", cfg.env),
        Some(_) => {}
        None if cfg.config.admin_emails.contains(&email) || config_member(cfg, &email) => {}
        None => bail!(
            "{email} is not an operator of the {} console, not in ADMIN_EMAIL and not a member of a configured group",
            cfg.env
        ),
    }
    let mut tx = store.begin().await?;
    let token = tx.create_login_link(&email).await?;
    tx.record(
        AuditEvent::new("cli", "auth.login_link.create", Outcome::Allowed)
            .target("operator", email.clone())
            .with("valid_minutes", 10),
    )
    .await?;
    tx.commit().await?;
    Ok(cfg.url(&format!("/auth/link/{token}")))
}

fn config_member(cfg: &raxx_core::config::Resolved, email: &str) -> bool {
    cfg.config
        .groups
        .values()
        .any(|g| g.members.iter().any(|m| normalise_email(m) == email))
}

pub async fn audit_export(config: Option<&Path>, csv: bool) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let store = open_store_to_read(&cfg).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if csv {
        out.write_all(raxx_actions::audit::CSV_HEADER.as_bytes())?;
    }
    let emails: std::collections::HashMap<String, String> = store
        .admins()
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.email))
        .collect();
    let mut failed = None;
    store
        .audit_scan(|row| {
            let email = emails.get(&row.event.actor).map(String::as_str);
            let line = if csv {
                raxx_actions::audit::csv_row(&row, email)
            } else {
                raxx_actions::audit::jsonl_row(&row, email).unwrap_or_default()
            };
            if let Err(e) = out.write_all(line.as_bytes()) {
                failed = Some(e);
            }
            Ok(())
        })
        .await?;
    if let Some(e) = failed {
        bail!("cannot write the export: {e}");
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn config_check(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    println!(
        "ok: {} console at {} (database {}), {} app(s), {} admin email(s)",
        cfg.env,
        cfg.origin,
        raxx_store::redact_url(&cfg.config.database_url),
        cfg.config.apps.len(),
        cfg.config.admin_emails.len()
    );
    Ok(ExitCode::SUCCESS)
}
