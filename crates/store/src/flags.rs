//! Feature flags and prod promotions (SPEC §7): each app's live flag state with per-flag
//! versions, the history of every change, the last applied flags file, and the promotion
//! queue with approvals bound to content hash and base versions.
//!
//! Every change is one [`AuditTx`]: the flag rows, their history, the app's revision
//! counter and the audit row commit together. The promotion queue is always read through
//! an `apps` filter: the apps of this console's env, taken from config at query time.
//!
//! Refusals of promotion decisions (`self_approval`, `stale`, …) come back as the inner
//! `Err(PromotionError)` of `Result<Result<_, PromotionError>>`, and are audited (`denied`,
//! or `error` for `stale`) in the same call; the outer error is storage failing.

use std::collections::BTreeMap;

use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::{AppFlags, Flag, FlagChange, diff_flags};
use raxx_core::flags::{FlagReview, review_hash};
use raxx_core::promotion::{
    self, NewPromotion, PromotedFlag, Promotion, PromotionError, PromotionStatus,
};
use raxx_core::restore::PromotionKind;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{AuditTx, Result, Store, StoreError, now_ms};

/// One flag as stored, with its version and last change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFlag {
    pub flag: Flag,
    pub version: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// An app's whole flag state. `revision` grows with every change of any of its flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlagState {
    pub app: String,
    pub revision: i64,
    pub flags: BTreeMap<String, StoredFlag>,
}

impl FlagState {
    /// The definitions alone, as OFREP evaluates them.
    pub fn app_flags(&self) -> AppFlags {
        AppFlags {
            app: self.app.clone(),
            flags: self
                .flags
                .iter()
                .map(|(k, s)| (k.clone(), s.flag.clone()))
                .collect(),
        }
    }

    /// Flag key → version: what a promotion's base versions are checked against.
    pub fn versions(&self) -> BTreeMap<String, i64> {
        self.flags
            .iter()
            .map(|(k, s)| (k.clone(), s.version))
            .collect()
    }
}

/// How a flag changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A flags file (staging).
    Apply,
    /// An applied promotion (prod).
    Promotion,
    /// The kill switch (prod).
    Kill,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Apply => "apply",
            Via::Promotion => "promotion",
            Via::Kill => "kill",
        }
    }
}

/// One row of a flag's history. `definition` is `None` when the change removed the flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub app: String,
    pub key: String,
    pub version: i64,
    pub definition: Option<Flag>,
    pub changed_by: String,
    pub changed_at: i64,
    pub via: String,
    pub promotion_id: Option<i64>,
    pub reason: Option<String>,
}

/// The last flags file applied to an app, and what that apply changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastFile {
    /// The file as JSON (`raxx_core::flags::to_file_json`).
    pub file: Value,
    /// The changes it made: the audit-safe form of [`FlagChange`]s (see [`diff_json`]).
    pub diff: Value,
    pub applied_at: i64,
    pub applied_by: String,
}

/// A promotion with its decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotionRecord {
    #[serde(flatten)]
    pub promotion: Promotion,
    pub decided_by: Option<i64>,
    pub decided_at: Option<i64>,
    pub decision_reason: Option<String>,
    pub applied_at: Option<i64>,
    /// Where its flags came from (`staging`, or a `restore` after a kill).
    pub kind: PromotionKind,
    /// The review frozen at queue time (`None` for promotions from before migration 0013;
    /// see [`Store::promotion_review`]).
    #[serde(skip)]
    pub review: Option<Vec<FlagReview>>,
    pub review_hash: Option<String>,
}

/// What an approval applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    pub promotion_id: i64,
    pub target_app: String,
    /// Flag key → version after the apply (absent: the promotion removed the flag).
    pub versions: BTreeMap<String, Option<i64>>,
    pub changes: Vec<FlagChange>,
}

/// What the kill switch did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Killed {
    pub app: String,
    pub key: String,
    pub version: i64,
    /// `false` when the flag was already disabled (audited, nothing written).
    pub changed: bool,
}

