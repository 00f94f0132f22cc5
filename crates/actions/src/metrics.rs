//! Prometheus metrics through the `metrics` facade and `metrics-exporter-prometheus`
//! (text exposition format 0.0.4, which `promtool check metrics` reads). Counters and
//! gauges are atomics; finding a series takes a sharded read lock in the exporter's
//! registry, never a global mutex (docs/decisions.md, "Metrics"). The per-request series
//! (requests, latency, cache lookups, denials) keep their handles once registered, so a
//! request does not build label strings or look in the registry (issue 18).
//!
//! Every label takes its value from a known set, so no request can mint series:
//! - `method`: the standard methods, `other` for the rest;
//! - `route`: a manifest path, or one of [`UNMATCHED`], [`METHOD_NOT_ALLOWED`], [`MISDIRECTED`];
//! - `status`: the numeric code (100-599; `other` outside);
//! - `reason`, `job`, `outcome`, `cache`, `result`, `kind`: `&'static str` from the code;
//! - `app`, `check`: names from the config.
//!
//! What docs/observability.md documents, and deploy/prometheus/alerts.yml alerts on.

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// Latency buckets (seconds) of `raxx_http_request_duration_seconds`.
pub const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The `route` label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";
/// The `route` label of a request whose path exists but not with its method (405).
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
/// The `route` label of a request for another host (421).
pub const MISDIRECTED: &str = "misdirected";

const REQUESTS: &str = "raxx_http_requests_total";
const DURATION: &str = "raxx_http_request_duration_seconds";
const DENIALS: &str = "raxx_gate_denials_total";
const JOB_RUNS: &str = "raxx_job_runs_total";
const JOB_LAST_SUCCESS: &str = "raxx_job_last_success_timestamp_seconds";
const JOB_LAST_FAILED: &str = "raxx_job_last_run_failed";
const CACHE: &str = "raxx_ofrep_cache_lookups_total";
const CORS_REFUSED: &str = "raxx_ofrep_cors_refused_total";
const AUDIT_WRITES: &str = "raxx_audit_writes_total";
const AUDIT_CHECKPOINT: &str = "raxx_audit_last_checkpoint_timestamp_seconds";
const AUDIT_CHAIN: &str = "raxx_audit_chain_length";
const AUDIT_UNCOVERED: &str = "raxx_audit_rows_uncovered";
const DATABASE_UP: &str = "raxx_database_up";
const CHECK_UP: &str = "raxx_check_up";
const BUILD_INFO: &str = "raxx_build_info";
const RSS: &str = "process_resident_memory_bytes";
const VSZ: &str = "process_virtual_memory_bytes";
const CPU: &str = "process_cpu_seconds_total";
const OPEN_FDS: &str = "process_open_fds";
const MAX_FDS: &str = "process_max_fds";
const START_TIME: &str = "process_start_time_seconds";

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (
        REQUESTS,
        Kind::Counter,
        "HTTP requests by method, route and status.",
    ),
    (
        DURATION,
        Kind::Histogram,
        "HTTP request latency by route, in seconds.",
    ),
    (
        DENIALS,
        Kind::Counter,
        "Requests the write gate refused, by reason.",
    ),
    (JOB_RUNS, Kind::Counter, "Scheduled job runs by outcome."),
    (
        JOB_LAST_SUCCESS,
        Kind::Gauge,
        "Unix time of each job's last successful run.",
    ),
    (
        JOB_LAST_FAILED,
        Kind::Gauge,
        "1 when a job's newest run failed or was refused.",
    ),
    (
        CACHE,
        Kind::Counter,
        "OFREP cache lookups (flag state, API keys) by result.",
    ),
    (
        CORS_REFUSED,
        Kind::Counter,
        "Cross-origin OFREP requests from an origin no app allows.",
    ),
    (
        AUDIT_WRITES,
        Kind::Counter,
        "Audit rows this process wrote.",
    ),
    (
        AUDIT_CHECKPOINT,
        Kind::Gauge,
        "Unix time of the newest audit chain checkpoint.",
    ),
    (AUDIT_CHAIN, Kind::Gauge, "Rows in the audit hash chain."),
    (
        AUDIT_UNCOVERED,
        Kind::Gauge,
        "Audit rows after the newest signed checkpoint (not yet provable from outside).",
    ),
    (
        DATABASE_UP,
        Kind::Gauge,
        "Whether the console's database answers.",
    ),
    (
        CHECK_UP,
        Kind::Gauge,
        "Whether a status check's newest result is up (ok or degraded).",
    ),
    (
        BUILD_INFO,
        Kind::Gauge,
        "The console's version and env; always 1.",
    ),
    (RSS, Kind::Gauge, "Resident memory size in bytes."),
    (VSZ, Kind::Gauge, "Virtual memory size in bytes."),
    (OPEN_FDS, Kind::Gauge, "Open file descriptors."),
    (MAX_FDS, Kind::Gauge, "The open file descriptor limit."),
    (
        START_TIME,
        Kind::Gauge,
        "Unix time the process started, in seconds.",
    ),
];

