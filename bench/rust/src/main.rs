//! `raxx-bench`: the Rust helpers of `bench/run.sh` (see `bench/README.md`).
//!
//! - `flags`: a flags file (SPEC §7, JSON form) with N flags cycling through the demo's six
//!   shapes (rules, rollouts, every value type, a disabled flag).
//! - `audit-rows`: N hash-chained audit rows (`raxx_core::audit::chain_hash`, so
//!   `raxx-console audit verify` passes) as PostgreSQL `COPY … FROM STDIN` text, and the
//!   resulting chain head.
//! - `passkey`: WebAuthn assertion verification per operation (`finish_passkey_authentication`
//!   only), with a soft passkey.
//!
//! Every command is bounded (a count or an iteration number) and touches no network.

use std::io::{BufWriter, Write};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use raxx_core::audit::{AuditEvent, GENESIS_HASH, Outcome, chain_hash};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "raxx-console benchmark helpers (bench/run.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a flags file (JSON) with `count` flags for `app`.
    Flags {
        #[arg(long)]
        app: String,
        #[arg(long)]
        count: usize,
        /// 1 flips the first flag's default variant: two files that differ by one flag,
        /// so that alternating applies always change something.
        #[arg(long, default_value_t = 0)]
        flip: u8,
    },
    /// Print `count` audit rows as COPY text, continuing the chain after `--after-id`.
    AuditRows {
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 0)]
        after_id: i64,
        #[arg(long, default_value = GENESIS_HASH)]
        after_hash: String,
        /// The rows are spread evenly over [end_ms - days, end_ms).
        #[arg(long)]
        end_ms: i64,
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long, default_value = "staging")]
        env: String,
        /// Where to write "<last_id> <last_hash>" when done.
        #[arg(long)]
        head_out: std::path::PathBuf,
    },
    /// Start a server in the background and print how long until `--ready` answers 200
    /// (polled every 2 ms). The server keeps running; its pid goes to `--pid-out`.
    Start {
        /// `http://127.0.0.1:PORT/path`
        #[arg(long)]
        ready: String,
        #[arg(long)]
        log: std::path::PathBuf,
        #[arg(long)]
        pid_out: std::path::PathBuf,
        #[arg(long, default_value_t = 180)]
        timeout_s: u64,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// Time `finish_passkey_authentication` over `iterations` fresh assertions.
    Passkey {
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
        #[arg(long, default_value_t = 200)]
        warmup: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Flags { app, count, flip } => {
            let file = flags_file(&app, count, flip == 1);
            println!("{}", serde_json::to_string_pretty(&file)?);
            Ok(())
        }
        Command::AuditRows {
            count,
            after_id,
            after_hash,
            end_ms,
            days,
            env,
            head_out,
        } => audit_rows(count, after_id, after_hash, end_ms, days, &env, &head_out),
        Command::Passkey { iterations, warmup } => passkey(iterations, warmup),
        Command::Start {
            ready,
            log,
            pid_out,
            timeout_s,
            cmd,
        } => start(&ready, &log, &pid_out, timeout_s, &cmd),
    }
}

// ---------------------------------------------------------------------------- flags

/// Flag `i`: one of the demo file's six shapes, keyed so that keys sort in `i` order.
fn flag(i: usize, flip: bool) -> (String, Value) {
    let (name, mut def) = match i % 6 {
        0 => (
            "checkout",
            json!({
                "type": "boolean", "variants": {"on": true, "off": false}, "default": "off",
                "description": "New checkout flow",
                "rules": [
                    {"when": [{"attr": "email", "op": "ends_with", "value": "@raxx.app"}], "serve": "on"},
                    {"rollout": {"on": 10, "off": 90}}
                ]
            }),
        ),
        1 => (
            "theme",
            json!({
                "type": "string", "variants": {"classic": "classic", "midnight": "midnight"},
                "default": "classic", "description": "Colour theme",
                "rules": [{"when": [{"attr": "plan", "op": "in", "value": ["pro", "team"]}], "serve": "midnight"}]
            }),
        ),
        2 => (
            "upload-limit-mb",
            json!({
                "type": "integer", "variants": {"standard": 25, "large": 250}, "default": "standard",
                "rules": [{"when": [{"attr": "appVersion", "op": "semver_gte", "value": "2.4.0"}], "serve": "large"}]
            }),
        ),
        3 => (
            "sample-rate",
            json!({"type": "float", "variants": {"low": 0.05, "high": 0.5}, "default": "low"}),
        ),
        4 => (
            "banner",
            json!({
                "type": "object",
                "variants": {"none": {}, "sale": {"text": "Spring sale: 20% off", "color": "green"}},
                "default": "sale"
            }),
        ),
        _ => (
            "legacy-export",
            json!({
                "type": "boolean", "variants": {"on": true, "off": false}, "default": "off",
                "enabled": false, "description": "Old CSV export"
            }),
        ),
    };
    if flip && i == 0 {
        def["default"] = json!("on");
    }
    (format!("f{i:04}-{name}"), def)
}

