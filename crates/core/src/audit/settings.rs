//! `[audit]` in the config: the checkpoint signing key and how often checkpoints are
//! written (SPEC §6, docs/audit.md). The key itself never enters the config file or the
//! database: the file names a key file, or the env var holds the key (Heroku has no files).

use serde::{Deserialize, Serialize};

/// Env vars read by [`AuditConfig::apply_env`].
pub const ENV_KEY_FILE: &str = "CONSOLE_AUDIT_SIGNING_KEY_FILE";
pub const ENV_KEY: &str = "CONSOLE_AUDIT_SIGNING_KEY";
pub const ENV_WEBHOOK: &str = "CONSOLE_AUDIT_CHECKPOINT_WEBHOOK_URL";

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A file holding the Ed25519 signing key (PKCS#8 PEM, or the seed in base64/hex).
    pub signing_key_file: Option<String>,
    /// The key itself, from `CONSOLE_AUDIT_SIGNING_KEY` only (never from the file).
    #[serde(skip)]
    pub signing_key: Option<String>,
    /// A checkpoint at least every this many rows …
    #[serde(default = "default_rows")]
    pub checkpoint_rows: u64,
    /// … and within this many seconds of the first row it does not cover yet.
    #[serde(default = "default_seconds")]
    pub checkpoint_seconds: u64,
    /// Optional: every checkpoint is also POSTed here as JSON.
    pub checkpoint_webhook_url: Option<String>,
}

fn default_rows() -> u64 {
    1000
}
fn default_seconds() -> u64 {
    60
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            signing_key_file: None,
            signing_key: None,
            checkpoint_rows: default_rows(),
            checkpoint_seconds: default_seconds(),
            checkpoint_webhook_url: None,
        }
    }
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("signing_key_file", &self.signing_key_file)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "[redacted]"),
            )
            .field("checkpoint_rows", &self.checkpoint_rows)
            .field("checkpoint_seconds", &self.checkpoint_seconds)
            .field(
                "checkpoint_webhook_url",
                &self.checkpoint_webhook_url.as_ref().map(|_| "[set]"),
            )
            .finish()
    }
}

impl AuditConfig {
    /// `CONSOLE_AUDIT_SIGNING_KEY_FILE`, `CONSOLE_AUDIT_SIGNING_KEY`,
    /// `CONSOLE_AUDIT_CHECKPOINT_WEBHOOK_URL` override the file.
    pub fn apply_env(&mut self, vars: &impl Fn(&str) -> Option<String>) {
        let get = |k: &str| vars(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = get(ENV_KEY_FILE) {
            self.signing_key_file = Some(v);
        }
        if let Some(v) = get(ENV_KEY) {
            self.signing_key = Some(v);
        }
        if let Some(v) = get(ENV_WEBHOOK) {
            self.checkpoint_webhook_url = Some(v);
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.signing_key_file.is_some() && self.signing_key.is_some() {
            return Err(format!(
                "both [audit] signing_key_file ({ENV_KEY_FILE}) and {ENV_KEY} are set: give the audit signing key one way only"
            ));
        }
        if self.checkpoint_rows == 0 || self.checkpoint_seconds == 0 {
            return Err("[audit] checkpoint_rows and checkpoint_seconds must be at least 1".into());
        }
        if let Some(url) = &self.checkpoint_webhook_url {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err("[audit] checkpoint_webhook_url is not an http(s) URL".to_string());
                }
            }
        }
        Ok(())
    }

    /// Whether a signing key is given (checkpoints are written).
    pub fn has_key(&self) -> bool {
        self.signing_key_file.is_some() || self.signing_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_vars_override_and_the_key_is_never_printed() {
        let mut c = AuditConfig::default();
        c.apply_env(&|k| (k == ENV_KEY).then(|| "c2VjcmV0".to_string()));
        assert_eq!(c.signing_key.as_deref(), Some("c2VjcmV0"));
        assert!(c.has_key());
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
        assert!(c.validate().is_ok());
        c.signing_key_file = Some("/k.pem".into());
        assert!(c.validate().unwrap_err().contains("one way only"));
    }

    #[test]
    fn bad_intervals_and_webhooks_are_refused() {
        let zero = AuditConfig {
            checkpoint_rows: 0,
            ..Default::default()
        };
        assert!(zero.validate().is_err());
        let hook = AuditConfig {
            checkpoint_webhook_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(hook.validate().is_err());
        assert!(!AuditConfig::default().has_key());
    }
}
