//! Prod flag promotions (SPEC §7): a `console-flag-admin` queues staging flags for a prod
//! app; another one approves (applied at once) or rejects. Pure decisions; the store runs
//! them inside the transaction that records the outcome.
//!
//! ```text
//! pending ──approve──▶ approved ──apply──▶ applied
//!    │                     └──base versions moved──▶ stale
//!    ├──reject──▶ rejected
//!    └──7 days──▶ expired
//! ```
//!
//! An approval is bound to the promotion's content hash (target app, flags, base versions):
//! [`decide_approval`] refuses a promotion whose stored content no longer matches its hash,
//! and [`check_content_hash`] refuses an approval of content other than what the approver
//! saw. The requester may reject (withdraw) their own promotion; only approval needs a
//! second person.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::flags::diff::canonical_json;
use crate::flags::{AppFlags, Flag};

/// How long a promotion may wait for review.
pub const PENDING_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromotionStatus {
    Pending,
    Approved,
    Applied,
    Rejected,
    Stale,
    Expired,
}

impl PromotionStatus {
    pub const ALL: [PromotionStatus; 6] = [
        PromotionStatus::Pending,
        PromotionStatus::Approved,
        PromotionStatus::Applied,
        PromotionStatus::Rejected,
        PromotionStatus::Stale,
        PromotionStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PromotionStatus::Pending => "pending",
            PromotionStatus::Approved => "approved",
            PromotionStatus::Applied => "applied",
            PromotionStatus::Rejected => "rejected",
            PromotionStatus::Stale => "stale",
            PromotionStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for PromotionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown promotion status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for PromotionStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PromotionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// One flag of a promotion: its new definition (`None` deletes it from prod) and the prod
/// version the diff was based on (`None`: the flag was absent from prod).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotedFlag {
    pub key: String,
    pub new: Option<Flag>,
    pub base_version: Option<i64>,
}

/// A queued promotion, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: i64,
    pub target_app: String,
    /// Operator id of the requester.
    pub requested_by: i64,
    pub reason: String,
    pub flags: Vec<PromotedFlag>,
    pub content_hash: String,
    pub status: PromotionStatus,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
}

/// A promotion about to be queued: everything but the id the store assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPromotion {
    pub target_app: String,
    pub requested_by: i64,
    pub reason: String,
    pub flags: Vec<PromotedFlag>,
    pub content_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl NewPromotion {
    /// Checks and prices a promotion request: a reason, at least one flag, each key once,
    /// every new definition valid and filed under its own key. Flags are kept in key order.
    pub fn queue(
        target_app: &str,
        requested_by: i64,
        reason: &str,
        mut flags: Vec<PromotedFlag>,
        now: i64,
    ) -> Result<Self, PromotionError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(PromotionError::ReasonRequired);
        }
        if flags.is_empty() {
            return Err(PromotionError::Invalid(
                "a promotion needs at least one flag".to_owned(),
            ));
        }
        flags.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(pair) = flags.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(PromotionError::Invalid(format!(
                "flag `{}` is listed twice",
                pair[0].key
            )));
        }
        for promoted in &flags {
            if let Some(flag) = &promoted.new {
                if flag.key != promoted.key {
                    let reason = format!(
                        "flag `{}` carries the definition of `{}`",
                        promoted.key, flag.key
                    );
                    return Err(PromotionError::Invalid(reason));
                }
                flag.validate()
                    .map_err(|e| PromotionError::Invalid(e.to_string()))?;
            }
        }
        Ok(NewPromotion {
            content_hash: promotion_content_hash(target_app, &flags),
            target_app: target_app.to_owned(),
            requested_by,
            reason: reason.to_owned(),
            flags,
            created_at: now,
            expires_at: now.saturating_add(PENDING_TTL_MS),
        })
    }

    pub fn with_id(self, id: i64) -> Promotion {
        Promotion {
            id,
            target_app: self.target_app,
            requested_by: self.requested_by,
            reason: self.reason,
            flags: self.flags,
            content_hash: self.content_hash,
            status: PromotionStatus::Pending,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// Why a promotion decision was refused. [`PromotionError::code`] is the stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromotionError {
    #[error("the requester cannot approve their own promotion")]
    SelfApproval,
    /// The approver and the requester are in one invite line (one invited the other,
    /// directly or through operators they invited): the same code as self-approval.
    #[error("two-person review needs two people: {why}")]
    InvitedReviewer { why: String },
    #[error("the promotion is {0}, not pending")]
    NotPending(PromotionStatus),
    #[error("the promotion expired")]
    Expired,
    #[error("prod flag `{flag}` changed since the promotion was queued")]
    Stale { flag: String },
    #[error("the promotion's content is not what was reviewed")]
    ContentChanged,
    #[error("a reason is required")]
    ReasonRequired,
    #[error("{0}")]
    Invalid(String),
}

impl PromotionError {
    /// Stable error code for the JSON API (`{"error": code}`).
    pub fn code(&self) -> &'static str {
        match self {
            PromotionError::SelfApproval | PromotionError::InvitedReviewer { .. } => {
                "self_approval"
            }
            PromotionError::NotPending(_) => "not_pending",
            PromotionError::Expired => "expired",
            PromotionError::Stale { .. } => "stale",
            PromotionError::ContentChanged => "content_changed",
            PromotionError::ReasonRequired => "reason_required",
            PromotionError::Invalid(_) => "invalid_promotion",
        }
    }
}

