//! The notification outbox (issue 16 item 5). Rows are written inside the transaction of
//! the event they report — by [`AuditTx::commit`] for audited events (see
//! [`raxx_core::notify::from_audit`]), or by a writer's own transaction — so a rolled-back
//! change sends nothing. The `notify-delivery` job claims due rows, sends them outside any
//! transaction, and records each attempt (with its audit row).

use std::sync::Arc;

use raxx_core::Env;
use raxx_core::config::NotifyKind;
use raxx_core::notify::{MAX_ATTEMPTS, Notification, backoff_ms, payload};
use sqlx::Row;

use crate::{AuditTx, Result, Store, now_ms};

/// One `[[notify]]` target as the outbox needs it.
#[derive(Debug, Clone)]
pub struct NotifyTarget {
    pub name: String,
    pub kind: NotifyKind,
    pub events: Vec<String>,
}

impl NotifyTarget {
    fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event)
    }
}

/// What the outbox writer needs: the targets, this console's origin (deep links) and env.
#[derive(Debug, Clone)]
pub struct NotifyRules {
    pub origin: String,
    pub env: Env,
    pub targets: Vec<NotifyTarget>,
}

/// A delivery claimed by [`Store::claim_notifications`].
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub target: String,
    pub event: String,
    pub payload: String,
    /// Attempts before this one.
    pub attempts: u32,
}

/// How long a claimed row is kept from other deliverers (longer than one attempt takes).
pub const CLAIM_MS: i64 = 60_000;

impl Store {
    /// Set the notify targets (once, at start-up; later calls are ignored).
    pub fn set_notify(&self, rules: NotifyRules) {
        let _ = self.notify.set(Arc::new(rules));
    }

    pub(crate) fn notify_rules(&self) -> Option<Arc<NotifyRules>> {
        self.notify.get().cloned()
    }

    /// Claim up to `limit` due deliveries: each row's next attempt is pushed out by
    /// [`CLAIM_MS`] with a conditional `UPDATE`, so two consoles never send one row twice.
    pub async fn claim_notifications(&self, limit: u32, now: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(
            "SELECT id, target, event, payload, attempts, next_attempt_at FROM console_notify_outbox \
             WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let due: i64 = r.try_get("next_attempt_at")?;
            let won = sqlx::query(
                "UPDATE console_notify_outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 AND delivered_at IS NULL",
            )
            .bind(now + CLAIM_MS)
            .bind(id)
            .bind(due)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if won == 1 {
                let attempts: i64 = r.try_get("attempts")?;
                claimed.push(OutboxRow {
                    id,
                    target: r.try_get("target")?,
                    event: r.try_get("event")?,
                    payload: r.try_get("payload")?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                });
            }
        }
        Ok(claimed)
    }

    /// Outbox rows, newest first (the jobs page, tests).
    pub async fn notifications(&self, limit: u32) -> Result<Vec<OutboxStatus>> {
        let rows = sqlx::query(
            "SELECT id, target, event, attempts, delivered_at, gave_up_at, last_status, last_error \
             FROM console_notify_outbox ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxStatus {
                    id: r.try_get("id")?,
                    target: r.try_get("target")?,
                    event: r.try_get("event")?,
                    attempts: r.try_get("attempts")?,
                    delivered_at: r.try_get("delivered_at")?,
                    gave_up_at: r.try_get("gave_up_at")?,
                    last_status: r.try_get("last_status")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}

/// An outbox row's delivery state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxStatus {
    pub id: i64,
    pub target: String,
    pub event: String,
    pub attempts: i64,
    pub delivered_at: Option<i64>,
    pub gave_up_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered { status: u16 },
    Failed { status: Option<u16>, error: String },
}

impl AuditTx {
    /// Queue `n` for every target that wants its event, in this transaction.
    pub async fn enqueue_notification(&mut self, n: &Notification) -> Result<usize> {
        let Some(rules) = self.notify.clone() else {
            return Ok(0);
        };
        enqueue(self, &rules, n).await
    }

    /// Record one delivery attempt of `row` (its audit row is the caller's): delivered,
    /// or failed with the next attempt after the back-off (given up after
    /// [`MAX_ATTEMPTS`]). Returns whether the row was given up.
    pub async fn record_delivery(
        &mut self,
        row: &OutboxRow,
        attempt: &Attempt,
        now: i64,
    ) -> Result<bool> {
        let attempts = row.attempts + 1;
        match attempt {
            Attempt::Delivered { status } => {
                sqlx::query(
                    "UPDATE console_notify_outbox SET attempts = $1, delivered_at = $2, last_status = $3, last_error = NULL WHERE id = $4",
                )
                .bind(i64::from(attempts))
                .bind(now)
                .bind(i64::from(*status))
                .bind(row.id)
                .execute(self.conn())
                .await?;
                Ok(false)
            }
            Attempt::Failed { status, error } => {
                let give_up = attempts >= MAX_ATTEMPTS;
                let error: String = error.chars().take(500).collect();
                sqlx::query(
                    "UPDATE console_notify_outbox SET attempts = $1, next_attempt_at = $2, gave_up_at = $3, last_status = $4, last_error = $5 WHERE id = $6",
                )
                .bind(i64::from(attempts))
                .bind(now + backoff_ms(attempts))
                .bind(give_up.then_some(now))
                .bind(status.map(i64::from))
                .bind(error)
                .bind(row.id)
                .execute(self.conn())
                .await?;
                Ok(give_up)
            }
        }
    }
}

async fn enqueue(tx: &mut AuditTx, rules: &NotifyRules, n: &Notification) -> Result<usize> {
    let now = now_ms();
    let mut queued = 0;
    for t in rules.targets.iter().filter(|t| t.wants(n.event)) {
        let body = payload(t.kind, n, rules.env, now).to_string();
        sqlx::query(
            "INSERT INTO console_notify_outbox (target, event, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, 0, $4)",
        )
        .bind(t.name.clone())
        .bind(n.event)
        .bind(body)
        .bind(now)
        .execute(tx.raw_conn())
        .await?;
        queued += 1;
    }
    Ok(queued)
}

/// The notifications the events recorded in `tx` stand for, queued in `tx` (at commit).
pub(crate) async fn enqueue_audited(tx: &mut AuditTx) -> Result<()> {
    let Some(rules) = tx.notify.clone() else {
        return Ok(());
    };
    if rules.targets.is_empty() {
        return Ok(());
    }
    let notes: Vec<Notification> = tx
        .pending_events()
        .iter()
        .filter_map(|e| raxx_core::notify::from_audit(e, &rules.origin))
        .collect();
    for n in &notes {
        enqueue(tx, &rules, n).await?;
    }
    Ok(())
}

/// Queue `n` in a transaction of its own (an event with no audit row of its own, like a
/// failing job: the run's outcome is written in the same transaction by the caller).
pub(crate) async fn enqueue_in(
    conn: &mut sqlx::AnyConnection,
    rules: &NotifyRules,
    n: &Notification,
) -> Result<()> {
    let now = now_ms();
    for t in rules.targets.iter().filter(|t| t.wants(n.event)) {
        let body = payload(t.kind, n, rules.env, now).to_string();
        sqlx::query(
            "INSERT INTO console_notify_outbox (target, event, payload, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, 0, $4)",
        )
        .bind(t.name.clone())
        .bind(n.event)
        .bind(body)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
