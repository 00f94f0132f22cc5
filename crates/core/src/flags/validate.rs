//! What a valid flag state is: names, variants against the type, defaults, rules, limits.
//! Problems carry a path inside the flag so the file parser can point at a line.

use std::collections::BTreeMap;

use serde_json::Value;

use super::FlagsFileError;
use super::model::{AppFlags, Condition, Flag, Op, Rule, Serve};

/// Longest flag key, variant name or app name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Most variants one flag may declare.
pub const MAX_VARIANTS: usize = 100;
/// Most targeting rules one flag may carry.
pub const MAX_RULES_PER_FLAG: usize = 100;
/// Most conditions one rule may carry.
pub const MAX_CONDITIONS_PER_RULE: usize = 50;
/// Longest list an `in`/`not_in` condition may hold.
pub const MAX_IN_LIST: usize = 1000;

impl AppFlags {
    /// Checks everything [`parse_flags_file`](super::parse_flags_file) checks, for state that
    /// did not come from a file (a stored row, another console's API). No line numbers.
    pub fn validate(&self) -> Result<(), FlagsFileError> {
        if !is_valid_name(&self.app) {
            return Err(FlagsFileError::new(
                None,
                None,
                bad_name_reason("app name", &self.app),
            ));
        }
        if self.flags.len() > super::file::MAX_FLAGS {
            return Err(FlagsFileError::new(
                None,
                None,
                too_many_flags(self.flags.len()),
            ));
        }
        for (key, flag) in &self.flags {
            if *key != flag.key {
                let reason = format!("is stored under the key `{key}`");
                return Err(FlagsFileError::new(None, Some(flag.key.clone()), reason));
            }
            flag.validate()?;
        }
        Ok(())
    }
}

pub(crate) fn too_many_flags(count: usize) -> String {
    format!(
        "{count} flags; at most {} are allowed",
        super::file::MAX_FLAGS
    )
}

/// Flag keys, variant names and app names: 1 to 128 of `[A-Za-z0-9._-]`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn bad_name_reason(what: &str, name: &str) -> String {
    format!(
        "{what} `{name}` must be 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, `.`, `_`, `-`"
    )
}

/// Where in a flag a problem sits, for error line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathSeg {
    Key(String),
    Index(usize),
}

/// A validation failure inside one flag: the path (relative to the flag) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FlagProblem {
    pub path: Vec<PathSeg>,
    pub reason: String,
}

fn problem(path: Vec<PathSeg>, reason: String) -> FlagProblem {
    FlagProblem { path, reason }
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_owned())
}

impl Flag {
    /// Checks the flag's own consistency: key, variants against the type, default, rules.
    pub fn validate(&self) -> Result<(), FlagsFileError> {
        self.problem()
            .map_err(|p| FlagsFileError::new(None, Some(self.key.clone()), p.reason))
    }

