use super::*;
use serde_json::json;

fn ctx(value: Value) -> EvaluationContext {
    EvaluationContext::from_value(value).expect("valid context")
}

fn flag(rules: Value) -> Flag {
    serde_json::from_value(json!({
        "key": "new-checkout",
        "type": "string",
        "variants": {"a": "A", "b": "B", "c": "C"},
        "default": "c",
        "rules": rules,
    }))
    .expect("valid flag")
}

fn rule(attr: &str, op: &str, value: Value) -> Flag {
    flag(json!([{"when": [{"attr": attr, "op": op, "value": value}], "serve": "a"}]))
}

fn served(flag: &Flag, context: &EvaluationContext) -> Option<(String, Reason)> {
    evaluate(flag, context)
        .ok()
        .map(|e| (e.variant.to_owned(), e.reason))
}

#[test]
fn reasons_follow_the_flag_state() {
    let targeted = rule("email", "ends_with", json!("@raxx.app"));
    let mut disabled = targeted.clone();
    disabled.enabled = false;
    let no_rules = flag(json!([]));
    let raxx = ctx(json!({"email": "ann@raxx.app"}));
    let other = ctx(json!({"email": "bob@example.com"}));
    let cases = [
        (&targeted, &raxx, "a", Reason::TargetingMatch),
        (&targeted, &other, "c", Reason::Default),
        (&disabled, &raxx, "c", Reason::Disabled),
        (&no_rules, &raxx, "c", Reason::Static),
    ];
    for (flag, context, variant, reason) in cases {
        assert_eq!(served(flag, context), Some((variant.to_owned(), reason)));
    }
}

#[test]
fn first_matching_rule_wins() {
    let f = flag(json!([
        {"when": [{"attr": "plan", "op": "eq", "value": "pro"}], "serve": "b"},
        {"when": [{"attr": "plan", "op": "in", "value": ["pro", "team"]}], "serve": "a"},
    ]));
    assert_eq!(
        served(&f, &ctx(json!({"plan": "pro"}))),
        Some(("b".into(), Reason::TargetingMatch))
    );
    assert_eq!(
        served(&f, &ctx(json!({"plan": "team"}))),
        Some(("a".into(), Reason::TargetingMatch))
    );
}

#[test]
fn operators_compare_as_documented() {
    let cases: Vec<(&str, &str, Value, Value, bool)> = vec![
        ("eq", "x", json!("pro"), json!("pro"), true),
        ("eq", "x", json!("pro"), json!("Pro"), false),
        ("eq", "x", json!(1), json!(1.0), true),
        ("eq", "x", json!(1), json!("1"), false),
        ("neq", "x", json!("pro"), json!("free"), true),
        ("neq", "x", json!("pro"), json!("pro"), false),
        ("in", "x", json!(["a", 2]), json!(2), true),
        ("in", "x", json!(["a", 2]), json!("b"), false),
        ("not_in", "x", json!(["a"]), json!("b"), true),
        ("not_in", "x", json!(["a"]), json!("a"), false),
        ("starts_with", "x", json!("ann"), json!("anna"), true),
        ("starts_with", "x", json!("ann"), json!(5), false),
        (
            "ends_with",
            "x",
            json!("@raxx.app"),
            json!("a@raxx.app"),
            true,
        ),
        (
            "ends_with",
            "x",
            json!("@raxx.app"),
            json!("a@raxx.app.evil"),
            false,
        ),
        ("contains", "x", json!("beta"), json!("v2-beta-1"), true),
        (
            "contains",
            "x",
            json!("beta"),
            json!(["alpha", "beta"]),
            true,
        ),
        ("contains", "x", json!("beta"), json!(["alpha"]), false),
        ("lt", "x", json!(10), json!(9.5), true),
        ("lt", "x", json!(10), json!("9"), true),
        ("lt", "x", json!(10), json!(10), false),
        ("lt", "x", json!(10), json!("ten"), false),
        ("lte", "x", json!(10), json!(10), true),
        ("gt", "x", json!(10), json!(11), true),
        ("gt", "x", json!(10), json!(true), false),
        ("gte", "x", json!(10), json!(10), true),
        ("gte", "x", json!(10), json!("NaN"), false),
        ("semver_eq", "x", json!("1.2.3"), json!("v1.2.3"), true),
        ("semver_lt", "x", json!("2.0.0"), json!("1.10.0"), true),
        ("semver_lt", "x", json!("2.0.0"), json!("2.0.0-rc.1"), true),
        ("semver_lte", "x", json!("2.0.0"), json!("2.0.0"), true),
        ("semver_gt", "x", json!("1.4.0"), json!("1.4.1"), true),
        ("semver_gt", "x", json!("1.4.0"), json!("1.4"), false),
        ("semver_gte", "x", json!("1.4.0"), json!("1.3.9"), false),
    ];
    for (op, attr, expected, actual, holds) in cases {
        let f = rule(attr, op, expected.clone());
        let got = served(&f, &ctx(json!({ attr: actual.clone() })));
        let want = if holds {
            ("a".to_owned(), Reason::TargetingMatch)
        } else {
            ("c".to_owned(), Reason::Default)
        };
        assert_eq!(got, Some(want), "{actual} {op} {expected}");
    }
}

