//! For the deployment tests (issue 13, docs/deploy.md): throwaway certificates made with
//! `openssl`, a PostgreSQL cluster with `ssl=on` that refuses plaintext, and Debian's nginx
//! terminating TLS in front of a console. Each is skipped with a message when its program
//! is missing — except under `CI=true`, where that is a failure.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "raxx-deploy-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `None` with a message outside CI; a panic under `CI=true`.
pub fn missing<T>(what: &str, install: &str) -> Option<T> {
    if under_ci() {
        panic!("{what} not found (apt-get install {install}): under CI=true this test must run");
    }
    eprintln!("!! {what} not found: skipping (apt-get install {install})");
    None
}

/// A program: on `PATH`, else the newest `/usr/lib/postgresql/*/bin/<name>`, else `/usr/sbin`.
pub fn program(name: &str) -> Option<PathBuf> {
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    }) {
        return Some(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin").join(name);
            bin.is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, p)) = versions.pop() {
        return Some(p);
    }
    let sbin = Path::new("/usr/sbin").join(name);
    sbin.is_file().then_some(sbin)
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A throwaway CA and server certificates it signed, in `dir`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
}

impl Pki {
    /// `None` (skip) without `openssl` outside CI.
    pub fn create(dir: &Path, ca_name: &str) -> Option<Pki> {
        let Some(openssl) = program("openssl") else {
            return missing("openssl", "openssl");
        };
        let ca = dir.join(format!("{ca_name}.pem"));
        let key = dir.join(format!("{ca_name}.key"));
        run(Command::new(&openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&ca)
            .args(["-subj", &format!("/CN=raxx throwaway {ca_name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        Some(Pki {
            dir: dir.to_path_buf(),
            ca,
        })
    }

    /// A server certificate for `dns_names` signed by this CA: (cert, key) paths.
    pub fn server_cert(&self, name: &str, dns_names: &[&str]) -> (PathBuf, PathBuf) {
        let openssl = program("openssl").expect("openssl");
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let cert = self.dir.join(format!("{name}.crt"));
        let ext = self.dir.join(format!("{name}.ext"));
        let sans: Vec<String> = dns_names.iter().map(|n| format!("DNS:{n}")).collect();
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
                sans.join(",")
            ),
        )
        .expect("write ext");
        run(Command::new(&openssl)
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .arg("-nodes")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/CN={}", dns_names[0])]));
        let ca_key = self.ca.with_extension("key");
        run(Command::new(&openssl)
            .args(["x509", "-req", "-days", "2", "-set_serial"])
            .arg(format!("{}", free_port()))
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&self.ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-out")
            .arg(&cert)
            .arg("-extfile")
            .arg(&ext));
        (cert, key)
    }

    /// base64(SHA-256(SubjectPublicKeyInfo)) of a certificate, for Chromium's
    /// `--ignore-certificate-errors-spki-list`.
    pub fn spki_hash(cert: &Path) -> String {
        let out = run(Command::new("sh").arg("-c").arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            cert.display()
        )));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A PostgreSQL cluster with `ssl=on` whose pg_hba.conf rejects every plaintext TCP
/// connection (`hostnossl … reject`) and trusts TLS ones — except the user `pwuser`, who
/// must give the password `right-password` (for the wrong-password test).
pub struct TlsCluster {
    pub dir: PathBuf,
    pub port: u16,
    pub user: String,
    pub pki: Pki,
    pg_ctl: PathBuf,
    as_postgres: bool,
}

impl TlsCluster {
    /// The server certificate names `localhost` only (not `127.0.0.1`).
    pub fn create(tag: &str) -> Option<TlsCluster> {
        let (Some(initdb), Some(pg_ctl), Some(psql)) =
            (program("initdb"), program("pg_ctl"), program("psql"))
        else {
            return missing("initdb/pg_ctl/psql", "postgresql");
        };
        let dir = tempdir(tag);
        let pki = Pki::create(&dir, "ca")?;
        let (cert, key) = pki.server_cert("server", &["localhost"]);
        let as_postgres = is_root();
        let user = if as_postgres {
            if !Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                run(Command::new("useradd").args(["--system", "--no-create-home", "postgres"]));
            }
            "postgres".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        };
        let cluster = TlsCluster {
            port: free_port(),
            dir: dir.clone(),
            user,
            pki,
            pg_ctl,
            as_postgres,
        };
        let data = dir.join("data");
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(&dir));
        }
        run(cluster.command(&initdb).arg("-D").arg(&data).args([
            "-U",
            &cluster.user,
            "--auth=trust",
            "--no-sync",
        ]));
        std::fs::copy(&cert, data.join("server.crt")).expect("copy cert");
        std::fs::copy(&key, data.join("server.key")).expect("copy key");
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres")
                .arg(data.join("server.crt"))
                .arg(data.join("server.key")));
        }
        run(Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key")));
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\npassword_encryption = 'scram-sha-256'\n",
            cluster.port,
            dir.display()
        );
        let mut pgconf = std::fs::read_to_string(data.join("postgresql.conf")).expect("conf");
        pgconf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pgconf).expect("write conf");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostnossl all all 0.0.0.0/0 reject\n\
             hostnossl all all ::/0 reject\n\
             hostssl all pwuser 0.0.0.0/0 scram-sha-256\n\
             hostssl all all 0.0.0.0/0 trust\n\
             hostssl all all ::/0 trust\n",
        )
        .expect("write pg_hba.conf");
        let log = dir.join("pg.log");
        let started = cluster
            .command(&cluster.pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(
            started.success(),
            "pg_ctl start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        for sql in [
            "CREATE DATABASE console",
            "CREATE DATABASE customers",
            "CREATE ROLE pwuser LOGIN PASSWORD 'right-password' SUPERUSER",
        ] {
            cluster.psql(&psql, sql);
        }
        Some(cluster)
    }

    fn psql(&self, psql: &Path, sql: &str) {
        run(self
            .command(psql)
            .args(["-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                &self.user,
                "-d",
                "postgres",
            ])
            .args(["-c", sql]));
    }

    fn command(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// `postgres://<user>@<host>:<port>/<db>?<query>`.
    pub fn url(&self, host: &str, db: &str, query: &str) -> String {
        format!("postgres://{}@{host}:{}/{db}?{query}", self.user, self.port)
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self
            .command(&self.pg_ctl)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's nginx terminating TLS on `127.0.0.1:<port>` for `server_name`, proxying to a
/// console on `upstream` with `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Request-Id`.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Nginx {
    pub fn start(
        dir: &Path,
        server_name: &str,
        cert: &Path,
        key: &Path,
        upstream: u16,
    ) -> Option<Nginx> {
        let Some(nginx) = program("nginx") else {
            return missing("nginx", "nginx");
        };
        let port = free_port();
        let ng = dir.join("nginx");
        std::fs::create_dir_all(&ng).expect("nginx dir");
        let conf = ng.join("nginx.conf");
        let p = ng.display();
        std::fs::write(
            &conf,
            format!(
                r#"daemon off;
master_process off;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {p}/body;
  proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi;
  scgi_temp_path {p}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {server_name};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Request-Id $request_id;
    }}
  }}
}}
"#,
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .expect("write nginx.conf");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&ng)
            .arg("-e")
            .arg(ng.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let n = Nginx {
            child,
            port,
            dir: ng,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                n.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(n)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `raxx-console <args>` with `envs` in an empty folder (no `console.toml`), timed.
pub fn console(args: &[&str], envs: &[(&str, &str)]) -> (Output, Duration) {
    let cwd = tempdir("cwd");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_raxx-console"))
        .args(args)
        .current_dir(&cwd)
        .env_remove("DATABASE_URL")
        .env_remove("CONSOLE_CONFIG")
        .env_remove("CONSOLE_LISTEN")
        .env_remove("PORT")
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run raxx-console");
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(cwd);
    (out, took)
}

/// The `error: …` line of a failed command (there must be exactly one).
pub fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a failure:\n{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
    assert!(errors[0].len() < 600, "a line, not an essay: {}", errors[0]);
    errors[0].to_string()
}