fn flags_file(app: &str, count: usize, flip: bool) -> Value {
    let flags: serde_json::Map<String, Value> = (0..count).map(|i| flag(i, flip)).collect();
    json!({"app": app, "flags": flags})
}

// ---------------------------------------------------------------------------- audit

/// A small deterministic generator (xorshift64*), so that two runs load the same log.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The action mix of a busy console: (action, weight out of 1000).
const ACTIONS: &[(&str, u64)] = &[
    ("auth.login", 150),
    ("audit.view", 120),
    ("flag.apply", 110),
    ("token.sync", 100),
    ("key.create", 40),
    ("token.rotate", 10),
    ("token.revoke_previous", 10),
    ("flag.promotion.queue", 30),
    ("flag.promotion.approve", 25),
    ("flag.promotion.apply", 25),
    ("flag.promotion.reject", 5),
    ("flag.promotion.expire", 5),
    ("flag.kill", 5),
    ("session.revoke", 40),
    ("auth.login_link", 20),
    ("invite.create", 15),
    ("invite.accept", 15),
    ("customer.suspend", 20),
    ("customer.reactivate", 15),
    ("customer.email", 20),
    ("job.run", 100),
    ("flag.view", 40),
    ("operator.disable", 5),
    ("auth.register", 10),
    ("rbac.member.add", 5),
    ("auth.rate_limited", 10),
    ("admin.create", 5),
    ("audit.export", 5),
    ("operator.enable", 5),
    ("invite.revoke", 5),
];

const APPS: &[&str] = &[
    "raxx-api-staging",
    "raxx-web-staging",
    "raxx-worker-staging",
];

fn pick_action(rng: &mut Rng) -> &'static str {
    let total: u64 = ACTIONS.iter().map(|(_, w)| w).sum();
    let mut r = rng.below(total);
    for (a, w) in ACTIONS {
        if r < *w {
            return a;
        }
        r -= w;
    }
    ACTIONS[0].0
}

fn event(rng: &mut Rng, env: &str) -> AuditEvent {
    let action = pick_action(rng);
    let operator = 1 + rng.below(40);
    let actor = match action {
        "token.sync" | "job.run" | "flag.promotion.expire" => [
            "system:token-rotation-sweep",
            "system:status-poll",
            "system:session-purge",
        ][rng.below(3) as usize]
            .to_string(),
        "flag.apply" if rng.below(2) == 0 => "key:raxx-api-staging:deploy".to_string(),
        "key.create" => "cli".to_string(),
        "auth.rate_limited" => "anonymous".to_string(),
        _ => operator.to_string(),
    };
    let app = APPS[rng.below(APPS.len() as u64) as usize];
    let outcome = match rng.below(100) {
        0..=91 => Outcome::Allowed,
        92..=97 => Outcome::Denied,
        _ => Outcome::Error,
    };
    let mut e = AuditEvent::new(actor, action, outcome);
    let n = rng.next();
    e.session_id = Some(format!("{:016x}{:016x}", n, n.rotate_left(17)));
    e.request_id = Some(format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n as u32,
        (n >> 32) as u16,
        (n >> 48) as u16 & 0xfff,
        (n >> 20) as u16 & 0xfff,
        n & 0xffff_ffff_ffff
    ));
    e.ip = Some(format!(
        "10.{}.{}.{}",
        n % 4,
        (n >> 8) % 256,
        (n >> 16) % 256
    ));
    e = match action {
        a if a.starts_with("flag.") => {
            let flag = format!("f{:04}-checkout", rng.below(350));
            e.target("flag", flag.clone()).app(app).with(
                "changes",
                json!([{"flag": flag, "kind": "changed", "summary": "default off → on"}]),
            )
        }
        a if a.starts_with("token.") || a == "key.create" => e
            .target("token", format!("key:{}", rng.below(5000)))
            .app(app)
            .with("kind", "client"),
        a if a.starts_with("customer.") => e
            .target("customer", format!("cus_{:06}", rng.below(100_000)))
            .with("plan", "pro"),
        "audit.view" | "audit.export" => e.with(
            "filters",
            json!({"actor": null, "action": "flag.", "outcome": null, "target": null, "since": null, "until": null, "before": null}),
        )
        .with("rows", 50),
        "job.run" => e
            .target("job", "status-poll")
            .with("checks", rng.below(30) as i64),
        _ => e
            .target("operator", format!("op{operator}@raxx.test"))
            .with("user_agent", "Mozilla/5.0 (X11; Linux x86_64)"),
    };
    if outcome != Outcome::Allowed {
        e = e.reason("refused by the gate: needs console-flag-admin on this console");
    }
    if let Value::Object(map) = &mut e.context {
        map.insert("selected_env".into(), Value::String(env.into()));
    }
    e
}

/// COPY text format: `\N` for NULL, backslash escapes for the four special bytes.
fn copy_field(out: &mut impl Write, v: Option<&str>) -> std::io::Result<()> {
    let Some(v) = v else {
        return out.write_all(b"\\N");
    };
    for b in v.bytes() {
        match b {
            b'\\' => out.write_all(b"\\\\")?,
            b'\t' => out.write_all(b"\\t")?,
            b'\n' => out.write_all(b"\\n")?,
            b'\r' => out.write_all(b"\\r")?,
            _ => out.write_all(&[b])?,
        }
    }
    Ok(())
}