struct Prom {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

static PROM: LazyLock<Prom> = LazyLock::new(|| {
    let builder = PrometheusBuilder::new();
    let builder = builder
        .set_buckets_for_metric(Matcher::Full(DURATION.into()), &BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    for (name, kind, help) in DESCRIPTIONS {
        let key = KeyName::from_const_str(name);
        let help = SharedString::const_str(help);
        match kind {
            Kind::Counter => recorder.describe_counter(key, None, help),
            Kind::Gauge => recorder.describe_gauge(key, None, help),
            Kind::Histogram => recorder.describe_histogram(key, None, help),
        }
    }
    let handle = recorder.handle();
    Prom { recorder, handle }
});

const META: Metadata<'static> = Metadata::new("raxx_web", metrics::Level::INFO, None);

fn counter(name: &'static str, labels: Vec<Label>) -> Counter {
    PROM.recorder
        .register_counter(&Key::from_parts(name, labels), &META)
}

fn gauge(name: &'static str, labels: Vec<Label>) -> Gauge {
    PROM.recorder
        .register_gauge(&Key::from_parts(name, labels), &META)
}

fn histogram(name: &'static str, labels: Vec<Label>) -> Histogram {
    PROM.recorder
        .register_histogram(&Key::from_parts(name, labels), &META)
}

/// The `method` label: a standard method, or `other` (a made-up method mints no series).
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn status_label(status: u16) -> SharedString {
    if (100..=599).contains(&status) {
        SharedString::from(status.to_string())
    } else {
        SharedString::const_str("other")
    }
}

/// The `method` label's index in [`METHODS`].
fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// Every `method` label, `other` last.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

/// A request series by identity: the route label's address and length (labels are
/// `&'static str`, so one label is one address), the method index and the status.
type SeriesKey = (usize, usize, u8, u16);

/// Hashes a [`SeriesKey`] with one multiply per word (its fields are small and distinct;
/// no attacker chooses them: routes and methods are fixed sets, statuses 100..=599).
#[derive(Default, Clone, Copy)]
struct SeriesHasher(u64);

impl std::hash::Hasher for SeriesHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
}

type SeriesMap = std::collections::HashMap<
    SeriesKey,
    (Counter, Histogram),
    std::hash::BuildHasherDefault<SeriesHasher>,
>;

thread_local! {
    /// Each thread's handles of the request series it has seen. A handle is registered
    /// in the exporter once per thread (the label set is bounded, so is this map); after
    /// that a request is a map probe and two atomic updates: no lock, no allocation.
    static REQUEST_SERIES: std::cell::RefCell<SeriesMap> = std::cell::RefCell::default();
}

/// One answered request. `route` is a manifest path or one of the fixed labels above.
pub fn observe_request(method: &str, route: &'static str, status: u16, seconds: f64) {
    let m = method_index(method);
    let key = (route.as_ptr() as usize, route.len(), m as u8, status);
    let hit = REQUEST_SERIES.with_borrow(|map| {
        map.get(&key).map(|(c, h)| {
            c.increment(1);
            h.record(seconds);
        })
    });
    if hit.is_some() {
        return;
    }
    let c = counter(
        REQUESTS,
        vec![
            Label::from_static_parts("method", METHODS[m]),
            Label::from_static_parts("route", route),
            Label::new("status", status_label(status)),
        ],
    );
    let h = histogram(DURATION, vec![Label::from_static_parts("route", route)]);
    c.increment(1);
    h.record(seconds);
    REQUEST_SERIES.with_borrow_mut(|map| {
        map.insert(key, (c, h));
    });
}

/// The gate's denial codes; anything else is counted as `other`.
const DENIAL_CODES: &[&str] = &["unauthenticated", "csrf", "env_mismatch", "forbidden"];

/// The denial counters, registered on first use; the last one is `other`.
static DENIAL_SERIES: [OnceLock<Counter>; DENIAL_CODES.len() + 1] =
    [const { OnceLock::new() }; DENIAL_CODES.len() + 1];

pub fn gate_denial(code: &str) {
    let i = DENIAL_CODES
        .iter()
        .position(|c| *c == code)
        .unwrap_or(DENIAL_CODES.len());
    let reason = DENIAL_CODES.get(i).copied().unwrap_or("other");
    DENIAL_SERIES[i]
        .get_or_init(|| counter(DENIALS, vec![Label::from_static_parts("reason", reason)]))
        .increment(1);
}

/// A finished job run; `outcome` is a `RunOutcome` name.
pub fn job_run(job: &'static str, outcome: &'static str) {
    counter(
        JOB_RUNS,
        vec![
            Label::from_static_parts("job", job),
            Label::from_static_parts("outcome", outcome),
        ],
    )
    .increment(1);
    let job_label = || vec![Label::from_static_parts("job", job)];
    gauge(JOB_LAST_FAILED, job_label()).set(if outcome == "ok" { 0.0 } else { 1.0 });
    if outcome == "ok" {
        gauge(JOB_LAST_SUCCESS, job_label()).set(unix_now());
    }
}

/// Which OFREP cache answered: `flags` (flag state) or `keys` (verified API keys).
#[derive(Debug, Clone, Copy)]
pub enum Cache {
    Flags,
    Keys,
}

/// How: from memory with nothing changed (`hit`), after a database read (`miss`), or from
/// memory because the database was unreachable (`stale`).
#[derive(Debug, Clone, Copy)]
pub enum Lookup {
    Hit,
    Miss,
    Stale,
}

/// The cache lookup counters, registered on first use (a series appears once it counts).
static CACHE_SERIES: [[OnceLock<Counter>; 3]; 2] = [const { [const { OnceLock::new() }; 3] }; 2];

pub fn cache_lookup(cache: Cache, result: Lookup) {
    let (ci, cache) = match cache {
        Cache::Flags => (0, "flags"),
        Cache::Keys => (1, "keys"),
    };
    let (ri, result) = match result {
        Lookup::Hit => (0, "hit"),
        Lookup::Miss => (1, "miss"),
        Lookup::Stale => (2, "stale"),
    };
    CACHE_SERIES[ci][ri]
        .get_or_init(|| {
            counter(
                CACHE,
                vec![
                    Label::from_static_parts("cache", cache),
                    Label::from_static_parts("result", result),
                ],
            )
        })
        .increment(1);
}

/// A cross-origin OFREP request (`preflight` or `request`) from an origin no app allows.
pub fn cors_refused(kind: &'static str) {
    counter(CORS_REFUSED, vec![Label::from_static_parts("kind", kind)]).increment(1);
}

/// The audit chain as a scrape reads it from the database.
#[derive(Debug, Clone, Copy)]
pub struct AuditScrape {
    /// Rows in the chain.
    pub chain_length: u64,
    /// The newest signed checkpoint: its time (unix seconds) and the last row it covers.
    /// Until there is one the checkpoint gauge is absent, so the "audit checkpoint stale"
    /// alert stays silent on a console that has none yet (see docs/observability.md).
    pub checkpoint: Option<(f64, u64)>,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Drain the histograms' pending samples into their buckets. The exporter keeps samples
/// until a render or an upkeep; [`crate::server::serve`] runs this every few seconds so an
/// unscraped console does not grow.
pub fn upkeep() {
    PROM.handle.run_upkeep();
}

/// How often [`upkeep`] runs while serving.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What is read at scrape time rather than counted as it happens.
pub struct Scrape<'a> {
    pub env: &'a str,
    pub database_up: bool,
    /// `(app, check, up)` for the configured checks' newest results.
    pub checks: Vec<(String, String, bool)>,
    /// `(job, last run ok?, finished_at unix ms)` of each job's newest run.
    pub last_runs: Vec<(String, bool, Option<i64>)>,
    /// The audit chain, when the database answered.
    pub audit: Option<AuditScrape>,
}

/// The gauges a scrape sets and the text it renders are one step: the registry is the
/// process's, so two scrapes at once (two consoles in one test process) must not
/// interleave one's values into the other's text.
static RENDERING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The exposition text.
pub fn render(scrape: &Scrape<'_>) -> String {
    let _one_at_a_time = RENDERING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(audit) = scrape.audit {
        gauge(AUDIT_CHAIN, vec![]).set(audit.chain_length as f64);
        let covered = match audit.checkpoint {
            Some((at, last_id)) => {
                gauge(AUDIT_CHECKPOINT, vec![]).set(at);
                last_id
            }
            None => 0,
        };
        gauge(AUDIT_UNCOVERED, vec![]).set(audit.chain_length.saturating_sub(covered) as f64);
    }
    gauge(
        BUILD_INFO,
        vec![
            Label::from_static_parts("version", env!("CARGO_PKG_VERSION")),
            Label::new("env", scrape.env.to_string()),
        ],
    )
    .set(1.0);
    gauge(DATABASE_UP, vec![]).set(if scrape.database_up { 1.0 } else { 0.0 });
    counter(AUDIT_WRITES, vec![]).absolute(raxx_store::audit::audit_writes());
    for (app, check, up) in &scrape.checks {
        gauge(
            CHECK_UP,
            vec![
                Label::new("app", app.clone()),
                Label::new("check", check.clone()),
            ],
        )
        .set(if *up { 1.0 } else { 0.0 });
    }
    for (job, ok, finished) in &scrape.last_runs {
        let labels = || vec![Label::new("job", job.clone())];
        gauge(JOB_LAST_FAILED, labels()).set(if *ok { 0.0 } else { 1.0 });
        if *ok && let Some(ms) = finished {
            gauge(JOB_LAST_SUCCESS, labels()).set(*ms as f64 / 1000.0);
        }
    }
    let cpu = process_metrics();
    let mut out = PROM.handle.render();
    // The exporter's counters are whole numbers; CPU time is not, so it is written here.
    if let Some(cpu) = cpu {
        out.push_str(&format!(
            "# HELP {CPU} User and system CPU time spent, in seconds.\n# TYPE {CPU} counter\n{CPU} {cpu}\n"
        ));
    }
    out
}

/// RSS, virtual size, CPU time, open and maximum fds, start time: from `/proc/self`
/// (Linux). Elsewhere these series are absent. Returns the CPU seconds.
fn process_metrics() -> Option<f64> {
    let p = ProcessStats::read()?;
    gauge(RSS, vec![]).set(p.rss_bytes as f64);
    gauge(VSZ, vec![]).set(p.vsize_bytes as f64);
    if let Some(n) = p.open_fds {
        gauge(OPEN_FDS, vec![]).set(n as f64);
    }
    if let Some(n) = p.max_fds {
        gauge(MAX_FDS, vec![]).set(n as f64);
    }
    if let Some(t) = p.start_time {
        gauge(START_TIME, vec![]).set(t);
    }
    Some(p.cpu_seconds)
}

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub rss_bytes: u64,
    pub vsize_bytes: u64,
    pub cpu_seconds: f64,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time: Option<f64>,
}

