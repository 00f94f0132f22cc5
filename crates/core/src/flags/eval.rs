//! Flag evaluation with OpenFeature semantics: given a flag and an evaluation context,
//! which variant is served and why.
//!
//! Reasons: `DISABLED` (flag disabled: the default variant is served), `STATIC` (no rules:
//! the default variant), `TARGETING_MATCH` (a `serve` rule matched), `SPLIT` (a rollout rule
//! decided), `DEFAULT` (rules exist, none matched: the default variant).
//!
//! Rollouts are sticky and identical on every process, restart and platform: the bucket of a
//! `targetingKey` is the first 8 bytes of `SHA-256(flag_key ‖ "/" ‖ targetingKey)` read as a
//! big-endian `u64`, modulo 10 000. Walking the rollout's variants in name order (byte-wise),
//! the first variant whose cumulative weight × 100 exceeds the bucket is served.
//!
//! Wrong-typed attributes (`lt` on `"abc"`, `ends_with` on a number) make a condition false
//! rather than failing the evaluation: contexts come from many SDKs, and a rule list is a
//! sequence of "does this apply?" questions. `INVALID_CONTEXT` is kept for a context that is
//! not an object or whose `targetingKey` is not a string.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::model::{Condition, Flag, Op, Serve};
use super::semver::Version;

/// The number of rollout buckets; a percentage point is 100 buckets.
pub const ROLLOUT_BUCKETS: u64 = 10_000;

/// The attributes an application sends with an evaluation (OFREP's `context`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationContext {
    attrs: Map<String, Value>,
}

impl EvaluationContext {
    /// Accepts an object, or `null`/absent as the empty context. `targetingKey`, when
    /// present, must be a string.
    pub fn from_value(value: Value) -> Result<Self, EvaluationError> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::Object(attrs) => Self::from_map(attrs),
            other => Err(EvaluationError::new(
                ErrorCode::InvalidContext,
                format!(
                    "the context must be an object, not {}",
                    super::validate::describe_json(&other)
                ),
            )),
        }
    }

    pub fn from_map(attrs: Map<String, Value>) -> Result<Self, EvaluationError> {
        match attrs.get("targetingKey") {
            None | Some(Value::String(_)) => Ok(EvaluationContext { attrs }),
            Some(_) => Err(EvaluationError::new(
                ErrorCode::InvalidContext,
                "`targetingKey` must be a string".to_owned(),
            )),
        }
    }

    /// The non-empty `targetingKey`, if any.
    pub fn targeting_key(&self) -> Option<&str> {
        self.attrs
            .get("targetingKey")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
    }

    /// An attribute by exact key, else by dotted path into nested objects.
    pub fn get(&self, attr: &str) -> Option<&Value> {
        if let Some(value) = self.attrs.get(attr) {
            return Some(value);
        }
        let mut parts = attr.split('.');
        let mut current = self.attrs.get(parts.next()?)?;
        let mut walked = false;
        for part in parts {
            current = current.as_object()?.get(part)?;
            walked = true;
        }
        walked.then_some(current)
    }

    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attrs
    }
}

/// Why a value was served (OpenFeature resolution reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    Static,
    TargetingMatch,
    Split,
    Default,
    Disabled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
        }
    }
}

/// OpenFeature error codes, as OFREP sends them in `errorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No flag with that key in the app.
    FlagNotFound,
    /// The request body is not valid JSON.
    ParseError,
    /// The served value does not match the flag's declared type (only possible for state
    /// that bypassed validation).
    TypeMismatch,
    /// A rollout rule was reached and the context has no `targetingKey`.
    TargetingKeyMissing,
    /// The context is not an object, or its `targetingKey` is not a string.
    InvalidContext,
    /// Anything else, e.g. a rule serving a variant the flag lacks (unvalidated state).
    General,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }
}

/// A failed evaluation: the OFREP error code and a sentence for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {details}", code.as_str())]
pub struct EvaluationError {
    pub code: ErrorCode,
    pub details: String,
}

impl EvaluationError {
    pub fn new(code: ErrorCode, details: String) -> Self {
        EvaluationError { code, details }
    }
}

/// A successful evaluation, borrowing the variant name and value from the flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<'f> {
    pub variant: &'f str,
    pub value: &'f Value,
    pub reason: Reason,
}

