//! Prometheus metrics in the text exposition format: requests by route and status,
//! latency histograms by route, gate denials by reason, audit writes, job runs.
//! A small registry of our own: the set of series is fixed by the route manifest.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    denials: BTreeMap<String, u64>,
    job_runs: BTreeMap<(String, String), u64>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    // A poisoned lock only means a panic elsewhere mid-update; the counts are still usable.
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

pub fn observe_request(method: &str, route: &str, status: u16, seconds: f64) {
    with(|r| {
        *r.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        let h = r.latency.entry(route.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    });
}

pub fn gate_denial(code: &str) {
    with(|r| *r.denials.entry(code.to_string()).or_default() += 1);
}

pub fn job_run(job: &str, outcome: &str) {
    with(|r| {
        *r.job_runs
            .entry((job.to_string(), outcome.to_string()))
            .or_default() += 1
    });
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text; `env` labels every series.
pub fn render(env: &str, database_up: bool) -> String {
    let mut out = String::new();
    let audit_writes = raxx_store::audit::audit_writes();
    with(|r| {
        let _ = writeln!(
            out,
            "# HELP raxx_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE raxx_http_requests_total counter");
        for ((method, route, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "raxx_http_requests_total{{env=\"{env}\",method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                esc(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP raxx_http_request_duration_seconds Request latency by route."
        );
        let _ = writeln!(out, "# TYPE raxx_http_request_duration_seconds histogram");
        for (route, h) in &r.latency {
            let route = esc(route);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "raxx_http_request_duration_seconds_bucket{{env=\"{env}\",route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "raxx_http_request_duration_seconds_bucket{{env=\"{env}\",route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "raxx_http_request_duration_seconds_sum{{env=\"{env}\",route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "raxx_http_request_duration_seconds_count{{env=\"{env}\",route=\"{route}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP raxx_gate_denials_total Requests the write gate refused, by reason."
        );
        let _ = writeln!(out, "# TYPE raxx_gate_denials_total counter");
        for (code, n) in &r.denials {
            let _ = writeln!(
                out,
                "raxx_gate_denials_total{{env=\"{env}\",reason=\"{}\"}} {n}",
                esc(code)
            );
        }
        let _ = writeln!(
            out,
            "# HELP raxx_job_runs_total Scheduled job runs by outcome."
        );
        let _ = writeln!(out, "# TYPE raxx_job_runs_total counter");
        for ((job, outcome), n) in &r.job_runs {
            let _ = writeln!(
                out,
                "raxx_job_runs_total{{env=\"{env}\",job=\"{}\",outcome=\"{}\"}} {n}",
                esc(job),
                esc(outcome)
            );
        }
    });
    let _ = writeln!(
        out,
        "# HELP raxx_audit_writes_total Audit rows this process wrote."
    );
    let _ = writeln!(out, "# TYPE raxx_audit_writes_total counter");
    let _ = writeln!(
        out,
        "raxx_audit_writes_total{{env=\"{env}\"}} {audit_writes}"
    );
    let _ = writeln!(
        out,
        "# HELP raxx_database_up Whether the console's database answers."
    );
    let _ = writeln!(out, "# TYPE raxx_database_up gauge");
    let _ = writeln!(
        out,
        "raxx_database_up{{env=\"{env}\"}} {}",
        u8::from(database_up)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        observe_request("GET", "/metrics-test/{id}", 200, 0.003);
        observe_request("GET", "/metrics-test/{id}", 200, 2.0);
        gate_denial("env_mismatch-test");
        job_run("status-poll-test", "ok");
        let text = render("staging", true);
        assert!(text.contains("raxx_http_requests_total{env=\"staging\",method=\"GET\",route=\"/metrics-test/{id}\",status=\"200\"} 2"), "{text}");
        assert!(
            text.contains("route=\"/metrics-test/{id}\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("route=\"/metrics-test/{id}\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "raxx_gate_denials_total{env=\"staging\",reason=\"env_mismatch-test\"} 1"
            )
        );
        assert!(text.contains(
            "raxx_job_runs_total{env=\"staging\",job=\"status-poll-test\",outcome=\"ok\"} 1"
        ));
        assert!(text.contains("raxx_database_up{env=\"staging\"} 1"));
    }
}
