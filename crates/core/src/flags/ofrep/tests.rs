use super::*;
use crate::flags::fixtures::spec_flags;
use serde_json::json;

fn ctx(value: Value) -> EvaluationContext {
    EvaluationContext::from_value(value).expect("valid context")
}

fn body(result: &impl Serialize) -> Value {
    serde_json::to_value(result).expect("serializable")
}

#[test]
fn single_evaluation_bodies_and_statuses_follow_the_spec() {
    let app = spec_flags();
    let staff = ctx(json!({"targetingKey": "u1", "email": "ann@raxx.app"}));
    let anonymous = ctx(json!({"email": "bob@example.com"}));
    let cases = [
        (
            "new-checkout",
            &staff,
            200,
            json!({"key": "new-checkout", "value": true, "reason": "TARGETING_MATCH", "variant": "on"}),
        ),
        (
            "banner",
            &anonymous,
            200,
            json!({"key": "banner", "value": "Welcome", "reason": "STATIC", "variant": "old"}),
        ),
        (
            "new-checkout",
            &anonymous,
            400,
            json!({
                "key": "new-checkout",
                "errorCode": "TARGETING_KEY_MISSING",
                "errorDetails": "flag `new-checkout` has a percentage rollout and the context has no targetingKey"
            }),
        ),
        (
            "nope",
            &staff,
            404,
            json!({"key": "nope", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "flag `nope` was not found"}),
        ),
    ];
    for (key, context, status, expected) in cases {
        let result = evaluate_flag(&app, key, context);
        assert_eq!(result.http_status(), status, "{key}");
        assert_eq!(result.key(), key);
        assert_eq!(body(&result), expected, "{key}");
    }
}

#[test]
fn a_disabled_flag_serves_its_default_variant_with_reason_disabled() {
    let mut app = spec_flags();
    if let Some(flag) = app.flags.get_mut("new-checkout") {
        flag.enabled = false;
    }
    let result = evaluate_flag(&app, "new-checkout", &ctx(json!({"email": "ann@raxx.app"})));
    assert_eq!(result.http_status(), 200);
    assert_eq!(
        body(&result),
        json!({"key": "new-checkout", "value": false, "reason": "DISABLED", "variant": "off"})
    );
}

#[test]
fn error_codes_map_to_the_single_evaluation_statuses() {
    let cases = [
        (ErrorCode::FlagNotFound, 404),
        (ErrorCode::ParseError, 400),
        (ErrorCode::TargetingKeyMissing, 400),
        (ErrorCode::InvalidContext, 400),
        (ErrorCode::TypeMismatch, 500),
        (ErrorCode::General, 500),
    ];
    for (code, status) in cases {
        assert_eq!(code.http_status(), status, "{code:?}");
        assert_eq!(serde_json::to_value(code).ok(), Some(json!(code.as_str())));
    }
}

#[test]
fn bulk_evaluation_lists_every_flag_with_per_flag_failures() {
    let app = spec_flags();
    let answer = evaluate_all(&app, &ctx(json!({"appVersion": "2.5.0"})));
    assert_eq!(
        body(&answer),
        json!({"flags": [
            {"key": "banner", "value": "Hello there", "reason": "TARGETING_MATCH", "variant": "new"},
            {
                "key": "new-checkout",
                "errorCode": "TARGETING_KEY_MISSING",
                "errorDetails": "flag `new-checkout` has a percentage rollout and the context has no targetingKey"
            }
        ]})
    );
}

#[test]
fn wire_types_read_back_what_they_write() {
    let app = spec_flags();
    let answer = evaluate_all(&app, &ctx(json!({"targetingKey": "u7"})));
    let text = serde_json::to_string(&answer).expect("serialize");
    let back: BulkEvaluationSuccess<'static> = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, answer);
    assert!(matches!(back.flags[1], FlagResult::Success(ref s) if s.reason == "SPLIT"));

    let code_default: FlagResult<'static> =
        serde_json::from_value(json!({"key": "k", "reason": "DISABLED", "variant": "off"}))
            .expect("codeDefaultFlag");
    assert!(matches!(code_default, FlagResult::Success(ref s) if s.value.is_none()));
}

