//! OFREP with the real OpenFeature Rust SDK (`open-feature` 0.3) and its OFREP provider
//! (`open-feature-ofrep` 0.1), unchanged, against a real console on SQLite and PostgreSQL.
//!
//! What this provider version does with the protocol (checked here, documented in
//! docs/flags.md): it reads `value` and `variant` but always reports reason `STATIC`; it maps
//! 404 to `FLAG_NOT_FOUND` and any 400 to `INVALID_CONTEXT`; a value of the wrong type is
//! its own `PARSE_ERROR`. The raw-HTTP assertions beside each SDK call check the reasons and
//! codes the console actually sends.

use open_feature::{EvaluationContext, EvaluationErrorCode, OpenFeature, StructValue};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::{FileFormat, parse_flags_file};
use raxx_core::gate::KeyKind;
use raxx_testkit::TestConsole;
use serde_json::{Value, json};

const APP: &str = "raxx-api-staging";

const FLAGS: &str = r#"app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[[flags.new-checkout.rules]]
rollout = { on = 10, off = 90 }

[flags.theme]
type = "string"
variants = { light = "light", dark = "dark" }
default = "light"

[[flags.theme.rules]]
when = [{ attr = "plan", op = "in", value = ["pro", "team"] }]
serve = "dark"

[flags.upload-limit]
type = "integer"
variants = { small = 10, large = 100 }
default = "small"

[flags.sample-rate]
type = "float"
variants = { low = 0.1, high = 0.75 }
default = "high"

[flags.banner]
type = "object"
variants = { plain = { text = "Welcome", color = "blue", size = 3 } }
default = "plain"

[flags.legacy-search]
type = "boolean"
variants = { on = true, off = false }
default = "on"
enabled = false
"#;

/// A staging console on `localhost` (so the SDK's own resolver finds it), with FLAGS
/// applied and a client key.
async fn console(url: &str) -> (TestConsole, String) {
    let extra = format!("[[apps]]\nname = \"{APP}\"\nenv = \"staging\"\n");
    let c = TestConsole::start_on_host(Env::Staging, "localhost", url, &extra).await;
    let flags = parse_flags_file(FLAGS, FileFormat::Toml).expect("fixture parses");
    c.store()
        .apply_flags(
            &flags,
            "test",
            AuditEvent::new("test", "flag.apply", Outcome::Allowed),
        )
        .await
        .expect("apply");
    let mut tx = c.store().begin().await.expect("begin");
    let (secret, _) = tx
        .create_app_key(APP, KeyKind::Client, "sdk", "test")
        .await
        .expect("key");
    tx.record(AuditEvent::new("test", "key.create", Outcome::Allowed))
        .await
        .expect("audit");
    tx.commit().await.expect("commit");
    (c, secret)
}

