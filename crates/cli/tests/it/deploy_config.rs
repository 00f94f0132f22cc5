//! Start-up as a platform runs it (issue 13, docs/deploy.md): Heroku's `PORT`, the whole
//! config in `CONSOLE_CONFIG`, and one-line start-up errors naming the setting for bad
//! deployment input. On SQLite and PostgreSQL.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::deploy::*;

const FAST: Duration = Duration::from_secs(5);

#[test]
fn bad_deployment_settings_are_one_line_naming_the_setting() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "DATABASE_URL",
                "postgres://u:hunter2@127.0.0.1:1/db?sslmode=strict",
            )],
            "DATABASE_URL: unknown sslmode `strict`: use disable, allow, prefer, require, verify-ca or verify-full",
        ),
        (
            &[(
                "DATABASE_URL",
                "postgres://u@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
            )],
            "DATABASE_URL: sslrootcert `/nonexistent/root.crt` cannot be read",
        ),
        (
            &[
                ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
                ("PGSSLMODE", "on"),
            ],
            "PGSSLMODE: unknown sslmode `on`",
        ),
        (
            &[("DATABASE_URL", "postgres://u:hunter2@h:99999/db")],
            "DATABASE_URL is not a valid URL",
        ),
        (
            &[("PORT", "web")],
            "PORT `web` is not a port number (1-65535)",
        ),
        (
            &[(
                "CONSOLE_CONFIG",
                "trusted_proxies = [\"10.0.0.0/8\", \"10.1.0.0/33\"]",
            )],
            "trusted_proxies: `10.1.0.0/33`: the prefix length must be 0 to 32",
        ),
        (
            &[("CONSOLE_TRUSTED_PROXIES", "heroku-router")],
            "trusted_proxies: `heroku-router` is not an IP address or CIDR block",
        ),
        (
            &[("CONSOLE_CONFIG", "apps = 3")],
            "CONSOLE_CONFIG line 1: invalid type",
        ),
    ];
    for (envs, want) in cases {
        for command in ["serve", "migrate"] {
            let (out, took) = console(&[command], envs);
            let line = error_line(&out);
            assert!(line.contains(want), "{command} {envs:?}: {line}");
            assert!(took < FAST, "{command} {envs:?} took {took:?}");
            assert!(!line.contains("hunter2"), "{line}");
        }
    }
}

/// A Heroku dyno: no file, the config in `CONSOLE_CONFIG`, the database in `DATABASE_URL`,
/// the port in `PORT`; `release: raxx-console migrate` first, then `web: raxx-console serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_starts_from_env_vars_alone() {
    for db in raxx_store::testing::database_urls().await {
        dyno(&db).await;
    }
}

async fn dyno(db: &str) {
    let port = free_port();
    let config = format!(
        "public_url = \"http://staging.localhost:{port}\"\n\
         trusted_proxies = [\"127.0.0.1/32\"]\n\
         [[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n"
    );
    let port_s = port.to_string();
    let envs: &[(&str, &str)] = &[
        ("CONSOLE_CONFIG", &config),
        ("DATABASE_URL", db),
        ("PORT", &port_s),
        ("ADMIN_EMAIL", "alice@raxx.test"),
    ];
    let (out, _) = console(&["config", "check"], envs);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 app(s), 1 admin email(s)"), "{text}");
    let (out, _) = console(&["migrate"], envs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cwd = tempdir("dyno");
    let mut web = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .arg("serve")
        .current_dir(&cwd)
        .env_remove("CONSOLE_LISTEN")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(cwd.join("log")).expect("log"))
        .spawn()
        .expect("spawn serve");
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..400 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(cwd.join("log")).unwrap_or_default();
    let page = client
        .get(format!("http://127.0.0.1:{port}/login"))
        .header("host", format!("staging.localhost:{port}"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    let _ = web.kill();
    let _ = web.wait();
    assert!(healthy, "not listening on PORT {port}: {log}");
    assert!(
        log.contains(&format!("listening on 0.0.0.0:{port}")),
        "{log}"
    );
    assert_eq!(page.ok(), Some(200), "{log}");
    let _ = std::fs::remove_dir_all(cwd);
}
