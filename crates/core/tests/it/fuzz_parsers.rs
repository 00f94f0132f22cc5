//! Property tests for every parser that takes outside input (issue 8, docs/reliability.md):
//! the flags file (TOML, YAML, JSON), OFREP request bodies and contexts, `If-None-Match`
//! and the config file. None may panic; whatever they accept must be safe to serve.

use proptest::prelude::*;
use raxx_core::config::Config;
use raxx_core::flags::ofrep::{evaluate_all, evaluate_flag, parse_request};
use raxx_core::flags::{
    AppFlags, ErrorCode, EvaluationContext, FileFormat, bulk_etag, etag_for, evaluate,
    if_none_match, parse_flags_file, to_file_json,
};
use serde_json::{Value, json};

const FORMATS: [FileFormat; 3] = [FileFormat::Toml, FileFormat::Yaml, FileFormat::Json];

const VALID_TOML: &str = r#"app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[[flags.new-checkout.rules]]
rollout = { on = 10, off = 90 }

[flags.upload-limit]
type = "integer"
variants = { small = 10, large = 100 }
default = "small"
"#;

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("email"),
            Just("targetingKey"),
            Just("1.2.3"),
            Just("@raxx.app")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,8}".boxed(),
                    Just("targetingKey".to_string()).boxed(),
                    Just("email".to_string()).boxed(),
                    Just("version".to_string()).boxed(),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A flags file built from plausible and implausible pieces, as JSON.
fn flags_file_json() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        Just("boolean"),
        Just("string"),
        Just("integer"),
        Just("float"),
        Just("object"),
        Just("bogus")
    ];
    let op = prop_oneof![
        Just("eq"),
        Just("neq"),
        Just("in"),
        Just("not_in"),
        Just("starts_with"),
        Just("ends_with"),
        Just("contains"),
        Just("lt"),
        Just("gte"),
        Just("semver_gt"),
        Just("semver_eq"),
        Just("nope"),
    ];
    let variant_name = prop_oneof![Just("on"), Just("off"), Just("a"), Just("")];
    let condition = (
        prop_oneof![
            Just("email"),
            Just("version"),
            Just("targetingKey"),
            Just("")
        ],
        op,
        json_value(),
    )
        .prop_map(|(attr, op, value)| json!({"attr": attr, "op": op, "value": value}));
    let rule = prop_oneof![
        (prop::collection::vec(condition, 0..3), variant_name.clone())
            .prop_map(|(when, serve)| json!({"when": when, "serve": serve})),
        (0u64..120, 0u64..120).prop_map(|(a, b)| json!({"rollout": {"on": a, "off": b}})),
        json_value().prop_map(|v| json!({ "serve": v })),
    ];
    let flag = (
        ty,
        prop::collection::btree_map(variant_name.clone(), json_value(), 0..3),
        variant_name,
        prop::collection::vec(rule, 0..3),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(ty, variants, default, rules, enabled)| {
            let mut f =
                json!({"type": ty, "variants": variants, "default": default, "rules": rules});
            if let Some(e) = enabled {
                f["enabled"] = json!(e);
            }
            f
        });
    (
        prop_oneof![Just("raxx-api-staging".to_string()), ".{0,10}".boxed()],
        prop::collection::btree_map(
            prop_oneof![
                Just("f".to_string()),
                "[a-z-]{1,8}".boxed(),
                ".{0,6}".boxed()
            ],
            flag,
            0..4,
        ),
    )
        .prop_map(|(app, flags)| json!({"app": app, "flags": flags}))
}