#[test]
fn request_bodies_parse_into_contexts_or_fail_with_the_right_code() {
    let cases: [(&[u8], Result<Value, ErrorCode>); 8] = [
        (b"", Ok(json!({}))),
        (b"  \n", Ok(json!({}))),
        (b"{}", Ok(json!({}))),
        (
            br#"{"context": {"targetingKey": "u1", "plan": "pro"}}"#,
            Ok(json!({"targetingKey": "u1", "plan": "pro"})),
        ),
        (br#"{"context": null, "other": 1}"#, Ok(json!({}))),
        (b"{not json", Err(ErrorCode::ParseError)),
        (br#"{"context": [1]}"#, Err(ErrorCode::InvalidContext)),
        (
            br#"{"context": {"targetingKey": 42}}"#,
            Err(ErrorCode::InvalidContext),
        ),
    ];
    for (bytes, expected) in cases {
        let got = parse_request(bytes)
            .map(|c| Value::Object(c.attributes().clone()))
            .map_err(|e| e.code);
        assert_eq!(got, expected, "{}", String::from_utf8_lossy(bytes));
    }
    let failure = BulkEvaluationFailure::from(parse_request(b"[").map(|_| ()).unwrap_err());
    assert_eq!(body(&failure)["errorCode"], json!("PARSE_ERROR"));
}

#[test]
fn etags_change_with_state_and_context_but_not_with_key_order() {
    let app = spec_flags();
    let etag = etag_for(&app);
    assert_eq!(etag.len(), 34);
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert_eq!(etag_for(&spec_flags()), etag);

    let mut changed = spec_flags();
    if let Some(flag) = changed.flags.get_mut("banner") {
        flag.default_variant = "new".into();
    }
    assert_ne!(etag_for(&changed), etag);

    let a = bulk_etag(&etag, &ctx(json!({"targetingKey": "u1", "plan": "pro"})));
    let same = bulk_etag(&etag, &ctx(json!({"plan": "pro", "targetingKey": "u1"})));
    let other_user = bulk_etag(&etag, &ctx(json!({"targetingKey": "u2", "plan": "pro"})));
    let other_state = bulk_etag(
        &etag_for(&changed),
        &ctx(json!({"targetingKey": "u1", "plan": "pro"})),
    );
    assert_eq!(a, same);
    assert_ne!(a, other_user);
    assert_ne!(a, other_state);
    assert_ne!(a, etag);
}

#[test]
fn if_none_match_uses_weak_comparison_over_a_list() {
    let etag = "\"abc\"";
    let cases = [
        ("\"abc\"", true),
        ("W/\"abc\"", true),
        ("*", true),
        ("\"x\", \"abc\"", true),
        ("\"x\",W/\"abc\"", true),
        ("\"abcd\"", false),
        ("abc", false),
        ("\"x\", \"y\"", false),
        ("", false),
        ("\"ab", false),
    ];
    for (header, expected) in cases {
        assert_eq!(if_none_match(header, etag), expected, "{header}");
    }
}

#[test]
fn float_flags_are_served_as_floats() {
    let text = r#"app = "a"

[flags.rate]
type = "float"
variants = { whole = 1, half = 0.5 }
default = "whole"

[flags.count]
type = "integer"
variants = { one = 1 }
default = "one"
"#;
    let app = crate::flags::parse_flags_file(text, crate::flags::FileFormat::Toml).expect("parses");
    let single = body(&evaluate_flag(&app, "rate", &ctx(json!({}))));
    assert_eq!(serde_json::to_string(&single["value"]).expect("ser"), "1.0");
    assert!(single["value"].is_f64());
    let count = body(&evaluate_flag(&app, "count", &ctx(json!({}))));
    assert_eq!(serde_json::to_string(&count["value"]).expect("ser"), "1");
    let all = serde_json::to_string(&evaluate_all(&app, &ctx(json!({})))).expect("ser");
    assert!(all.contains(r#""key":"rate","value":1.0"#), "{all}");
    assert_eq!(
        served_value(FlagType::Float, &json!(0.5)).as_ref(),
        &json!(0.5)
    );
    assert_eq!(
        served_value(FlagType::Integer, &json!(2)).as_ref(),
        &json!(2)
    );
}