/// Evaluates one flag against a context. Never panics; allocates only on error.
///
/// This is [`explain`] with a tracer that records nothing (it compiles to the same walk
/// with the bookkeeping removed): OFREP and the playground cannot diverge.
pub fn evaluate<'f>(
    flag: &'f Flag,
    ctx: &EvaluationContext,
) -> Result<Evaluation<'f>, EvaluationError> {
    walk(flag, ctx, &mut ())
}

/// Why one rule did not serve: the first condition of `rule.when` that failed, and the
/// context's value for its attribute (`None`: absent or `null`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionMiss {
    /// The index of the failed condition in the rule's `when`.
    pub condition: usize,
    pub actual: Option<Value>,
}

/// What happened to one rule during an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RuleStep {
    /// Every condition held: this rule decided (a `serve`, or a rollout).
    Matched {
        rule: usize,
        /// The rollout bucket (0..10 000) of the targeting key, for a rollout rule.
        #[serde(skip_serializing_if = "Option::is_none")]
        bucket: Option<u64>,
    },
    /// A condition failed: the walk went on to the next rule.
    Missed { rule: usize, miss: ConditionMiss },
}

/// [`evaluate`]'s result, with the walk that produced it: for every rule reached, whether it
/// matched or which condition failed first. Rules after the matching one were not reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation<'f> {
    pub result: Result<Evaluation<'f>, EvaluationError>,
    pub steps: Vec<RuleStep>,
}

impl Explanation<'_> {
    /// The index of the rule that decided, if one did.
    pub fn matched_rule(&self) -> Option<usize> {
        self.steps.iter().find_map(|s| match s {
            RuleStep::Matched { rule, .. } => Some(*rule),
            RuleStep::Missed { .. } => None,
        })
    }
}

/// Evaluates like [`evaluate`] (the same walk) and records why each rule matched or not.
pub fn explain<'f>(flag: &'f Flag, ctx: &EvaluationContext) -> Explanation<'f> {
    let mut steps = Vec::with_capacity(flag.rules.len());
    let result = walk(flag, ctx, &mut steps);
    Explanation { result, steps }
}

/// What the walk reports; `()` reports nothing and costs nothing.
trait Tracer {
    fn missed(&mut self, rule: usize, condition: usize, ctx: &EvaluationContext, attr: &str);
    fn matched(&mut self, rule: usize, bucket: Option<u64>);
}

impl Tracer for () {
    #[inline(always)]
    fn missed(&mut self, _: usize, _: usize, _: &EvaluationContext, _: &str) {}
    #[inline(always)]
    fn matched(&mut self, _: usize, _: Option<u64>) {}
}

impl Tracer for Vec<RuleStep> {
    fn missed(&mut self, rule: usize, condition: usize, ctx: &EvaluationContext, attr: &str) {
        let actual = ctx.get(attr).filter(|v| !v.is_null()).cloned();
        self.push(RuleStep::Missed {
            rule,
            miss: ConditionMiss { condition, actual },
        });
    }
    fn matched(&mut self, rule: usize, bucket: Option<u64>) {
        self.push(RuleStep::Matched { rule, bucket });
    }
}

#[inline(always)]
fn walk<'f>(
    flag: &'f Flag,
    ctx: &EvaluationContext,
    tracer: &mut impl Tracer,
) -> Result<Evaluation<'f>, EvaluationError> {
    if !flag.enabled {
        return serve(flag, &flag.default_variant, Reason::Disabled);
    }
    if flag.rules.is_empty() {
        return serve(flag, &flag.default_variant, Reason::Static);
    }
    for (index, rule) in flag.rules.iter().enumerate() {
        if let Some(failed) = rule.when.iter().position(|c| !condition_holds(c, ctx)) {
            tracer.missed(index, failed, ctx, &rule.when[failed].attr);
            continue;
        }
        return match &rule.serve {
            Serve::Variant(variant) => {
                tracer.matched(index, None);
                serve(flag, variant, Reason::TargetingMatch)
            }
            Serve::Rollout(weights) => {
                let Some(targeting_key) = ctx.targeting_key() else {
                    tracer.matched(index, None);
                    return Err(EvaluationError::new(
                        ErrorCode::TargetingKeyMissing,
                        format!(
                            "flag `{}` has a percentage rollout and the context has no targetingKey",
                            flag.key
                        ),
                    ));
                };
                let bucket = rollout_bucket(&flag.key, targeting_key);
                tracer.matched(index, Some(bucket));
                match pick_rollout(weights.iter().map(|(v, w)| (v.as_str(), *w)), bucket) {
                    Some(variant) => serve(flag, variant, Reason::Split),
                    None => Err(EvaluationError::new(
                        ErrorCode::General,
                        format!("flag `{}` has a rollout that does not sum to 100", flag.key),
                    )),
                }
            }
        };
    }
    serve(flag, &flag.default_variant, Reason::Default)
}

