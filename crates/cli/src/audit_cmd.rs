//! `raxx-console audit …`: verify (the chain and its signed checkpoints), keygen,
//! public-key, checkpoint, export (docs/audit.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use raxx_core::audit::checkpoint::{CheckpointKey, CheckpointVerifier, PublicKey, parse_external};
use raxx_jobs::checkpoints::{Checkpointer, load_key};

use crate::runtime::{load_config, open_store, open_store_to_read};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and check the signed checkpoints; exit 0 when nothing is
    /// wrong, 1 naming every failure. Says what it could not prove.
    Verify {
        /// A public key the checkpoints are signed with (`ed25519:…` as `audit public-key`
        /// prints it); repeat it for every key used since the log began (key rotation).
        /// Default: the public half of the configured signing key.
        #[arg(long = "public-key", value_name = "KEY")]
        public_keys: Vec<String>,
        /// Checkpoints as kept outside the database: the `audit_checkpoint` log lines
        /// (text or JSON) or the webhook bodies, one per line.
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
    /// Write the whole log to stdout.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Create a new audit signing key file (PKCS#8 PEM, mode 0600) and print its public key.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key of the configured signing key (give it to `audit verify`).
    PublicKey,
    /// Sign a checkpoint of the rows written since the last one, now.
    Checkpoint,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

pub async fn run(config: Option<&Path>, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            public_keys,
            checkpoints,
        } => verify(config, &public_keys, checkpoints.as_deref()).await,
        AuditCommand::Export { format } => {
            crate::commands::audit_export(config, matches!(format, ExportFormat::Csv)).await
        }
        AuditCommand::Keygen { out } => keygen(&out),
        AuditCommand::PublicKey => public_key(config),
        AuditCommand::Checkpoint => checkpoint(config).await,
    }
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let key = CheckpointKey::generate();
    let pem = key.to_pem().map_err(anyhow::Error::msg)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(out).with_context(|| {
        format!(
            "cannot create {} (an existing key file is never overwritten)",
            out.display()
        )
    })?;
    std::io::Write::write_all(&mut file, pem.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote the audit signing key {} to {}",
        key.key_id(),
        out.display()
    );
    println!("public key: {}", key.public());
    println!(
        "set [audit] signing_key_file (or CONSOLE_AUDIT_SIGNING_KEY_FILE) to it; keep the public key where `audit verify --public-key` will find it"
    );
    Ok(ExitCode::SUCCESS)
}

fn public_key(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    match load_key(&cfg.config.audit)? {
        Some(key) => {
            println!("{}", key.public());
            Ok(ExitCode::SUCCESS)
        }
        None => bail!(
            "no audit signing key is configured ([audit] signing_key_file, CONSOLE_AUDIT_SIGNING_KEY_FILE or CONSOLE_AUDIT_SIGNING_KEY); create one with `raxx-console audit keygen --out FILE`"
        ),
    }
}

async fn checkpoint(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let Some(key) = load_key(&cfg.config.audit)? else {
        bail!("no audit signing key is configured: checkpoints cannot be signed");
    };
    let store = open_store(&cfg).await?;
    let checkpointer = Checkpointer::new(store, key, &cfg.config.audit);
    match checkpointer.checkpoint_now(None).await? {
        Some(cp) => println!("{}", cp.to_json()),
        None => println!("nothing to sign: every row is covered by a checkpoint"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(
    config: Option<&Path>,
    public_keys: &[String],
    checkpoints: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let cfg = load_config(config)?;
    let mut keys = Vec::new();
    for k in public_keys {
        keys.push(PublicKey::parse(k).map_err(|e| anyhow::anyhow!("--public-key: {e}"))?);
    }
    if keys.is_empty()
        && let Some(key) = load_key(&cfg.config.audit)?
    {
        println!(
            "checking signatures with the configured signing key's public key {} (key {})",
            key.public(),
            key.key_id()
        );
        keys.push(key.public());
    }
    if keys.is_empty() {
        println!(
            "WARNING: no public key given (--public-key) and no audit signing key configured: checkpoint signatures are not checked"
        );
    }
    let external = match checkpoints {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the checkpoints file {}", path.display()))?;
            match parse_external(&text) {
                Ok(cps) => Some(cps),
                Err(errors) => {
                    for e in errors {
                        println!("FAILED: {}: {e}", path.display());
                    }
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => None,
    };
    let store = open_store_to_read(&cfg).await?;
    let database = store.audit_checkpoints().await?;
    let (n_db, n_ext) = (database.len(), external.as_ref().map(Vec::len));
    let verifier = CheckpointVerifier::new(cfg.env.as_str(), &keys, database, external);
    let (chain, report) = store.audit_verify_checkpoints(verifier).await?;
    let mut failed = !report.failures.is_empty();
    match &chain {
        Ok(n) => println!("audit chain intact: {n} rows"),
        Err(brk) => {
            failed = true;
            println!("FAILED: {brk}");
        }
    }
    match n_ext {
        Some(n) => println!("checkpoints: {n_db} in the database, {n} in the external file"),
        None => println!("checkpoints: {n_db} in the database, no external file"),
    }
    for f in &report.failures {
        println!("FAILED: {f}");
    }
    for note in &report.notes {
        println!("{note}");
    }
    if failed {
        println!("audit verify FAILED");
        Ok(ExitCode::from(1))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}