/// SHA-256 (hex) of the canonical JSON of the target app and its flags (key, new
/// definition, base version), in key order: what an approval is bound to.
pub fn promotion_content_hash(target_app: &str, flags: &[PromotedFlag]) -> String {
    let mut sorted: Vec<&PromotedFlag> = flags.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let content = json!({ "target_app": target_app, "flags": sorted });
    hex::encode(Sha256::digest(canonical_json(&content).as_bytes()))
}

/// Whether a pending promotion has outlived its review window at `now`.
pub fn is_expired(p: &Promotion, now: i64) -> bool {
    p.status == PromotionStatus::Pending && now >= p.expires_at
}

fn check_pending(p: &Promotion, now: i64) -> Result<(), PromotionError> {
    if p.status != PromotionStatus::Pending {
        return Err(PromotionError::NotPending(p.status));
    }
    if is_expired(p, now) {
        return Err(PromotionError::Expired);
    }
    Ok(())
}

/// May `approver_id` approve `p` at `now`? Pending, not expired, content intact, and
/// **no self-approval, for anyone**.
pub fn decide_approval(p: &Promotion, approver_id: i64, now: i64) -> Result<(), PromotionError> {
    check_pending(p, now)?;
    if promotion_content_hash(&p.target_app, &p.flags) != p.content_hash {
        return Err(PromotionError::ContentChanged);
    }
    if approver_id == p.requested_by {
        return Err(PromotionError::SelfApproval);
    }
    Ok(())
}

/// An operator and who brought them in: `inviters[0]` invited `id`, `inviters[1]` invited
/// `inviters[0]`, … (empty for operators made by bootstrap, config or a login link).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InviteLine {
    pub id: i64,
    pub inviters: Vec<i64>,
}

/// Is the approver independent of the requester? Refused when either is in the other's
/// invite line, at any depth: whoever can invite can create a second account for
/// themselves (or a chain of them), so "approver ≠ requester" alone is not two people.
/// Two operators invited by the same third operator are *not* refused (see
/// docs/security.md, "What two-person review guarantees").
pub fn check_reviewer_independence(
    requester: &InviteLine,
    approver: &InviteLine,
) -> Result<(), PromotionError> {
    if approver.id == requester.id {
        return Err(PromotionError::SelfApproval);
    }
    if let Some(depth) = approver.inviters.iter().position(|&i| i == requester.id) {
        return Err(PromotionError::InvitedReviewer {
            why: if depth == 0 {
                format!(
                    "you were invited by the requester (operator {}); an approver must not be an operator the requester brought in",
                    requester.id
                )
            } else {
                format!(
                    "you were invited through operators that the requester (operator {}) invited; an approver must not be an operator the requester brought in",
                    requester.id
                )
            },
        });
    }
    if requester.inviters.contains(&approver.id) {
        return Err(PromotionError::InvitedReviewer {
            why: format!(
                "you invited the requester (operator {}), directly or through operators you invited; an approver must not review someone they brought in",
                requester.id
            ),
        });
    }
    Ok(())
}

