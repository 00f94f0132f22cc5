use super::*;
use crate::flags::fixtures::checkout_flag;
use serde_json::json;

fn reason_of(flag: &Flag) -> Option<String> {
    flag.problem().err().map(|p| p.reason)
}

#[test]
fn a_well_formed_flag_is_valid_and_enabled_by_default() {
    let flag = checkout_flag();
    assert!(flag.enabled);
    assert_eq!(flag.problem(), Ok(()));
}

#[test]
fn names_allow_only_the_documented_characters() {
    let long = "a".repeat(MAX_NAME_LEN);
    let too_long = "a".repeat(MAX_NAME_LEN + 1);
    let cases = [
        ("new-checkout", true),
        ("a.b_c-D9", true),
        (long.as_str(), true),
        (too_long.as_str(), false),
        ("", false),
        ("has space", false),
        ("slash/no", false),
        ("ümlaut", false),
    ];
    for (name, expected) in cases {
        assert_eq!(is_valid_name(name), expected, "{name:?}");
    }
}

#[test]
fn validation_names_each_broken_part() {
    type Edit = fn(&mut Flag);
    let cases: [(Edit, &str); 9] = [
        (
            |f| f.default_variant = "of".into(),
            "default variant `of` is not one of its variants (off, on)",
        ),
        (|f| f.key = "bad key".into(), "flag key `bad key` must be"),
        (|f| f.variants.clear(), "has no variants"),
        (
            |f| {
                f.variants.insert("maybe".into(), json!("yes"));
            },
            "variant `maybe` is the string \"yes\", not a value of type boolean",
        ),
        (
            |f| f.rules[0].serve = Serve::Variant("beta".into()),
            "rule 1: serves `beta`, which is not one of its variants",
        ),
        (
            |f| f.rules[1].serve = Serve::Rollout([("on".into(), 10), ("off".into(), 80)].into()),
            "rule 2: rollout percentages sum to 90, not 100",
        ),
        (
            |f| f.rules[1].serve = Serve::Rollout([("on".into(), 10), ("of".into(), 90)].into()),
            "rule 2: rollout names `of`",
        ),
        (
            |f| f.rules[0].when[0].value = json!(5),
            "rule 1: `ends_with` cannot compare with the number 5",
        ),
        (
            |f| {
                f.rules[0].when[0] = Condition {
                    attr: "v".into(),
                    op: Op::SemverGt,
                    value: json!("1.x"),
                }
            },
            "rule 1: `semver_gt` needs a semantic version",
        ),
    ];
    for (edit, expected) in cases {
        let mut flag = checkout_flag();
        edit(&mut flag);
        let reason = reason_of(&flag).unwrap_or_default();
        assert!(
            reason.starts_with(expected),
            "expected {expected:?}, got {reason:?}"
        );
    }
}

#[test]
fn rule_problems_point_at_the_rule() {
    let mut flag = checkout_flag();
    flag.rules[1].serve = Serve::Variant("nope".into());
    let path = flag.problem().err().map(|p| p.path);
    assert_eq!(
        path,
        Some(vec![key("rules"), PathSeg::Index(1), key("serve")])
    );
}

#[test]
fn too_many_rules_is_refused() {
    let mut flag = checkout_flag();
    let rule = flag.rules[0].clone();
    flag.rules = vec![rule; MAX_RULES_PER_FLAG + 1];
    assert_eq!(
        reason_of(&flag),
        Some(format!(
            "{} rules; at most 100 are allowed",
            MAX_RULES_PER_FLAG + 1
        ))
    );
}

#[test]
fn app_validation_catches_a_key_stored_under_another_name() {
    let mut app = AppFlags::new("raxx-api-staging");
    app.flags.insert("other".into(), checkout_flag());
    let err = app.validate().map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("flag `new-checkout`: is stored under the key `other`".to_owned())
    );
    app.flags.clear();
    app.flags.insert("new-checkout".into(), checkout_flag());
    assert_eq!(app.validate().map_err(|e| e.to_string()), Ok(()));
}