#[test]
fn a_missing_or_null_attribute_never_matches_even_negations() {
    for op in ["neq", "not_in", "eq"] {
        let value = if op == "not_in" {
            json!(["x"])
        } else {
            json!("x")
        };
        let f = rule("plan", op, value);
        for context in [json!({}), json!({"plan": null})] {
            assert_eq!(
                served(&f, &ctx(context)),
                Some(("c".into(), Reason::Default)),
                "{op}"
            );
        }
    }
}

#[test]
fn dotted_attributes_reach_into_nested_objects() {
    let f = rule("user.plan", "eq", json!("pro"));
    let nested = ctx(json!({"user": {"plan": "pro"}}));
    let flat = ctx(json!({"user.plan": "pro", "user": {"plan": "free"}}));
    let shallow = ctx(json!({"user": "pro"}));
    assert_eq!(
        served(&f, &nested).map(|s| s.1),
        Some(Reason::TargetingMatch)
    );
    assert_eq!(served(&f, &flat).map(|s| s.1), Some(Reason::TargetingMatch));
    assert_eq!(served(&f, &shallow).map(|s| s.1), Some(Reason::Default));
}

#[test]
fn rollout_without_targeting_key_is_an_error() {
    let f = flag(json!([{"rollout": {"a": 50, "b": 50}}]));
    for context in [json!({}), json!({"targetingKey": ""})] {
        let code = evaluate(&f, &ctx(context)).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code, Err(ErrorCode::TargetingKeyMissing));
    }
    let ok = evaluate(&f, &ctx(json!({"targetingKey": "user-1"}))).map(|e| e.reason);
    assert_eq!(ok, Ok(Reason::Split));
}

#[test]
fn conditions_gate_a_rollout() {
    let f = flag(
        json!([{"when": [{"attr": "country", "op": "eq", "value": "NL"}], "rollout": {"a": 100}}]),
    );
    let nl = ctx(json!({"country": "NL", "targetingKey": "k"}));
    let de = ctx(json!({"country": "DE"}));
    assert_eq!(served(&f, &nl), Some(("a".into(), Reason::Split)));
    // Not reached: no targetingKey needed.
    assert_eq!(served(&f, &de), Some(("c".into(), Reason::Default)));
}

#[test]
fn rollout_bucket_is_pinned() {
    // Pinned values: changing the hash would move every user to another variant.
    let cases = [
        ("new-checkout", "user-1"),
        ("new-checkout", "user-2"),
        ("x", ""),
    ];
    for (flag_key, tk) in cases {
        let digest = Sha256::digest(format!("{flag_key}/{tk}").as_bytes());
        let expected = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 10_000;
        assert_eq!(rollout_bucket(flag_key, tk), expected);
    }
    assert_eq!(rollout_bucket("new-checkout", "user-1"), PINNED_BUCKET);
}

/// Computed independently (Python hashlib) from the documented formula.
const PINNED_BUCKET: u64 = 5337;

#[test]
fn pick_rollout_walks_cumulative_weights() {
    let weights = [("off", 90u32), ("on", 10)];
    let cases = [
        (0, Some("off")),
        (8999, Some("off")),
        (9000, Some("on")),
        (9999, Some("on")),
    ];
    for (bucket, expected) in cases {
        assert_eq!(
            pick_rollout(weights.iter().copied(), bucket),
            expected,
            "bucket {bucket}"
        );
    }
    assert_eq!(pick_rollout([("a", 50u32)].into_iter(), 5000), None);
}

#[test]
fn unvalidated_state_fails_with_general_or_type_mismatch() {
    let mut f = flag(json!([{"serve": "zzz"}]));
    assert_eq!(
        evaluate(&f, &ctx(json!({})))
            .map_err(|e| e.code)
            .map(|_| ()),
        Err(ErrorCode::General)
    );
    f.rules.clear();
    f.variants.insert("c".into(), json!(42));
    assert_eq!(
        evaluate(&f, &ctx(json!({})))
            .map_err(|e| e.code)
            .map(|_| ()),
        Err(ErrorCode::TypeMismatch)
    );
}

