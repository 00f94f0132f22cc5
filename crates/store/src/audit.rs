//! The one audit writer and the audit reader.
//!
//! [`AuditTx`] is the only way to change state: it opens a transaction, lets the caller
//! make the change and record its audit event(s), then at commit locks the chain head row
//! (so chain writers queue, on one instance or many), appends the rows and commits them
//! with the change. A transaction that recorded no audit row refuses to commit.

pub mod checkpoint;

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
    backend: Backend,
    env: raxx_core::Env,
    /// Events recorded so far; they join the chain at [`AuditTx::commit`].
    pending: Vec<AuditEvent>,
    /// The chain head (last id, last hash), once this transaction holds its lock.
    head: Option<(i64, String)>,
    /// [`AuditTx::conn`] was handed out: the transaction may have changed state beyond
    /// its audit rows, so in-memory caches must re-read after it commits.
    changed: bool,
    /// The `[[notify]]` targets: audited events that are notified get their outbox rows
    /// in this transaction (`notify.rs`).
    pub(crate) notify: Option<std::sync::Arc<crate::notify::NotifyRules>>,
}

impl Store {
    /// Begin an audited transaction. It locks the chain head at once, so every audited
    /// writer queues behind it until it commits: the whole change is serialised with
    /// every other `begin()` (on one instance or many). That is the default because much
    /// of the state (sessions, keys, rotations, memberships) relies on it.
    pub async fn begin(&self) -> Result<AuditTx> {
        let mut tx = self.begin_unlocked().await?;
        tx.head = Some(tx.lock_head().await?);
        Ok(tx)
    }

    /// Begin an audited transaction serialised only with other transactions of the same
    /// `scope`; the chain head is locked at [`AuditTx::commit`], for its last statements.
    ///
    /// Rule (deadlock freedom): a scope owns its tables. Every writer of them uses
    /// `begin_scoped` with that scope, and no `begin()` transaction writes them; so a
    /// scoped transaction only ever waits for its scope, then the head, and a `begin()`
    /// transaction (which holds the head) never waits for a scoped one. The one scope is
    /// `"flags"` (flags, history, apps, promotions, approvals: `crates/store/src/flags.rs`).
    /// On PostgreSQL the scope is a transaction-level advisory lock; SQLite's
    /// `BEGIN IMMEDIATE` already serialises every writer.
    pub async fn begin_scoped(&self, scope: &str) -> Result<AuditTx> {
        let mut tx = self.begin_unlocked().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
                .bind(format!("raxx:{scope}"))
                .execute(&mut *tx.tx)
                .await?;
        }
        Ok(tx)
    }

    async fn begin_unlocked(&self) -> Result<AuditTx> {
        let tx = match self.backend {
            // Take SQLite's write lock up front so no statement has to upgrade a read
            // snapshot (which SQLite refuses under contention instead of waiting).
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(AuditTx {
            tx,
            backend: self.backend,
            env: self.env,
            pending: Vec::new(),
            head: None,
            changed: false,
            notify: self.notify_rules(),
        })
    }

    /// Record an event on its own (denials, reads of the audit log, failures).
    pub async fn audit(&self, event: AuditEvent) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.record(event).await?;
        tx.commit().await
    }
}

/// Columns of one audit row, in insert order.
const AUDIT_COLUMNS: &str = "id, at, actor, session_id, action, target_type, target_id, target_app, outcome, reason, context, request_id, ip, prev_hash, hash";
const AUDIT_COLUMN_COUNT: usize = 15;

impl AuditTx {
    /// The connection inside the transaction, for the change itself.
    pub fn conn(&mut self) -> &mut AnyConnection {
        self.changed = true;
        &mut self.tx
    }

    /// The connection, for bookkeeping no cache reads (the notification outbox).
    pub(crate) fn raw_conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The events recorded so far.
    pub(crate) fn pending_events(&self) -> &[AuditEvent] {
        &self.pending
    }

    /// Record an event for this transaction. It is redacted and stamped with the
    /// console's env now, and joins the chain (id, time, hash) when the transaction
    /// commits; a transaction that fails to commit leaves neither the change nor the row.
    pub async fn record(&mut self, mut event: AuditEvent) -> Result<()> {
        if !event.context.is_object() {
            event.context = Value::Object(Default::default());
        }
        redact(&mut event.context);
        raxx_core::audit::cap(&mut event);
        if let Value::Object(map) = &mut event.context {
            map.insert(
                "selected_env".into(),
                Value::String(self.env.as_str().into()),
            );
        }
        self.pending.push(event);
        Ok(())
    }

