//! The structured diff a reviewer reads (SPEC §7 "the reviewer sees the whole change"):
//! one flag's two definitions side by side, every part marked `same`, `added`, `removed`
//! or `changed` — down to a single condition (`attr op value`) and a single rollout
//! percentage, so a rollout moving from 10 % to 50 % reads as exactly that.
//!
//! The diff is lossless: each side of a [`FlagReview`] holds that side's whole definition
//! (variants, default, enabled, description, every rule in order), so a page can render
//! "before" and "after" from it alone. A promotion freezes its reviews when it is queued
//! and hashes them with [`review_hash`]; audit rows reference that hash.
//!
//! Rules are paired old ↔ new by an order-preserving alignment: equal rules anchor it, and
//! between anchors a rule is paired with the most similar one (shared conditions, same
//! kind of serve); rules with nothing in common read as one removed and one added.
//! Conditions of a paired rule are aligned the same way (a condition keeps its identity
//! through its attribute).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::diff::{canonical_json, to_value};
use super::model::{Condition, Flag, FlagType, Rule, Serve};

/// How one part differs between the two sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Same,
    Added,
    Removed,
    Changed,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Same => "same",
            Mark::Added => "added",
            Mark::Removed => "removed",
            Mark::Changed => "changed",
        }
    }

    fn of<T: PartialEq>(old: Option<&T>, new: Option<&T>) -> Mark {
        match (old, new) {
            (None, None) => Mark::Same,
            (None, Some(_)) => Mark::Added,
            (Some(_), None) => Mark::Removed,
            (Some(a), Some(b)) if a == b => Mark::Same,
            _ => Mark::Changed,
        }
    }
}

/// A single value on both sides (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair<T> {
    pub mark: Mark,
    pub old: Option<T>,
    pub new: Option<T>,
}

impl<T: PartialEq> Pair<T> {
    fn new(old: Option<T>, new: Option<T>) -> Self {
        Pair {
            mark: Mark::of(old.as_ref(), new.as_ref()),
            old,
            new,
        }
    }
}

/// One variant by name, its value on each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantDiff {
    pub name: String,
    pub mark: Mark,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Which parts of a paired condition differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionPart {
    Attr,
    Op,
    Value,
}

/// One condition of a rule on each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionDiff {
    pub mark: Mark,
    pub old: Option<Condition>,
    pub new: Option<Condition>,
    /// For `changed`: the parts that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ConditionPart>,
}

/// What a rule serves, in the file's shape: `{"variant": "on"}` or `{"rollout": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServeSide {
    Variant(String),
    Rollout(BTreeMap<String, u32>),
}

impl From<&Serve> for ServeSide {
    fn from(s: &Serve) -> Self {
        match s {
            Serve::Variant(v) => ServeSide::Variant(v.clone()),
            Serve::Rollout(w) => ServeSide::Rollout(w.clone()),
        }
    }
}

impl From<&ServeSide> for Serve {
    fn from(s: &ServeSide) -> Self {
        match s {
            ServeSide::Variant(v) => Serve::Variant(v.clone()),
            ServeSide::Rollout(w) => Serve::Rollout(w.clone()),
        }
    }
}

/// One rollout percentage by variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightDiff {
    pub variant: String,
    pub mark: Mark,
    pub old: Option<u32>,
    pub new: Option<u32>,
}

/// What a rule serves on each side; `weights` compares the percentages of every variant
/// named by a rollout on either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeDiff {
    pub mark: Mark,
    pub old: Option<ServeSide>,
    pub new: Option<ServeSide>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<WeightDiff>,
}

/// One rule, paired across the sides. Positions are 1-based, as an operator counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleDiff {
    pub mark: Mark,
    pub old_position: Option<usize>,
    pub new_position: Option<usize>,
    pub conditions: Vec<ConditionDiff>,
    pub serve: ServeDiff,
}

/// One flag's whole change, both sides in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagReview {
    /// The flag key (named `flag`, as in every audit context).
    pub flag: String,
    /// `added`: absent before; `removed`: absent after; `same`: nothing differs.
    pub mark: Mark,
    #[serde(rename = "type")]
    pub flag_type: Pair<FlagType>,
    pub enabled: Pair<bool>,
    pub default: Pair<String>,
    pub description: Pair<String>,
    pub variants: Vec<VariantDiff>,
    pub rules: Vec<RuleDiff>,
    /// Every change in a short phrase, finest grain first within each part:
    /// `rule 2: rollout on 10% → 50%`, `rule 2: condition added: plan eq "pro"`.
    pub changes: Vec<String>,
}

