//! Feature flags: the model, the flags file, evaluation, the OFREP wire format, and the
//! content hash and diff that promotions and the "last applied file" view use.
//!
//! - [`model`]: [`Flag`], [`Rule`], [`Condition`], [`AppFlags`];
//! - [`validate`]: what a valid flag is, and the size limits;
//! - [`file`](mod@file): [`parse_flags_file`] for TOML, YAML and JSON (SPEC §7);
//! - [`eval`]: [`evaluate`] with OpenFeature reasons and sticky percentage rollouts;
//! - [`ofrep`]: OFREP request/response types, status codes and ETags;
//! - [`diff`]: [`content_hash`] and [`diff_flags`];
//! - [`review`]: [`review_flag`], the structured diff a promotion's reviewer reads.

pub mod diff;
pub mod eval;
pub mod file;
mod locate;
pub mod model;
pub mod ofrep;
pub mod review;
mod semver;
pub mod validate;

pub use diff::{
    ChangeKind, FieldChange, FlagChange, FlagField, content_hash, diff_flag, diff_flags,
};
pub use eval::{
    ConditionMiss, ErrorCode, Evaluation, EvaluationContext, EvaluationError, Explanation, Reason,
    RuleStep, evaluate, explain, rollout_bucket,
};
pub use file::{
    FileFormat, FlagsFileError, MAX_FILE_BYTES, MAX_FLAGS, parse_flags_file, to_file_json,
};
pub use model::{AppFlags, Condition, Flag, FlagType, Op, Rule, Serve};
pub use ofrep::{bulk_etag, etag_for, if_none_match};
pub use review::{FlagReview, Mark, review_flag, review_hash};
pub use validate::is_valid_name;

#[cfg(test)]
pub(crate) mod fixtures {
    use super::{AppFlags, FileFormat, Flag, parse_flags_file};
    use serde_json::json;

    /// The SPEC §7 example, plus a string flag with a semver rule.
    pub const SPEC_TOML: &str = r#"app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"                      # boolean | string | integer | float | object
variants = { on = true, off = false }
default = "off"                       # the variant served when no rule matches
enabled = true                        # false: evaluation answers reason DISABLED
description = "New checkout flow"

[[flags.new-checkout.rules]]          # first match wins
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[[flags.new-checkout.rules]]
rollout = { on = 10, off = 90 }       # percentages on targetingKey, summing to 100

[flags.banner]
type = "string"
variants = { old = "Welcome", new = "Hello there" }
default = "old"

[[flags.banner.rules]]
when = [{ attr = "appVersion", op = "semver_gte", value = "2.4.0" }]
serve = "new"
"#;

    /// `new-checkout` as stored JSON, `enabled` left to its default.
    pub fn checkout_flag() -> Flag {
        serde_json::from_value(json!({
            "key": "new-checkout",
            "type": "boolean",
            "variants": {"on": true, "off": false},
            "default": "off",
            "rules": [
                {"when": [{"attr": "email", "op": "ends_with", "value": "@raxx.app"}], "serve": "on"},
                {"rollout": {"on": 10, "off": 90}}
            ]
        }))
        .expect("valid flag json")
    }

    pub fn spec_flags() -> AppFlags {
        match parse_flags_file(SPEC_TOML, FileFormat::Toml) {
            Ok(flags) => flags,
            Err(e) => panic!("the SPEC example must parse: {e}"),
        }
    }
}
