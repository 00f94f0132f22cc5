//! Promotions (SPEC §7): queue, read, approve, reject, expire — each in one audited
//! transaction.

use std::collections::BTreeMap;

use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::{FlagChange, diff_flags};
use raxx_core::flags::{FlagReview, review_hash};
use raxx_core::promotion::{
    self, NewPromotion, PromotedFlag, Promotion, PromotionError, PromotionStatus,
};
use raxx_core::restore::PromotionKind;
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{AuditTx, Result, Store, StoreError, now_ms};

use super::*;

pub(super) const PROMOTION_COLS: &str = "id, target_app, requested_by, reason, flags, content_hash, status, created_at, expires_at, decided_by, decided_at, decision_reason, applied_at, kind, review, review_hash";

pub(super) fn promotion_record(row: &AnyRow) -> Result<PromotionRecord> {
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

impl Store {
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
pub(super) fn base_versions(p: &Promotion) -> BTreeMap<String, Option<i64>> {
    p.flags
        .iter()
        .map(|f| (f.key.clone(), f.base_version))
        .collect()
}

pub(super) async fn promotion_in<'c, E>(
    conn: E,
    id: i64,
    apps: &[String],
) -> Result<Option<PromotionRecord>>
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

pub(super) async fn due_promotions<'c, E>(conn: E, apps: &[String], now: i64) -> Result<Vec<i64>>
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

impl AuditTx {
    /// Move a pending promotion (or an approved one, inside an approval) to `status`.
    pub(super) async fn set_status(
        &mut self,
        id: i64,
        status: PromotionStatus,
        now: i64,
    ) -> Result<bool> {
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
    pub(super) async fn refuse<T>(
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
