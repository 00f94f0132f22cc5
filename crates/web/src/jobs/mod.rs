//! The jobs page and API (SPEC §10): each job's schedule, next run (as the running
//! schedulers publish it), last run and outcome, recent runs, and "run now".
//!
//! "Run now" is a gated `write` of resource `job` (`console-job-user` on staging,
//! `console-job-admin` on prod). It queues a request, audited in the same transaction;
//! whichever instance's scheduler claims it first runs the job as `system:<job>`.

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use raxx_core::gate::{Access, Class};
use raxx_core::jobs::JOB_NAMES;
use raxx_core::rbac::Resource;
use raxx_store::jobs::{JobRun, PublishedSchedule, RunOutcome};
use serde::Serialize;
use utoipa::ToSchema;

use crate::kernel::apidoc::ApiDoc;
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::route::Route;
use crate::kernel::route::route;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use crate::kernel::views::redirect_with_flash;
use crate::kernel::views::render;
use raxx_actions::fmt_time;

pub fn routes() -> Vec<Route> {
    use Access::*;
    vec![
        route!(GET "/jobs", Read, SignedIn, "job.list", jobs_page),
        route!(POST "/jobs/{name}/run", Write, Role(Resource::Job), "job.run_now", run_now_form),
        route!(GET "/jobs/{name}", Read, SignedIn, "job.view", job_page),
        route!(GET "/api/v1/jobs", Read, SignedIn, "job.list", jobs_api, doc = ApiDoc::reply::<JobsView>()),
        route!(GET "/api/v1/jobs/{name}", Read, SignedIn, "job.view", job_api, doc = ApiDoc::reply::<JobHistory>().path::<crate::kernel::apidoc::StrId>()),
        route!(POST "/api/v1/jobs/{name}/run", Write, Role(Resource::Job), "job.run_now", run_now_api, doc = ApiDoc::reply::<RunQueued>().status(202)),
    ]
}

/// One job as the page and the API show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub name: String,
    /// `None` until a scheduler on this database has started.
    pub schedule: Option<String>,
    pub enabled: bool,
    pub next_run_at: Option<i64>,
    /// the newest run (`id`, `job`, `tick`, `kind`, `started_at`, `finished_at`,
    /// `duration_ms`, `outcome`, `message`)
    #[schema(value_type = Option<Object>)]
    pub last_run: Option<JobRun>,
    pub queued: i64,
}

impl JobView {
    pub fn schedule_text(&self) -> String {
        match &self.schedule {
            Some(s) if self.enabled => s.clone(),
            Some(s) => format!("{s} (disabled)"),
            None => "no scheduler has reported".into(),
        }
    }
    /// The schedule in words beside the cron expression ("every 30 seconds").
    pub fn schedule_words(&self) -> String {
        self.schedule
            .as_deref()
            .and_then(cron_in_words)
            .unwrap_or_default()
    }
    pub fn next_text(&self) -> String {
        match (self.enabled, self.next_run_at) {
            (false, _) => "not scheduled (disabled)".into(),
            (true, Some(t)) => fmt_time(t),
            (true, None) => "—".into(),
        }
    }
    pub fn last_outcome(&self) -> &'static str {
        self.last_run
            .as_ref()
            .map_or("never", |r| r.outcome.as_str())
    }
    pub fn last_text(&self) -> String {
        self.last_run
            .as_ref()
            .map_or_else(|| "never".into(), |r| fmt_time(r.started_at))
    }
    pub fn last_duration(&self) -> String {
        self.last_run
            .as_ref()
            .and_then(|r| r.duration_ms)
            .map_or_else(|| "—".into(), |d| format!("{d} ms"))
    }
    pub fn last_message(&self) -> String {
        self.last_run
            .as_ref()
            .map(|r| r.message.clone())
            .unwrap_or_default()
    }
}

