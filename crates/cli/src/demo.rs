//! `raxx-console demo`: a staging and a prod console side by side, each with its own
//! embedded database and demo data, and a login link for each.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::commands::issue_login_link;
use crate::runtime::{bind, load_config, prepare, shutdown_signal};

// Tokens: the in-process Heroku fake, its control endpoint, demo keys (docs/tokens.md).
mod flags;
mod tokens;
// Status: checks per demo app and an endpoint to flip; jobs run in both consoles (docs/jobs.md).
mod status;

pub const STAGING_URL: &str = "http://staging.localhost:8081";
pub const PROD_URL: &str = "http://prod.localhost:8080";
const ADMINS: &str = r#"admin_emails = ["alice@raxx.test", "bob@raxx.test"]"#;

fn staging_config(dir: &str) -> String {
    format!(
        r#"# raxx-console demo: the staging console. Written by `raxx-console demo`.
public_url = "{STAGING_URL}"
listen = "127.0.0.1:8081"
database_url = "sqlite://{dir}/staging.db"
{ADMINS}
admin_enrol_code = "demo-enrol-code"

[[apps]]
name = "raxx-api-staging"
env = "staging"
heroku_app = "raxx-api-staging"
"#
    )
}

fn prod_config(dir: &str) -> String {
    format!(
        r#"# raxx-console demo: the prod console. Written by `raxx-console demo`.
public_url = "{PROD_URL}"
listen = "127.0.0.1:8080"
database_url = "sqlite://{dir}/prod.db"
{ADMINS}
admin_enrol_code = "demo-enrol-code"

[[apps]]
name = "raxx-api-prod"
env = "prod"
promote_from = "raxx-api-staging"
heroku_app = "raxx-api-prod"
"#
    )
}

pub async fn run(data_dir: &Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let dir = data_dir.display().to_string();
    let staging_path = data_dir.join("staging.toml");
    let prod_path = data_dir.join("prod.toml");
    let heroku = tokens::DemoHeroku::start().await?;
    let staging_text = heroku.add_to(staging_config(&dir), raxx_core::Env::Staging)?;
    let prod_text = heroku.add_to(prod_config(&dir), raxx_core::Env::Prod)?;
    let health = status::DemoHealth::start().await?;
    let staging_text = health.add_to(staging_text, raxx_core::Env::Staging, STAGING_URL);
    let prod_text = health.add_to(prod_text, raxx_core::Env::Prod, PROD_URL);
    std::fs::write(&staging_path, staging_text)?;
    std::fs::write(&prod_path, prod_text)?;

    let mut links = Vec::new();
    let mut flag_keys = Vec::new();
    let mut servers = Vec::new();
    let mut schedulers = Vec::new();
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    for path in [&staging_path, &prod_path] {
        let cfg = load_config(Some(path))?;
        let listen = cfg.config.listen.clone();
        let state = prepare(cfg).await?;
        tokens::seed_keys(&state).await?;
        // Flags: the staging flags file, OFREP client keys, prod's staging source (docs/flags.md).
        flag_keys.push(flags::demo_seed(&state, data_dir, &prod_path, STAGING_URL).await?);
        let scheduler = raxx_jobs::Scheduler::from_config(state.console())?;
        let listener = bind(&listen).await?;
        schedulers.push(scheduler.spawn());
        for email in ["alice@raxx.test", "bob@raxx.test"] {
            links.push((
                state.env(),
                email,
                issue_login_link(&state.cfg, &state.store, email).await?,
            ));
        }
        let mut stop = stop_tx.subscribe();
        servers.push(tokio::spawn(raxx_web::serve(state, listener, async move {
            let _ = stop.recv().await;
        })));
    }

    println!("raxx-console demo is running:");
    println!(
        "  staging console  {STAGING_URL}   (config {})",
        staging_path.display()
    );
    println!(
        "  prod console     {PROD_URL}   (config {})",
        prod_path.display()
    );
    println!();
    println!(
        "Sign in with these one-time links: each opens a confirmation page whose button signs in (valid 10 minutes; `raxx-console login-link --config {} --email alice@raxx.test` makes more):",
        prod_path.display()
    );
    for (env, email, url) in &links {
        println!("  {:<8} {email:<17} {url}", env.as_str());
    }
    println!();
    heroku.print_help();
    println!();
    health.print_help();
    println!();
    let urls = [
        (raxx_core::Env::Staging, STAGING_URL),
        (raxx_core::Env::Prod, PROD_URL),
    ];
    flags::print_demo(&flag_keys, data_dir, &urls);
    println!();
    println!(
        "Passkey enrolment code for the demo admins: demo-enrol-code. Ctrl-C stops both consoles."
    );
    shutdown_signal().await;
    let _ = stop_tx.send(());
    for s in servers {
        let _ = s.await;
    }
    for s in schedulers {
        s.stop().await;
    }
    Ok(ExitCode::SUCCESS)
}