/// Evaluate every accepted flag under `ctx`: validation must rule out the errors that only
/// bad stored state can cause (`TYPE_MISMATCH`, `GENERAL`).
fn check_accepted(flags: &AppFlags, ctx: &EvaluationContext) {
    for (key, flag) in &flags.flags {
        if let Err(e) = evaluate(flag, ctx) {
            assert!(
                matches!(e.code, ErrorCode::TargetingKeyMissing),
                "accepted flag `{key}` failed with {:?}: {}",
                e.code,
                e.details
            );
        }
    }
    let _ = evaluate_all(flags, ctx);
    let _ = evaluate_flag(flags, "missing-flag", ctx);
    let etag = etag_for(flags);
    let _ = if_none_match(&bulk_etag(&etag, ctx), &etag);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary text in every format: an error with a plausible line, never a panic.
    #[test]
    fn flags_file_arbitrary_text_never_panics(text in ".{0,400}") {
        for format in FORMATS {
            match parse_flags_file(&text, format) {
                Ok(flags) => check_accepted(&flags, &EvaluationContext::default()),
                Err(e) => {
                    if let Some(line) = e.line {
                        // Parsers count a lone `\r` as a line break too.
                        let breaks = text.matches(['\n', '\r']).count();
                        prop_assert!(line >= 1 && line <= breaks + 1, "line {line}");
                    }
                }
            }
        }
    }

    /// A valid file with random edits (delete, insert, replace a span).
    #[test]
    fn flags_file_mutations_never_panic(
        at in 0usize..VALID_TOML.len(),
        len in 0usize..40,
        insert in ".{0,12}",
    ) {
        let mut text: Vec<char> = VALID_TOML.chars().collect();
        let at = at.min(text.len());
        let end = (at + len).min(text.len());
        text.splice(at..end, insert.chars());
        let text: String = text.into_iter().collect();
        if let Ok(flags) = parse_flags_file(&text, FileFormat::Toml) {
            check_accepted(&flags, &EvaluationContext::default());
        }
    }

    /// Structured files with random types, variants, rules and values, in JSON and (through
    /// a conversion) YAML: whatever is accepted evaluates without a server-side error under
    /// any context, and round-trips through `to_file_json`.
    #[test]
    fn structured_flags_files_are_refused_or_safe(
        file in flags_file_json(),
        ctx in json_value(),
    ) {
        let text = file.to_string();
        let parsed = parse_flags_file(&text, FileFormat::Json);
        let yaml = serde_json::to_string_pretty(&file).unwrap();
        // JSON is YAML: the same document must get the same verdict.
        let as_yaml = parse_flags_file(&yaml, FileFormat::Yaml);
        prop_assert_eq!(parsed.is_ok(), as_yaml.is_ok(), "json {:?} yaml {:?}", parsed, as_yaml);
        if let Ok(flags) = parsed {
            let back = parse_flags_file(&to_file_json(&flags).to_string(), FileFormat::Json)
                .expect("a written-back file parses");
            prop_assert_eq!(&back, &flags);
            if let Ok(ctx) = EvaluationContext::from_value(ctx) {
                check_accepted(&flags, &ctx);
            }
            check_accepted(&flags, &EvaluationContext::from_value(json!({"targetingKey": "u-1"})).unwrap());
        }
    }

    /// OFREP bodies: arbitrary bytes and arbitrary JSON give a context or a 400-class error.
    #[test]
    fn ofrep_request_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = parse_request(&bytes) {
            prop_assert!(matches!(e.code, ErrorCode::ParseError | ErrorCode::InvalidContext), "{:?}", e.code);
        }
    }

    #[test]
    fn ofrep_json_contexts_evaluate_or_are_invalid(ctx in json_value(), wrap in any::<bool>()) {
        let body = if wrap { json!({"context": ctx}) } else { ctx };
        let flags = parse_flags_file(VALID_TOML, FileFormat::Toml).unwrap();
        match parse_request(body.to_string().as_bytes()) {
            Ok(ctx) => check_accepted(&flags, &ctx),
            Err(e) => prop_assert!(
                matches!(e.code, ErrorCode::ParseError | ErrorCode::InvalidContext),
                "{:?}", e.code
            ),
        }
    }

    /// `If-None-Match` is a header anyone can send.
    #[test]
    fn if_none_match_never_panics(header in ".{0,80}") {
        let flags = parse_flags_file(VALID_TOML, FileFormat::Toml).unwrap();
        let etag = etag_for(&flags);
        let _ = if_none_match(&header, &etag);
        // A well-formed list that names the tag matches, whatever else it lists.
        let listed = format!("\"{}\", W/{}", header.replace('"', ""), etag);
        prop_assert!(if_none_match(&listed, &etag));
    }

    /// The config file and its env-var overrides: an error naming a line, never a panic,
    /// and `resolve` refuses or derives an env.
    #[test]
    fn config_arbitrary_text_never_panics(text in ".{0,300}", url in ".{0,40}") {
        let vars = |v: &str| (v == "CONSOLE_PUBLIC_URL").then(|| url.clone());
        if let Ok(cfg) = Config::parse(&text, vars) {
            let _ = cfg.resolve();
        }
    }

    /// Config built from real keys with random values.
    #[test]
    fn config_random_values_never_panic(
        public_url in prop_oneof![Just("http://prod.localhost:8080".to_string()), ".{0,30}".boxed()],
        listen in prop_oneof![Just("127.0.0.1:0".to_string()), ".{0,20}".boxed()],
        app in "[a-z-]{0,12}",
        env in prop_oneof![Just("prod"), Just("staging"), Just("dev")],
        schedule in prop_oneof![Just("* * * * * *".to_string()), ".{0,20}".boxed()],
        scope in prop_oneof![Just("prod"), Just("any"), Just("mars")],
    ) {
        let text = format!(
            "public_url = {public_url:?}\nlisten = {listen:?}\n[[apps]]\nname = {app:?}\nenv = {env:?}\n[jobs.session-purge]\nschedule = {schedule:?}\n[groups.g]\nmembers = [\"a@raxx.test\"]\ngrants = [{{ role = \"console-job-admin\", env_scope = {scope:?} }}]\n"
        );
        match Config::parse(&text, |_| None) {
            Ok(cfg) => { let _ = cfg.resolve(); }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    // 10 000 nested arrays: serde_json's recursion limit answers, never a crash.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = format!("{{\"context\": {{\"a\": {deep}}}}}");
    assert!(parse_request(body.as_bytes()).is_err());
    let file = format!("{{\"app\": \"a\", \"flags\": {deep}}}");
    assert!(parse_flags_file(&file, FileFormat::Json).is_err());
    let yaml = format!("app: a\nflags: {deep}\n");
    assert!(parse_flags_file(&yaml, FileFormat::Yaml).is_err());
    let toml = format!("app = \"a\"\nx = {deep}\n");
    assert!(parse_flags_file(&toml, FileFormat::Toml).is_err());
    assert!(Config::parse(&format!("x = {deep}\n"), |_| None).is_err());
}
