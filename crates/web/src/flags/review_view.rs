//! How a promotion's frozen review reads on its page: per flag, a side-by-side table of
//! every part (enabled, default, description, type, each variant, each rule's conditions,
//! serve and rollout percentages), each row marked added / removed / changed / same.

use raxx_core::flags::review::{FlagReview, Mark, ServeSide, condition_phrase, serve_phrase};
use raxx_store::review::{ReviewRecord, ReviewSource};
use serde_json::Value;

use super::view::value_text;

/// One line of a side-by-side table.
pub struct SideRow {
    /// `same`, `added`, `removed`, `changed` (the row's CSS class is `diff-{mark}`).
    pub mark: &'static str,
    /// `+`, `−`, `~` or nothing: the mark in text, for readers who do not see colour.
    pub sign: &'static str,
    pub part: String,
    /// Nested under a rule (indented).
    pub sub: bool,
    pub old: String,
    pub new: String,
}

pub struct FlagPanel {
    pub key: String,
    pub mark: &'static str,
    pub base: String,
    pub changes: Vec<String>,
    pub rows: Vec<SideRow>,
}

pub struct ReviewView {
    /// Empty for a frozen review; otherwise what the page must say about where it came from.
    pub note: String,
    pub hash: String,
    pub flags: Vec<FlagPanel>,
}

fn sign(mark: Mark) -> &'static str {
    match mark {
        Mark::Same => "",
        Mark::Added => "+",
        Mark::Removed => "−",
        Mark::Changed => "~",
    }
}

fn absent() -> String {
    "—".to_owned()
}

fn row(mark: Mark, part: impl Into<String>, sub: bool, old: String, new: String) -> SideRow {
    SideRow {
        mark: mark.as_str(),
        sign: sign(mark),
        part: part.into(),
        sub,
        old,
        new,
    }
}

fn text<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(absent, ToString::to_string)
}

fn json_text(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(absent, value_text)
}

fn rows(r: &FlagReview) -> Vec<SideRow> {
    let mut out = vec![
        row(
            r.enabled.mark,
            "enabled",
            false,
            text(&r.enabled.old),
            text(&r.enabled.new),
        ),
        row(
            r.default.mark,
            "default",
            false,
            text(&r.default.old),
            text(&r.default.new),
        ),
        row(
            r.description.mark,
            "description",
            false,
            text(&r.description.old),
            text(&r.description.new),
        ),
        row(
            r.flag_type.mark,
            "type",
            false,
            text(&r.flag_type.old),
            text(&r.flag_type.new),
        ),
    ];
    for v in &r.variants {
        out.push(row(
            v.mark,
            format!("variant {}", v.name),
            false,
            json_text(&v.old),
            json_text(&v.new),
        ));
    }
    for rule in &r.rules {
        let pos = |p: Option<usize>| p.map_or_else(absent, |p| format!("rule {p}"));
        out.push(row(
            rule.mark,
            "rule",
            false,
            pos(rule.old_position),
            pos(rule.new_position),
        ));
        if rule.conditions.is_empty() {
            let always = |p: Option<usize>| p.map_or_else(absent, |_| "always".to_owned());
            out.push(row(
                Mark::Same,
                "when",
                true,
                always(rule.old_position),
                always(rule.new_position),
            ));
        }
        for c in &rule.conditions {
            out.push(row(
                c.mark,
                "when",
                true,
                c.old.as_ref().map_or_else(absent, condition_phrase),
                c.new.as_ref().map_or_else(absent, condition_phrase),
            ));
        }
        let both_rollouts = matches!(
            (&rule.serve.old, &rule.serve.new),
            (Some(ServeSide::Rollout(_)), Some(ServeSide::Rollout(_)))
        );
        if !both_rollouts {
            out.push(row(
                rule.serve.mark,
                "serve",
                true,
                rule.serve.old.as_ref().map_or_else(absent, serve_phrase),
                rule.serve.new.as_ref().map_or_else(absent, serve_phrase),
            ));
        }
        if both_rollouts || rule.serve.mark == Mark::Same {
            for w in &rule.serve.weights {
                let pct = |p: Option<u32>| p.map_or_else(absent, |p| format!("{p} %"));
                out.push(row(
                    w.mark,
                    format!("rollout {}", w.variant),
                    true,
                    pct(w.old),
                    pct(w.new),
                ));
            }
        }
    }
    out
}

/// The page's view of a promotion's review. `base_versions` labels each flag's base.
pub fn review_view(record: &ReviewRecord, base_versions: &[(String, Option<i64>)]) -> ReviewView {
    let note = match record.source {
        ReviewSource::Frozen => String::new(),
        ReviewSource::Reconstructed => "Frozen diff not recorded: this promotion was queued before reviews were frozen. The base below is rebuilt from the flag history at the base versions it names (versions are never reused), against the definitions it carried.".to_owned(),
        ReviewSource::NotRecorded => "Frozen diff not recorded: this promotion was queued before reviews were frozen, and the flag history no longer holds a base version it names, so the change cannot be shown as it was reviewed. The proposed definitions are in the JSON API.".to_owned(),
    };
    let flags = record
        .flags
        .iter()
        .map(|r| {
            let base = base_versions
                .iter()
                .find(|(k, _)| *k == r.flag)
                .and_then(|(_, v)| *v)
                .map_or_else(|| "absent from prod".to_owned(), |v| format!("prod v{v}"));
            FlagPanel {
                key: r.flag.clone(),
                mark: r.mark.as_str(),
                base,
                changes: r.changes.clone(),
                rows: rows(r),
            }
        })
        .collect();
    ReviewView {
        note,
        hash: record.hash.clone().unwrap_or_default(),
        flags,
    }
}