/// [`FlagChange`]s as JSON that survives the audit log's redaction (which blanks any
/// field named `key`): `[{"flag","kind","summary"}]`.
pub fn diff_json(changes: &[FlagChange]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|c| json!({"flag": c.key, "kind": c.kind, "summary": c.summary}))
            .collect(),
    )
}

fn to_json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("cannot encode: {e}")))
}

fn parse_flag(text: &str, app: &str, key: &str) -> Result<Flag> {
    serde_json::from_str(text).map_err(|e| {
        StoreError::Invalid(format!(
            "stored flag `{key}` of app `{app}` is not readable: {e}"
        ))
    })
}

fn stored_flag(row: &AnyRow, app: &str) -> Result<(String, StoredFlag)> {
    let key: String = row.try_get("flag_key")?;
    let definition: String = row.try_get("definition")?;
    let flag = parse_flag(&definition, app, &key)?;
    Ok((
        key,
        StoredFlag {
            flag,
            version: row.try_get("version")?,
            updated_at: row.try_get("updated_at")?,
            updated_by: row.try_get("updated_by")?,
        },
    ))
}

fn history_entry(row: &AnyRow) -> Result<HistoryEntry> {
    let app: String = row.try_get("app")?;
    let key: String = row.try_get("flag_key")?;
    let definition: Option<String> = row.try_get("definition")?;
    Ok(HistoryEntry {
        id: row.try_get("id")?,
        definition: definition.map(|d| parse_flag(&d, &app, &key)).transpose()?,
        version: row.try_get("version")?,
        changed_by: row.try_get("changed_by")?,
        changed_at: row.try_get("changed_at")?,
        via: row.try_get("via")?,
        promotion_id: row.try_get("promotion_id")?,
        reason: row.try_get("reason")?,
        app,
        key,
    })
}

const PROMOTION_COLS: &str = "id, target_app, requested_by, reason, flags, content_hash, status, created_at, expires_at, decided_by, decided_at, decision_reason, applied_at, kind, review, review_hash";

fn promotion_record(row: &AnyRow) -> Result<PromotionRecord> {
    let id: i64 = row.try_get("id")?;
    let flags: String = row.try_get("flags")?;
    let flags: Vec<PromotedFlag> = serde_json::from_str(&flags)
        .map_err(|e| StoreError::Invalid(format!("promotion {id} has unreadable flags: {e}")))?;
    let status: String = row.try_get("status")?;
    let status: PromotionStatus = status
        .parse()
        .map_err(|e: promotion::UnknownStatus| StoreError::Invalid(e.to_string()))?;
    let kind: String = row.try_get("kind")?;
    let review: Option<String> = row.try_get("review")?;
    let review = review
        .map(|r| serde_json::from_str::<Vec<FlagReview>>(&r))
        .transpose()
        .map_err(|e| {
            StoreError::Invalid(format!("promotion {id} has an unreadable review: {e}"))
        })?;
    Ok(PromotionRecord {
        kind: kind.parse().map_err(StoreError::Invalid)?,
        review,
        review_hash: row.try_get("review_hash")?,
        promotion: Promotion {
            id,
            target_app: row.try_get("target_app")?,
            requested_by: row.try_get("requested_by")?,
            reason: row.try_get("reason")?,
            flags,
            content_hash: row.try_get("content_hash")?,
            status,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        },
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        decision_reason: row.try_get("decision_reason")?,
        applied_at: row.try_get("applied_at")?,
    })
}

