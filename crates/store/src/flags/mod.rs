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

pub mod history;
pub mod promotions;
pub mod state;

use std::collections::BTreeMap;

use raxx_core::flags::FlagReview;
use raxx_core::flags::{AppFlags, Flag, FlagChange};
use raxx_core::promotion::Promotion;
use raxx_core::restore::PromotionKind;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, StoreError};

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

/// `$first, $first+1, …` for an `IN (…)` list of `n` items.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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