/// The structured diff of one flag from `old` to `new` (`None`: absent on that side).
pub fn review_flag(key: &str, old: Option<&Flag>, new: Option<&Flag>) -> FlagReview {
    let mark = Mark::of(old, new);
    let variants = variant_diffs(old, new);
    let rules = rule_diffs(
        old.map_or(&[][..], |f| &f.rules),
        new.map_or(&[][..], |f| &f.rules),
    );
    let mut review = FlagReview {
        flag: key.to_owned(),
        mark,
        flag_type: Pair::new(old.map(|f| f.flag_type), new.map(|f| f.flag_type)),
        enabled: Pair::new(old.map(|f| f.enabled), new.map(|f| f.enabled)),
        default: Pair::new(
            old.map(|f| f.default_variant.clone()),
            new.map(|f| f.default_variant.clone()),
        ),
        description: Pair::new(
            old.and_then(|f| f.description.clone()),
            new.and_then(|f| f.description.clone()),
        ),
        variants,
        rules,
        changes: Vec::new(),
    };
    review.changes = change_phrases(&review);
    review
}

/// SHA-256 (hex) of the canonical JSON of `reviews`: what audit rows reference.
pub fn review_hash(reviews: &[FlagReview]) -> String {
    hex::encode(Sha256::digest(
        canonical_json(&to_value(&reviews)).as_bytes(),
    ))
}

impl FlagReview {
    /// The definition on the old side, rebuilt from the diff alone.
    pub fn old_flag(&self) -> Option<Flag> {
        self.side(true)
    }

    /// The definition on the new side, rebuilt from the diff alone.
    pub fn new_flag(&self) -> Option<Flag> {
        self.side(false)
    }

    fn side(&self, old: bool) -> Option<Flag> {
        fn pick<T: Clone>(p: &Pair<T>, old: bool) -> Option<T> {
            if old { p.old.clone() } else { p.new.clone() }
        }
        let flag_type: FlagType = pick(&self.flag_type, old)?;
        let rules = self
            .rules
            .iter()
            .filter(|r| {
                if old {
                    r.old_position.is_some()
                } else {
                    r.new_position.is_some()
                }
            })
            .map(|r| {
                let when = r
                    .conditions
                    .iter()
                    .filter_map(|c| if old { c.old.clone() } else { c.new.clone() })
                    .collect();
                let serve = if old { &r.serve.old } else { &r.serve.new };
                Rule {
                    when,
                    serve: serve
                        .as_ref()
                        .map_or(Serve::Variant(String::new()), Serve::from),
                }
            })
            .collect();
        Some(Flag {
            key: self.flag.clone(),
            flag_type,
            variants: self
                .variants
                .iter()
                .filter_map(|v| {
                    let value = if old { &v.old } else { &v.new };
                    value.clone().map(|value| (v.name.clone(), value))
                })
                .collect(),
            default_variant: pick(&self.default, old).unwrap_or_default(),
            enabled: pick(&self.enabled, old).unwrap_or(true),
            description: pick(&self.description, old),
            rules,
        })
    }
}

fn variant_diffs(old: Option<&Flag>, new: Option<&Flag>) -> Vec<VariantDiff> {
    let names: BTreeSet<&String> = old
        .iter()
        .chain(new.iter())
        .flat_map(|f| f.variants.keys())
        .collect();
    names
        .into_iter()
        .map(|name| {
            let o = old.and_then(|f| f.variants.get(name)).cloned();
            let n = new.and_then(|f| f.variants.get(name)).cloned();
            VariantDiff {
                name: name.clone(),
                mark: Mark::of(o.as_ref(), n.as_ref()),
                old: o,
                new: n,
            }
        })
        .collect()
}