/// `$first, $first+1, …` for an `IN (…)` list of `n` items.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// The cheap "has anything changed?" read: the app's revision (0 before any change).
    pub async fn flag_revision(&self, app: &str) -> Result<i64> {
        let rev: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM console_flag_apps WHERE app = $1")
                .bind(app)
                .fetch_optional(&self.pool)
                .await?;
        Ok(rev.unwrap_or(0))
    }

    /// An app's flag state with versions. The revision is read first, so a change racing
    /// this read can only make the returned revision older than the flags, never newer.
    pub async fn flag_state(&self, app: &str) -> Result<FlagState> {
        let revision = self.flag_revision(app).await?;
        let rows = sqlx::query(
            "SELECT flag_key, definition, version, updated_at, updated_by FROM console_flags WHERE app = $1 ORDER BY flag_key",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await?;
        let flags = rows
            .iter()
            .map(|r| stored_flag(r, app))
            .collect::<Result<_>>()?;
        Ok(FlagState {
            app: app.to_owned(),
            revision,
            flags,
        })
    }

    /// A flag's changes, newest first.
    pub async fn flag_history(
        &self,
        app: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, app, flag_key, version, definition, changed_by, changed_at, via, promotion_id, reason FROM console_flag_history WHERE app = $1 AND flag_key = $2 ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        )))
        .bind(app)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(history_entry).collect()
    }

    /// The last flags file applied to `app`, if any.
    pub async fn last_applied_file(&self, app: &str) -> Result<Option<LastFile>> {
        let row = sqlx::query(
            "SELECT last_file, last_file_diff, last_file_at, last_file_by FROM console_flag_apps WHERE app = $1",
        )
        .bind(app)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let file: Option<String> = row.try_get("last_file")?;
        let Some(file) = file else { return Ok(None) };
        let diff: Option<String> = row.try_get("last_file_diff")?;
        let parse = |s: &str| serde_json::from_str(s).unwrap_or(Value::Null);
        Ok(Some(LastFile {
            file: parse(&file),
            diff: diff.as_deref().map(parse).unwrap_or(Value::Null),
            applied_at: row.try_get::<Option<i64>, _>("last_file_at")?.unwrap_or(0),
            applied_by: row
                .try_get::<Option<String>, _>("last_file_by")?
                .unwrap_or_default(),
        }))
    }

    /// Replace an app's whole flag state with a flags file, in one transaction, audited by
    /// `event` (its target, app and a `diff` are filled in here). Unchanged flags keep
    /// their versions. Returns the changes.
    pub async fn apply_flags(
        &self,
        flags: &AppFlags,
        by: &str,
        event: AuditEvent,
    ) -> Result<Vec<FlagChange>> {
        Ok(self.apply_flags_state(flags, by, event).await?.0)
    }

    /// [`Store::apply_flags`], also returning the app's state as this transaction committed
    /// it (no second read).
    pub async fn apply_flags_state(
        &self,
        flags: &AppFlags,
        by: &str,
        event: AuditEvent,
    ) -> Result<(Vec<FlagChange>, FlagState)> {
        flags
            .validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let now = now_ms();
        let (changes, mut state) = tx.replace_flags(flags, by, now).await?;
        let file = raxx_core::flags::to_file_json(flags);
        let diff = diff_json(&changes);
        // The revision bump and the last file in one statement.
        state.revision = sqlx::query_scalar(
            "INSERT INTO console_flag_apps (app, revision, updated_at, last_file, last_file_diff, last_file_at, last_file_by) VALUES ($1, 1, $2, $3, $4, $5, $6)
             ON CONFLICT (app) DO UPDATE SET revision = console_flag_apps.revision + 1, updated_at = excluded.updated_at, last_file = excluded.last_file, last_file_diff = excluded.last_file_diff, last_file_at = excluded.last_file_at, last_file_by = excluded.last_file_by
             RETURNING revision",
        )
        .bind(&flags.app)
        .bind(now)
        .bind(file.to_string())
        .bind(diff.to_string())
        .bind(now)
        .bind(by)
        .fetch_one(tx.conn())
        .await?;
        tx.record(
            event
                .target("flags", flags.app.clone())
                .app(flags.app.clone())
                .with("flags", flags.flags.len() as i64)
                .with("changed", changes.len() as i64)
                .with("diff", diff),
        )
        .await?;
        tx.commit().await?;
        Ok((changes, state))
    }

    /// The kill switch: disable a flag at once, audited by `event` with `bypass: true`.
    pub async fn kill_flag(
        &self,
        app: &str,
        key: &str,
        reason: &str,
        by: &str,
        event: AuditEvent,
    ) -> Result<Killed> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::Invalid(
                "a reason is required to disable a flag without review".into(),
            ));
        }
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let state = tx.flag_state(app).await?;
        let Some(current) = state.flags.get(key) else {
            tx.rollback().await?;
            return Err(StoreError::NotFound(format!("flag `{key}` of app `{app}`")));
        };
        let mut killed = Killed {
            app: app.to_owned(),
            key: key.to_owned(),
            version: current.version,
            changed: false,
        };
        if current.flag.enabled {
            let mut flag = current.flag.clone();
            flag.enabled = false;
            let change = FlagWrite {
                via: Via::Kill,
                promotion_id: None,
                reason: Some(reason),
            };
            killed.version = tx
                .write_flag(app, key, Some(&flag), by, &change, now_ms())
                .await?;
            tx.bump_revision(app).await?;
            killed.changed = true;
        }
        tx.record(
            event
                .target("flag", key)
                .app(app)
                .reason(reason)
                .with("bypass", true)
                .with("flag", key)
                .with("from_version", current.version)
                .with("version", killed.version)
                .with("already_disabled", !killed.changed),
        )
        .await?;
        tx.commit().await?;
        Ok(killed)
    }

    /// Queue a promotion of staging flags (status `pending`), audited by `event`.
    pub async fn queue_promotion(
        &self,
        new: NewPromotion,
        diff: &[FlagChange],
        event: AuditEvent,
    ) -> Result<Promotion> {
        self.queue_promotion_as(new, diff, PromotionKind::Staging, event)
            .await
    }

    /// Queue a promotion of `kind`, freezing its review: in the same transaction, each
    /// flag's base definition (prod at its base version, read from the history) and the
    /// structured diff to the proposed one are stored with the diff's hash.
    pub async fn queue_promotion_as(
        &self,
        new: NewPromotion,
        diff: &[FlagChange],
        kind: PromotionKind,
        event: AuditEvent,
    ) -> Result<Promotion> {
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let mut base = BTreeMap::new();
        for f in &new.flags {
            let old = match f.base_version {
                None => None,
                Some(v) => crate::review::definition_at(tx.conn(), &new.target_app, &f.key, v)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "prod flag `{}` has no version {v} to base a promotion on",
                            f.key
                        ))
                    })?,
            };
            base.insert(f.key.clone(), old);
        }
        let reviews = crate::review::reviews(&base, &new.flags);
        let hash = review_hash(&reviews);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO console_flag_promotions (target_app, requested_by, reason, flags, content_hash, status, created_at, expires_at, kind, base_flags, review, review_hash) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&new.target_app)
        .bind(new.requested_by)
        .bind(&new.reason)
        .bind(to_json(&new.flags)?)
        .bind(&new.content_hash)
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(kind.as_str())
        .bind(to_json(&base)?)
        .bind(to_json(&reviews)?)
        .bind(&hash)
        .fetch_one(tx.conn())
        .await?;
        let promotion = new.with_id(id);
        tx.record(
            event
                .target("promotion", id.to_string())
                .app(promotion.target_app.clone())
                .reason(promotion.reason.clone())
                .with("kind", kind.as_str())
                .with("content_hash", promotion.content_hash.clone())
                .with("base_versions", json!(base_versions(&promotion)))
                .with("diff", diff_json(diff))
                .with("review", crate::review::audit_review(id, &reviews, &hash)),
        )
        .await?;
        tx.commit().await?;
        Ok(promotion)
    }

    /// Promotions of `apps` (this env's apps), newest first, optionally of one status.
    pub async fn promotions(
        &self,
        apps: &[String],
        status: Option<PromotionStatus>,
        limit: u32,
    ) -> Result<Vec<PromotionRecord>> {
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = format!(
            "SELECT {PROMOTION_COLS} FROM console_flag_promotions WHERE target_app IN ({})",
            placeholders(1, apps.len())
        );
        if status.is_some() {
            sql.push_str(&format!(" AND status = ${}", apps.len() + 1));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.clamp(1, 500)));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for app in apps {
            query = query.bind(app);
        }
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(promotion_record).collect()
    }

    /// One promotion, if it targets one of `apps`.
    /// Ids of the promotions that carry flag `key` (of `app`, when given): what the audit
    /// log's target filter adds for a flag.
    pub async fn promotions_touching(&self, key: &str, app: Option<&str>) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT id, target_app, flags FROM console_flag_promotions")
            .fetch_all(&self.pool)
            .await?;
        let mut ids = Vec::new();
        for row in rows {
            let target_app: String = row.try_get("target_app")?;
            if app.is_some_and(|a| a != target_app) {
                continue;
            }
            let flags: String = row.try_get("flags")?;
            let flags: Vec<PromotedFlag> = serde_json::from_str(&flags).unwrap_or_default();
            if flags.iter().any(|f| f.key == key) {
                ids.push(row.try_get("id")?);
            }
        }
        Ok(ids)
    }

    pub async fn promotion(&self, id: i64, apps: &[String]) -> Result<Option<PromotionRecord>> {
        promotion_in(&self.pool, id, apps).await
    }

    /// Approve a pending promotion and apply it at once (SPEC §7). In one transaction:
    /// refuse self-approval, expiry, edited content and `reviewed_hash` ≠ the content hash;
    /// claim it with a conditional `UPDATE … WHERE status = 'pending'` (so two approvals at
    /// the same moment apply once); re-check prod's base versions (else the promotion
    /// becomes `stale`); write the flags, the approval and the audit rows.
    pub async fn approve_promotion(
        &self,
        id: i64,
        approver: i64,
        approver_name: &str,
        reviewed_hash: Option<&str>,
        apps: &[String],
        event: AuditEvent,
    ) -> Result<Result<Applied, PromotionError>> {
        let now = now_ms();
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let Some(record) = promotion_in(tx.conn(), id, apps).await? else {
            tx.rollback().await?;
            return Err(StoreError::NotFound(format!("promotion {id}")));
        };
        let review = record.review_hash.as_ref().map(|hash| {
            crate::review::audit_review(id, record.review.as_deref().unwrap_or(&[]), hash)
        });
        let p = record.promotion;
        let event = event
            .target("promotion", id.to_string())
            .app(p.target_app.clone())
            .with("content_hash", p.content_hash.clone())
            .with("kind", record.kind.as_str())
            .with("review", review.unwrap_or(Value::Null));
        let decision = promotion::decide_approval(&p, approver, now)
            .and_then(|()| reviewed_hash.map_or(Ok(()), |h| promotion::check_content_hash(&p, h)));
        // Two people, not two accounts: neither may be in the other's invite line.
        let decision = match decision {
            Ok(()) => {
                let requester = crate::identity::invite_line(tx.conn(), p.requested_by).await?;
                let reviewer = crate::identity::invite_line(tx.conn(), approver).await?;
                promotion::check_reviewer_independence(&requester, &reviewer)
            }
            Err(e) => Err(e),
        };
        if let Err(refusal) = decision {
            if refusal == PromotionError::Expired {
                tx.set_status(id, PromotionStatus::Expired, now).await?;
            }
            return tx.refuse(event, refusal).await;
        }
        let claimed = sqlx::query(
            "UPDATE console_flag_promotions SET status = 'approved', decided_by = $1, decided_at = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(approver)
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if claimed == 0 {
            let status = promotion_in(tx.conn(), id, apps)
                .await?
                .map_or(PromotionStatus::Pending, |r| r.promotion.status);
            return tx.refuse(event, PromotionError::NotPending(status)).await;
        }
        let state = tx.flag_state(&p.target_app).await?;
        if let Err(stale) = promotion::check_base_versions(&p, &state.versions()) {
            tx.set_status(id, PromotionStatus::Stale, now).await?;
            let current = json!(
                p.flags
                    .iter()
                    .map(|f| (f.key.clone(), state.flags.get(&f.key).map(|s| s.version)))
                    .collect::<BTreeMap<_, _>>()
            );
            let event = event.with("current_versions", current);
            return tx.refuse(event, stale).await;
        }
        let before = state.app_flags();
        let after = promotion::apply(&p, &before);
        let changes = diff_flags(&before, &after);
        let mut versions = BTreeMap::new();
        let write = FlagWrite {
            via: Via::Promotion,
            promotion_id: Some(id),
            reason: Some(&p.reason),
        };
        for promoted in &p.flags {
            let unchanged =
                state.flags.get(&promoted.key).map(|s| &s.flag) == promoted.new.as_ref();
            let version = if unchanged {
                state.flags.get(&promoted.key).map(|s| s.version)
            } else {
                let v = tx
                    .write_flag(
                        &p.target_app,
                        &promoted.key,
                        promoted.new.as_ref(),
                        approver_name,
                        &write,
                        now,
                    )
                    .await?;
                promoted.new.as_ref().map(|_| v)
            };
            versions.insert(promoted.key.clone(), version);
        }
        tx.bump_revision(&p.target_app).await?;
        sqlx::query(
            "INSERT INTO console_flag_approvals (promotion_id, approved_by, content_hash, base_versions, approved_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(approver)
        .bind(&p.content_hash)
        .bind(json!(base_versions(&p)).to_string())
        .bind(now)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "UPDATE console_flag_promotions SET status = 'applied', applied_at = $1 WHERE id = $2 AND status = 'approved'",
        )
        .bind(now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.record(
            event
                .clone()
                .with("requested_by", p.requested_by)
                .with("base_versions", json!(base_versions(&p))),
        )
        .await?;
        let mut apply_event = event.with("diff", diff_json(&changes)).with(
            "versions",
            json!(
                versions
                    .iter()
                    .map(|(k, v)| json!({"flag": k, "version": v}))
                    .collect::<Vec<_>>()
            ),
        );
        apply_event.action = "flag.promotion.apply".into();
        tx.record(apply_event).await?;
        tx.commit().await?;
        Ok(Ok(Applied {
            promotion_id: id,
            target_app: p.target_app,
            versions,
            changes,
        }))
    }

    /// Reject (or, by the requester, withdraw) a pending promotion with a reason.
    pub async fn reject_promotion(
        &self,
        id: i64,
        rejecter: i64,
        reason: &str,
        apps: &[String],
        event: AuditEvent,
    ) -> Result<Result<PromotionRecord, PromotionError>> {
        let now = now_ms();
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let Some(record) = promotion_in(tx.conn(), id, apps).await? else {
            tx.rollback().await?;
            return Err(StoreError::NotFound(format!("promotion {id}")));
        };
        let p = &record.promotion;
        let event = event
            .target("promotion", id.to_string())
            .app(p.target_app.clone());
        if let Err(refusal) = promotion::decide_reject(p, rejecter, reason, now) {
            if refusal == PromotionError::Expired {
                tx.set_status(id, PromotionStatus::Expired, now).await?;
            }
            return tx.refuse(event, refusal).await;
        }
        let reason = reason.trim();
        let done = sqlx::query(
            "UPDATE console_flag_promotions SET status = 'rejected', decided_by = $1, decided_at = $2, decision_reason = $3 WHERE id = $4 AND status = 'pending'",
        )
        .bind(rejecter)
        .bind(now)
        .bind(reason)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if done == 0 {
            let status = promotion_in(tx.conn(), id, apps)
                .await?
                .map_or(PromotionStatus::Pending, |r| r.promotion.status);
            return tx.refuse(event, PromotionError::NotPending(status)).await;
        }
        tx.record(event.reason(reason).with("own", rejecter == p.requested_by))
            .await?;
        let updated = promotion_in(tx.conn(), id, apps).await?;
        tx.commit().await?;
        updated
            .map(Ok)
            .ok_or_else(|| StoreError::NotFound(format!("promotion {id}")))
    }

    /// Expire pending promotions of `apps` whose review window ended by `now` (the
    /// `promotion-expiry` job). One audit row (`flag.promotion.expire`, by `actor`, e.g.
    /// `system:promotion-expiry`) per promotion, all in one transaction. Returns their ids.
    pub async fn expire_promotions(
        &self,
        apps: &[String],
        actor: &str,
        now: i64,
    ) -> Result<Vec<i64>> {
        if apps.is_empty() {
            return Ok(Vec::new());
        }
        if due_promotions(&self.pool, apps, now).await?.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let ids = due_promotions(tx.conn(), apps, now).await?;
        let mut expired = Vec::new();
        for id in ids {
            let Some(record) = promotion_in(tx.conn(), id, apps).await? else {
                continue;
            };
            if tx.set_status(id, PromotionStatus::Expired, now).await? {
                let p = record.promotion;
                tx.record(
                    AuditEvent::new(actor, "flag.promotion.expire", Outcome::Allowed)
                        .target("promotion", id.to_string())
                        .app(p.target_app)
                        .with("created_at", p.created_at)
                        .with("expires_at", p.expires_at),
                )
                .await?;
                expired.push(id);
            }
        }
        if expired.is_empty() {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(expired)
    }
}

/// `{flag: base_version}` of a promotion (what its approval is bound to besides the hash).
fn base_versions(p: &Promotion) -> BTreeMap<String, Option<i64>> {
    p.flags
        .iter()
        .map(|f| (f.key.clone(), f.base_version))
        .collect()
}

async fn promotion_in<'c, E>(conn: E, id: i64, apps: &[String]) -> Result<Option<PromotionRecord>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    if apps.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {PROMOTION_COLS} FROM console_flag_promotions WHERE id = $1 AND target_app IN ({})",
        placeholders(2, apps.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(id);
    for app in apps {
        query = query.bind(app);
    }
    query
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(promotion_record)
        .transpose()
}

async fn due_promotions<'c, E>(conn: E, apps: &[String], now: i64) -> Result<Vec<i64>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let sql = format!(
        "SELECT id FROM console_flag_promotions WHERE status = 'pending' AND expires_at <= $1 AND target_app IN ({}) ORDER BY id",
        placeholders(2, apps.len())
    );
    let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(now);
    for app in apps {
        query = query.bind(app);
    }
    Ok(query.fetch_all(conn).await?)
}