    pub(crate) fn problem(&self) -> Result<(), FlagProblem> {
        if !is_valid_name(&self.key) {
            return Err(problem(vec![], bad_name_reason("flag key", &self.key)));
        }
        self.check_variants()?;
        if !self.variants.contains_key(&self.default_variant) {
            let reason = format!(
                "default variant `{}` is not one of its variants ({})",
                self.default_variant,
                self.variant_list()
            );
            return Err(problem(vec![key("default")], reason));
        }
        if self.rules.len() > MAX_RULES_PER_FLAG {
            let reason = format!(
                "{} rules; at most {MAX_RULES_PER_FLAG} are allowed",
                self.rules.len()
            );
            return Err(problem(
                vec![key("rules"), PathSeg::Index(MAX_RULES_PER_FLAG)],
                reason,
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            self.check_rule(rule).map_err(|mut p| {
                p.path.splice(0..0, [key("rules"), PathSeg::Index(i)]);
                p.reason = format!("rule {}: {}", i + 1, p.reason);
                p
            })?;
        }
        Ok(())
    }

    fn check_variants(&self) -> Result<(), FlagProblem> {
        if self.variants.is_empty() {
            return Err(problem(vec![key("variants")], "has no variants".to_owned()));
        }
        if self.variants.len() > MAX_VARIANTS {
            let reason = format!(
                "{} variants; at most {MAX_VARIANTS} are allowed",
                self.variants.len()
            );
            return Err(problem(vec![key("variants")], reason));
        }
        for (name, value) in &self.variants {
            if !is_valid_name(name) {
                return Err(problem(
                    vec![key("variants"), key(name)],
                    bad_name_reason("variant", name),
                ));
            }
            if !self.flag_type.accepts(value) {
                let reason = format!(
                    "variant `{name}` is {}, not a value of type {}",
                    describe_json(value),
                    self.flag_type
                );
                return Err(problem(vec![key("variants"), key(name)], reason));
            }
        }
        Ok(())
    }

    fn check_rule(&self, rule: &Rule) -> Result<(), FlagProblem> {
        if rule.when.len() > MAX_CONDITIONS_PER_RULE {
            let reason = format!(
                "{} conditions; at most {MAX_CONDITIONS_PER_RULE} are allowed",
                rule.when.len()
            );
            return Err(problem(vec![key("when")], reason));
        }
        for (j, condition) in rule.when.iter().enumerate() {
            check_condition(condition).map_err(|reason| {
                problem(vec![key("when"), PathSeg::Index(j), key("value")], reason)
            })?;
        }
        match &rule.serve {
            Serve::Variant(v) if !self.variants.contains_key(v) => {
                let reason = format!(
                    "serves `{v}`, which is not one of its variants ({})",
                    self.variant_list()
                );
                Err(problem(vec![key("serve")], reason))
            }
            Serve::Variant(_) => Ok(()),
            Serve::Rollout(weights) => self.check_rollout(weights),
        }
    }

    fn check_rollout(&self, weights: &BTreeMap<String, u32>) -> Result<(), FlagProblem> {
        if let Some(missing) = weights.keys().find(|v| !self.variants.contains_key(*v)) {
            let reason = format!(
                "rollout names `{missing}`, which is not one of its variants ({})",
                self.variant_list()
            );
            return Err(problem(vec![key("rollout"), key(missing)], reason));
        }
        let sum: u64 = weights.values().map(|w| u64::from(*w)).sum();
        if sum != 100 {
            let reason = format!("rollout percentages sum to {sum}, not 100");
            return Err(problem(vec![key("rollout")], reason));
        }
        Ok(())
    }

    fn variant_list(&self) -> String {
        self.variants
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn check_condition(c: &Condition) -> Result<(), String> {
    if c.attr.is_empty() || c.attr.len() > MAX_NAME_LEN {
        return Err(format!(
            "condition attribute must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    let op = c.op;
    let fits = match op {
        Op::Eq | Op::Neq => !c.value.is_null(),
        Op::In | Op::NotIn => {
            return match c.value.as_array() {
                Some(items) if items.len() > MAX_IN_LIST => Err(format!(
                    "`{}` holds {} items; at most {MAX_IN_LIST}",
                    op.as_str(),
                    items.len()
                )),
                Some(_) => Ok(()),
                None => Err(format!(
                    "`{}` needs a list, got {}",
                    op.as_str(),
                    describe_json(&c.value)
                )),
            };
        }
        Op::StartsWith | Op::EndsWith => c.value.is_string(),
        Op::Contains => c.value.is_string() || c.value.is_number() || c.value.is_boolean(),
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => c.value.is_number(),
        Op::SemverEq | Op::SemverLt | Op::SemverLte | Op::SemverGt | Op::SemverGte => {
            return match c.value.as_str() {
                Some(s) if super::semver::Version::parse(s).is_some() => Ok(()),
                _ => Err(format!(
                    "`{}` needs a semantic version such as \"1.4.0\", got {}",
                    op.as_str(),
                    describe_json(&c.value)
                )),
            };
        }
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "`{}` cannot compare with {}",
            op.as_str(),
            describe_json(&c.value)
        ))
    }
}

/// A short description of a JSON value for error messages: `the string "yes"`, `1.5`.
pub fn describe_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.len() <= 40 => format!("the string {value}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

#[cfg(test)]
mod tests;
