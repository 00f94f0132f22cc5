//! The audit checkpointer (SPEC §6, docs/audit.md): a loop beside the scheduler in every
//! `serve` process that, once a checkpoint is due (`[audit] checkpoint_rows` new rows, or
//! the oldest uncovered row `checkpoint_seconds` old), signs one under the chain head lock
//! and emits it to the outside: one `audit_checkpoint` log line with every field, and the
//! optional webhook (POST JSON, retried with back-off, failures logged; never in the way of
//! a write). At shutdown it signs the rows written since the last checkpoint.
//!
//! Not a cron job: it runs every second, and a job run is recorded in the runs table and
//! the audit log — which would itself add a row to checkpoint.

use std::sync::Arc;
use std::time::Duration;

use raxx_core::audit::checkpoint::{Checkpoint, CheckpointKey, LOG_MESSAGE};
use raxx_core::audit::settings::{AuditConfig, ENV_KEY, ENV_KEY_FILE};
use raxx_store::Store;
use raxx_store::audit::checkpoint::CheckpointPolicy;
use tokio::sync::{mpsc, watch};

use crate::audit_digest::origin_of;

const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
const WEBHOOK_ATTEMPTS: u32 = 5;
/// Checkpoints waiting for the webhook; past this they are dropped (with a warning): they
/// are in the database and the log already.
const WEBHOOK_QUEUE: usize = 256;

/// The signing key the config names: `None` when none is configured. A key that is
/// configured but cannot be read is an error (the console must not start without it).
pub fn load_key(cfg: &AuditConfig) -> anyhow::Result<Option<CheckpointKey>> {
    let (text, from) = match (&cfg.signing_key_file, &cfg.signing_key) {
        (Some(path), _) => (
            std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read the audit signing key file {path} ([audit] signing_key_file / {ENV_KEY_FILE}): {e}")
            })?,
            format!("the audit signing key file {path}"),
        ),
        (None, Some(key)) => (key.clone(), ENV_KEY.to_string()),
        (None, None) => return Ok(None),
    };
    CheckpointKey::parse(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{from}: {e}"))
}

/// The one line said at start-up when no key is configured.
pub fn warn_without_key() {
    tracing::warn!(
        "audit checkpoints are OFF: no audit signing key ([audit] signing_key_file, {ENV_KEY_FILE} or {ENV_KEY}); the audit chain then only proves its own consistency, and whoever can write the database can truncate, wipe or rewrite it undetected (docs/audit.md)"
    );
}

/// Emit a checkpoint as one structured log line (target and message `audit_checkpoint`).
pub fn log_checkpoint(cp: &Checkpoint) {
    tracing::info!(
        target: "audit_checkpoint",
        env = %cp.env,
        seq = cp.seq,
        last_id = cp.last_id,
        last_hash = %cp.last_hash,
        rows = cp.rows,
        at = cp.at,
        key_id = %cp.key_id,
        signature = %cp.signature,
        "{LOG_MESSAGE}"
    );
}

pub struct Checkpointer {
    store: Store,
    key: Arc<CheckpointKey>,
    policy: CheckpointPolicy,
    webhook: Option<String>,
}

pub struct CheckpointerHandle {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl CheckpointerHandle {
    /// Stop: sign the rows written since the last checkpoint, give the webhook a last
    /// chance to take what is queued, return.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.join.await {
            tracing::error!(error = %e, "the audit checkpointer ended abnormally");
        }
    }
}

impl Checkpointer {
    pub fn new(store: Store, key: CheckpointKey, cfg: &AuditConfig) -> Checkpointer {
        Checkpointer {
            store,
            key: Arc::new(key),
            policy: CheckpointPolicy {
                rows: i64::try_from(cfg.checkpoint_rows).unwrap_or(i64::MAX),
                seconds: i64::try_from(cfg.checkpoint_seconds).unwrap_or(i64::MAX),
            },
            webhook: cfg.checkpoint_webhook_url.clone(),
        }
    }