fn serve<'f>(
    flag: &'f Flag,
    variant: &str,
    reason: Reason,
) -> Result<Evaluation<'f>, EvaluationError> {
    let Some((variant, value)) = flag.variants.get_key_value(variant) else {
        return Err(EvaluationError::new(
            ErrorCode::General,
            format!(
                "flag `{}` serves `{variant}`, which is not one of its variants",
                flag.key
            ),
        ));
    };
    if !flag.flag_type.accepts(value) {
        return Err(EvaluationError::new(
            ErrorCode::TypeMismatch,
            format!(
                "flag `{}` variant `{variant}` is not a {}",
                flag.key, flag.flag_type
            ),
        ));
    }
    Ok(Evaluation {
        variant,
        value,
        reason,
    })
}

/// The rollout bucket (0..10 000) of a targeting key for a flag. See the module docs.
pub fn rollout_bucket(flag_key: &str, targeting_key: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(flag_key.as_bytes())
        .chain_update(b"/")
        .chain_update(targeting_key.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % ROLLOUT_BUCKETS
}

/// The variant whose cumulative share covers `bucket`, walking `weights` in the given
/// (name) order; `None` only when the weights sum to less than the bucket.
fn pick_rollout<'w>(weights: impl Iterator<Item = (&'w str, u32)>, bucket: u64) -> Option<&'w str> {
    let mut cumulative = 0u64;
    for (variant, percent) in weights {
        cumulative += u64::from(percent) * 100;
        if bucket < cumulative {
            return Some(variant);
        }
    }
    None
}

fn condition_holds(c: &Condition, ctx: &EvaluationContext) -> bool {
    let Some(attr) = ctx.get(&c.attr) else {
        return false;
    };
    if attr.is_null() {
        return false;
    }
    let expected = &c.value;
    match c.op {
        Op::Eq => same_value(attr, expected),
        Op::Neq => !same_value(attr, expected),
        Op::In => expected
            .as_array()
            .is_some_and(|items| items.iter().any(|i| same_value(attr, i))),
        Op::NotIn => expected
            .as_array()
            .is_some_and(|items| !items.iter().any(|i| same_value(attr, i))),
        Op::StartsWith => both_str(attr, expected).is_some_and(|(a, e)| a.starts_with(e)),
        Op::EndsWith => both_str(attr, expected).is_some_and(|(a, e)| a.ends_with(e)),
        Op::Contains => match attr {
            Value::String(a) => expected.as_str().is_some_and(|e| a.contains(e)),
            Value::Array(items) => items.iter().any(|i| same_value(i, expected)),
            _ => false,
        },
        Op::Lt => numeric_order(attr, expected).is_some_and(Ordering::is_lt),
        Op::Lte => numeric_order(attr, expected).is_some_and(Ordering::is_le),
        Op::Gt => numeric_order(attr, expected).is_some_and(Ordering::is_gt),
        Op::Gte => numeric_order(attr, expected).is_some_and(Ordering::is_ge),
        Op::SemverEq => semver_order(attr, expected).is_some_and(Ordering::is_eq),
        Op::SemverLt => semver_order(attr, expected).is_some_and(Ordering::is_lt),
        Op::SemverLte => semver_order(attr, expected).is_some_and(Ordering::is_le),
        Op::SemverGt => semver_order(attr, expected).is_some_and(Ordering::is_gt),
        Op::SemverGte => semver_order(attr, expected).is_some_and(Ordering::is_ge),
    }
}

/// JSON equality where numbers compare by value (`1 == 1.0`), exactly for integers.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y),
            }
        }
        _ => a == b,
    }
}

fn both_str<'a>(a: &'a Value, b: &'a Value) -> Option<(&'a str, &'a str)> {
    Some((a.as_str()?, b.as_str()?))
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn numeric_order(attr: &Value, expected: &Value) -> Option<Ordering> {
    number_of(attr)?.partial_cmp(&expected.as_f64()?)
}

fn semver_order(attr: &Value, expected: &Value) -> Option<Ordering> {
    let attr = Version::parse(attr.as_str()?)?;
    let expected = Version::parse(expected.as_str()?)?;
    Some(attr.cmp(&expected))
}

#[cfg(test)]
mod tests;