/// May `p` be rejected at `now` with `reason`? Pending, not expired, and a reason given.
/// Anyone with the role may reject, the requester included (a withdrawal).
pub fn decide_reject(
    p: &Promotion,
    _rejecter_id: i64,
    reason: &str,
    now: i64,
) -> Result<(), PromotionError> {
    check_pending(p, now)?;
    if reason.trim().is_empty() {
        return Err(PromotionError::ReasonRequired);
    }
    Ok(())
}

/// The approval form carries the hash the approver reviewed; anything else is refused.
pub fn check_content_hash(p: &Promotion, reviewed_hash: &str) -> Result<(), PromotionError> {
    if reviewed_hash == p.content_hash {
        Ok(())
    } else {
        Err(PromotionError::ContentChanged)
    }
}

/// Does prod still hold the versions the promotion was based on? `current_prod_versions`
/// maps each prod flag key to its version; a missing key means the flag is absent.
pub fn check_base_versions(
    p: &Promotion,
    current_prod_versions: &BTreeMap<String, i64>,
) -> Result<(), PromotionError> {
    for promoted in &p.flags {
        if current_prod_versions.get(&promoted.key).copied() != promoted.base_version {
            return Err(PromotionError::Stale {
                flag: promoted.key.clone(),
            });
        }
    }
    Ok(())
}