#[test]
fn context_must_be_an_object_with_a_string_targeting_key() {
    let cases = [
        (json!(null), Ok(())),
        (json!({"targetingKey": "k"}), Ok(())),
        (json!([1]), Err(ErrorCode::InvalidContext)),
        (json!("k"), Err(ErrorCode::InvalidContext)),
        (json!({"targetingKey": 7}), Err(ErrorCode::InvalidContext)),
    ];
    for (value, expected) in cases {
        let got = EvaluationContext::from_value(value.clone())
            .map(|_| ())
            .map_err(|e| e.code);
        assert_eq!(got, expected, "{value}");
    }
}

fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z@.0-9-]{0,12}".prop_map(Value::from),
        Just(json!("1.2.3-rc.1")),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("targetingKey".to_owned()),
                    Just("email".to_owned()),
                    Just("user".to_owned()),
                    "[a-z.]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| json!(m)),
        ]
    })
}

/// A flag with one rule per operator, then a rollout: every comparison path runs.
fn every_operator_flag() -> Flag {
    let ops = [
        ("eq", json!("x")),
        ("neq", json!(1)),
        ("in", json!(["a", 1, null])),
        ("not_in", json!([true])),
        ("starts_with", json!("a")),
        ("ends_with", json!("@raxx.app")),
        ("contains", json!("b")),
        ("lt", json!(1.5)),
        ("lte", json!(-3)),
        ("gt", json!(1e300)),
        ("gte", json!(0)),
        ("semver_eq", json!("1.2.3")),
        ("semver_lt", json!("2.0.0")),
        ("semver_lte", json!("0.0.1")),
        ("semver_gt", json!("1.0.0-alpha")),
        ("semver_gte", json!("1.2.3-rc.1")),
    ];
    let mut rules: Vec<Value> = ops
        .iter()
        .flat_map(|(op, value)| {
            ["email", "user", "user.plan", "targetingKey"].map(
                |attr| json!({"when": [{"attr": attr, "op": op, "value": value}], "serve": "b"}),
            )
        })
        .collect();
    rules.push(json!({"rollout": {"a": 10, "b": 90}}));
    flag(Value::from(rules))
}

proptest::proptest! {
    #[test]
    fn rollout_bucket_is_stable_and_in_range(flag_key in ".{0,40}", targeting_key in ".{0,40}") {
        let bucket = rollout_bucket(&flag_key, &targeting_key);
        proptest::prop_assert!(bucket < ROLLOUT_BUCKETS);
        proptest::prop_assert_eq!(bucket, rollout_bucket(&flag_key, &targeting_key));
    }

}

proptest::proptest! {
    // 10 000 evaluations per case: a few seeds are plenty.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    #[test]
    fn a_ten_ninety_rollout_serves_about_ten_percent(seed in proptest::prelude::any::<u64>()) {
        let f = flag(json!([{"rollout": {"a": 10, "c": 90}}]));
        let n = 10_000;
        let served_a = (0..n)
            .filter(|i| {
                let context = ctx(json!({"targetingKey": format!("user-{seed}-{i}")}));
                evaluate(&f, &context).is_ok_and(|e| e.variant == "a" && e.reason == Reason::Split)
            })
            .count();
        proptest::prop_assert!((800..=1200).contains(&served_a), "{} of {}", served_a, n);
    }
}

proptest::proptest! {

    #[test]
    fn evaluate_never_panics_on_arbitrary_contexts(value in arb_json()) {
        let f = every_operator_flag();
        match EvaluationContext::from_value(value) {
            Ok(context) => {
                let outcome = evaluate(&f, &context);
                // Whatever the context, the answer is a variant of the flag or a rollout
                // without a targeting key.
                match outcome {
                    Ok(e) => proptest::prop_assert!(f.variants.contains_key(e.variant)),
                    Err(e) => proptest::prop_assert_eq!(e.code, ErrorCode::TargetingKeyMissing),
                }
            }
            Err(e) => proptest::prop_assert_eq!(e.code, ErrorCode::InvalidContext),
        }
    }
}

