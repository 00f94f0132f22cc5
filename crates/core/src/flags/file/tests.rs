use super::*;
use crate::flags::fixtures::{SPEC_TOML, spec_flags};
use crate::flags::model::{Condition, Op, Serve};
use proptest::prelude::*;
use serde_json::json;

const SPEC_YAML: &str = r#"app: raxx-api-staging
flags:
  new-checkout:
    type: boolean
    variants: {on: true, off: false}
    default: "off"
    enabled: true
    description: New checkout flow
    rules:
      - when:
          - {attr: email, op: ends_with, value: "@raxx.app"}
        serve: "on"
      - rollout: {on: 10, off: 90}
  banner:
    type: string
    variants:
      old: Welcome
      new: Hello there
    default: old
    rules:
      - when: [{attr: appVersion, op: semver_gte, value: 2.4.0}]
        serve: new
"#;

const SPEC_JSON: &str = r#"{
  "app": "raxx-api-staging",
  "flags": {
    "new-checkout": {
      "type": "boolean",
      "variants": {"on": true, "off": false},
      "default": "off",
      "enabled": true,
      "description": "New checkout flow",
      "rules": [
        {"when": [{"attr": "email", "op": "ends_with", "value": "@raxx.app"}], "serve": "on"},
        {"rollout": {"on": 10, "off": 90}}
      ]
    },
    "banner": {
      "type": "string",
      "variants": {"old": "Welcome", "new": "Hello there"},
      "default": "old",
      "rules": [{"when": [{"attr": "appVersion", "op": "semver_gte", "value": "2.4.0"}], "serve": "new"}]
    }
  }
}"#;

#[test]
fn the_spec_example_parses_into_the_model() {
    let app = spec_flags();
    assert_eq!(app.app, "raxx-api-staging");
    assert_eq!(
        app.flags.keys().collect::<Vec<_>>(),
        ["banner", "new-checkout"]
    );
    let flag = &app.flags["new-checkout"];
    assert_eq!(flag.key, "new-checkout");
    assert_eq!(flag.flag_type, FlagType::Boolean);
    assert_eq!(
        flag.variants,
        [
            ("on".to_owned(), json!(true)),
            ("off".to_owned(), json!(false))
        ]
        .into()
    );
    assert_eq!(flag.default_variant, "off");
    assert_eq!(flag.description.as_deref(), Some("New checkout flow"));
    assert_eq!(flag.rules.len(), 2);
    let cond = Condition {
        attr: "email".into(),
        op: Op::EndsWith,
        value: json!("@raxx.app"),
    };
    assert_eq!(flag.rules[0].when, vec![cond]);
    assert_eq!(flag.rules[0].serve, Serve::Variant("on".into()));
    assert_eq!(
        flag.rules[1].serve,
        Serve::Rollout([("on".to_owned(), 10), ("off".to_owned(), 90)].into())
    );
}

#[test]
fn yaml_and_json_with_the_same_structure_give_the_same_state() {
    let yaml = parse_flags_file(SPEC_YAML, FileFormat::Yaml);
    let json = parse_flags_file(SPEC_JSON, FileFormat::Json);
    assert_eq!(yaml, Ok(spec_flags()));
    assert_eq!(json, Ok(spec_flags()));
}

#[test]
fn format_comes_from_the_path_or_content_type() {
    let paths = [
        ("flags/staging.toml", Some(FileFormat::Toml)),
        ("F.YML", Some(FileFormat::Yaml)),
        ("a.yaml", Some(FileFormat::Yaml)),
        ("a.json", Some(FileFormat::Json)),
        ("a.txt", None),
        ("toml", None),
    ];
    for (path, expected) in paths {
        assert_eq!(FileFormat::from_path(path), expected, "{path}");
    }
    let types = [
        ("application/toml", Some(FileFormat::Toml)),
        ("application/json; charset=utf-8", Some(FileFormat::Json)),
        ("Application/Merge-Patch+JSON", Some(FileFormat::Json)),
        ("application/x-yaml", Some(FileFormat::Yaml)),
        ("text/yaml", Some(FileFormat::Yaml)),
        ("text/plain", None),
        ("", None),
    ];
    for (ct, expected) in types {
        assert_eq!(FileFormat::from_content_type(ct), expected, "{ct}");
    }
}