/// The prod flag state after applying `p`: promoted flags replaced or added, deleted ones
/// removed, every other prod flag untouched. Call after the checks above.
pub fn apply(p: &Promotion, prod: &AppFlags) -> AppFlags {
    let mut next = prod.clone();
    for promoted in &p.flags {
        match &promoted.new {
            Some(flag) => {
                next.flags.insert(promoted.key.clone(), flag.clone());
            }
            None => {
                next.flags.remove(&promoted.key);
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::fixtures::spec_flags;

    const NOW: i64 = 1_780_000_000_000;
    const ALICE: i64 = 1;
    const BOB: i64 = 2;

    fn promoted(key: &str, base_version: Option<i64>) -> PromotedFlag {
        PromotedFlag {
            key: key.to_owned(),
            new: spec_flags().flags.get(key).cloned(),
            base_version,
        }
    }

    fn pending() -> Promotion {
        let flags = vec![promoted("new-checkout", Some(3)), promoted("banner", None)];
        match NewPromotion::queue("raxx-api-prod", ALICE, "ship checkout", flags, NOW) {
            Ok(p) => p.with_id(7),
            Err(e) => panic!("fixture must queue: {e}"),
        }
    }

    fn with_status(status: PromotionStatus) -> Promotion {
        Promotion {
            status,
            ..pending()
        }
    }

    #[test]
    fn status_round_trips_through_its_string() {
        for status in PromotionStatus::ALL {
            assert_eq!(status.as_str().parse::<PromotionStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::json!(status.as_str()))
            );
        }
        assert_eq!(
            "Pending".parse::<PromotionStatus>(),
            Err(UnknownStatus("Pending".into()))
        );
    }

    #[test]
    fn queueing_sorts_flags_hashes_content_and_sets_the_expiry() {
        let p = pending();
        assert_eq!(p.status, PromotionStatus::Pending);
        assert_eq!(
            p.flags.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
            ["banner", "new-checkout"]
        );
        assert_eq!(p.expires_at - p.created_at, 604_800_000);
        assert_eq!(
            p.content_hash,
            promotion_content_hash("raxx-api-prod", &p.flags)
        );
        assert_eq!(p.content_hash.len(), 64);
    }

    #[test]
    fn queueing_refuses_bad_requests() {
        let mut renamed = promoted("banner", None);
        renamed.key = "other".into();
        let mut broken = promoted("banner", None);
        if let Some(flag) = broken.new.as_mut() {
            flag.default_variant = "gone".into();
        }
        let cases: [(&str, Vec<PromotedFlag>, &str); 5] = [
            ("  ", vec![promoted("banner", None)], "reason_required"),
            ("why", vec![], "invalid_promotion"),
            (
                "why",
                vec![promoted("banner", None), promoted("banner", Some(1))],
                "invalid_promotion",
            ),
            ("why", vec![renamed], "invalid_promotion"),
            ("why", vec![broken], "invalid_promotion"),
        ];
        for (reason, flags, code) in cases {
            let got = NewPromotion::queue("raxx-api-prod", ALICE, reason, flags, NOW)
                .map(|_| ())
                .map_err(|e| e.code());
            assert_eq!(got, Err(code), "{reason:?}");
        }
    }

    type Decision = Result<(), PromotionError>;

    #[test]
    fn approval_decisions() {
        let expiry = pending().expires_at;
        let mut edited = pending();
        edited.flags[0].base_version = Some(99);
        let cases: [(&str, Promotion, i64, i64, Decision); 9] = [
            ("another admin approves", pending(), BOB, NOW + 1, Ok(())),
            (
                "no self-approval, for anyone",
                pending(),
                ALICE,
                NOW + 1,
                Err(PromotionError::SelfApproval),
            ),
            (
                "last millisecond is still open",
                pending(),
                BOB,
                expiry - 1,
                Ok(()),
            ),
            (
                "expired after 7 days",
                pending(),
                BOB,
                expiry,
                Err(PromotionError::Expired),
            ),
            (
                "expiry wins over self-approval",
                pending(),
                ALICE,
                expiry,
                Err(PromotionError::Expired),
            ),
            (
                "already approved",
                with_status(PromotionStatus::Approved),
                BOB,
                NOW,
                Err(PromotionError::NotPending(PromotionStatus::Approved)),
            ),
            (
                "rejected",
                with_status(PromotionStatus::Rejected),
                BOB,
                NOW,
                Err(PromotionError::NotPending(PromotionStatus::Rejected)),
            ),
            (
                "stale",
                with_status(PromotionStatus::Stale),
                BOB,
                NOW,
                Err(PromotionError::NotPending(PromotionStatus::Stale)),
            ),
            (
                "edited after queueing",
                edited,
                BOB,
                NOW,
                Err(PromotionError::ContentChanged),
            ),
        ];
        for (name, p, approver, now, expected) in cases {
            assert_eq!(decide_approval(&p, approver, now), expected, "{name}");
        }
    }

    fn line(id: i64, inviters: &[i64]) -> InviteLine {
        InviteLine {
            id,
            inviters: inviters.to_vec(),
        }
    }

    #[test]
    fn reviewers_must_not_share_an_invite_line() {
        let cases: [(&str, InviteLine, InviteLine, Option<&str>); 8] = [
            ("strangers", line(1, &[]), line(2, &[]), None),
            ("same operator", line(1, &[]), line(1, &[]), Some("own")),
            (
                "requester invited the approver",
                line(1, &[]),
                line(2, &[1]),
                Some("you were invited by the requester"),
            ),
            (
                "requester invited the approver's inviter",
                line(1, &[]),
                line(3, &[2, 1]),
                Some("through operators"),
            ),
            (
                "approver invited the requester",
                line(1, &[2]),
                line(2, &[]),
                Some("you invited the requester"),
            ),
            (
                "approver invited the requester's inviter",
                line(1, &[3, 2]),
                line(2, &[]),
                Some("you invited the requester"),
            ),
            (
                "siblings invited by a third operator",
                line(1, &[9]),
                line(2, &[9]),
                None,
            ),
            ("cousins", line(1, &[4, 9]), line(2, &[5, 9]), None),
        ];
        for (name, requester, approver, refused) in cases {
            let got = check_reviewer_independence(&requester, &approver);
            match refused {
                None => assert_eq!(got, Ok(()), "{name}"),
                Some(words) => {
                    let e = got.expect_err(name);
                    assert_eq!(e.code(), "self_approval", "{name}");
                    assert!(e.to_string().contains(words), "{name}: {e}");
                }
            }
        }
    }

    #[test]
    fn reject_decisions() {
        let expiry = pending().expires_at;
        let cases: [(&str, Promotion, &str, i64, Decision); 5] = [
            ("another admin rejects", pending(), "not yet", NOW, Ok(())),
            (
                "a reason is required",
                pending(),
                " ",
                NOW,
                Err(PromotionError::ReasonRequired),
            ),
            (
                "expired",
                pending(),
                "late",
                expiry,
                Err(PromotionError::Expired),
            ),
            (
                "applied",
                with_status(PromotionStatus::Applied),
                "undo",
                NOW,
                Err(PromotionError::NotPending(PromotionStatus::Applied)),
            ),
            (
                "expired status",
                with_status(PromotionStatus::Expired),
                "x",
                NOW,
                Err(PromotionError::NotPending(PromotionStatus::Expired)),
            ),
        ];
        for (name, p, reason, now, expected) in cases {
            assert_eq!(decide_reject(&p, BOB, reason, now), expected, "{name}");
        }
        assert_eq!(
            decide_reject(&pending(), ALICE, "withdrawn", NOW),
            Ok(()),
            "the requester may withdraw"
        );
    }

    #[test]
    fn error_codes_are_stable() {
        let cases = [
            (PromotionError::SelfApproval, "self_approval"),
            (PromotionError::Stale { flag: "x".into() }, "stale"),
            (
                PromotionError::NotPending(PromotionStatus::Applied),
                "not_pending",
            ),
            (PromotionError::Expired, "expired"),
            (PromotionError::ContentChanged, "content_changed"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn the_reviewed_hash_must_match() {
        let p = pending();
        assert_eq!(check_content_hash(&p, &p.content_hash.clone()), Ok(()));
        assert_eq!(
            check_content_hash(&p, "00"),
            Err(PromotionError::ContentChanged)
        );
    }

    #[test]
    fn base_version_checks() {
        let p = pending();
        let versions = |pairs: &[(&str, i64)]| -> BTreeMap<String, i64> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        let stale = |flag: &str| {
            Err(PromotionError::Stale {
                flag: flag.to_owned(),
            })
        };
        let cases = [
            (versions(&[("new-checkout", 3)]), Ok(())),
            (versions(&[("new-checkout", 3), ("unrelated", 9)]), Ok(())),
            (versions(&[("new-checkout", 4)]), stale("new-checkout")),
            (versions(&[]), stale("new-checkout")),
            (
                versions(&[("new-checkout", 3), ("banner", 1)]),
                stale("banner"),
            ),
        ];
        for (current, expected) in cases {
            assert_eq!(check_base_versions(&p, &current), expected, "{current:?}");
        }
    }

    #[test]
    fn apply_replaces_adds_and_deletes_only_promoted_flags() {
        let mut prod = AppFlags::new("raxx-api-prod");
        let mut old_checkout = spec_flags().flags["new-checkout"].clone();
        old_checkout.enabled = false;
        let mut untouched = spec_flags().flags["banner"].clone();
        untouched.key = "untouched".into();
        let mut doomed = untouched.clone();
        doomed.key = "doomed".into();
        for flag in [old_checkout, untouched.clone(), doomed] {
            prod.flags.insert(flag.key.clone(), flag);
        }
        let mut p = pending();
        p.flags.push(PromotedFlag {
            key: "doomed".into(),
            new: None,
            base_version: Some(1),
        });

        let next = apply(&p, &prod);
        assert_eq!(next.app, "raxx-api-prod");
        assert_eq!(
            next.flags.keys().collect::<Vec<_>>(),
            ["banner", "new-checkout", "untouched"]
        );
        assert_eq!(
            next.flags["new-checkout"],
            spec_flags().flags["new-checkout"]
        );
        assert_eq!(next.flags["banner"], spec_flags().flags["banner"]);
        assert_eq!(next.flags["untouched"], untouched);
    }

    #[test]
    fn content_hash_binds_app_flags_and_base_versions_not_order() {
        let p = pending();
        let base = promotion_content_hash(&p.target_app, &p.flags);
        let mut reversed = p.flags.clone();
        reversed.reverse();
        assert_eq!(promotion_content_hash(&p.target_app, &reversed), base);
        assert_ne!(promotion_content_hash("raxx-api-staging", &p.flags), base);
        let mut moved = p.flags.clone();
        moved[1].base_version = Some(4);
        assert_ne!(promotion_content_hash(&p.target_app, &moved), base);
        let mut deleted = p.flags.clone();
        deleted[0].new = None;
        assert_ne!(promotion_content_hash(&p.target_app, &deleted), base);
    }
}
