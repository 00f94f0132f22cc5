//! `raxx-console flags apply FILE` and `raxx-console keys create` (the flags part of
//! `raxx-console demo` is `demo/flags.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use raxx_actions::flags::{ApplyError, apply_flags_file};
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::FileFormat;
use raxx_core::gate::KeyKind;
use raxx_store::Store;

use crate::runtime::{load_config, open_store};

#[derive(Subcommand)]
pub enum FlagsCommand {
    /// Replace an app's whole flag state with a flags file (TOML, YAML or JSON, by
    /// extension). Staging only: prod flags change through promotions.
    Apply { file: PathBuf },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an app API key; the secret is printed once, alone on the last line.
    Create {
        #[arg(long)]
        app: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// A name for the inventory (default: "<kind> key (cli)").
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// OFREP evaluation.
    Client,
    /// Applying a staging flags file over the API.
    Deploy,
    /// Reading an app's flag state (the prod console's staging source).
    Read,
}

impl From<KindArg> for KeyKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Client => KeyKind::Client,
            KindArg::Deploy => KeyKind::Deploy,
            KindArg::Read => KeyKind::Read,
        }
    }
}

pub async fn flags(config: Option<&Path>, command: FlagsCommand) -> anyhow::Result<ExitCode> {
    match command {
        FlagsCommand::Apply { file } => apply(config, &file).await,
    }
}

pub async fn keys(config: Option<&Path>, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create { app, kind, name } => {
            let cfg = load_config(config)?;
            if cfg.app(&app).is_none_or(|a| a.env != cfg.env) {
                bail!(
                    "`{app}` is not an app of the {} console: add it to [[apps]] in the config first",
                    cfg.env
                );
            }
            let store = open_store(&cfg).await?;
            let kind = KeyKind::from(kind);
            let name = name.unwrap_or_else(|| format!("{} key (cli)", kind.as_str()));
            let (secret, id) = create_key(&store, &app, kind, &name, "cli").await?;
            println!(
                "created {} key {id} for {app} on the {} console; the secret is shown once, below:",
                kind.as_str(),
                cfg.env
            );
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Issue a key, audited as `key.create` (the secret never enters the log).
pub(crate) async fn create_key(
    store: &Store,
    app: &str,
    kind: KeyKind,
    name: &str,
    via: &str,
) -> anyhow::Result<(String, i64)> {
    let mut tx = store.begin().await?;
    let (secret, id) = tx.create_app_key(app, kind, name, "cli").await?;
    tx.record(
        AuditEvent::new("cli", "key.create", Outcome::Allowed)
            .target("token", format!("key:{id}"))
            .app(app)
            .with("kind", kind.as_str())
            .with("name", name)
            .with("via", via),
    )
    .await?;
    tx.commit().await?;
    Ok((secret, id))
}

async fn apply(config: Option<&Path>, file: &Path) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let Some(format) = FileFormat::from_path(file) else {
        bail!(
            "{}: a flags file ends in .toml, .yaml, .yml or .json",
            file.display()
        );
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let store = open_store(&cfg).await?;
    let event = AuditEvent::new("cli", "flag.apply", Outcome::Allowed)
        .with("file", file.display().to_string());
    match apply_flags_file(&store, &cfg, None, &text, format, "cli", event).await {
        Ok((changes, state)) => {
            println!(
                "applied {} to {} on the {} console: {} change(s), {} flag(s)",
                file.display(),
                state.app,
                cfg.env,
                changes.len(),
                state.flags.len()
            );
            for c in &changes {
                println!(
                    "  {:<8} {}: {}",
                    format!("{:?}", c.kind).to_lowercase(),
                    c.key,
                    c.summary
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ApplyError::Store(e)) => Err(e.into()),
        Err(refusal @ ApplyError::NotStaging(_)) => bail!("{refusal}"),
        Err(refusal) => bail!("{}: {refusal}; nothing was changed", file.display()),
    }
}