#[test]
fn explain_names_the_first_failed_condition_of_each_earlier_rule() {
    let f = flag(json!([
        {"when": [{"attr": "email", "op": "ends_with", "value": "@raxx.app"}], "serve": "a"},
        {"when": [
            {"attr": "country", "op": "eq", "value": "DE"},
            {"attr": "plan", "op": "in", "value": ["pro"]}
        ], "serve": "b"},
        {"rollout": {"a": 50, "b": 50}}
    ]));
    let context = ctx(json!({"targetingKey": "u-1", "email": "x@example.com", "country": "DE"}));
    let e = explain(&f, &context);
    assert_eq!(e.result, evaluate(&f, &context));
    assert_eq!(e.matched_rule(), Some(2));
    assert_eq!(
        e.steps[..2],
        [
            RuleStep::Missed {
                rule: 0,
                miss: ConditionMiss {
                    condition: 0,
                    actual: Some(json!("x@example.com"))
                }
            },
            // `country` held; `plan` is absent.
            RuleStep::Missed {
                rule: 1,
                miss: ConditionMiss {
                    condition: 1,
                    actual: None
                }
            },
        ]
    );
    assert!(
        matches!(e.steps[2], RuleStep::Matched { rule: 2, bucket: Some(b) } if b == rollout_bucket("new-checkout", "u-1"))
    );
    // A disabled flag walks no rule.
    let mut off = f.clone();
    off.enabled = false;
    let e = explain(&off, &context);
    assert!(e.steps.is_empty());
    assert_eq!(e.result.map(|r| r.reason), Ok(Reason::Disabled));
}

/// An arbitrary flag over a few attributes: several rules of up to three conditions each,
/// some serving, some rolling out, enabled or not.
fn arb_flag() -> impl proptest::strategy::Strategy<Value = Flag> {
    use proptest::prelude::*;
    let condition = (
        prop_oneof![
            Just("email"),
            Just("user"),
            Just("user.plan"),
            Just("targetingKey")
        ],
        prop_oneof![
            Just(("eq", json!("x"))),
            Just(("neq", json!(1))),
            Just(("in", json!(["a", 1, null]))),
            Just(("not_in", json!([true]))),
            Just(("starts_with", json!("a"))),
            Just(("contains", json!("b"))),
            Just(("gte", json!(0))),
            Just(("semver_gte", json!("1.2.3-rc.1"))),
        ],
    )
        .prop_map(|(attr, (op, value))| json!({"attr": attr, "op": op, "value": value}));
    let rule = (
        proptest::collection::vec(condition, 0..4),
        prop_oneof![Just(json!("a")), Just(json!("b")), Just(Value::Null)],
        0u32..=100,
    )
        .prop_map(|(when, serve, split)| {
            if serve.is_null() {
                json!({"when": when, "rollout": {"a": split, "b": 100 - split}})
            } else {
                json!({"when": when, "serve": serve})
            }
        });
    (proptest::collection::vec(rule, 0..6), any::<bool>()).prop_map(|(rules, enabled)| {
        let mut f = flag(Value::from(rules));
        f.enabled = enabled;
        f
    })
}

proptest::proptest! {
    /// The playground's explanation is OFREP's answer, and says truthfully why: each missed
    /// rule's named condition fails and the ones before it hold; the matched rule's all hold;
    /// rules are walked in order and the walk stops at the match.
    #[test]
    fn explain_agrees_with_evaluate(f in arb_flag(), value in arb_json()) {
        let Ok(context) = EvaluationContext::from_value(value) else { return Ok(()) };
        let e = explain(&f, &context);
        proptest::prop_assert_eq!(&e.result, &evaluate(&f, &context));
        if !f.enabled || f.rules.is_empty() {
            proptest::prop_assert!(e.steps.is_empty());
            return Ok(());
        }
        for (i, step) in e.steps.iter().enumerate() {
            match step {
                RuleStep::Missed { rule, miss } => {
                    proptest::prop_assert_eq!(*rule, i);
                    let when = &f.rules[*rule].when;
                    proptest::prop_assert!(!condition_holds(&when[miss.condition], &context));
                    proptest::prop_assert!(when[..miss.condition].iter().all(|c| condition_holds(c, &context)));
                }
                RuleStep::Matched { rule, .. } => {
                    proptest::prop_assert_eq!(*rule, i);
                    proptest::prop_assert_eq!(i, e.steps.len() - 1);
                    proptest::prop_assert!(f.rules[*rule].when.iter().all(|c| condition_holds(c, &context)));
                }
            }
        }
        match e.matched_rule() {
            None => {
                proptest::prop_assert_eq!(e.steps.len(), f.rules.len());
                proptest::prop_assert_eq!(e.result.map(|r| r.reason), Ok(Reason::Default));
            }
            Some(_) => {
                let reason = e.result.as_ref().map(|r| r.reason).map_err(|err| err.code);
                proptest::prop_assert!(matches!(
                    reason,
                    Ok(Reason::TargetingMatch | Reason::Split) | Err(ErrorCode::TargetingKeyMissing)
                ));
            }
        }
    }
}
