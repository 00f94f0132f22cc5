//! Three `raxx-console serve` processes on one PostgreSQL database: a session made on one
//! is valid on the others and revoked everywhere at once; concurrent audited writes from
//! all three keep one hash chain (`audit verify` passes).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

struct Instance {
    child: Child,
    port: u16,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn config(dir: &std::path::Path, port: u16, db: &str) -> std::path::PathBuf {
    // Every instance answers for the same public host; each listens on its own port.
    let path = dir.join(format!("console-{port}.toml"));
    std::fs::write(
        &path,
        format!(
            "public_url = \"http://prod.localhost:{port}\"\nlisten = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nadmin_emails = [\"alice@raxx.test\"]\nadmin_enrol_code = \"multi-instance\"\n"
        ),
    )
    .expect("write config");
    path
}

async fn start(dir: &std::path::Path, db: &str) -> Instance {
    let port = free_port();
    let cfg = config(dir, port, db);
    let mut child = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Instance { child, port };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("instance on {port} did not become ready");
}

fn client_for(port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .resolve("prod.localhost", ([127, 0, 0, 1], port).into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn three_instances_share_sessions_and_one_audit_chain() {
    let Some(db) = raxx_store::testing::postgres_url().await else {
        return;
    };
    let dir = tempdir();
    let a = start(&dir, &db).await;
    let b = start(&dir, &db).await;
    let c = start(&dir, &db).await;
    let instances = [&a, &b, &c];

    // Sign in on A with a break-glass link made against A's config.
    let out = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["login-link", "--email", "alice@raxx.test", "--config"])
        .arg(config(&dir, a.port, &db))
        .output()
        .expect("login-link");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let token = link.rsplit('/').next().unwrap_or_default().to_string();
    let resp = client_for(a.port)
        .post(link.replace(&format!("/auth/link/{token}"), "/auth/link"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("confirm link");
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();

    // Valid on every instance.
    let mut csrf = String::new();
    for i in instances {
        let me: Value = client_for(i.port)
            .get(format!("http://prod.localhost:{}/api/v1/me", i.port))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["email"], "alice@raxx.test", "instance {}", i.port);
        csrf = me["csrf_token"].as_str().unwrap_or_default().to_string();
    }

    // Concurrent audited writes on all three.
    let mut tasks = Vec::new();
    for (n, i) in instances.iter().enumerate() {
        let port = i.port;
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        tasks.push(tokio::spawn(async move {
            let client = client_for(port);
            for k in 0..15 {
                let r = client
                    .post(format!("http://prod.localhost:{port}/api/v1/invites"))
                    .header("cookie", &cookie)
                    .header("x-csrf-token", &csrf)
                    .header("x-console-env", "prod")
                    .json(&json!({"email": format!("i{n}-{k}@raxx.test"), "group": "production-admins"}))
                    .send()
                    .await
                    .expect("invite");
                assert_eq!(r.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }

    // Revoke on C: refused on A and B on the next request.
    let me: Value = client_for(c.port)
        .get(format!("http://prod.localhost:{}/api/v1/me", c.port))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = me["session_id"].as_str().unwrap_or_default().to_string();
    let del = client_for(c.port)
        .delete(format!(
            "http://prod.localhost:{}/api/v1/sessions/{sid}",
            c.port
        ))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("x-console-env", "prod")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    for i in [&a, &b] {
        let s = client_for(i.port)
            .get(format!("http://prod.localhost:{}/api/v1/me", i.port))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 401, "revoked everywhere at once");
    }

    let verify = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["audit", "verify", "--config"])
        .arg(config(&dir, a.port, &db))
        .output()
        .expect("audit verify");
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    assert!(text.contains("audit chain intact"), "{text}");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("raxx-multi-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}
