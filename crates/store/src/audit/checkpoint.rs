//! Signed checkpoints of the audit chain: written under the chain head lock (so several
//! `serve` processes on one database never write two checkpoints with one seq, nor one
//! that disagrees with the chain), read back for `audit verify`, and the plain status
//! figures for `/metrics` (checkpoint age, chain length).
//!
//! The signing and the verdict are pure (`raxx_core::audit::checkpoint`); emitting a
//! checkpoint to the outside (log line, webhook) is the caller's (`raxx_jobs::checkpoints`).

use futures_util::TryStreamExt;
use raxx_core::audit::checkpoint::{
    Checkpoint, CheckpointKey, CheckpointReport, CheckpointVerifier,
};
use raxx_core::audit::{ChainBreak, ChainVerifier};
use sqlx::{AssertSqlSafe, Row};

use super::{COLUMNS, entry};
use crate::{Result, Store, now_ms};

/// When a checkpoint is due: after `rows` new rows, or once the first row no checkpoint
/// covers is `seconds` old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub rows: i64,
    pub seconds: i64,
}

/// The chain and checkpoint figures (for `/metrics` and the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointStatus {
    /// Rows in the chain (the recorded head: ids are gap-free from 1).
    pub chain_length: i64,
    /// The newest checkpoint: (seq, last id, signed at in Unix ms).
    pub last_checkpoint: Option<(i64, i64, i64)>,
}

impl CheckpointStatus {
    /// Rows no checkpoint covers yet.
    pub fn rows_uncovered(&self) -> i64 {
        self.chain_length - self.last_checkpoint.map_or(0, |(_, id, _)| id)
    }

    /// Seconds since the newest checkpoint was signed (`None`: there is none).
    pub fn age_seconds(&self, now_ms: i64) -> Option<f64> {
        self.last_checkpoint
            .map(|(_, _, at)| (now_ms - at).max(0) as f64 / 1000.0)
    }
}

async fn due(
    conn: &mut sqlx::AnyConnection,
    status: &CheckpointStatus,
    policy: CheckpointPolicy,
    now: i64,
) -> Result<bool> {
    let covered = status.last_checkpoint.map_or(0, |(_, id, _)| id);
    if status.chain_length <= covered {
        return Ok(false);
    }
    if status.chain_length - covered >= policy.rows {
        return Ok(true);
    }
    let first_uncovered: Option<i64> =
        sqlx::query_scalar("SELECT at FROM console_audit_log WHERE id = $1")
            .bind(covered + 1)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(first_uncovered.is_none_or(|at| now - at >= policy.seconds * 1000))
}

const CP_COLUMNS: &str = "seq, env, last_id, last_hash, row_count, at, key_id, signature";

fn checkpoint(row: &sqlx::any::AnyRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        seq: row.try_get("seq")?,
        env: row.try_get("env")?,
        last_id: row.try_get("last_id")?,
        last_hash: row.try_get("last_hash")?,
        rows: row.try_get("row_count")?,
        at: row.try_get("at")?,
        key_id: row.try_get("key_id")?,
        signature: row.try_get("signature")?,
    })
}

