//! Content hashes and per-flag diffs: "diff against the last applied file", the promotion
//! queue's per-flag diff, and what an approval is bound to.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::model::{AppFlags, Flag, Serve};

/// SHA-256 (lowercase hex) of the flag's canonical JSON: its storage form with object keys
/// sorted and no whitespace. Equal flags hash equal on every platform.
pub fn content_hash(flag: &Flag) -> String {
    hex::encode(Sha256::digest(canonical_json(&to_value(flag)).as_bytes()))
}

pub(crate) fn to_value(value: &impl Serialize) -> Value {
    // Serializing our model cannot fail: every map is keyed by strings.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Compact JSON with object keys sorted byte-wise, whatever order the map keeps (serde_json's
/// `preserve_order` feature may be switched on by another crate in the build).
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// [`canonical_json`] of an object, without wrapping it in a `Value` first.
pub(crate) fn canonical_object(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(map, &mut out);
    out
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(key, out);
        out.push(':');
        write_canonical(item, out);
    }
    out.push('}');
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_json_string(s, out),
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    let _ = write!(out, "{}", Value::from(s));
}

/// One changed part of a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagField {
    Type,
    Variants,
    Default,
    Enabled,
    Description,
    Rules,
}

/// How one field changed, in a few words: `off → on`, `added beta; changed on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: FlagField,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One flag's difference between two states, with a one-line summary for pages and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagChange {
    pub key: String,
    pub kind: ChangeKind,
    /// For `Changed`: each field that differs, in a fixed order. Empty otherwise.
    pub fields: Vec<FieldChange>,
    pub summary: String,
}

/// Every flag added, removed or changed from `old` to `new`, in key order.
pub fn diff_flags(old: &AppFlags, new: &AppFlags) -> Vec<FlagChange> {
    let keys: std::collections::BTreeSet<&String> =
        old.flags.keys().chain(new.flags.keys()).collect();
    keys.into_iter()
        .filter_map(|key| diff_flag(key, old.flags.get(key), new.flags.get(key)))
        .collect()
}

/// One flag's change, or `None` when both sides are equal (or both absent).
pub fn diff_flag(key: &str, old: Option<&Flag>, new: Option<&Flag>) -> Option<FlagChange> {
    let change = |kind, fields, summary| FlagChange {
        key: key.to_owned(),
        kind,
        fields,
        summary,
    };
    match (old, new) {
        (None, None) => None,
        (None, Some(flag)) => Some(change(
            ChangeKind::Added,
            vec![],
            format!("added: {}", describe(flag)),
        )),
        (Some(_), None) => Some(change(ChangeKind::Removed, vec![], "removed".to_owned())),
        (Some(old), Some(new)) => {
            let fields = field_changes(old, new);
            if fields.is_empty() {
                return None;
            }
            let summary = fields
                .iter()
                .map(|f| format!("{} {}", field_name(f.field), f.detail))
                .collect::<Vec<_>>()
                .join("; ");
            Some(change(ChangeKind::Changed, fields, summary))
        }
    }
}

fn describe(flag: &Flag) -> String {
    let rules = match flag.rules.len() {
        0 => "no rules".to_owned(),
        1 => "1 rule".to_owned(),
        n => format!("{n} rules"),
    };
    let state = if flag.enabled { "enabled" } else { "disabled" };
    format!(
        "{} flag, default `{}`, {state}, {rules}",
        flag.flag_type, flag.default_variant
    )
}

fn field_name(field: FlagField) -> &'static str {
    match field {
        FlagField::Type => "type",
        FlagField::Variants => "variants",
        FlagField::Default => "default",
        FlagField::Enabled => "enabled",
        FlagField::Description => "description",
        FlagField::Rules => "rules",
    }
}

fn field_changes(old: &Flag, new: &Flag) -> Vec<FieldChange> {
    let mut fields = Vec::new();
    let mut push = |field, detail: String| fields.push(FieldChange { field, detail });
    if old.flag_type != new.flag_type {
        push(
            FlagField::Type,
            format!("{} → {}", old.flag_type, new.flag_type),
        );
    }
    if old.variants != new.variants {
        push(FlagField::Variants, variants_detail(old, new));
    }
    if old.default_variant != new.default_variant {
        push(
            FlagField::Default,
            format!("`{}` → `{}`", old.default_variant, new.default_variant),
        );
    }
    if old.enabled != new.enabled {
        push(
            FlagField::Enabled,
            format!("{} → {}", old.enabled, new.enabled),
        );
    }
    if old.description != new.description {
        push(FlagField::Description, "changed".to_owned());
    }
    if old.rules != new.rules {
        push(FlagField::Rules, rules_detail(old, new));
    }
    fields
}