/// A cron expression (5 fields, or 6/7 with seconds first) in words, for the common shapes
/// (every N seconds/minutes/hours, hourly, daily, weekly); `None` for anything else, where
/// the page shows the expression alone.
pub fn cron_in_words(expr: &str) -> Option<String> {
    let f: Vec<&str> = expr.split_whitespace().collect();
    let (sec, min, hour, dom, month, dow) = match f.as_slice() {
        [m, h, dom, mon, dow] => ("0", *m, *h, *dom, *mon, *dow),
        [s, m, h, dom, mon, dow] | [s, m, h, dom, mon, dow, "*"] => (*s, *m, *h, *dom, *mon, *dow),
        _ => return None,
    };
    let num = |s: &str| s.parse::<u32>().ok();
    let step = |s: &str| s.strip_prefix("*/").and_then(|n| n.parse::<u32>().ok());
    let plural = |n: u32, unit: &str| {
        if n == 1 {
            format!("every {unit}")
        } else {
            format!("every {n} {unit}s")
        }
    };
    if dom != "*" || month != "*" {
        return None;
    }
    let day = match dow {
        "*" | "?" => None,
        d => Some(match d.to_ascii_lowercase().as_str() {
            "0" | "7" | "sun" => "Sunday",
            "1" | "mon" => "Monday",
            "2" | "tue" => "Tuesday",
            "3" | "wed" => "Wednesday",
            "4" | "thu" => "Thursday",
            "5" | "fri" => "Friday",
            "6" | "sat" => "Saturday",
            "mon-fri" | "1-5" => "weekday",
            _ => return None,
        }),
    };
    let words = match (sec, min, hour) {
        (s, "*", "*") if day.is_none() => plural(step(s).or((s == "*").then_some(1))?, "second"),
        ("0", m, "*") if day.is_none() => match (step(m), num(m), m) {
            (Some(n), _, _) => plural(n, "minute"),
            (_, _, "*") => plural(1, "minute"),
            (_, Some(0), _) => "every hour, on the hour".to_string(),
            (_, Some(m), _) if m < 60 => format!("every hour at {m} minutes past"),
            _ => return None,
        },
        ("0", "0", h) if day.is_none() && step(h).is_some() => plural(step(h)?, "hour"),
        ("0", m, h) => {
            let (m, h) = (num(m).filter(|m| *m < 60)?, num(h).filter(|h| *h < 24)?);
            match day {
                None => format!("every day at {h:02}:{m:02} UTC"),
                Some("weekday") => format!("every weekday at {h:02}:{m:02} UTC"),
                Some(d) => format!("every {d} at {h:02}:{m:02} UTC"),
            }
        }
        _ => return None,
    };
    Some(words)
}

/// The badge class of a run outcome.
pub fn outcome_badge(outcome: &str) -> &'static str {
    match outcome {
        "ok" => "outcome-allowed",
        "failed" => "outcome-denied",
        "refused" => "outcome-error",
        _ => "",
    }
}

pub async fn job_views(state: &AppState) -> AppResult<Vec<JobView>> {
    let schedules: Vec<PublishedSchedule> = state.store.job_schedules().await?;
    let last = state.store.last_job_runs().await?;
    let queued = state.store.queued_job_requests().await?;
    Ok(JOB_NAMES
        .iter()
        .map(|name| {
            let s = schedules.iter().find(|s| s.job == *name);
            JobView {
                name: name.to_string(),
                schedule: s.map(|s| s.schedule.clone()),
                enabled: s.is_none_or(|s| s.enabled),
                next_run_at: s.and_then(|s| s.next_run_at),
                last_run: last.iter().find(|r| r.job == *name).cloned(),
                queued: queued
                    .iter()
                    .find(|(j, _)| j == name)
                    .map_or(0, |(_, n)| *n),
            }
        })
        .collect())
}

/// [`raxx_actions::jobs::run_now`] by this request's operator.
pub async fn run_now(state: &AppState, ctx: &Ctx, name: &str) -> AppResult<i64> {
    Ok(raxx_actions::jobs::run_now(state, &ctx.caller(), name).await?)
}

pub struct RunRow {
    pub job: String,
    pub kind: &'static str,
    pub started: String,
    pub duration: String,
    pub outcome: &'static str,
    pub message: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    jobs: Vec<JobView>,
    runs: Vec<RunRow>,
    can_run: bool,
}

fn run_row(r: JobRun) -> RunRow {
    RunRow {
        kind: r.kind.as_str(),
        started: fmt_time(r.started_at),
        duration: r
            .duration_ms
            .map_or_else(|| "—".into(), |d| format!("{d} ms")),
        outcome: r.outcome.as_str(),
        message: r.message,
        job: r.job,
    }
}

pub async fn jobs_page(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let jobs = job_views(&state).await?;
    let runs = state
        .store
        .job_runs(None, 30)
        .await?
        .into_iter()
        .map(run_row)
        .collect();
    Ok(render(&JobsPage {
        layout: Layout::new(&state, Some(&ctx), "Jobs", "Jobs"),
        jobs,
        runs,
        can_run: ctx.can_write(Resource::Job),
    }))
}