impl ProcessStats {
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let ticks = clock_ticks();
        let page = page_size();
        let mut p = parse_stat(&stat, ticks, page)?;
        p.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        p.max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_max_fds(&l));
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_btime(&s));
        p.start_time = match (boot, p.start_time) {
            (Some(boot), Some(since_boot)) => Some(boot as f64 + since_boot),
            _ => None,
        };
        Some(p)
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// `/proc/self/stat`: fields after the parenthesised command name (which may hold spaces).
/// `start_time` here is seconds since boot; [`ProcessStats::read`] adds the boot time.
fn parse_stat(stat: &str, ticks: f64, page: u64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so field N is f[N - 3].
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let utime = num(14)?;
    let stime = num(15)?;
    let starttime = num(22)?;
    let vsize = num(23)?;
    let rss_pages = num(24)?;
    Some(ProcessStats {
        rss_bytes: rss_pages * page,
        vsize_bytes: vsize,
        cpu_seconds: (utime + stime) as f64 / ticks,
        open_fds: None,
        max_fds: None,
        start_time: Some(starttime as f64 / ticks),
    })
}

fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape() -> String {
        render(&Scrape {
            env: "staging",
            database_up: true,
            checks: vec![("api".into(), "health".into(), false)],
            last_runs: vec![("status-poll".into(), true, Some(1_700_000_000_000))],
            audit: None,
        })
    }

    #[test]
    fn renders_counters_and_histograms() {
        observe_request("GET", "/metrics-test/{id}", 200, 0.003);
        observe_request("GET", "/metrics-test/{id}", 200, 2.0);
        gate_denial("env_mismatch");
        job_run("status-poll-test", "ok");
        let text = scrape();
        assert!(
            text.contains(
                "raxx_http_requests_total{method=\"GET\",route=\"/metrics-test/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("raxx_http_request_duration_seconds_bucket{route=\"/metrics-test/{id}\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("raxx_http_request_duration_seconds_bucket{route=\"/metrics-test/{id}\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("raxx_gate_denials_total{reason=\"env_mismatch\"}"));
        assert!(text.contains("raxx_job_runs_total{job=\"status-poll-test\",outcome=\"ok\"} 1"));
        assert!(
            text.contains(
                "raxx_job_last_success_timestamp_seconds{job=\"status-poll\"} 1700000000"
            ),
            "{text}"
        );
        assert!(text.contains("raxx_database_up 1"), "{text}");
        assert!(
            text.contains("raxx_check_up{app=\"api\",check=\"health\"} 0"),
            "{text}"
        );
        assert!(text.contains("raxx_build_info{version=\""), "{text}");
        assert!(text.contains("# HELP raxx_http_requests_total "), "{text}");
    }

    #[test]
    fn labels_are_bounded() {
        for m in ["BREW", "get", &"X".repeat(3000)] {
            observe_request(m, "/bounded-test", 200, 0.001);
        }
        observe_request("GET", "/bounded-test", 1000, 0.001);
        gate_denial("made-up-code");
        let text = scrape();
        assert!(
            text.contains("raxx_http_requests_total{method=\"other\",route=\"/bounded-test\",status=\"200\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("route=\"/bounded-test\",status=\"other\"} 1"),
            "{text}"
        );
        assert!(!text.contains("BREW") && !text.contains("XXXX"));
        assert!(text.contains("raxx_gate_denials_total{reason=\"other\"}"));
        assert_eq!(method_label("DELETE"), "DELETE");
    }

    /// Handles are kept per thread; the series is still one: counts from several threads
    /// add up in one line, and each status stays its own series.
    #[test]
    fn handles_kept_per_thread_count_into_one_series() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..25 {
                        observe_request("POST", "/threads-test", 200, 0.001);
                    }
                    observe_request("POST", "/threads-test", 304, 0.001);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        observe_request("POST", "/threads-test", 200, 0.001);
        let text = scrape();
        assert!(
            text.contains("raxx_http_requests_total{method=\"POST\",route=\"/threads-test\",status=\"200\"} 101"),
            "{text}"
        );
        assert!(
            text.contains(
                "raxx_http_requests_total{method=\"POST\",route=\"/threads-test\",status=\"304\"} 4"
            ),
            "{text}"
        );
        assert!(
            text.contains("raxx_http_request_duration_seconds_count{route=\"/threads-test\"} 105"),
            "{text}"
        );
        // The cached cache-lookup and denial counters count too.
        let before = |t: &str, l: &str| {
            t.lines()
                .find(|x| x.starts_with(l))
                .and_then(|x| x.rsplit(' ').next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let line = "raxx_ofrep_cache_lookups_total{cache=\"keys\",result=\"stale\"}";
        let n0 = before(&text, line);
        cache_lookup(Cache::Keys, Lookup::Stale);
        cache_lookup(Cache::Keys, Lookup::Stale);
        assert_eq!(before(&scrape(), line), n0 + 2);
    }

    #[test]
    fn reads_proc_stat() {
        let stat = "1234 (raxx console) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 5000 104857600 2560 18446744073709551615";
        let p = parse_stat(stat, 100.0, 4096).expect("parses");
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.rss_bytes, 2560 * 4096);
        assert_eq!(p.vsize_bytes, 104_857_600);
        assert_eq!(p.start_time, Some(50.0));
        assert_eq!(
            parse_max_fds(
                "Limit Soft Hard Units\nMax open files            1024                 524288               files\n"
            ),
            Some(1024)
        );
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        assert!(ProcessStats::read().is_some_and(|p| p.rss_bytes > 0 && p.open_fds.is_some()));
    }
}