fn variants_detail(old: &Flag, new: &Flag) -> String {
    let names = |pred: &dyn Fn(&String) -> bool, from: &Flag| {
        from.variants
            .keys()
            .filter(|k| pred(k))
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let added = names(&|k| !old.variants.contains_key(k), new);
    let removed = names(&|k| !new.variants.contains_key(k), old);
    let changed = names(
        &|k| {
            new.variants
                .get(k)
                .is_some_and(|v| Some(v) != old.variants.get(k))
        },
        old,
    );
    [("added", added), ("removed", removed), ("changed", changed)]
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(verb, list)| format!("{verb} {list}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn rules_detail(old: &Flag, new: &Flag) -> String {
    let rollout = |f: &Flag| f.rules.iter().any(|r| matches!(r.serve, Serve::Rollout(_)));
    let count = |n: usize| {
        if n == 1 {
            "1 rule".to_owned()
        } else {
            format!("{n} rules")
        }
    };
    let mut detail = if old.rules.len() == new.rules.len() {
        // Same number of rules: name the ones that changed (1-based, as an operator counts).
        let changed: Vec<String> = old
            .rules
            .iter()
            .zip(&new.rules)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        match changed.as_slice() {
            [one] => format!("rule {one} of {} changed", old.rules.len()),
            many => format!("rules {} of {} changed", many.join(", "), old.rules.len()),
        }
    } else {
        format!("{} → {}", count(old.rules.len()), count(new.rules.len()))
    };
    if rollout(old) != rollout(new) {
        detail.push_str(if rollout(new) {
            " (adds a rollout)"
        } else {
            " (drops the rollout)"
        });
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::fixtures::spec_flags;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_escapes() {
        let value = json!({"b": 1, "a": {"d": [true, null, 1.5], "c": "q\"\n"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"q\"\n","d":[true,null,1.5]},"b":1}"#
        );
    }

    #[test]
    fn content_hash_is_sha256_of_canonical_json_and_sees_every_field() {
        let flag = spec_flags().flags["new-checkout"].clone();
        let base = content_hash(&flag);
        assert_eq!(base.len(), 64);
        assert_eq!(
            base,
            hex::encode(Sha256::digest(canonical_json(&to_value(&flag)).as_bytes()))
        );
        let mut edits: Vec<Flag> = vec![flag.clone(); 4];
        edits[0].enabled = false;
        edits[1].default_variant = "on".into();
        edits[2].description = None;
        edits[3].rules.pop();
        for edited in &edits {
            assert_ne!(content_hash(edited), base);
        }
        assert_eq!(content_hash(&flag.clone()), base);
    }

    #[test]
    fn diff_reports_added_removed_and_changed_in_key_order() {
        let old = spec_flags();
        let mut new = old.clone();
        new.flags.remove("banner");
        let mut extra = old.flags["banner"].clone();
        extra.key = "aaa".into();
        new.flags.insert("aaa".into(), extra);
        if let Some(f) = new.flags.get_mut("new-checkout") {
            f.enabled = false;
            f.default_variant = "on".into();
            f.variants.insert("on".into(), json!(false));
            f.variants.insert("beta".into(), json!(true));
            f.rules.pop();
        }
        let changes = diff_flags(&old, &new);
        let summary: Vec<(&str, ChangeKind, &str)> = changes
            .iter()
            .map(|c| (c.key.as_str(), c.kind, c.summary.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "aaa",
                    ChangeKind::Added,
                    "added: string flag, default `old`, enabled, 1 rule"
                ),
                ("banner", ChangeKind::Removed, "removed"),
                (
                    "new-checkout",
                    ChangeKind::Changed,
                    "variants added `beta`, changed `on`; default `off` → `on`; enabled true → false; \
                     rules 2 rules → 1 rule (drops the rollout)"
                ),
            ]
        );
        let fields: Vec<FlagField> = changes[2].fields.iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            vec![
                FlagField::Variants,
                FlagField::Default,
                FlagField::Enabled,
                FlagField::Rules
            ]
        );
    }

    #[test]
    fn equal_states_have_no_diff() {
        assert_eq!(diff_flags(&spec_flags(), &spec_flags()), vec![]);
        assert_eq!(diff_flag("x", None, None), None);
    }

    #[test]
    fn a_changed_rule_is_named_when_the_count_stays() {
        let old = spec_flags();
        let mut new = old.clone();
        let key = old
            .flags
            .iter()
            .find(|(_, f)| f.rules.len() >= 2)
            .map(|(k, _)| k.clone())
            .expect("a fixture flag with two rules");
        let flag = new.flags.get_mut(&key).expect("flag");
        let last = flag.rules.len() - 1;
        flag.rules[last] = flag.rules[0].clone();
        let changes = diff_flags(&old, &new);
        let rules = changes[0]
            .fields
            .iter()
            .find(|f| f.field == FlagField::Rules)
            .expect("a rules change");
        let want = format!("rule {} of {} changed", last + 1, last + 1);
        assert!(rules.detail.starts_with(&want), "{} / {want}", rules.detail);
    }
}
