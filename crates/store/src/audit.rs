//! The one audit writer and the audit reader.
//!
//! [`AuditTx`] is the only way to change state: it opens a transaction, locks the chain
//! head row (so chain writers queue, on one instance or many), lets the caller make the
//! change, appends the audit row(s) and commits them together. A transaction that
//! recorded no audit row refuses to commit.

use futures_util::TryStreamExt;
use raxx_core::audit::{
    AuditEntry, AuditEvent, ChainBreak, ChainVerifier, Outcome, chain_hash, redact,
};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row, Transaction};

use crate::{Backend, Result, Store, StoreError, now_ms};

static AUDIT_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Audit rows committed by this process (for `/metrics`).
pub fn audit_writes() -> u64 {
    AUDIT_WRITES.load(std::sync::atomic::Ordering::Relaxed)
}

pub struct AuditTx {
    tx: Transaction<'static, Any>,
    env: raxx_core::Env,
    last_id: i64,
    last_hash: String,
    recorded: usize,
}

impl Store {
    /// Begin an audited transaction.
    pub async fn begin(&self) -> Result<AuditTx> {
        let mut tx = match self.backend {
            // Take SQLite's write lock up front so the head update never has to upgrade
            // a read snapshot (which SQLite refuses under contention instead of waiting).
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        let row = sqlx::query(
            "UPDATE console_audit_head SET last_id = last_id WHERE one = 1 RETURNING last_id, last_hash",
        )
        .fetch_one(&mut *tx)
        .await?;
        Ok(AuditTx {
            tx,
            env: self.env,
            last_id: row.try_get("last_id")?,
            last_hash: row.try_get("last_hash")?,
            recorded: 0,
        })
    }

    /// Record an event on its own (denials, reads of the audit log, failures).
    pub async fn audit(&self, event: AuditEvent) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = tx.record(event).await?;
        tx.commit().await?;
        Ok(id)
    }
}

impl AuditTx {
    /// The connection inside the transaction, for the change itself.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Append one audit row to the chain, inside this transaction.
    pub async fn record(&mut self, mut event: AuditEvent) -> Result<i64> {
        if !event.context.is_object() {
            event.context = Value::Object(Default::default());
        }
        redact(&mut event.context);
        if let Value::Object(map) = &mut event.context {
            map.insert(
                "selected_env".into(),
                Value::String(self.env.as_str().into()),
            );
        }
        let id = self.last_id + 1;
        let at = now_ms();
        let hash = chain_hash(&self.last_hash, id, at, &event);
        sqlx::query(
            "INSERT INTO console_audit_log (id, at, actor, session_id, action, target_type, target_id, target_app, outcome, reason, context, request_id, ip, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(id)
        .bind(at)
        .bind(&event.actor)
        .bind(&event.session_id)
        .bind(&event.action)
        .bind(&event.target_type)
        .bind(&event.target_id)
        .bind(&event.target_app)
        .bind(event.outcome.as_str())
        .bind(&event.reason)
        .bind(event.context.to_string())
        .bind(&event.request_id)
        .bind(&event.ip)
        .bind(&self.last_hash)
        .bind(&hash)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE console_audit_head SET last_id = $1, last_hash = $2 WHERE one = 1")
            .bind(id)
            .bind(&hash)
            .execute(&mut *self.tx)
            .await?;
        self.last_id = id;
        self.last_hash = hash;
        self.recorded += 1;
        Ok(id)
    }

    /// Commit the change and its audit rows. Refuses (and rolls back) when nothing was
    /// recorded: no change without its audit row.
    pub async fn commit(self) -> Result<()> {
        if self.recorded == 0 {
            self.tx.rollback().await?;
            return Err(StoreError::Invalid(
                "refusing to commit a change without an audit row".into(),
            ));
        }
        let n = self.recorded as u64;
        self.tx.commit().await?;
        AUDIT_WRITES.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// Audit log filters; every field narrows. Keyset pagination by id (newest first).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Return rows with `id < before` (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: u32,
}

fn entry(row: &AnyRow) -> Result<AuditEntry> {
    let outcome: String = row.try_get("outcome")?;
    let context: String = row.try_get("context")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        event: AuditEvent {
            actor: row.try_get("actor")?,
            session_id: row.try_get("session_id")?,
            action: row.try_get("action")?,
            target_type: row.try_get("target_type")?,
            target_id: row.try_get("target_id")?,
            target_app: row.try_get("target_app")?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| {
                StoreError::Invalid(format!("bad outcome `{outcome}` in the audit log"))
            })?,
            reason: row.try_get("reason")?,
            context: serde_json::from_str(&context).unwrap_or(Value::String(context)),
            request_id: row.try_get("request_id")?,
            ip: row.try_get("ip")?,
        },
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

const COLUMNS: &str = "id, at, actor, session_id, action, target_type, target_id, target_app, outcome, reason, context, request_id, ip, prev_hash, hash";

impl Store {
    /// One page of the audit log, newest first.
    pub async fn audit_page(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut sql = format!("SELECT {COLUMNS} FROM console_audit_log WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, b: Bind| {
            binds.push(b);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(v) = &q.actor {
            push(&mut sql, " AND actor = ?", Bind::Text(v.clone()));
        }
        if let Some(v) = &q.action {
            // `flag.` finds every flag action; an exact name finds that action.
            if let Some(prefix) = v
                .strip_suffix('*')
                .or_else(|| v.ends_with('.').then_some(v.as_str()))
            {
                push(&mut sql, " AND action >= ?", Bind::Text(prefix.to_string()));
                push(
                    &mut sql,
                    " AND action < ?",
                    Bind::Text(format!("{prefix}\u{10FFFF}")),
                );
            } else {
                push(&mut sql, " AND action = ?", Bind::Text(v.clone()));
            }
        }
        if let Some(v) = q.outcome {
            push(&mut sql, " AND outcome = ?", Bind::Text(v.as_str().into()));
        }
        if let Some(v) = &q.target {
            push(&mut sql, " AND target_id = ?", Bind::Text(v.clone()));
        }
        if let Some(v) = q.since {
            push(&mut sql, " AND at >= ?", Bind::Int(v));
        }
        if let Some(v) = q.until {
            push(&mut sql, " AND at < ?", Bind::Int(v));
        }
        if let Some(v) = q.before {
            push(&mut sql, " AND id < ?", Bind::Int(v));
        }
        let limit = q.limit.clamp(1, 500);
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            query = match b {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(entry).collect()
    }

    /// Every row in id order, in batches, handed to `f` (export and verify).
    pub async fn audit_scan(&self, mut f: impl FnMut(AuditEntry) -> Result<()>) -> Result<()> {
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM console_audit_log WHERE id > $1 ORDER BY id LIMIT 5000"
            )))
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in &rows {
                let e = entry(row)?;
                after = e.id;
                f(e)?;
            }
        }
    }

