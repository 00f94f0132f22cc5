use super::*;
use crate::flags::fixtures::checkout_flag;
use serde_json::json;

#[test]
fn type_accepts_only_its_own_values() {
    let cases = [
        (FlagType::Boolean, json!(true), true),
        (FlagType::Boolean, json!("true"), false),
        (FlagType::String, json!("x"), true),
        (FlagType::String, json!(1), false),
        (FlagType::Integer, json!(3), true),
        (FlagType::Integer, json!(3.0), false),
        (FlagType::Integer, json!(u64::MAX), true),
        (FlagType::Float, json!(3), true),
        (FlagType::Float, json!(2.5), true),
        (FlagType::Float, json!("2.5"), false),
        (FlagType::Object, json!({"a": 1}), true),
        (FlagType::Object, json!([1]), false),
        (FlagType::Object, Value::Null, false),
    ];
    for (ty, value, expected) in cases {
        assert_eq!(ty.accepts(&value), expected, "{ty} accepts {value}");
    }
}

#[test]
fn a_rule_needs_exactly_one_of_serve_and_rollout() {
    let both = json!({"serve": "on", "rollout": {"on": 100}});
    let neither = json!({"when": []});
    let e1 = serde_json::from_value::<Rule>(both)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    let e2 = serde_json::from_value::<Rule>(neither)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(e1, "a rule has either `serve` or `rollout`, not both");
    assert_eq!(e2, "a rule needs `serve` or `rollout`");
}

#[test]
fn rules_round_trip_in_the_file_shape() {
    let flag = checkout_flag();
    let json = serde_json::to_value(&flag).expect("serialize");
    assert_eq!(json["rules"][0]["serve"], json!("on"));
    assert_eq!(json["rules"][1]["rollout"], json!({"off": 90, "on": 10}));
    assert!(json["rules"][1].get("when").is_none());
    let back: Flag = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, flag);
}