/// The SPEC example with one line replaced (`line` is 1-based).
fn spec_with(line: usize, replacement: &str) -> String {
    let mut lines: Vec<&str> = SPEC_TOML.lines().collect();
    lines[line - 1] = replacement;
    lines.join("\n")
}

fn toml_error(text: &str) -> String {
    parse_flags_file(text, FileFormat::Toml)
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn toml_problems_are_refused_with_line_and_reason() {
    let cases = [
        (
            spec_with(6, r#"default = "of""#),
            "line 6: flag `new-checkout`: default variant `of` is not one of its variants (off, on)",
        ),
        (
            spec_with(4, r#"type = "bool""#),
            "line 4: unknown variant `bool`, expected one of `boolean`, `string`, `integer`, `float`, `object`",
        ),
        (
            spec_with(5, r#"variants = { on = true, off = "no" }"#),
            "line 5: flag `new-checkout`: variant `off` is the string \"no\", not a value of type boolean",
        ),
        (
            spec_with(5, "variants = {}"),
            "line 5: flag `new-checkout`: has no variants",
        ),
        (
            spec_with(7, "colour = \"red\""),
            "line 7: unknown field `colour`, expected one of `type`, `variants`, `default`, `enabled`, `description`, `rules`",
        ),
        (
            spec_with(12, r#"serve = "yes""#),
            "line 12: flag `new-checkout`: rule 1: serves `yes`, which is not one of its variants (off, on)",
        ),
        (
            spec_with(15, "rollout = { on = 10, off = 80 }"),
            "line 15: flag `new-checkout`: rule 2: rollout percentages sum to 90, not 100",
        ),
        (
            spec_with(15, "rollout = { on = 10, of = 90 }"),
            "line 15: flag `new-checkout`: rule 2: rollout names `of`, which is not one of its variants (off, on)",
        ),
        (
            spec_with(15, "rollout = { on = -10, off = 110 }"),
            "line 15: invalid value: integer `-10`, expected u32",
        ),
        (
            spec_with(
                11,
                r#"when = [{ attr = "email", op = "like", value = "x" }]"#,
            ),
            "line 11: unknown variant `like`, expected one of `eq`, `neq`, `in`, `not_in`, `starts_with`, `ends_with`, `contains`, `lt`, `lte`, `gt`, `gte`, `semver_eq`, `semver_lt`, `semver_lte`, `semver_gt`, `semver_gte`",
        ),
        (
            spec_with(11, r#"when = [{ attr = "age", op = "lt", value = "ten" }]"#),
            "line 11: flag `new-checkout`: rule 1: `lt` cannot compare with the string \"ten\"",
        ),
        (
            spec_with(12, "serve = \"on\"\nrollout = { on = 100 }"),
            "line 10: a rule has either `serve` or `rollout`, not both",
        ),
        (
            spec_with(17, "[flags.new-checkout]"),
            "line 17: duplicate key `new-checkout`",
        ),
        (
            SPEC_TOML.replace("flags.banner", "flags.\"new checkout\""),
            "line 17: flag `new checkout`: flag key `new checkout` must be 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `-`",
        ),
        (
            spec_with(1, "app = \"raxx api\""),
            "line 1: app name `raxx api` must be 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `-`",
        ),
        (spec_with(1, "# no app"), "line 1: missing field `app`"),
        (
            spec_with(6, "default = \"off"),
            "line 6: invalid basic string, expected `\"`",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(toml_error(&text), expected);
    }
}

#[test]
fn json_and_yaml_problems_carry_lines_too() {
    let json_default = SPEC_JSON.replace(r#""default": "off""#, r#""default": "of""#);
    let json_dup = SPEC_JSON.replace(r#""banner": {"#, r#""new-checkout": {"#);
    let json_dup_variant = SPEC_JSON.replace(
        r#"{"on": true, "off": false}"#,
        r#"{"on": true, "on": false}"#,
    );
    let json_dup_rollout = SPEC_JSON.replace(r#"{"on": 10, "off": 90}"#, r#"{"on": 10, "on": 90}"#);
    let yaml_default = SPEC_YAML.replace(r#"default: "off""#, "default: of");
    let yaml_dup = SPEC_YAML.replace("  banner:", "  new-checkout:");
    let yaml_rollout =
        SPEC_YAML.replace("rollout: {on: 10, off: 90}", "rollout: {on: 10, off: 95}");
    let cases = [
        (
            FileFormat::Json,
            json_default,
            "line 7: flag `new-checkout`: default variant `of` is not one of its variants (off, on)",
        ),
        (
            FileFormat::Json,
            json_dup,
            "line 15: duplicate flag key `new-checkout`",
        ),
        (
            FileFormat::Json,
            json_dup_variant,
            "line 6: duplicate variant `on`",
        ),
        (
            FileFormat::Json,
            json_dup_rollout,
            "line 12: duplicate rollout variant `on`",
        ),
        (
            FileFormat::Json,
            "{\"app\": \"a\",\n \"flags\": }".to_owned(),
            "line 2: expected value",
        ),
        (
            FileFormat::Json,
            "{\"app\": \"a\",\n \"flags\": [1]}".to_owned(),
            "line 2: invalid type: sequence, expected a table of flag keys",
        ),
        (
            FileFormat::Json,
            "{\"app\": \"a\", \"extra\": 1}".to_owned(),
            "line 1: unknown field `extra`, expected `app` or `flags`",
        ),
        (
            FileFormat::Yaml,
            yaml_default,
            "line 6: flag `new-checkout`: default variant `of` is not one of its variants (off, on)",
        ),
        (
            FileFormat::Yaml,
            yaml_dup,
            "line 3: flags: duplicate flag key `new-checkout`",
        ),
        (
            FileFormat::Yaml,
            yaml_rollout,
            "line 13: flag `new-checkout`: rule 2: rollout percentages sum to 105, not 100",
        ),
        (
            FileFormat::Yaml,
            "app: a\n  bad: indent\n".to_owned(),
            "line 2: mapping values are not allowed in this context",
        ),
    ];
    for (format, text, expected) in cases {
        let got = parse_flags_file(&text, format)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(got, expected, "{format:?}");
    }
}

#[test]
fn size_limits_refuse_the_file() {
    let big = format!("app = \"a\"\n#{}", "x".repeat(MAX_FILE_BYTES));
    assert_eq!(
        toml_error(&big),
        format!(
            "the file is {} bytes; the limit is 1048576 (1 MiB)",
            big.len()
        )
    );

    let flag = json!({"type": "boolean", "variants": {"on": true}, "default": "on"});
    let flags: serde_json::Map<String, Value> = (0..=MAX_FLAGS)
        .map(|i| (format!("f{i}"), flag.clone()))
        .collect();
    let text = json!({"app": "a", "flags": flags}).to_string();
    let err = parse_flags_file(&text, FileFormat::Json)
        .map(|_| ())
        .map_err(|e| e.reason);
    assert_eq!(err, Err("more than 1000 flag keys".to_owned()));
    let ok: serde_json::Map<String, Value> = (0..MAX_FLAGS)
        .map(|i| (format!("f{i}"), flag.clone()))
        .collect();
    let text = json!({"app": "a", "flags": ok}).to_string();
    assert_eq!(
        parse_flags_file(&text, FileFormat::Json).map(|a| a.flags.len()),
        Ok(MAX_FLAGS)
    );
}

#[test]
fn an_app_without_flags_is_a_valid_empty_state() {
    let app = parse_flags_file("app = \"raxx-api-staging\"\n", FileFormat::Toml);
    assert_eq!(app, Ok(AppFlags::new("raxx-api-staging")));
}

#[test]
fn to_file_json_round_trips_the_spec_example() {
    let app = spec_flags();
    let text = to_file_json(&app).to_string();
    assert!(
        !text.contains("\"key\""),
        "the file shape carries keys as map keys only: {text}"
    );
    assert_eq!(parse_flags_file(&text, FileFormat::Json), Ok(app));
}

fn arb_value(flag_type: FlagType) -> BoxedStrategy<Value> {
    match flag_type {
        FlagType::Boolean => any::<bool>().prop_map(Value::from).boxed(),
        FlagType::String => ".{0,12}".prop_map(Value::from).boxed(),
        FlagType::Integer => any::<i64>().prop_map(Value::from).boxed(),
        // Decimals as people write them: serde_json (without `float_roundtrip`) may read a
        // 17-digit float back one ULP off.
        FlagType::Float => (-1_000_000_000_000i64..1_000_000_000_000)
            .prop_map(|n| Value::from(n as f64 / 1000.0))
            .boxed(),
        FlagType::Object => prop::collection::btree_map("[a-z]{1,5}", any::<i32>(), 0..3)
            .prop_map(|m| json!(m))
            .boxed(),
    }
}

fn arb_flag(key: String) -> impl Strategy<Value = Flag> {
    let flag_type = prop_oneof![
        Just(FlagType::Boolean),
        Just(FlagType::String),
        Just(FlagType::Integer),
        Just(FlagType::Float),
        Just(FlagType::Object)
    ];
    flag_type.prop_flat_map(move |ty| {
        let variants = prop::collection::btree_map("[a-z][a-z0-9_-]{0,6}", arb_value(ty), 1..4);
        (
            Just(key.clone()),
            Just(ty),
            variants,
            any::<bool>(),
            prop::option::of("[ -~]{0,20}"),
            0..3usize,
            any::<u8>(),
        )
            .prop_map(
                |(key, flag_type, variants, enabled, description, n_rules, seed)| {
                    let names: Vec<String> = variants.keys().cloned().collect();
                    let rules = (0..n_rules)
                        .map(|i| sample_rule(&names, seed as usize + i))
                        .collect();
                    Flag {
                        default_variant: names[seed as usize % names.len()].clone(),
                        key,
                        flag_type,
                        variants,
                        enabled,
                        description,
                        rules,
                    }
                },
            )
    })
}

fn sample_rule(names: &[String], seed: usize) -> Rule {
    let first = names[seed % names.len()].clone();
    let last = names[names.len() - 1].clone();
    let when = match seed % 3 {
        0 => vec![],
        1 => vec![Condition {
            attr: "email".into(),
            op: Op::EndsWith,
            value: json!("@raxx.app"),
        }],
        _ => vec![Condition {
            attr: "app.version".into(),
            op: Op::SemverLt,
            value: json!("2.0.0-rc.1"),
        }],
    };
    let serve = if seed.is_multiple_of(2) || first == last {
        Serve::Variant(first)
    } else {
        let share = (seed % 101) as u32;
        Serve::Rollout([(first, share), (last, 100 - share)].into())
    };
    Rule { when, serve }
}

fn arb_app_flags() -> impl Strategy<Value = AppFlags> {
    let keys = prop::collection::btree_set("[A-Za-z0-9._-]{1,16}", 0..6);
    ("[a-z][a-z0-9-]{0,20}", keys).prop_flat_map(|(app, keys)| {
        let flags: Vec<_> = keys.into_iter().map(arb_flag).collect();
        (Just(app), flags).prop_map(|(app, flags)| AppFlags {
            app,
            flags: flags.into_iter().map(|f| (f.key.clone(), f)).collect(),
        })
    })
}

proptest! {
    #[test]
    fn a_parsed_file_round_trips_through_json_toml_and_yaml(app in arb_app_flags()) {
        let json = to_file_json(&app);
        prop_assert_eq!(parse_flags_file(&json.to_string(), FileFormat::Json), Ok(app.clone()));
        let toml_text = toml::to_string(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parse_flags_file(&toml_text, FileFormat::Toml), Ok(app.clone()));
        let yaml_text = serde_yaml::to_string(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parse_flags_file(&yaml_text, FileFormat::Yaml), Ok(app.clone()));
        // And the storage form round-trips too.
        let stored = serde_json::to_string(&app).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(serde_json::from_str::<AppFlags>(&stored).ok(), Some(app));
    }
}
