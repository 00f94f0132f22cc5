//! Health, readiness and the Prometheus scrape.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::kernel::state::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.ping().await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let up = state.store.ping().await;
    let audit = match up {
        true => state.store.audit_checkpoint_status().await.ok(),
        false => None,
    }
    .map(|status| raxx_actions::metrics::AuditScrape {
        chain_length: u64::try_from(status.chain_length).unwrap_or(0),
        checkpoint: status.last_checkpoint.map(|(_, last_id, at_ms)| {
            (at_ms as f64 / 1000.0, u64::try_from(last_id).unwrap_or(0))
        }),
    });
    let (checks, last_runs) = if up {
        (scrape_checks(&state).await, scrape_jobs(&state).await)
    } else {
        (Vec::new(), Vec::new())
    };
    let scrape = raxx_actions::metrics::Scrape {
        env: state.env().as_str(),
        database_up: up,
        checks,
        last_runs,
        audit,
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        raxx_actions::metrics::render(&scrape),
    )
        .into_response()
}

/// The configured checks' newest results (labels only from the config).
async fn scrape_checks(state: &AppState) -> Vec<(String, String, bool)> {
    let configured: std::collections::HashSet<(&str, &str)> = state
        .cfg
        .config
        .apps
        .iter()
        .filter(|a| a.env == state.env())
        .flat_map(|a| {
            a.checks
                .iter()
                .map(move |c| (a.name.as_str(), c.name.as_str()))
        })
        .collect();
    let results = state.store.latest_check_results().await.unwrap_or_default();
    results
        .into_iter()
        .filter(|r| configured.contains(&(r.app.as_str(), r.check.as_str())))
        .map(|r| {
            let up = r.status != raxx_store::checks::CheckStatus::Down;
            (r.app, r.check, up)
        })
        .collect()
}

/// Each job's newest finished run (job names are the scheduler's own constants).
async fn scrape_jobs(state: &AppState) -> Vec<(String, bool, Option<i64>)> {
    use raxx_store::jobs::RunOutcome;
    let runs = state.store.last_job_runs().await.unwrap_or_default();
    runs.into_iter()
        .filter(|r| r.outcome != RunOutcome::Running)
        .filter(|r| {
            r.job.len() <= 64
                && r.job
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
        .map(|r| (r.job, r.outcome == RunOutcome::Ok, r.finished_at))
        .collect()
}