fn audit_rows(
    count: u64,
    after_id: i64,
    after_hash: String,
    end_ms: i64,
    days: i64,
    env: &str,
    head_out: &std::path::Path,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ count);
    let span = days * 86_400_000;
    let start = end_ms - span;
    let mut prev = after_hash;
    let mut id = after_id;
    for i in 0..count {
        id += 1;
        let at = start + ((i as i128 * span as i128) / count.max(1) as i128) as i64;
        let e = event(&mut rng, env);
        let hash = chain_hash(&prev, id, at, &e);
        let context = e.context.to_string();
        // Column order of `COPY console_audit_log (id, at, actor, session_id, action,
        // target_type, target_id, target_app, outcome, reason, context, request_id, ip,
        // prev_hash, hash)`.
        write!(out, "{id}\t{at}\t")?;
        for v in [
            Some(e.actor.as_str()),
            e.session_id.as_deref(),
            Some(e.action.as_str()),
            e.target_type.as_deref(),
            e.target_id.as_deref(),
            e.target_app.as_deref(),
            Some(e.outcome.as_str()),
            e.reason.as_deref(),
            Some(context.as_str()),
            e.request_id.as_deref(),
            e.ip.as_deref(),
            Some(prev.as_str()),
            Some(hash.as_str()),
        ]
        .into_iter()
        .enumerate()
        {
            if v.0 > 0 {
                out.write_all(b"\t")?;
            }
            copy_field(&mut out, v.1)?;
        }
        out.write_all(b"\n")?;
        prev = hash;
    }
    out.flush()?;
    std::fs::write(head_out, format!("{id} {prev}\n"))
        .with_context(|| format!("cannot write {}", head_out.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------- start

/// One GET over a fresh connection: did it answer `200`? Loopback only.
fn answers_200(addr: &str, path: &str) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 32];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf[..got].starts_with(b"HTTP/1.1 200")
}

fn start(
    ready: &str,
    log: &std::path::Path,
    pid_out: &std::path::Path,
    timeout_s: u64,
    cmd: &[String],
) -> anyhow::Result<()> {
    let rest = ready
        .strip_prefix("http://127.0.0.1:")
        .context("--ready must be http://127.0.0.1:PORT/path")?;
    let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = format!("127.0.0.1:{port}");
    let path = format!("/{path}");
    let out = std::fs::File::create(log)?;
    let t = Instant::now();
    let mut child = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot start {}", cmd[0]))?;
    std::fs::write(pid_out, format!("{}\n", child.id()))?;
    loop {
        if answers_200(&addr, &path) {
            break;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}) before it was ready; see {}",
                cmd[0],
                log.display()
            );
        }
        if t.elapsed().as_secs() >= timeout_s {
            anyhow::bail!(
                "{} not ready after {timeout_s} s; see {}",
                cmd[0],
                log.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    println!(
        "RESULT start ms={:.1} pid={}",
        t.elapsed().as_secs_f64() * 1e3,
        child.id()
    );
    Ok(())
}

// ---------------------------------------------------------------------------- passkey

fn passkey(iterations: usize, warmup: usize) -> anyhow::Result<()> {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_rs::prelude::{Url, Uuid, WebauthnBuilder};

    // The soft authenticator accepts only an http://localhost origin.
    let origin = Url::parse("http://localhost:8080")?;
    let webauthn = WebauthnBuilder::new("localhost", &origin)?
        .rp_name("raxx console (bench)")
        .build()?;
    let mut auth = SoftPasskey::new(true);
    let (ccr, reg) =
        webauthn.start_passkey_registration(Uuid::new_v4(), "bench@raxx.test", "Bench", None)?;
    let credential = auth
        .do_registration(origin.clone(), ccr)
        .map_err(|e| anyhow::anyhow!("soft passkey registration: {e:?}"))?;
    let passkey = webauthn.finish_passkey_registration(&credential, &reg)?;
    let passkeys = [passkey];

    let mut times = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let (rcr, state) = webauthn.start_passkey_authentication(&passkeys)?;
        let assertion = auth
            .do_authentication(origin.clone(), rcr)
            .map_err(|e| anyhow::anyhow!("soft passkey assertion: {e:?}"))?;
        let t = Instant::now();
        let result = webauthn.finish_passkey_authentication(&assertion, &state)?;
        let took = t.elapsed();
        std::hint::black_box(result);
        if i >= warmup {
            times.push(took.as_nanos() as u64);
        }
    }
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)] as f64 / 1e3;
    let mean = times.iter().sum::<u64>() as f64 / times.len() as f64 / 1e3;
    println!(
        "RESULT passkey iterations={} p50_us={:.1} p99_us={:.1} mean_us={:.1} min_us={:.1}",
        times.len(),
        pct(0.5),
        pct(0.99),
        mean,
        times[0] as f64 / 1e3
    );
    Ok(())
}