pub async fn run_now_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> AppResult<Response> {
    run_now(&state, &ctx, &name).await?;
    Ok(redirect_with_flash(
        "/jobs",
        &format!(
            "{name} queued: a scheduler picks it up within a few seconds; reload to see the run."
        ),
    ))
}

/// The jobs of this console.
#[derive(Serialize, ToSchema)]
pub struct JobsView {
    #[schema(value_type = crate::kernel::apidoc::EnvName)]
    pub env: raxx_core::Env,
    pub jobs: Vec<JobView>,
}

/// A run requested.
#[derive(Serialize, ToSchema)]
pub struct RunQueued {
    pub job: String,
    pub request_id: i64,
    /// always `queued`
    pub status: &'static str,
}

pub async fn jobs_api(State(state): State<AppState>) -> AppResult<Json<JobsView>> {
    Ok(Json(JobsView {
        env: state.env(),
        jobs: job_views(&state).await?,
    }))
}

pub async fn run_now_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let id = run_now(&state, &ctx, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RunQueued {
            job: name,
            request_id: id,
            status: "queued",
        }),
    )
        .into_response())
}

/// One job's history: its runs (newest first, up to 200) and how they went.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobHistory {
    pub job: JobView,
    /// newest first (`id`, `job`, `tick`, `kind`, `started_at`, `duration_ms`, `outcome`, `message`)
    #[schema(value_type = Vec<Object>)]
    pub runs: Vec<JobRun>,
    /// Finished runs among `runs` by outcome.
    pub ok: usize,
    pub failed: usize,
    pub refused: usize,
    /// Median and longest duration of the finished runs.
    pub median_ms: Option<i64>,
    pub max_ms: Option<i64>,
    /// When the newest `ok` run started.
    pub last_success_at: Option<i64>,
}

const HISTORY: u32 = 200;

async fn job_history(state: &AppState, name: &str) -> AppResult<JobHistory> {
    let job = job_views(state)
        .await?
        .into_iter()
        .find(|j| j.name == name)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "job `{name}` (the jobs are {})",
                JOB_NAMES.join(", ")
            ))
        })?;
    let runs = state.store.job_runs(Some(name), HISTORY).await?;
    let count = |o: RunOutcome| runs.iter().filter(|r| r.outcome == o).count();
    let mut durations: Vec<i64> = runs.iter().filter_map(|r| r.duration_ms).collect();
    durations.sort_unstable();
    Ok(JobHistory {
        ok: count(RunOutcome::Ok),
        failed: count(RunOutcome::Failed),
        refused: count(RunOutcome::Refused),
        median_ms: durations.get(durations.len() / 2).copied(),
        max_ms: durations.last().copied(),
        last_success_at: runs
            .iter()
            .find(|r| r.outcome == RunOutcome::Ok)
            .map(|r| r.started_at),
        job,
        runs,
    })
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    h: JobHistory,
    rows: Vec<RunRow>,
    last_success: String,
    can_run: bool,
}

pub async fn job_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let h = job_history(&state, &name).await?;
    let rows = h.runs.iter().cloned().map(run_row).collect();
    Ok(render(&JobPage {
        layout: Layout::new(&state, Some(&ctx), format!("Job {name}"), "Jobs"),
        last_success: h.last_success_at.map_or_else(|| "never".into(), fmt_time),
        rows,
        h,
        can_run: ctx.can_write(Resource::Job),
    }))
}

pub async fn job_api(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> AppResult<Json<JobHistory>> {
    Ok(Json(job_history(&state, &name).await?))
}

#[cfg(test)]
mod tests {
    use super::cron_in_words;

    #[test]
    fn the_default_schedules_read_in_words() {
        for (expr, words) in [
            ("*/30 * * * * *", Some("every 30 seconds")),
            ("0 */10 * * * *", Some("every 10 minutes")),
            ("0 0 * * * *", Some("every hour, on the hour")),
            ("0 0 6 * * *", Some("every day at 06:00 UTC")),
            ("15 3 * * *", Some("every day at 03:15 UTC")),
            ("0 0 */6 * * *", Some("every 6 hours")),
            ("0 30 8 * * Mon", Some("every Monday at 08:30 UTC")),
            ("0 30 * * * *", Some("every hour at 30 minutes past")),
            ("* * * * * *", Some("every second")),
            ("0 0 1 1 * *", None),
            ("0 5,35 * * * *", None),
            ("nonsense", None),
        ] {
            assert_eq!(cron_in_words(expr).as_deref(), words, "{expr}");
        }
    }
}
