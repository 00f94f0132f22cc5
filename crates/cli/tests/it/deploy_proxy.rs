//! Behind a real reverse proxy (issue 13, docs/deploy.md): Debian's nginx terminates TLS
//! with a throwaway certificate and forwards to a console whose `trusted_proxies` names it.
//! Clients connect from other loopback addresses (127.0.0.2, 127.0.0.3) so the address the
//! console records can be told apart from the proxy's. On SQLite and PostgreSQL. Without
//! nginx/openssl the test is skipped with a message — under `CI=true` it fails.
//! (Passkey sign-in through the proxy in Chromium: e2e/tests/proxy.test.mjs.)

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use raxx_core::Env;
use raxx_store::Store;
use serde_json::Value;

use crate::deploy::*;

struct Serve {
    child: std::process::Child,
    log: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- serve log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

async fn serve(cfg: &Path, port: u16, dir: &Path) -> Serve {
    let log = dir.join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["serve", "--config"])
        .arg(cfg)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("PORT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn serve");
    let s = Serve { child, log };
    let probe = reqwest::Client::new();
    for _ in 0..400 {
        if probe
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "serve did not become ready: {}",
        std::fs::read_to_string(&s.log).unwrap_or_default()
    );
}

/// A client that connects from `127.0.0.<last>` and trusts the throwaway CA.
fn client_from(last: u8, ca: &Path, host: &str, port: u16) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("read CA")).expect("CA");
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .resolve(host, ([127, 0, 0, 1], port).into())
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn cli(args: &[&str], cfg: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run raxx-console");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn audit_rows(cfg: &Path) -> Vec<Value> {
    cli(&["audit", "export"], cfg)
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_terminating_tls() {
    for db in raxx_store::testing::database_urls().await {
        if !behind_nginx(&db).await {
            return;
        }
    }
}

/// `false` when nginx or openssl is missing (outside CI).
async fn behind_nginx(db: &str) -> bool {
    let dir = tempdir("proxy");
    let Some(pki) = Pki::create(&dir, "ca") else {
        return false;
    };
    let host = "staging.localhost";
    let (cert, key) = pki.server_cert("proxy", &[host]);
    let console_port = free_port();
    let Some(nginx) = Nginx::start(&dir, host, &cert, &key, console_port) else {
        return false;
    };
    let np = nginx.port;
    let origin = format!("https://{host}:{np}");
    let cfg = dir.join("console.toml");
    std::fs::write(
        &cfg,
        format!(
            "public_url = \"{origin}\"\nlisten = \"127.0.0.1:{console_port}\"\ndatabase_url = \"{db}\"\nadmin_emails = [\"alice@raxx.test\"]\nadmin_enrol_code = \"proxy-test-code\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n"
        ),
    )
    .expect("config");
    let _serve = serve(&cfg, console_port, &dir).await;
    let alice = client_from(2, &pki.ca, host, np);

    // https public_url through the proxy: the page, with HSTS.
    let login = alice
        .get(format!("{origin}/login"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("through nginx: {e}\n{}", nginx.error_log()));
    assert_eq!(login.status(), 200);
    assert_eq!(
        login
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000; includeSubDomains")
    );

    // Sign in through the proxy while forging X-Forwarded-For: the __Host- cookie, and the
    // address the proxy saw (127.0.0.2), not the forged one, in the audit row and session.
    let link = cli(&["login-link", "--email", "alice@raxx.test"], &cfg);
    let link = link.trim().lines().last().unwrap_or_default().to_string();
    assert!(link.starts_with(&format!("{origin}/auth/link/")), "{link}");
    // Opening the link shows the confirmation page; its button POSTs the token.
    let token = link.rsplit('/').next().unwrap_or_default().to_string();
    let page = alice.get(&link).send().await.expect("open link");
    assert_eq!(page.status(), 200);
    let signed_in = alice
        .post(format!("{origin}/auth/link"))
        .form(&[("token", token.as_str())])
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-request-id", "client-chosen-id")
        .send()
        .await
        .expect("open link");
    assert_eq!(signed_in.status(), 303);
    let set_cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        set_cookie.starts_with("__Host-raxx_console="),
        "{set_cookie}"
    );
    for part in ["Secure", "Path=/", "HttpOnly"] {
        assert!(set_cookie.contains(part), "{part}: {set_cookie}");
    }
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain="),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    let me: Value = alice
        .get(format!("{origin}/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], "alice@raxx.test", "{me}");

    let rows = audit_rows(&cfg);
    let row = rows
        .iter()
        .find(|r| r["action"] == "auth.login_link" && r["outcome"] == "allowed")
        .unwrap_or_else(|| panic!("no sign-in row: {rows:?}"));
    assert_eq!(row["ip"], "127.0.0.2", "{row}");
    let store = Store::connect(db, Env::Staging).await.expect("connect");
    let session_ip = raxx_store::testing::query_string(
        &store,
        "SELECT ip FROM console_sessions ORDER BY created_at DESC LIMIT 1",
    )
    .await;
    assert_eq!(session_ip, "127.0.0.2");
    store.close().await;

    // Another client through the proxy is another address (the sign-in throttle counts
    // failures per address from these rows).
    let bob = client_from(4, &pki.ca, host, np);
    let r = bob
        .get(format!("{origin}/auth/link/not-a-link"))
        .send()
        .await
        .expect("bad link");
    assert!(r.status().is_client_error(), "{}", r.status());

    // Straight to the console from an untrusted peer, forging both headers: ignored.
    let direct = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = direct
        .get(format!("http://127.0.0.1:{console_port}/auth/link/forged"))
        .header("host", format!("{host}:{np}"))
        .header("x-forwarded-for", "6.6.6.6, 127.0.0.1")
        .header("x-request-id", "forged-request-id")
        .send()
        .await
        .expect("direct");
    assert!(r.status().is_client_error(), "{}", r.status());

    // Signed-in gate denials are one chained row each and carry the request id: nginx's
    // `$request_id` (32 hex digits) from the trusted proxy; a fresh UUID, not the forged
    // one, from the untrusted peer. (Anonymous denials are aggregated, without ids.)
    let session_cookie = set_cookie.split(';').next().unwrap_or_default().to_string();
    let carol = client_from(5, &pki.ca, host, np);
    let r = carol
        .post(format!("{origin}/api/v1/invites"))
        .header("cookie", &session_cookie)
        .header("x-request-id", "client-chosen-id")
        .json(&serde_json::json!({"email": "x@raxx.test", "group": "staging-admins"}))
        .send()
        .await
        .expect("write without CSRF through nginx");
    assert_eq!(r.status(), 403);
    let r = direct
        .post(format!("http://127.0.0.1:{console_port}/api/v1/invites"))
        .header("host", format!("{host}:{np}"))
        .header("cookie", &session_cookie)
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-request-id", "forged-request-id")
        .json(&serde_json::json!({"email": "x@raxx.test", "group": "staging-admins"}))
        .send()
        .await
        .expect("write without CSRF direct");
    assert_eq!(r.status(), 403);
    let rows = audit_rows(&cfg);
    let by_ip = |ip: &str| {
        rows.iter()
            .filter(|r| r["ip"] == ip && r["outcome"] == "denied" && r["request_id"].is_string())
            .map(|r| r["request_id"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    let via_proxy = by_ip("127.0.0.5");
    assert_eq!(via_proxy.len(), 1, "{rows:?}");
    assert!(
        via_proxy[0].len() == 32 && via_proxy[0].bytes().all(|b| b.is_ascii_hexdigit()),
        "{via_proxy:?}"
    );
    let direct_ids = by_ip("127.0.0.3");
    assert_eq!(direct_ids.len(), 1, "{rows:?}");
    assert_ne!(direct_ids[0], "forged-request-id");
    assert_eq!(direct_ids[0].len(), 36, "a fresh uuid: {direct_ids:?}");

    assert!(
        rows.iter().all(|r| r["ip"] != "6.6.6.6"),
        "a forged address was recorded"
    );
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
    true
}