impl Store {
    /// Chain length and the newest checkpoint: two primary-key reads.
    pub async fn audit_checkpoint_status(&self) -> Result<CheckpointStatus> {
        let chain_length: i64 =
            sqlx::query_scalar("SELECT last_id FROM console_audit_head WHERE one = 1")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0);
        let last = sqlx::query(
            "SELECT seq, last_id, at FROM console_audit_checkpoints ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let last_checkpoint = match last {
            Some(r) => Some((r.try_get("seq")?, r.try_get("last_id")?, r.try_get("at")?)),
            None => None,
        };
        Ok(CheckpointStatus {
            chain_length,
            last_checkpoint,
        })
    }

    /// Seconds since the newest checkpoint (for `/metrics`; `None`: none yet).
    pub async fn audit_checkpoint_age_seconds(&self) -> Result<Option<f64>> {
        Ok(self.audit_checkpoint_status().await?.age_seconds(now_ms()))
    }

    /// Rows in the audit chain (for `/metrics`).
    pub async fn audit_chain_length(&self) -> Result<i64> {
        Ok(self.audit_checkpoint_status().await?.chain_length)
    }

    /// Whether a checkpoint is due under `policy` (a cheap read without any lock).
    pub async fn audit_checkpoint_due(&self, policy: CheckpointPolicy) -> Result<bool> {
        let status = self.audit_checkpoint_status().await?;
        let mut conn = self.pool.acquire().await?;
        due(&mut conn, &status, policy, now_ms()).await
    }

    /// Sign and store a checkpoint of the chain as it is now, if one is due under `policy`
    /// (`None`: any uncovered row makes it due, as at shutdown). Runs under the chain head
    /// lock and re-checks there, so of several instances racing, one writes it and the
    /// others find nothing to do. Returns the checkpoint written, to emit outside.
    pub async fn audit_checkpoint(
        &self,
        key: &CheckpointKey,
        policy: Option<CheckpointPolicy>,
    ) -> Result<Option<Checkpoint>> {
        let mut tx = self.begin_unlocked().await?;
        let (last_id, last_hash) = tx.lock_head().await?;
        let last = sqlx::query(
            "SELECT seq, last_id, at FROM console_audit_checkpoints ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx.tx)
        .await?;
        let last_checkpoint = match last {
            Some(r) => Some((r.try_get("seq")?, r.try_get("last_id")?, r.try_get("at")?)),
            None => None,
        };
        let status = CheckpointStatus {
            chain_length: last_id,
            last_checkpoint,
        };
        let now = now_ms();
        let is_due = match policy {
            Some(p) => due(&mut tx.tx, &status, p, now).await?,
            None => status.rows_uncovered() > 0,
        };
        if !is_due || last_id == 0 {
            tx.tx.rollback().await?;
            return Ok(None);
        }
        let seq = last_checkpoint.map_or(0, |(s, _, _)| s) + 1;
        // Never earlier than the previous checkpoint, whatever another host's clock says.
        let at = last_checkpoint.map_or(now, |(_, _, prev_at)| now.max(prev_at));
        let cp = key.sign(self.env.as_str(), seq, last_id, &last_hash, at);
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO console_audit_checkpoints ({CP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(cp.seq)
        .bind(&cp.env)
        .bind(cp.last_id)
        .bind(&cp.last_hash)
        .bind(cp.rows)
        .bind(cp.at)
        .bind(&cp.key_id)
        .bind(&cp.signature)
        .execute(&mut *tx.tx)
        .await?;
        tx.tx.commit().await?;
        Ok(Some(cp))
    }

    /// Every checkpoint in the database, by seq.
    pub async fn audit_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CP_COLUMNS} FROM console_audit_checkpoints ORDER BY seq"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint).collect()
    }

    /// `audit verify` with checkpoints: walk every row once, feeding the chain (first
    /// break) and the checkpoints (every row a checkpoint covers), then the head.
    pub async fn audit_verify_checkpoints(
        &self,
        mut checkpoints: CheckpointVerifier,
    ) -> Result<(std::result::Result<u64, ChainBreak>, CheckpointReport)> {
        let mut chain = ChainVerifier::default();
        let mut broken: Option<ChainBreak> = None;
        let mut rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM console_audit_log ORDER BY id"
        )))
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let e = entry(&row)?;
            checkpoints.row(e.id, &e.hash);
            if broken.is_none()
                && let Err(b) = chain.push(&e)
            {
                broken = Some(b);
            }
        }
        drop(rows);
        let chain_result = match broken {
            Some(b) => Err(b),
            None => {
                let head = self.audit_head().await?;
                chain.finish(head.as_ref().map(|(i, h)| (*i, h.as_str())))
            }
        };
        let report = checkpoints.finish(chain_result.is_ok());
        Ok((chain_result, report))
    }

    /// The recorded head (last id, last hash); `None` when nothing was ever written.
    pub(crate) async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        let head = sqlx::query("SELECT last_id, last_hash FROM console_audit_head WHERE one = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(match head {
            Some(r) => {
                let id: i64 = r.try_get("last_id")?;
                let hash: String = r.try_get("last_hash")?;
                (id > 0).then_some((id, hash))
            }
            None => None,
        })
    }
}
