//! Shared by the multi-process reliability tests: spawn `raxx-console serve` processes on
//! free ports, drive the CLI, count rows, verify the audit chain.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use raxx_store::Store;
use raxx_store::testing::query_string;
use serde_json::Value;

pub struct Proc {
    pub child: Child,
    pub port: u16,
    pub cfg: PathBuf,
    pub host: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "raxx-rel-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

/// A config for one instance on `port`: public host `<env>.localhost:<port>`.
pub fn config(dir: &Path, env: &str, port: u16, db: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("console-{env}-{port}.toml"));
    std::fs::write(
        &path,
        format!(
            "public_url = \"http://{env}.localhost:{port}\"\nlisten = \"127.0.0.1:{port}\"\ndatabase_url = \"{db}\"\nadmin_emails = [\"alice@raxx.test\", \"bob@raxx.test\", \"carol@raxx.test\"]\nadmin_enrol_code = \"reliability\"\n{extra}\n"
        ),
    )
    .expect("write config");
    path
}

pub fn cli(args: &[&str], cfg: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("run raxx-console")
}

pub fn last_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

pub async fn spawn(cfg: PathBuf, port: u16, env: &str) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let p = Proc {
        child,
        port,
        cfg,
        host: format!("{env}.localhost"),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance on {port} did not become ready");
}

pub async fn start(dir: &Path, env: &str, db: &str, extra: &str) -> Proc {
    let port = free_port();
    spawn(config(dir, env, port, db, extra), port, env).await
}

impl Proc {
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(&self.host, ([127, 0, 0, 1], self.port).into())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.host, self.port)
    }

    /// Sign `email` in with a break-glass link: (cookie, csrf token).
    pub async fn login(&self, email: &str) -> (String, String) {
        let link = last_line(&cli(&["login-link", "--email", email], &self.cfg));
        // Opening the link shows a confirmation page; its POST signs in.
        let page = self.client().get(&link).send().await.expect("open link");
        assert_eq!(page.status(), 200, "login link page for {email}");
        let token = link.rsplit('/').next().unwrap_or_default().to_string();
        let resp = self
            .client()
            .post(self.url("/auth/link"))
            .form(&[("token", token)])
            .send()
            .await
            .expect("confirm link");
        assert_eq!(resp.status(), 303, "login link for {email}");
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let me: Value = self
            .client()
            .get(self.url("/api/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (cookie, me["csrf_token"].as_str().unwrap_or_default().into())
    }

    pub async fn post(
        &self,
        who: &(String, String),
        env: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .client()
            .post(self.url(path))
            .header("cookie", &who.0)
            .header("x-csrf-token", &who.1)
            .header("x-console-env", env)
            .json(&body)
            .send()
            .await
            .expect("post");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

pub async fn count(store: &Store, sql: &str) -> i64 {
    query_string(store, &format!("SELECT CAST(({sql}) AS TEXT)"))
        .await
        .parse()
        .expect("a count")
}

pub fn audit_verify(cfg: &Path) {
    let out = cli(&["audit", "verify"], cfg);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("audit chain intact"), "{text}");
}