/// The [`Store::begin_scoped`] scope of every flags writer: the flags, their history, the
/// apps' revisions and last files, promotions and approvals are written only under it.
const FLAGS_SCOPE: &str = "flags";

/// Why a flag row is written: recorded in its history.
struct FlagWrite<'a> {
    via: Via,
    promotion_id: Option<i64>,
    reason: Option<&'a str>,
}

impl AuditTx {
    /// An app's flag state, read inside this transaction.
    pub async fn flag_state(&mut self, app: &str) -> Result<FlagState> {
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM console_flag_apps WHERE app = $1")
                .bind(app)
                .fetch_optional(self.conn())
                .await?;
        let rows = sqlx::query(
            "SELECT flag_key, definition, version, updated_at, updated_by FROM console_flags WHERE app = $1 ORDER BY flag_key",
        )
        .bind(app)
        .fetch_all(self.conn())
        .await?;
        let flags = rows
            .iter()
            .map(|r| stored_flag(r, app))
            .collect::<Result<_>>()?;
        Ok(FlagState {
            app: app.to_owned(),
            revision: revision.unwrap_or(0),
            flags,
        })
    }

    /// Replace `new.app`'s whole flag state: flags absent from `new` are removed, changed
    /// ones get a new version, equal ones are left alone. Returns the changes (in key order)
    /// and the flags as they now stand; the caller bumps the revision (the returned state
    /// carries the old one).
    async fn replace_flags(
        &mut self,
        new: &AppFlags,
        by: &str,
        now: i64,
    ) -> Result<(Vec<FlagChange>, FlagState)> {
        let mut state = self.flag_state(&new.app).await?;
        let changes = diff_flags(&state.app_flags(), new);
        let write = FlagWrite {
            via: Via::Apply,
            promotion_id: None,
            reason: None,
        };
        for change in &changes {
            let flag = new.flags.get(&change.key);
            let version = self
                .write_flag(&new.app, &change.key, flag, by, &write, now)
                .await?;
            match flag {
                Some(flag) => {
                    state.flags.insert(
                        change.key.clone(),
                        StoredFlag {
                            flag: flag.clone(),
                            version,
                            updated_at: now,
                            updated_by: by.to_owned(),
                        },
                    );
                }
                None => {
                    state.flags.remove(&change.key);
                }
            }
        }
        Ok((changes, state))
    }