    /// Commit the change and its audit rows: lock the chain head (unless `begin()` did),
    /// append the recorded events after it, move the head, commit — all in this one transaction. Refuses (and
    /// rolls back) when nothing was recorded: no change without its audit row.
    pub async fn commit(mut self) -> Result<()> {
        if self.pending.is_empty() {
            self.tx.rollback().await?;
            return Err(StoreError::Invalid(
                "refusing to commit a change without an audit row".into(),
            ));
        }
        // The notifications these events stand for join the same transaction.
        crate::notify::enqueue_audited(&mut self).await?;
        let (mut last_id, mut last_hash) = match self.head.take() {
            Some(head) => head,
            None => self.lock_head().await?,
        };
        // Stamped under the head lock, so ids and times grow together.
        let at = now_ms();
        let mut rows = Vec::with_capacity(self.pending.len());
        for event in &self.pending {
            let id = last_id + 1;
            let hash = chain_hash(&last_hash, id, at, event);
            rows.push((id, std::mem::replace(&mut last_hash, hash.clone()), hash));
            last_id = id;
        }
        let values = (0..rows.len())
            .map(|r| {
                let n = r * AUDIT_COLUMN_COUNT;
                let params: Vec<String> = (1..=AUDIT_COLUMN_COUNT)
                    .map(|c| format!("${}", n + c))
                    .collect();
                format!("({})", params.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let next = rows.len() * AUDIT_COLUMN_COUNT;
        let insert = format!("INSERT INTO console_audit_log ({AUDIT_COLUMNS}) VALUES {values}");
        let sql = match self.backend {
            // One round trip for the rows and the head.
            Backend::Postgres => format!(
                "WITH appended AS ({insert}) UPDATE console_audit_head SET last_id = ${}, last_hash = ${} WHERE one = 1",
                next + 1,
                next + 2
            ),
            Backend::Sqlite => insert,
        };
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for ((id, prev_hash, hash), event) in rows.iter().zip(&self.pending) {
            query = query
                .bind(*id)
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
                .bind(prev_hash)
                .bind(hash);
        }
        if self.backend == Backend::Postgres {
            query = query.bind(last_id).bind(&last_hash);
        }
        query.execute(&mut *self.tx).await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE console_audit_head SET last_id = $1, last_hash = $2 WHERE one = 1")
                .bind(last_id)
                .bind(&last_hash)
                .execute(&mut *self.tx)
                .await?;
        }
        let n = self.pending.len() as u64;
        let committed = self.tx.commit().await;
        // After the commit (even a failed one: it may have committed): caches of this
        // process read the database again on their next request. A transaction that only
        // appended audit rows (a denial, a read of the log) changed nothing they hold.
        if self.changed {
            crate::changes::committed();
        }
        committed?;
        AUDIT_WRITES.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Lock the chain head row (`UPDATE … RETURNING`: a row lock on PostgreSQL) and read it.
    async fn lock_head(&mut self) -> Result<(i64, String)> {
        let row = sqlx::query(
            "UPDATE console_audit_head SET last_id = last_id WHERE one = 1 RETURNING last_id, last_hash",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        Ok((row.try_get("last_id")?, row.try_get("last_hash")?))
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
    /// Any of these actors (operator ids an email or prefix resolved to, or literal
    /// actor strings). `Some(vec![])` matches nothing.
    pub actors: Option<Vec<String>>,
    /// Any of these actions (what a substring of an action name resolved to).
    /// `Some(vec![])` matches nothing.
    pub actions: Option<Vec<String>>,
    /// With `target`: the target's type too (`flag theme`).
    pub target_type: Option<String>,
    /// With `target`: the target's app too (`flag theme (web)`).
    pub target_app: Option<String>,
    /// Rows about these promotions match the target filter too (the promotions that
    /// changed a flag).
    pub target_promotions: Vec<String>,
    /// Free text: a case-insensitive substring of the action, target or reason.
    pub text: Option<String>,
    /// Allowed rows of these actions (reads) are left out.
    pub hide_actions: Vec<String>,
}

/// What free-text search reads: the action, the target and the reason, as one string
/// (the same expression as the trigram index of migration 0016 on PostgreSQL).
const AUDIT_SEARCH_TEXT: &str = "(action || ' ' || COALESCE(target_type, '') || ' ' || COALESCE(target_id, '') || ' ' || COALESCE(reason, ''))";

/// `s` as a LIKE pattern that matches it anywhere, with `\` as the escape character.
fn contains_pattern(s: &str) -> String {
    let mut out = String::from("%");
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
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
        if q.actors.as_ref().is_some_and(Vec::is_empty)
            || q.actions.as_ref().is_some_and(Vec::is_empty)
        {
            return Ok(Vec::new());
        }
        let mut w = Where::new(format!(
            "SELECT {COLUMNS} FROM console_audit_log WHERE 1 = 1"
        ));
        if let Some(v) = &q.actor {
            w.text(" AND actor = ?", v);
        }
        if let Some(v) = &q.action {
            // `flag.` finds every flag action; an exact name finds that action.
            if let Some(prefix) = v
                .strip_suffix('*')
                .or_else(|| v.ends_with('.').then_some(v.as_str()))
            {
                w.text(" AND action >= ?", prefix);
                w.text(" AND action < ?", &format!("{prefix}\u{10FFFF}"));
            } else {
                w.text(" AND action = ?", v);
            }
        }
        if let Some(v) = &q.actors {
            w.any(" AND actor IN (", v, ")");
        }
        if let Some(v) = &q.actions {
            w.any(" AND action IN (", v, ")");
        }
        if let Some(v) = q.outcome {
            w.text(" AND outcome = ?", v.as_str());
        }
        if let Some(v) = &q.target {
            w.text(" AND ((target_id = ?", v);
            if let Some(t) = &q.target_type {
                w.text(" AND target_type = ?", t);
            }
            if let Some(a) = &q.target_app {
                w.text(" AND target_app = ?", a);
            }
            w.sql.push(')');
            if !q.target_promotions.is_empty() {
                w.any(
                    " OR (target_type = 'promotion' AND target_id IN (",
                    &q.target_promotions,
                    "))",
                );
            }
            w.sql.push(')');
        }
        if let Some(t) = &q.text {
            let like = match self.backend {
                Backend::Postgres => "ILIKE",
                // SQLite's LIKE ignores ASCII case already.
                Backend::Sqlite => "LIKE",
            };
            // One expression over the searched columns: on PostgreSQL a trigram index
            // (migration 0016) answers it; elsewhere it is a scan in id order.
            w.text(
                &format!(" AND {AUDIT_SEARCH_TEXT} {like} ? ESCAPE '\\'"),
                &contains_pattern(t),
            );
        }
        if !q.hide_actions.is_empty() {
            w.any(
                " AND NOT (outcome = 'allowed' AND action IN (",
                &q.hide_actions,
                "))",
            );
        }
        if let Some(v) = q.since {
            w.int(" AND at >= ?", v);
        }
        if let Some(v) = q.until {
            w.int(" AND at < ?", v);
        }
        if let Some(v) = q.before {
            w.int(" AND id < ?", v);
        }
        let limit = q.limit.clamp(1, 500);
        w.sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
        let mut query = sqlx::query(AssertSqlSafe(w.sql));
        for b in w.binds {
            query = match b {
                Bind::Text(s) => query.bind(s),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(entry).collect()
    }

    /// One audit row by id.
    pub async fn audit_entry(&self, id: i64) -> Result<Option<AuditEntry>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM console_audit_log WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(entry).transpose()
    }

    /// Every action name the log holds, by a walk over the `(action, id)` index (one
    /// probe per distinct name, not a scan of the log).
    pub async fn audit_actions(&self) -> Result<Vec<String>> {
        let rows: Vec<Option<String>> = sqlx::query_scalar(
            "WITH RECURSIVE a(name) AS (
                SELECT MIN(action) FROM console_audit_log
                UNION ALL
                SELECT (SELECT MIN(action) FROM console_audit_log WHERE action > a.name)
                FROM a WHERE a.name IS NOT NULL
            ) SELECT name FROM a WHERE name IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().flatten().collect())
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

/// A `WHERE` clause under construction: each `?` becomes the next `$n`.
struct Where {
    sql: String,
    binds: Vec<Bind>,
}

impl Where {
    fn new(sql: String) -> Self {
        Where {
            sql,
            binds: Vec::new(),
        }
    }

    fn push(&mut self, clause: &str, b: Bind) {
        self.binds.push(b);
        self.sql
            .push_str(&clause.replace('?', &format!("${}", self.binds.len())));
    }

    fn text(&mut self, clause: &str, v: &str) {
        self.push(clause, Bind::Text(v.to_string()));
    }

    fn int(&mut self, clause: &str, v: i64) {
        self.push(clause, Bind::Int(v));
    }

    /// `open $a, $b, … close` over `values` (never empty: callers check).
    fn any(&mut self, open: &str, values: &[String], close: &str) {
        self.sql.push_str(open);
        for (i, v) in values.iter().enumerate() {
            self.text(if i == 0 { "?" } else { ", ?" }, v);
        }
        self.sql.push_str(close);
    }
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
