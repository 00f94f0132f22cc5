//! The flags part of `raxx-console demo`: a staging flags file, OFREP client keys, prod's
//! staging source.

use std::path::Path;

use anyhow::Context;
use raxx_actions::flags::apply_flags_file;
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::{FileFormat, parse_flags_file};
use raxx_core::gate::KeyKind;
use raxx_web::AppState;

use crate::flags_cmd::create_key;

/// The demo's staging flags file, written once to `DIR/raxx-api-staging.flags.toml` so the
/// user can edit it and `flags apply` it again.
pub const DEMO_STAGING_FLAGS: &str = r#"# raxx-console demo: the staging flags of raxx-api-staging (SPEC §7).
# Edit, then: raxx-console flags apply --config DIR/staging.toml DIR/raxx-api-staging.flags.toml
app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"
description = "New checkout flow"

[[flags.new-checkout.rules]]          # first match wins
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[[flags.new-checkout.rules]]
rollout = { on = 10, off = 90 }       # percentages on targetingKey

[flags.theme]
type = "string"
variants = { classic = "classic", midnight = "midnight" }
default = "classic"
description = "Colour theme"

[[flags.theme.rules]]
when = [{ attr = "plan", op = "in", value = ["pro", "team"] }]
serve = "midnight"

[flags.upload-limit-mb]
type = "integer"
variants = { standard = 25, large = 250 }
default = "standard"

[[flags.upload-limit-mb.rules]]
when = [{ attr = "appVersion", op = "semver_gte", value = "2.4.0" }]
serve = "large"

[flags.search-sample-rate]
type = "float"
variants = { low = 0.05, high = 0.5 }
default = "low"

[flags.banner]
type = "object"
variants = { none = {}, sale = { text = "Spring sale: 20% off", color = "green" } }
default = "sale"

[flags.legacy-export]
type = "boolean"
variants = { on = true, off = false }
default = "off"
enabled = false
description = "Old CSV export (disabled: answers DISABLED)"
"#;

/// Prod starts smaller, so "New promotion" has a diff to show.
const DEMO_PROD_FLAGS: &str = r#"app = "raxx-api-prod"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"
description = "New checkout flow"

[flags.theme]
type = "string"
variants = { classic = "classic", midnight = "midnight" }
default = "classic"
description = "Colour theme"
"#;

/// What the demo prints for one console.
pub struct DemoFlags {
    pub env: Env,
    pub app: String,
    pub client_key: String,
}

/// Seed one demo console's flags. Staging: write (once) and apply the flags file, and put
/// a read key into `prod_config` as `staging_source_key`. Prod: a smaller initial state
/// (only when it has none). Both: an OFREP client key.
pub async fn demo_seed(
    state: &AppState,
    data_dir: &Path,
    prod_config: &Path,
    staging_url: &str,
) -> anyhow::Result<DemoFlags> {
    let env = state.env();
    let app = match env {
        Env::Staging => "raxx-api-staging",
        Env::Prod => "raxx-api-prod",
    };
    match env {
        Env::Staging => {
            let file = data_dir.join("raxx-api-staging.flags.toml");
            if !file.exists() {
                std::fs::write(&file, DEMO_STAGING_FLAGS)
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
            let text = std::fs::read_to_string(&file)?;
            let event = AuditEvent::new("cli", "flag.apply", Outcome::Allowed)
                .with("file", file.display().to_string())
                .with("via", "demo");
            if let Err(e) = apply_flags_file(
                &state.store,
                &state.cfg,
                None,
                &text,
                FileFormat::Toml,
                "cli",
                event,
            )
            .await
            {
                eprintln!(
                    "warning: {} was not applied: {e} (the staging flags are unchanged)",
                    file.display()
                );
            }
            let (read, _) = create_key(
                &state.store,
                app,
                KeyKind::Read,
                "prod staging source",
                "demo",
            )
            .await?;
            add_staging_source(prod_config, staging_url, &read)?;
        }
        Env::Prod => {
            if state.store.flag_revision(app).await? == 0 {
                let flags = parse_flags_file(DEMO_PROD_FLAGS, FileFormat::Toml)
                    .map_err(|e| anyhow::anyhow!("demo prod flags: {e}"))?;
                let event =
                    AuditEvent::new("cli", "flag.seed", Outcome::Allowed).with("via", "demo");
                state.store.apply_flags(&flags, "demo seed", event).await?;
            }
        }
    }
    let (client_key, _) = create_key(
        &state.store,
        app,
        KeyKind::Client,
        "demo OFREP client",
        "demo",
    )
    .await?;
    Ok(DemoFlags {
        env,
        app: app.to_owned(),
        client_key,
    })
}

/// Put `staging_source_url`/`staging_source_key` into the prod demo config (top-level keys
/// go before the first table: right after the header comment).
fn add_staging_source(prod_config: &Path, staging_url: &str, key: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(prod_config)?;
    let top = format!(
        "staging_source_url = \"{staging_url}\"   # where \"New promotion\" reads staging flags\nstaging_source_key = \"{key}\"   # a read key of raxx-api-staging\n"
    );
    let text = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with('#') => format!("{first}\n{top}{rest}"),
        _ => format!("{top}{text}"),
    };
    std::fs::write(prod_config, text)?;
    Ok(())
}

/// The flags part of the demo's banner: client keys and a ready-to-paste OFREP call.
pub fn print_demo(keys: &[DemoFlags], data_dir: &Path, urls: &[(Env, &str)]) {
    println!("Feature flags (docs/flags.md):");
    for k in keys {
        println!("  OFREP client key for {:<17} {}", k.app, k.client_key);
    }
    for k in keys {
        let Some((_, url)) = urls.iter().find(|(e, _)| *e == k.env) else {
            continue;
        };
        println!(
            "  curl -s -X POST {url}/ofrep/v1/evaluate/flags/new-checkout -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' -d '{{\"context\":{{\"targetingKey\":\"user-1\",\"email\":\"ann@raxx.app\"}}}}'",
            k.client_key
        );
    }
    println!(
        "  Edit {0}/raxx-api-staging.flags.toml, then: raxx-console flags apply --config {0}/staging.toml {0}/raxx-api-staging.flags.toml",
        data_dir.display()
    );
    println!("  Promote on prod: sign in as alice, Promotions → New promotion; approve as bob.");
}