    /// Write a checkpoint now if one is due (`policy` `None`: if any row is uncovered),
    /// and log it. Returns it (the loop also queues it for the webhook).
    pub async fn checkpoint_now(
        &self,
        policy: Option<CheckpointPolicy>,
    ) -> raxx_store::Result<Option<Checkpoint>> {
        if let Some(p) = policy
            && !self.store.audit_checkpoint_due(p).await?
        {
            return Ok(None);
        }
        let cp = self.store.audit_checkpoint(&self.key, policy).await?;
        if let Some(cp) = &cp {
            log_checkpoint(cp);
        }
        Ok(cp)
    }

    pub fn spawn(self) -> CheckpointerHandle {
        let (stop, rx) = watch::channel(false);
        tracing::info!(
            key_id = %self.key.key_id(),
            every_rows = self.policy.rows,
            every_seconds = self.policy.seconds,
            webhook = %self.webhook.as_deref().map(origin_of).unwrap_or_else(|| "none".into()),
            "audit checkpoints on"
        );
        let join = tokio::spawn(self.run(rx));
        CheckpointerHandle { stop, join }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let (hook_tx, hook_task) = match &self.webhook {
            Some(url) => {
                let (tx, rx) = mpsc::channel::<Checkpoint>(WEBHOOK_QUEUE);
                (Some(tx), Some(tokio::spawn(deliver(url.clone(), rx))))
            }
            None => (None, None),
        };
        let queue = |cp: Checkpoint| {
            if let Some(tx) = &hook_tx
                && tx.try_send(cp).is_err()
            {
                tracing::warn!(
                    "the audit checkpoint webhook is behind; a checkpoint was not queued for it (it is in the database and the log)"
                );
            }
        };
        let tick = Duration::from_secs(1).min(Duration::from_secs(
            u64::try_from(self.policy.seconds).unwrap_or(1).max(1),
        ));
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => break,
            }
            match self.checkpoint_now(Some(self.policy)).await {
                Ok(Some(cp)) => {
                    failing = false;
                    queue(cp);
                }
                Ok(None) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot write an audit checkpoint; retrying every second");
                }
                Err(_) => {}
            }
        }
        match self.checkpoint_now(None).await {
            Ok(Some(cp)) => queue(cp),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot write the audit checkpoint at shutdown"),
        }
        drop(hook_tx); // the webhook task ends once it has sent what is queued
        if let Some(task) = hook_task
            && tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .is_err()
        {
            tracing::warn!(
                "the audit checkpoint webhook did not take the last checkpoints before shutdown (they are in the database and the log)"
            );
        }
    }
}

/// POST each checkpoint as JSON, retrying with back-off (1, 2, 4, 8 s). Only the URL's
/// origin is ever logged: such URLs often carry a token.
async fn deliver(url: String, mut rx: mpsc::Receiver<Checkpoint>) {
    let origin = origin_of(&url);
    let client = match raxx_providers::http_client_builder(WEBHOOK_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build an HTTP client for the audit checkpoint webhook");
            return;
        }
    };
    while let Some(cp) = rx.recv().await {
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=WEBHOOK_ATTEMPTS {
            let why = match client.post(&url).json(&cp).send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!("answered {}", r.status().as_u16()),
                Err(e) => format!("could not be reached: {}", e.without_url()),
            };
            if attempt == WEBHOOK_ATTEMPTS {
                tracing::error!(
                    seq = cp.seq,
                    "audit checkpoint {} was not delivered to the webhook at {origin} ({why}) after {WEBHOOK_ATTEMPTS} attempts; it is in the database and the log",
                    cp.seq
                );
            } else {
                tracing::warn!(
                    seq = cp.seq,
                    attempt,
                    "the audit checkpoint webhook at {origin} {why}; retrying in {} s",
                    delay.as_secs()
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}