    /// Write one flag (or remove it with `None`) at the next version, with a history row.
    async fn write_flag(
        &mut self,
        app: &str,
        key: &str,
        flag: Option<&Flag>,
        by: &str,
        why: &FlagWrite<'_>,
        now: i64,
    ) -> Result<i64> {
        // The highest version this key ever had, in its history or its row: one read.
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(v) FROM (SELECT MAX(version) AS v FROM console_flag_history WHERE app = $1 AND flag_key = $2
             UNION ALL SELECT version AS v FROM console_flags WHERE app = $3 AND flag_key = $4) AS known",
        )
        .bind(app)
        .bind(key)
        .bind(app)
        .bind(key)
        .fetch_one(self.conn())
        .await?;
        let version = last.unwrap_or(0) + 1;
        let definition = flag.map(to_json).transpose()?;
        match (flag, &definition) {
            (Some(flag), Some(definition)) => {
                sqlx::query(
                    "INSERT INTO console_flags (app, flag_key, definition, version, enabled, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (app, flag_key) DO UPDATE SET definition = excluded.definition, version = excluded.version, enabled = excluded.enabled, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )
                .bind(app)
                .bind(key)
                .bind(definition)
                .bind(version)
                .bind(i64::from(flag.enabled))
                .bind(now)
                .bind(by)
                .execute(self.conn())
                .await?;
            }
            _ => {
                sqlx::query("DELETE FROM console_flags WHERE app = $1 AND flag_key = $2")
                    .bind(app)
                    .bind(key)
                    .execute(self.conn())
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO console_flag_history (app, flag_key, version, definition, changed_by, changed_at, via, promotion_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(app)
        .bind(key)
        .bind(version)
        .bind(definition)
        .bind(by)
        .bind(now)
        .bind(why.via.as_str())
        .bind(why.promotion_id)
        .bind(why.reason)
        .execute(self.conn())
        .await?;
        Ok(version)
    }

    async fn bump_revision(&mut self, app: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_flag_apps (app, revision, updated_at) VALUES ($1, 1, $2)
             ON CONFLICT (app) DO UPDATE SET revision = console_flag_apps.revision + 1, updated_at = excluded.updated_at",
        )
        .bind(app)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Move a pending promotion (or an approved one, inside an approval) to `status`.
    async fn set_status(&mut self, id: i64, status: PromotionStatus, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE console_flag_promotions SET status = $1, decided_at = COALESCE(decided_at, $2) WHERE id = $3 AND status IN ('pending', 'approved')",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(self.conn())
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    /// Record a refused decision (`denied`; `error` when prod moved under a promotion) and
    /// commit whatever status change came with it.
    async fn refuse<T>(
        mut self,
        mut event: AuditEvent,
        refusal: PromotionError,
    ) -> Result<Result<T, PromotionError>> {
        event.outcome = match refusal {
            PromotionError::Stale { .. } => Outcome::Error,
            _ => Outcome::Denied,
        };
        // A denied row names its code under `denial` (the one denial layout, as the gate's);
        // an error row under `error`.
        let key = match event.outcome {
            Outcome::Denied => "denial",
            _ => "error",
        };
        self.record(event.reason(refusal.to_string()).with(key, refusal.code()))
            .await?;
        self.commit().await?;
        Ok(Err(refusal))
    }
}
