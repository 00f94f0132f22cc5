//! Applying a flags file (SPEC §7): staging only, the file's app must be the target and an
//! app of this console, every variant typed; the new state and its audit row in one
//! transaction, every refusal audited. The web's `PUT /api/v1/apps/{app}/flags` and the
//! CLI's `flags apply` both call [`apply_flags_file`].

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::Resolved;
use raxx_core::flags::{FileFormat, FlagChange, FlagsFileError, parse_flags_file};
use raxx_store::flags::FlagState;
use raxx_store::{Store, StoreError};

/// Why a flags file was not applied. Every refusal is audited before it is returned.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "env_mismatch: flags files are applied on the staging console only; this is the {0} console, where flags change through promotions"
    )]
    NotStaging(Env),
    #[error("{0}")]
    File(FlagsFileError),
    #[error("the file is for the app `{file_app}`, but it is being applied to `{target}`")]
    WrongApp { file_app: String, target: String },
    #[error("`{0}` is not an app of this console (add it to [[apps]] in the config)")]
    UnknownApp(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parse `text` and replace its app's flag state, audited by `event` (action `flag.apply`).
/// `target` is the app the caller means (the URL's); the file's `app` must equal it.
pub async fn apply_flags_file(
    store: &Store,
    cfg: &Resolved,
    target: Option<&str>,
    text: &str,
    format: FileFormat,
    by: &str,
    event: AuditEvent,
) -> Result<(Vec<FlagChange>, FlagState), ApplyError> {
    let checked = check_file(cfg, target, text, format);
    let flags = match checked {
        Ok(flags) => flags,
        Err(refusal) => {
            let mut refused = event
                .reason(refusal.to_string())
                .with("format", format!("{format:?}").to_lowercase());
            refused.outcome = match refusal {
                ApplyError::NotStaging(_) => Outcome::Denied,
                _ => Outcome::Error,
            };
            // A denial row has the one denial layout (`crate::gate::denial_row`).
            if let ApplyError::NotStaging(_) = refusal {
                refused = refused.with(raxx_core::audit::DENIAL_KEY, "env_mismatch");
            }
            if let Some(app) = target {
                refused = refused.app(app);
            }
            if let ApplyError::File(e) = &refusal {
                refused = refused.with("line", e.line.map(|l| l as i64));
            }
            store.audit(refused).await?;
            return Err(refusal);
        }
    };
    Ok(store.apply_flags_state(&flags, by, event).await?)
}

fn check_file(
    cfg: &Resolved,
    target: Option<&str>,
    text: &str,
    format: FileFormat,
) -> Result<raxx_core::flags::AppFlags, ApplyError> {
    if cfg.env != Env::Staging {
        return Err(ApplyError::NotStaging(cfg.env));
    }
    let flags = parse_flags_file(text, format).map_err(ApplyError::File)?;
    if let Some(target) = target
        && target != flags.app
    {
        return Err(ApplyError::WrongApp {
            file_app: flags.app,
            target: target.to_owned(),
        });
    }
    if cfg.app(&flags.app).is_none_or(|a| a.env != cfg.env) {
        return Err(ApplyError::UnknownApp(flags.app));
    }
    Ok(flags)
}