/// An OpenFeature client backed by the OFREP provider pointed at `c`, under its own name
/// (tests run in parallel against the SDK's global registry).
async fn sdk_client(c: &TestConsole, key: &str) -> open_feature::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: c.origin.clone(),
        headers,
        ..Default::default()
    })
    .await
    .expect("provider");
    let name = format!("raxx-{}", uuid_like());
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(&name, provider).await;
    api.create_named_client(&name)
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn raw(c: &TestConsole, key: &str, flag: &str, context: Value) -> (u16, Value) {
    let resp = c
        .client()
        .post(c.url(&format!("/ofrep/v1/evaluate/flags/{flag}")))
        .bearer_auth(key)
        .json(&json!({ "context": context }))
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn the_openfeature_sdk_evaluates_every_flag_type() {
    raxx_testkit::each_backend!(|url| {
        let (c, key) = console(&url).await;
        let client = sdk_client(&c, &key).await;
        let ctx = EvaluationContext::default().with_targeting_key("user-1");

        let b = client
            .get_bool_details(
                "new-checkout",
                Some(&ctx.clone().with_custom_field("email", "ann@raxx.app")),
                None,
            )
            .await
            .expect("bool");
        assert!(b.value);
        assert_eq!(b.variant.as_deref(), Some("on"));
        let s = client
            .get_string_details("theme", Some(&ctx), None)
            .await
            .expect("string");
        assert_eq!(
            (s.value.as_str(), s.variant.as_deref()),
            ("light", Some("light"))
        );
        let i = client
            .get_int_details("upload-limit", Some(&ctx), None)
            .await
            .expect("int");
        assert_eq!((i.value, i.variant.as_deref()), (10, Some("small")));
        let f = client
            .get_float_details("sample-rate", Some(&ctx), None)
            .await
            .expect("float");
        assert_eq!((f.value, f.variant.as_deref()), (0.75, Some("high")));
        let o = client
            .get_struct_details::<StructValue>("banner", Some(&ctx), None)
            .await
            .expect("object");
        assert_eq!(
            o.value.fields.get("text").and_then(|v| v.as_str()),
            Some("Welcome")
        );
        assert_eq!(o.value.fields.get("size").and_then(|v| v.as_i64()), Some(3));
        assert_eq!(o.variant.as_deref(), Some("plain"));
    });
}

#[tokio::test]
async fn the_sdk_sees_targeting_rollouts_and_disabled_flags_as_the_console_decides() {
    raxx_testkit::each_backend!(|url| {
        let (c, key) = console(&url).await;
        let client = sdk_client(&c, &key).await;

        // Targeting: an `in` rule on a custom attribute.
        let pro = EvaluationContext::default()
            .with_targeting_key("u")
            .with_custom_field("plan", "pro");
        let free = EvaluationContext::default()
            .with_targeting_key("u")
            .with_custom_field("plan", "free");
        assert_eq!(
            client
                .get_string_value("theme", Some(&pro), None)
                .await
                .expect("pro"),
            "dark"
        );
        assert_eq!(
            client
                .get_string_value("theme", Some(&free), None)
                .await
                .expect("free"),
            "light"
        );
        assert_eq!(
            raw(
                &c,
                &key,
                "theme",
                json!({"targetingKey": "u", "plan": "pro"})
            )
            .await
            .1["reason"],
            "TARGETING_MATCH"
        );

        // Rollout: the SDK gets exactly the server's sticky split, about 10% `on`.
        let mut on = 0;
        for n in 0..200 {
            let tk = format!("user-{n}");
            let ctx = EvaluationContext::default()
                .with_targeting_key(tk.clone())
                .with_custom_field("email", "x@example.com");
            let details = client
                .get_bool_details("new-checkout", Some(&ctx), None)
                .await
                .expect("split");
            let (status, body) = raw(
                &c,
                &key,
                "new-checkout",
                json!({"targetingKey": tk, "email": "x@example.com"}),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(body["reason"], "SPLIT");
            assert_eq!(json!(details.value), body["value"], "{tk}");
            assert_eq!(details.variant.as_deref(), body["variant"].as_str());
            on += usize::from(details.value);
        }
        assert!((5..=45).contains(&on), "{on} of 200 in the 10% bucket");

        // Disabled: the default variant's value (reason DISABLED on the wire).
        let ctx = EvaluationContext::default().with_targeting_key("u");
        let d = client
            .get_bool_details("legacy-search", Some(&ctx), None)
            .await
            .expect("disabled");
        assert!(d.value);
        assert_eq!(d.variant.as_deref(), Some("on"));
        assert_eq!(
            raw(&c, &key, "legacy-search", json!({"targetingKey": "u"}))
                .await
                .1["reason"],
            "DISABLED"
        );
    });
}

#[tokio::test]
async fn the_sdk_gets_errors_for_unknown_flags_type_mismatches_and_missing_targeting_keys() {
    raxx_testkit::each_backend!(|url| {
        let (c, key) = console(&url).await;
        let client = sdk_client(&c, &key).await;
        let ctx = EvaluationContext::default().with_targeting_key("u");

        let unknown = client
            .get_bool_details("no-such-flag", Some(&ctx), None)
            .await
            .expect_err("unknown");
        assert_eq!(unknown.code, EvaluationErrorCode::FlagNotFound);
        let (status, body) = raw(&c, &key, "no-such-flag", json!({})).await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (404, Some("FLAG_NOT_FOUND"))
        );

        // Asking for an integer from a string flag: the provider refuses the value.
        let mismatch = client
            .get_int_details("theme", Some(&ctx), None)
            .await
            .expect_err("mismatch");
        assert!(
            matches!(
                mismatch.code,
                EvaluationErrorCode::TypeMismatch | EvaluationErrorCode::ParseError
            ),
            "{:?}",
            mismatch.code
        );
        let mismatch = client
            .get_bool_details("upload-limit", Some(&ctx), None)
            .await
            .expect_err("mismatch");
        assert!(matches!(
            mismatch.code,
            EvaluationErrorCode::TypeMismatch | EvaluationErrorCode::ParseError
        ));

        // A rollout without a targetingKey: 400 TARGETING_KEY_MISSING on the wire.
        let anonymous = EvaluationContext::default().with_custom_field("email", "x@example.com");
        let missing = client
            .get_bool_details("new-checkout", Some(&anonymous), None)
            .await
            .expect_err("no key");
        assert!(
            matches!(
                missing.code,
                EvaluationErrorCode::TargetingKeyMissing | EvaluationErrorCode::InvalidContext
            ),
            "{:?}",
            missing.code
        );
        let (status, body) = raw(&c, &key, "new-checkout", json!({"email": "x@example.com"})).await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (400, Some("TARGETING_KEY_MISSING"))
        );

        // A wrong key: the provider reports an auth error, never a value.
        let bad = sdk_client(&c, "rxc_wrong").await;
        let err = bad
            .get_bool_details("new-checkout", Some(&ctx), None)
            .await
            .expect_err("auth");
        assert!(
            matches!(err.code, EvaluationErrorCode::General(_)),
            "{:?}",
            err.code
        );
    });
}