/// Order-preserving alignment of `old` and `new` maximising the summed `score` of paired
/// items (a score of 0 never pairs). Ties read removed-before-added.
fn align<T>(
    old: &[T],
    new: &[T],
    score: impl Fn(&T, &T) -> u32,
) -> Vec<(Option<usize>, Option<usize>)> {
    let (m, n) = (old.len(), new.len());
    let scores: Vec<Vec<u32>> = old
        .iter()
        .map(|a| new.iter().map(|b| score(a, b)).collect())
        .collect();
    // best[i][j]: the best total aligning old[i..] with new[j..].
    let mut best = vec![vec![0u64; n + 1]; m + 1];
    for i in (0..m).rev() {
        for j in (0..n).rev() {
            let s = scores[i][j];
            let paired = if s > 0 {
                u64::from(s) + best[i + 1][j + 1]
            } else {
                0
            };
            best[i][j] = paired.max(best[i + 1][j]).max(best[i][j + 1]);
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(m.max(n));
    while i < m || j < n {
        if i < m && j < n {
            let s = scores[i][j];
            if s > 0 && best[i][j] == u64::from(s) + best[i + 1][j + 1] {
                out.push((Some(i), Some(j)));
                i += 1;
                j += 1;
            } else if best[i][j] == best[i + 1][j] {
                out.push((Some(i), None));
                i += 1;
            } else {
                out.push((None, Some(j)));
                j += 1;
            }
        } else if i < m {
            out.push((Some(i), None));
            i += 1;
        } else {
            out.push((None, Some(j)));
            j += 1;
        }
    }
    out
}

fn condition_score(a: &Condition, b: &Condition) -> u32 {
    if a == b {
        100
    } else if a.attr == b.attr {
        10 + u32::from(a.op == b.op)
    } else {
        0
    }
}

fn rule_score(a: &Rule, b: &Rule) -> u32 {
    if a == b {
        return 100_000;
    }
    let shared = a.when.iter().filter(|c| b.when.contains(c)).count() as u32;
    let attrs = a
        .when
        .iter()
        .filter(|c| b.when.iter().any(|d| d.attr == c.attr))
        .count() as u32;
    let serve = match (&a.serve, &b.serve) {
        (x, y) if x == y => 3,
        (Serve::Variant(_), Serve::Variant(_)) | (Serve::Rollout(_), Serve::Rollout(_)) => 1,
        _ => 0,
    };
    shared * 4 + attrs + serve
}

fn condition_diff(old: Option<&Condition>, new: Option<&Condition>) -> ConditionDiff {
    let mut parts = Vec::new();
    if let (Some(a), Some(b)) = (old, new) {
        if a.attr != b.attr {
            parts.push(ConditionPart::Attr);
        }
        if a.op != b.op {
            parts.push(ConditionPart::Op);
        }
        if a.value != b.value {
            parts.push(ConditionPart::Value);
        }
    }
    ConditionDiff {
        mark: Mark::of(old, new),
        old: old.cloned(),
        new: new.cloned(),
        parts,
    }
}

fn serve_diff(old: Option<&Serve>, new: Option<&Serve>) -> ServeDiff {
    let rollout = |s: Option<&Serve>| match s {
        Some(Serve::Rollout(w)) => Some(w.clone()),
        _ => None,
    };
    let (ow, nw) = (rollout(old), rollout(new));
    let names: BTreeSet<&String> = ow.iter().chain(nw.iter()).flat_map(|w| w.keys()).collect();
    let weights = names
        .into_iter()
        .map(|v| {
            let o = ow.as_ref().and_then(|w| w.get(v)).copied();
            let n = nw.as_ref().and_then(|w| w.get(v)).copied();
            WeightDiff {
                variant: v.clone(),
                mark: Mark::of(o.as_ref(), n.as_ref()),
                old: o,
                new: n,
            }
        })
        .collect();
    ServeDiff {
        mark: Mark::of(old, new),
        old: old.map(ServeSide::from),
        new: new.map(ServeSide::from),
        weights,
    }
}

fn rule_diffs(old: &[Rule], new: &[Rule]) -> Vec<RuleDiff> {
    align(old, new, rule_score)
        .into_iter()
        .map(|(i, j)| {
            let (o, n) = (i.map(|i| &old[i]), j.map(|j| &new[j]));
            let oc = o.map_or(&[][..], |r| &r.when);
            let nc = n.map_or(&[][..], |r| &r.when);
            let conditions = align(oc, nc, condition_score)
                .into_iter()
                .map(|(a, b)| condition_diff(a.map(|a| &oc[a]), b.map(|b| &nc[b])))
                .collect();
            RuleDiff {
                mark: Mark::of(o, n),
                old_position: i.map(|i| i + 1),
                new_position: j.map(|j| j + 1),
                conditions,
                serve: serve_diff(o.map(|r| &r.serve), n.map(|r| &r.serve)),
            }
        })
        .collect()
}

/// `plan eq "pro"`: a condition in the file's own spelling.
pub fn condition_phrase(c: &Condition) -> String {
    format!(
        "{} {} {}",
        c.attr,
        c.op.as_str(),
        serde_json::to_string(&c.value).unwrap_or_default()
    )
}

/// `serve on`, `rollout off 90%, on 10%`.
pub fn serve_phrase(s: &ServeSide) -> String {
    match s {
        ServeSide::Variant(v) => format!("serve {v}"),
        ServeSide::Rollout(w) => format!(
            "rollout {}",
            w.iter()
                .map(|(v, p)| format!("{v} {p}%"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn opt_text<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "(none)".to_owned(), ToString::to_string)
}

fn value_phrase(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(
        || "(none)".to_owned(),
        |v| serde_json::to_string(v).unwrap_or_default(),
    )
}

fn change_phrases(r: &FlagReview) -> Vec<String> {
    let mut out = Vec::new();
    match r.mark {
        Mark::Same => return out,
        Mark::Added => out.push("flag added".to_owned()),
        Mark::Removed => {
            out.push("flag removed".to_owned());
            return out;
        }
        Mark::Changed => {}
    }
    let added = r.mark == Mark::Added;
    let mut scalar = |name: &str, mark: Mark, old: String, new: String| match mark {
        Mark::Same => {}
        _ if added => out.push(format!("{name} {new}")),
        _ => out.push(format!("{name} {old} → {new}")),
    };
    scalar(
        "type",
        r.flag_type.mark,
        opt_text(&r.flag_type.old),
        opt_text(&r.flag_type.new),
    );
    scalar(
        "enabled",
        r.enabled.mark,
        opt_text(&r.enabled.old),
        opt_text(&r.enabled.new),
    );
    scalar(
        "default",
        r.default.mark,
        opt_text(&r.default.old.as_ref().map(|d| format!("`{d}`"))),
        opt_text(&r.default.new.as_ref().map(|d| format!("`{d}`"))),
    );
    match r.description.mark {
        Mark::Same => {}
        Mark::Added => out.push("description added".to_owned()),
        Mark::Removed => out.push("description removed".to_owned()),
        Mark::Changed => out.push("description changed".to_owned()),
    }
    for v in &r.variants {
        match v.mark {
            Mark::Same => {}
            Mark::Added => out.push(format!(
                "variant `{}` added: {}",
                v.name,
                value_phrase(&v.new)
            )),
            Mark::Removed => out.push(format!(
                "variant `{}` removed (was {})",
                v.name,
                value_phrase(&v.old)
            )),
            Mark::Changed => out.push(format!(
                "variant `{}` {} → {}",
                v.name,
                value_phrase(&v.old),
                value_phrase(&v.new)
            )),
        }
    }
    for rule in &r.rules {
        let name = match (rule.old_position, rule.new_position) {
            (Some(o), Some(n)) if o != n => format!("rule {o} (now {n})"),
            (Some(o), _) => format!("rule {o}"),
            (None, Some(n)) => format!("rule {n}"),
            (None, None) => "rule".to_owned(),
        };
        match rule.mark {
            Mark::Same => {
                if let (Some(o), Some(n)) = (rule.old_position, rule.new_position)
                    && o != n
                    && !added
                {
                    out.push(format!("rule {o} moved to position {n}"));
                }
            }
            Mark::Added | Mark::Removed => {
                let is_new = rule.mark == Mark::Added;
                let serve = if is_new {
                    &rule.serve.new
                } else {
                    &rule.serve.old
                };
                let when: Vec<String> = rule
                    .conditions
                    .iter()
                    .filter_map(|c| if is_new { c.new.clone() } else { c.old.clone() })
                    .map(|c| condition_phrase(&c))
                    .collect();
                let when = if when.is_empty() {
                    "always".to_owned()
                } else {
                    format!("when {}", when.join(" and "))
                };
                let serve = serve.as_ref().map(serve_phrase).unwrap_or_default();
                out.push(format!("{name} {}: {when} → {serve}", rule.mark.as_str()));
            }
            Mark::Changed => {
                for c in &rule.conditions {
                    match (c.mark, &c.old, &c.new) {
                        (Mark::Added, _, Some(n)) => {
                            out.push(format!("{name}: condition added: {}", condition_phrase(n)))
                        }
                        (Mark::Removed, Some(o), _) => out.push(format!(
                            "{name}: condition removed: {}",
                            condition_phrase(o)
                        )),
                        (Mark::Changed, Some(o), Some(n)) => out.push(format!(
                            "{name}: condition {} → {}",
                            condition_phrase(o),
                            condition_phrase(n)
                        )),
                        _ => {}
                    }
                }
                match (&rule.serve.old, &rule.serve.new) {
                    (Some(ServeSide::Rollout(_)), Some(ServeSide::Rollout(_))) => {
                        let moved: Vec<String> = rule
                            .serve
                            .weights
                            .iter()
                            .filter(|w| w.mark != Mark::Same)
                            .map(|w| {
                                format!(
                                    "{} {} → {}",
                                    w.variant,
                                    w.old.map_or_else(|| "—".to_owned(), |p| format!("{p}%")),
                                    w.new.map_or_else(|| "—".to_owned(), |p| format!("{p}%"))
                                )
                            })
                            .collect();
                        if !moved.is_empty() {
                            out.push(format!("{name}: rollout {}", moved.join(", ")));
                        }
                    }
                    (Some(o), Some(n)) if o != n => {
                        out.push(format!("{name}: {} → {}", serve_phrase(o), serve_phrase(n)))
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
