//! How flags read on a page: plain rows of text for the templates, and rules in words.

use raxx_core::flags::{
    ChangeKind, Condition, Flag, FlagChange, FlagField, Op, Rule, Serve, diff_flag,
};
use raxx_store::flags::{HistoryEntry, StoredFlag};
use serde_json::Value;

use raxx_actions::fmt_time;

/// A JSON value as it would appear in a flags file (compact).
pub fn value_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn op_words(op: Op) -> &'static str {
    match op {
        Op::Eq => "is",
        Op::Neq => "is not",
        Op::In => "is one of",
        Op::NotIn => "is none of",
        Op::StartsWith => "starts with",
        Op::EndsWith => "ends with",
        Op::Contains => "contains",
        Op::Lt => "<",
        Op::Lte => "≤",
        Op::Gt => ">",
        Op::Gte => "≥",
        Op::SemverEq => "is version",
        Op::SemverLt => "is a version before",
        Op::SemverLte => "is a version at or before",
        Op::SemverGt => "is a version after",
        Op::SemverGte => "is a version at or after",
    }
}

pub fn condition_text(c: &Condition) -> String {
    format!("{} {} {}", c.attr, op_words(c.op), value_text(&c.value))
}

/// `when email ends with "@raxx.app" → serve on`; `always → split by targetingKey: off 90%, on 10%`.
pub fn rule_text(rule: &Rule) -> String {
    let when = if rule.when.is_empty() {
        "always".to_owned()
    } else {
        format!(
            "when {}",
            rule.when
                .iter()
                .map(condition_text)
                .collect::<Vec<_>>()
                .join(" and ")
        )
    };
    let serve = match &rule.serve {
        Serve::Variant(v) => format!("serve {v}"),
        Serve::Rollout(weights) => format!(
            "split by targetingKey: {}",
            weights
                .iter()
                .map(|(v, p)| format!("{v} {p}%"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("{when} → {serve}")
}

/// One flag in the list.
pub struct FlagRow {
    pub key: String,
    pub kind: String,
    pub enabled: bool,
    pub default: String,
    pub rules: usize,
    pub version: i64,
    pub updated: String,
    pub updated_by: String,
    pub description: String,
}

impl FlagRow {
    pub fn new(s: &StoredFlag) -> Self {
        let f = &s.flag;
        FlagRow {
            key: f.key.clone(),
            kind: f.flag_type.to_string(),
            enabled: f.enabled,
            default: default_text(f),
            rules: f.rules.len(),
            version: s.version,
            updated: fmt_time(s.updated_at),
            updated_by: s.updated_by.clone(),
            description: f.description.clone().unwrap_or_default(),
        }
    }
}

/// `off = false`.
pub fn default_text(f: &Flag) -> String {
    match f.variants.get(&f.default_variant) {
        Some(v) => format!("{} = {}", f.default_variant, value_text(v)),
        None => f.default_variant.clone(),
    }
}

pub struct VariantRow {
    pub name: String,
    pub value: String,
    pub is_default: bool,
}

pub fn variant_rows(f: &Flag) -> Vec<VariantRow> {
    f.variants
        .iter()
        .map(|(name, value)| VariantRow {
            name: name.clone(),
            value: value_text(value),
            is_default: *name == f.default_variant,
        })
        .collect()
}

pub struct HistoryRow {
    pub version: i64,
    pub when: String,
    pub by: String,
    pub via: String,
    pub reason: String,
    pub summary: String,
    pub promotion_id: Option<i64>,
}

/// History newest first, each row summarised against the change before it.
pub fn history_rows(key: &str, entries: &[HistoryEntry]) -> Vec<HistoryRow> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let older = entries.get(i + 1).and_then(|o| o.definition.as_ref());
            let summary = diff_flag(key, older, e.definition.as_ref())
                .map(|c| c.summary)
                .unwrap_or_else(|| "no change".to_owned());
            HistoryRow {
                version: e.version,
                when: fmt_time(e.changed_at),
                by: e.changed_by.clone(),
                via: e.via.clone(),
                reason: e.reason.clone().unwrap_or_default(),
                summary,
                promotion_id: e.promotion_id,
            }
        })
        .collect()
}

/// One flag's change, for diff tables.
pub struct ChangeRow {
    pub key: String,
    pub kind: &'static str,
    pub summary: String,
}

pub fn kind_text(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Changed => "changed",
    }
}

pub fn field_name(field: FlagField) -> &'static str {
    match field {
        FlagField::Type => "type",
        FlagField::Variants => "variants",
        FlagField::Default => "default",
        FlagField::Enabled => "enabled",
        FlagField::Description => "description",
        FlagField::Rules => "rules",
    }
}

pub fn change_rows(changes: &[FlagChange]) -> Vec<ChangeRow> {
    changes
        .iter()
        .map(|c| ChangeRow {
            key: c.key.clone(),
            kind: kind_text(c.kind),
            summary: c.summary.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_read_as_sentences() {
        let rules: Vec<Rule> = serde_json::from_value(json!([
            {"when": [{"attr": "email", "op": "ends_with", "value": "@raxx.app"},
                      {"attr": "plan", "op": "in", "value": ["pro", "team"]}], "serve": "on"},
            {"rollout": {"on": 10, "off": 90}},
            {"when": [{"attr": "appVersion", "op": "semver_gte", "value": "2.4.0"}], "serve": "new"}
        ]))
        .expect("rules");
        let text: Vec<String> = rules.iter().map(rule_text).collect();
        assert_eq!(
            text,
            [
                r#"when email ends with "@raxx.app" and plan is one of ["pro","team"] → serve on"#,
                "always → split by targetingKey: off 90%, on 10%",
                r#"when appVersion is a version at or after "2.4.0" → serve new"#,
            ]
        );
    }
}
