//! Frozen promotion reviews (issue 16): at queue time a promotion stores, per flag, the
//! prod definition it is based on and the structured diff against the proposed one
//! ([`raxx_core::flags::FlagReview`]), with the diff's hash. Pages and the API show that,
//! never a recomputation against prod as it is now. Audit rows reference the hash and
//! carry the diff itself only while it is small ([`INLINE_REVIEW_BYTES`]).
//!
//! Promotions queued before migration 0013 have no frozen review: [`Store::promotion_review`]
//! rebuilds their base from the flag history (versions are never reused, so version `v`
//! of a flag is one definition), and says that it did.

use std::collections::BTreeMap;

use raxx_core::flags::{Flag, FlagReview, review_flag};
use raxx_core::promotion::PromotedFlag;
use serde::Serialize;
use serde_json::{Value, json};

use crate::flags::PromotionRecord;
use crate::{Result, Store, StoreError};

/// Audit rows carry the review inline up to this many bytes of JSON; above it, only its
/// hash and where it is stored.
pub const INLINE_REVIEW_BYTES: usize = 4096;

/// Where a promotion's review came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewSource {
    /// Frozen when the promotion was queued.
    Frozen,
    /// Queued before reviews were frozen: the base rebuilt from the flag history.
    Reconstructed,
    /// Queued before reviews were frozen, and the history lacks a base version.
    NotRecorded,
}

/// A promotion's review as pages and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewRecord {
    pub source: ReviewSource,
    /// The stored hash (frozen reviews only).
    pub hash: Option<String>,
    pub flags: Vec<FlagReview>,
}

/// The reviews of `flags` against their `base` definitions, in the promotion's order.
pub fn reviews(base: &BTreeMap<String, Option<Flag>>, flags: &[PromotedFlag]) -> Vec<FlagReview> {
    flags
        .iter()
        .map(|f| {
            let old = base.get(&f.key).and_then(Option::as_ref);
            review_flag(&f.key, old, f.new.as_ref())
        })
        .collect()
}

/// The audit context of a review: its hash, and the review itself when it is small.
pub fn audit_review(promotion_id: i64, reviews: &[FlagReview], hash: &str) -> Value {
    let body = serde_json::to_value(reviews).unwrap_or(Value::Null);
    if body.to_string().len() <= INLINE_REVIEW_BYTES {
        json!({"hash": hash, "flags": body})
    } else {
        json!({
            "hash": hash,
            "stored_in": format!("console_flag_promotions.review of promotion {promotion_id}"),
            "flags": reviews.iter().map(|r| json!({"flag": r.flag, "mark": r.mark})).collect::<Vec<_>>(),
        })
    }
}

/// The definition of `app`'s `key` at `version`, from its history (or its live row).
pub(crate) async fn definition_at<'c, E>(
    conn: E,
    app: &str,
    key: &str,
    version: i64,
) -> Result<Option<Option<Flag>>>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let row: Option<Option<String>> = sqlx::query_scalar(
        "SELECT definition FROM console_flag_history WHERE app = $1 AND flag_key = $2 AND version = $3
         UNION ALL SELECT definition FROM console_flags WHERE app = $4 AND flag_key = $5 AND version = $6
         LIMIT 1",
    )
    .bind(app)
    .bind(key)
    .bind(version)
    .bind(app)
    .bind(key)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    row.map(|definition| {
        definition
            .map(|d| {
                serde_json::from_str(&d).map_err(|e| {
                    StoreError::Invalid(format!("flag `{key}` v{version} is not readable: {e}"))
                })
            })
            .transpose()
    })
    .transpose()
}

impl Store {
    /// The review of a promotion: the frozen one, or (for promotions from before reviews
    /// were frozen) one rebuilt from the flag history, or none.
    pub async fn promotion_review(&self, record: &PromotionRecord) -> Result<ReviewRecord> {
        if let Some(flags) = &record.review {
            return Ok(ReviewRecord {
                source: ReviewSource::Frozen,
                hash: record.review_hash.clone(),
                flags: flags.clone(),
            });
        }
        let p = &record.promotion;
        let mut base = BTreeMap::new();
        for f in &p.flags {
            let old = match f.base_version {
                None => None,
                Some(v) => match definition_at(&self.pool, &p.target_app, &f.key, v).await? {
                    Some(def) => def,
                    None => {
                        return Ok(ReviewRecord {
                            source: ReviewSource::NotRecorded,
                            hash: None,
                            flags: Vec::new(),
                        });
                    }
                },
            };
            base.insert(f.key.clone(), old);
        }
        Ok(ReviewRecord {
            source: ReviewSource::Reconstructed,
            hash: None,
            flags: reviews(&base, &p.flags),
        })
    }
}
