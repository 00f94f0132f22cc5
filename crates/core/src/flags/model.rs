//! The flag model: what a flag is. The serde form of [`Flag`], [`Rule`] and [`Condition`]
//! is the storage form: the flags-file schema plus the flag's `key` (the file carries the
//! key as the map key instead). What a valid flag is lives in [`super::validate`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The type of every value a flag can serve (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagType {
    Boolean,
    String,
    Integer,
    Float,
    Object,
}

impl FlagType {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Boolean => "boolean",
            FlagType::String => "string",
            FlagType::Integer => "integer",
            FlagType::Float => "float",
            FlagType::Object => "object",
        }
    }

    /// Whether `value` is a value of this type. A float flag accepts whole numbers too
    /// (`3` is a fine float); an integer flag refuses `3.0`, as OFREP's `integerFlag` does.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            FlagType::Boolean => value.is_boolean(),
            FlagType::String => value.is_string(),
            FlagType::Integer => value.is_i64() || value.is_u64(),
            FlagType::Float => value.is_number(),
            FlagType::Object => value.is_object(),
        }
    }
}

impl fmt::Display for FlagType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One feature flag of one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub key: String,
    #[serde(rename = "type")]
    pub flag_type: FlagType,
    /// Variant name → value; iteration order (byte-wise by name) is the rollout order.
    pub variants: BTreeMap<String, Value>,
    /// The variant served when no rule matches, and when the flag is disabled.
    #[serde(rename = "default")]
    pub default_variant: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Ordered; the first rule whose conditions all hold decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

pub(crate) fn enabled_by_default() -> bool {
    true
}

/// A targeting rule: when every condition holds (an empty `when` always holds), serve a
/// variant or split by rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleRepr", into = "RuleRepr")]
pub struct Rule {
    pub when: Vec<Condition>,
    pub serve: Serve,
}

/// What a matching rule serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Serve {
    /// One variant, by name.
    Variant(String),
    /// Variant name → percentage (summing to 100), hashed on `targetingKey`.
    Rollout(BTreeMap<String, u32>),
}

/// The file/storage shape of a rule: `when` plus exactly one of `serve` and `rollout`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRepr {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    when: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serve: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::file::unique_rollout"
    )]
    rollout: Option<BTreeMap<String, u32>>,
}

impl TryFrom<RuleRepr> for Rule {
    type Error = String;

    fn try_from(repr: RuleRepr) -> Result<Self, String> {
        let serve = match (repr.serve, repr.rollout) {
            (Some(variant), None) => Serve::Variant(variant),
            (None, Some(weights)) => Serve::Rollout(weights),
            (Some(_), Some(_)) => {
                return Err("a rule has either `serve` or `rollout`, not both".to_owned());
            }
            (None, None) => return Err("a rule needs `serve` or `rollout`".to_owned()),
        };
        Ok(Rule {
            when: repr.when,
            serve,
        })
    }
}

impl From<Rule> for RuleRepr {
    fn from(rule: Rule) -> Self {
        let (serve, rollout) = match rule.serve {
            Serve::Variant(v) => (Some(v), None),
            Serve::Rollout(w) => (None, Some(w)),
        };
        RuleRepr {
            when: rule.when,
            serve,
            rollout,
        }
    }
}

/// One test on an evaluation-context attribute. How each operator compares is documented
/// on [`Op`]; a condition on an attribute the context lacks never holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Context attribute: a top-level key (`email`, `targetingKey`), or a dotted path
    /// (`user.plan`) into nested objects when no top-level key has that exact name.
    pub attr: String,
    pub op: Op,
    pub value: Value,
}

/// Condition operators. All string comparisons are case-sensitive.
///
/// - `eq`/`neq`: same JSON value (numbers compare numerically, `1 == 1.0`);
/// - `in`/`not_in`: `value` is a list; the attribute equals (or equals none of) its items;
/// - `starts_with`/`ends_with`: string attribute and string `value`;
/// - `contains`: substring of a string attribute, or an item of a list attribute;
/// - `lt`/`lte`/`gt`/`gte`: numeric; the attribute may be a number or a numeric string;
/// - `semver_eq`/`semver_lt`/`semver_lte`/`semver_gt`/`semver_gte`: the attribute and
///   `value` are semantic versions (`MAJOR.MINOR.PATCH[-pre][+build]`, optional leading
///   `v`), compared by SemVer 2.0.0 precedence.
///
/// An attribute of the wrong type makes the condition false, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Neq,
    In,
    NotIn,
    StartsWith,
    EndsWith,
    Contains,
    Lt,
    Lte,
    Gt,
    Gte,
    SemverEq,
    SemverLt,
    SemverLte,
    SemverGt,
    SemverGte,
}

/// The flag state of one app: what a flags file describes and what OFREP serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppFlags {
    pub app: String,
    pub flags: BTreeMap<String, Flag>,
}

impl AppFlags {
    pub fn new(app: impl Into<String>) -> Self {
        AppFlags {
            app: app.into(),
            flags: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.flags.get(key)
    }
}

impl Op {
    /// The file spelling of an operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Contains => "contains",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::SemverEq => "semver_eq",
            Op::SemverLt => "semver_lt",
            Op::SemverLte => "semver_lte",
            Op::SemverGt => "semver_gt",
            Op::SemverGte => "semver_gte",
        }
    }
}

#[cfg(test)]
mod tests;