    /// Walk the whole chain. `Ok(n)` when intact with `n` rows; the first break otherwise.
    pub async fn audit_verify(&self) -> Result<std::result::Result<u64, ChainBreak>> {
        let mut verifier = ChainVerifier::default();
        let mut broken: Option<ChainBreak> = None;
        let mut rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM console_audit_log ORDER BY id"
        )))
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let e = entry(&row)?;
            if let Err(b) = verifier.push(&e) {
                broken = Some(b);
                break;
            }
        }
        drop(rows);
        if let Some(b) = broken {
            return Ok(Err(b));
        }
        let head = sqlx::query("SELECT last_id, last_hash FROM console_audit_head WHERE one = 1")
            .fetch_optional(&self.pool)
            .await?;
        let head = match &head {
            Some(r) => {
                let id: i64 = r.try_get("last_id")?;
                let hash: String = r.try_get("last_hash")?;
                (id > 0).then_some((id, hash))
            }
            None => None,
        };
        Ok(verifier.finish(head.as_ref().map(|(i, h)| (*i, h.as_str()))))
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Store {
    /// Failed sign-ins (`auth.login` / `auth.register` denied) since `since`, for an
    /// account (by email, recorded as the target id) and for an IP.
    pub async fn auth_failures_since(
        &self,
        email: &str,
        ip: Option<&str>,
        since: i64,
    ) -> Result<(i64, i64)> {
        let by_account: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_audit_log WHERE target_id = $1 AND at >= $2 AND outcome = 'denied' AND action IN ('auth.login', 'auth.register')",
        )
        .bind(email)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let by_ip: i64 = match ip {
            Some(ip) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM console_audit_log WHERE ip = $1 AND at >= $2 AND outcome = 'denied' AND action IN ('auth.login', 'auth.register')",
                )
                .bind(ip)
                .bind(since)
                .fetch_one(&self.pool)
                .await?
            }
            None => 0,
        };
        Ok((by_account, by_ip))
    }
}
