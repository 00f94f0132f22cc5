//! The status grid (SPEC §10): apps × checks with the last result of each, a drill-down
//! per check with its recent results and a latency chart drawn as inline SVG (no script),
//! and the same grid as JSON. Results are written by the `status-poll` job.

use std::collections::BTreeSet;

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use raxx_core::config::CheckConfig;
use raxx_core::gate::{Access, Class};
use raxx_store::checks::{CheckResult, CheckStatus};
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
use crate::kernel::views::render;
use raxx_actions::fmt_time;

pub fn routes() -> Vec<Route> {
    use Access::*;
    vec![
        route!(GET "/status", Read, SignedIn, "status.view", grid_page),
        route!(GET "/status/{app}/{check}", Read, SignedIn, "status.view", check_page),
        route!(GET "/api/v1/status", Read, SignedIn, "status.view", grid_api, doc = ApiDoc::reply::<GridView>()),
        route!(GET "/api/v1/status/{app}/{check}", Read, SignedIn, "status.view", check_api, doc = ApiDoc::reply::<CheckView>()),
    ]
}

/// How a cell reads. `Unknown`: never polled, or the last result is too old to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CellState {
    Ok,
    Degraded,
    Down,
    Unknown,
}

impl CellState {
    pub fn as_str(self) -> &'static str {
        match self {
            CellState::Ok => "ok",
            CellState::Degraded => "degraded",
            CellState::Down => "down",
            CellState::Unknown => "unknown",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            CellState::Ok => "OK",
            CellState::Degraded => "Degraded",
            CellState::Down => "Down",
            CellState::Unknown => "Unknown",
        }
    }
    /// The badge class (colour is never the only signal: the label says it too).
    pub fn badge(self) -> &'static str {
        match self {
            CellState::Ok => "outcome-allowed",
            CellState::Degraded => "outcome-error",
            CellState::Down => "outcome-denied",
            CellState::Unknown => "",
        }
    }
}

impl From<CheckStatus> for CellState {
    fn from(s: CheckStatus) -> Self {
        match s {
            CheckStatus::Ok => CellState::Ok,
            CheckStatus::Degraded => CellState::Degraded,
            CheckStatus::Down => CellState::Down,
        }
    }
}

/// A check URL for display: a password in it is replaced by `***`.
pub fn display_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// A result older than this is no longer the check's state ([`raxx_core::uptime::stale_after_ms`]).
pub fn stale_after_ms(check: &CheckConfig) -> i64 {
    raxx_core::uptime::stale_after_ms(check.interval_seconds)
}

/// The cell's state from its last result, if any, at `now`: the result's, while it is
/// current ([`raxx_core::uptime::is_current`]).
pub fn cell_state(last: Option<&CheckResult>, check: &CheckConfig, now: i64) -> CellState {
    match last {
        Some(r) if raxx_core::uptime::is_current(r.at, check.interval_seconds, now) => {
            r.status.into()
        }
        _ => CellState::Unknown,
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cell {
    pub app: String,
    pub check: String,
    pub url: String,
    pub state: CellState,
    pub http_status: Option<i64>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    /// Last result (unix ms).
    pub at: Option<i64>,
    /// When the check entered its current state (unix ms).
    pub since: Option<i64>,
}

impl Cell {
    pub fn at_text(&self) -> String {
        self.at.map(fmt_time).unwrap_or_else(|| "never".into())
    }
    pub fn since_text(&self) -> String {
        self.since.map(fmt_time).unwrap_or_else(|| "—".into())
    }
}

pub struct GridRow {
    pub app: String,
    /// One per grid column; `None` where the app has no check of that name.
    pub cells: Vec<Option<Cell>>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct Summary {
    pub ok: usize,
    pub degraded: usize,
    pub down: usize,
    pub unknown: usize,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.ok + self.degraded + self.down + self.unknown
    }
}

pub struct Grid {
    pub columns: Vec<String>,
    pub rows: Vec<GridRow>,
    pub summary: Summary,
}

/// Every configured check of this console's apps with its last result.
pub async fn grid(state: &AppState) -> AppResult<Grid> {
    let latest = state.store.latest_check_results().await?;
    let now = raxx_store::now_ms();
    let apps = &state.cfg.config.apps;
    let columns: Vec<String> = apps
        .iter()
        .flat_map(|a| a.checks.iter().map(|c| c.name.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut summary = Summary::default();
    let mut rows = Vec::new();
    for app in apps {
        let mut cells = Vec::new();
        for col in &columns {
            let Some(check) = app.checks.iter().find(|c| &c.name == col) else {
                cells.push(None);
                continue;
            };
            let last = latest
                .iter()
                .find(|r| r.app == app.name && r.check == check.name);
            let st = cell_state(last, check, now);
            let since = match last {
                Some(r) if st != CellState::Unknown => {
                    state
                        .store
                        .check_last_change(&app.name, &check.name, r.status)
                        .await?
                }
                _ => None,
            };
            match st {
                CellState::Ok => summary.ok += 1,
                CellState::Degraded => summary.degraded += 1,
                CellState::Down => summary.down += 1,
                CellState::Unknown => summary.unknown += 1,
            }
            cells.push(Some(Cell {
                app: app.name.clone(),
                check: check.name.clone(),
                url: display_url(&check.url),
                state: st,
                http_status: last.and_then(|r| r.http_status),
                latency_ms: last.map(|r| r.latency_ms),
                error: last.and_then(|r| r.error.clone()),
                at: last.map(|r| r.at),
                since,
            }));
        }
        rows.push(GridRow {
            app: app.name.clone(),
            cells,
        });
    }
    Ok(Grid {
        columns,
        rows,
        summary,
    })
}

/// The dashboard tile: counts, or `None` when the results cannot be read right now.
pub async fn summary(state: &AppState) -> Option<Summary> {
    match grid(state).await {
        Ok(g) => Some(g.summary),
        Err(e) => {
            tracing::warn!(error = %e, "status summary unavailable");
            None
        }
    }
}

#[derive(Template)]
#[template(path = "status.html")]
struct GridPage {
    layout: Layout,
    grid: Grid,
    refresh_seconds: u32,
}

/// How often the grid page reloads itself (`<meta http-equiv=refresh>`): the polling
/// job's default interval, so each reload can show a new result.
pub const GRID_REFRESH_SECONDS: u32 = 30;

pub async fn grid_page(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let grid = grid(&state).await?;
    Ok(render(&GridPage {
        layout: Layout::new(&state, Some(&ctx), "Status", "Status"),
        grid,
        refresh_seconds: GRID_REFRESH_SECONDS,
    }))
}

/// One app's checks.
#[derive(Serialize, ToSchema)]
pub struct AppChecks {
    pub app: String,
    #[schema(value_type = crate::kernel::apidoc::EnvName)]
    pub env: raxx_core::Env,
    pub checks: Vec<Cell>,
}

/// The status grid.
#[derive(Serialize, ToSchema)]
pub struct GridView {
    #[schema(value_type = crate::kernel::apidoc::EnvName)]
    pub env: raxx_core::Env,
    pub summary: Summary,
    pub apps: Vec<AppChecks>,
}

pub async fn grid_api(State(state): State<AppState>) -> AppResult<Json<GridView>> {
    let g = grid(&state).await?;
    let apps = g
        .rows
        .into_iter()
        .map(|row| AppChecks {
            app: row.app,
            env: state.env(),
            checks: row.cells.into_iter().flatten().collect(),
        })
        .collect();
    Ok(Json(GridView {
        env: state.env(),
        summary: g.summary,
        apps,
    }))
}

/// One check with its recent results.
#[derive(Serialize, ToSchema)]
pub struct CheckView {
    /// uptime and p95 latency over the last hour, day and week
    #[schema(value_type = Vec<Object>)]
    pub uptime: Vec<raxx_core::uptime::WindowStats>,
    pub check: Cell,
    pub expect_status: u16,
    pub timeout_ms: u64,
    pub interval_seconds: u64,
    /// newest first (`at`, `status`, `http_status`, `latency_ms`, `error`)
    #[schema(value_type = Vec<Object>)]
    pub recent: Vec<CheckResult>,
}

// ---------------------------------------------------------------- drill-down

/// One point of the latency chart, in SVG user units.
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub state: CellState,
    pub title: String,
}

/// A tick of the time axis.
pub struct Tick {
    pub x: f64,
    pub label: String,
    /// `start`, `middle` or `end`: the outer labels stay inside the chart.
    pub anchor: &'static str,
}

/// A server-rendered latency chart over a real time axis: numbers only, so nothing
/// user-supplied reaches the SVG. Answered samples are points joined by lines; a line
/// breaks where samples are missing and at each failure, and failures are red marks on the
/// chart's top edge, never a latency of "0 ms".
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub max_ms: i64,
    pub points: Vec<Point>,
    /// One `points` attribute per unbroken run of answered samples.
    pub lines: Vec<String>,
    pub failures: Vec<Point>,
    pub ticks: Vec<Tick>,
    /// y of the degraded threshold (half the timeout), when it is on the chart.
    pub threshold_y: Option<f64>,
    pub threshold_ms: i64,
    pub first: String,
    pub last: String,
    pub samples: usize,
}

fn nice_ceiling(v: i64) -> i64 {
    let v = v.max(10);
    let mag = 10i64.pow((v as f64).log10().floor() as u32);
    for step in [1, 2, 5, 10] {
        if step * mag >= v {
            return step * mag;
        }
    }
    10 * mag
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Chart the results (oldest first) on a time axis from `t0` to `t1` (unix ms); samples
/// further apart than `max_gap_ms` leave a visible gap.
pub fn chart(
    results: &[CheckResult],
    timeout_ms: u64,
    t0: i64,
    t1: i64,
    max_gap_ms: i64,
) -> Option<Chart> {
    if results.is_empty() || t1 <= t0 {
        return None;
    }
    let (width, height) = (640u32, 200u32);
    let (left, right, top, bottom) = (56.0, 12.0, 16.0, 28.0);
    let threshold_ms = (timeout_ms / 2) as i64;
    let up = |r: &CheckResult| r.status != CheckStatus::Down;
    let max_seen = results
        .iter()
        .filter(|r| up(r))
        .map(|r| r.latency_ms)
        .max()
        .unwrap_or(0);
    let max_ms = nice_ceiling(max_seen.max(threshold_ms.min(max_seen.saturating_mul(2))));
    let plot_w = f64::from(width) - left - right;
    let plot_h = f64::from(height) - top - bottom;
    let x_of = |at: i64| left + plot_w * ((at.clamp(t0, t1) - t0) as f64 / (t1 - t0) as f64);
    let y_of = |ms: i64| top + plot_h - (ms.clamp(0, max_ms) as f64 / max_ms as f64) * plot_h;
    let title = |r: &CheckResult| {
        let state: CellState = r.status.into();
        match (r.status, &r.error) {
            (CheckStatus::Down, Some(e)) => {
                format!("{} · {} · {}", fmt_time(r.at), state.label(), e)
            }
            (CheckStatus::Down, None) => format!("{} · {}", fmt_time(r.at), state.label()),
            _ => format!(
                "{} · {} · {} ms",
                fmt_time(r.at),
                state.label(),
                r.latency_ms
            ),
        }
    };
    let mut points = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        let p = Point {
            x: round1(x_of(r.at)),
            y: if up(r) {
                round1(y_of(r.latency_ms))
            } else {
                top - 8.0
            },
            state: r.status.into(),
            title: title(r),
        };
        if up(r) {
            points.push(p);
        } else {
            failures.push(p);
        }
    }
    let lines = raxx_core::uptime::line_runs(&samples(results), max_gap_ms)
        .iter()
        .filter(|run| run.len() > 1)
        .map(|run| {
            run.iter()
                .map(|s| format!("{},{}", round1(x_of(s.at)), round1(y_of(s.latency_ms))))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let ticks = (0..=4)
        .map(|i| {
            let at = t0 + (t1 - t0) * i / 4;
            Tick {
                anchor: match i {
                    0 => "start",
                    4 => "end",
                    _ => "middle",
                },
                x: round1(x_of(at)),
                label: chrono::DateTime::from_timestamp_millis(at)
                    .map(|t| {
                        if t1 - t0 > 86_400_000 {
                            t.format("%m-%d %H:%M").to_string()
                        } else {
                            t.format("%H:%M").to_string()
                        }
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    Some(Chart {
        width,
        height,
        left,
        right,
        top,
        bottom,
        max_ms,
        threshold_y: (threshold_ms <= max_ms).then(|| round1(y_of(threshold_ms))),
        threshold_ms,
        first: fmt_time(t0),
        last: fmt_time(t1),
        samples: results.len(),
        points,
        lines,
        failures,
        ticks,
    })
}

impl Chart {
    pub fn fill(&self, s: &CellState) -> &'static str {
        match s {
            CellState::Ok => "#1a7f37",
            CellState::Degraded => "#9a6700",
            CellState::Down => "#b3261e",
            CellState::Unknown => "#59636e",
        }
    }
    pub fn plot_right(&self) -> f64 {
        f64::from(self.width) - self.right
    }
    pub fn plot_bottom(&self) -> f64 {
        f64::from(self.height) - self.bottom
    }
}

pub struct ResultRow {
    pub at: String,
    pub state: CellState,
    pub http_status: String,
    /// "—" for a failed result: it has no latency worth reading.
    pub latency_ms: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "check.html")]
struct CheckPage {
    layout: Layout,
    cell: Cell,
    check: CheckConfig,
    chart: Option<Chart>,
    stats: Vec<raxx_core::uptime::WindowStats>,
    rows: Vec<ResultRow>,
}

fn samples(results: &[CheckResult]) -> Vec<raxx_core::uptime::Sample> {
    results
        .iter()
        .map(|r| raxx_core::uptime::Sample {
            at: r.at,
            up: r.status != CheckStatus::Down,
            latency_ms: r.latency_ms,
        })
        .collect()
}

const RECENT: u32 = 60;

async fn load_check(
    state: &AppState,
    app: &str,
    check: &str,
) -> AppResult<(Cell, CheckConfig, Vec<CheckResult>)> {
    let cfg = state
        .cfg
        .app(app)
        .and_then(|a| a.checks.iter().find(|c| c.name == check))
        .cloned()
        .ok_or_else(|| AppError::NotFound(format!("check {check} of app {app}")))?;
    let recent = state.store.check_results(app, check, RECENT).await?;
    let now = raxx_store::now_ms();
    let st = cell_state(recent.first(), &cfg, now);
    let since = match recent.first() {
        Some(r) if st != CellState::Unknown => {
            state.store.check_last_change(app, check, r.status).await?
        }
        _ => None,
    };
    let last = recent.first();
    let cell = Cell {
        app: app.to_string(),
        check: check.to_string(),
        url: display_url(&cfg.url),
        state: st,
        http_status: last.and_then(|r| r.http_status),
        latency_ms: last.map(|r| r.latency_ms),
        error: last.and_then(|r| r.error.clone()),
        at: last.map(|r| r.at),
        since,
    };
    Ok((cell, cfg, recent))
}

pub async fn check_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((app, check)): Path<(String, String)>,
) -> AppResult<Response> {
    let (cell, cfg, recent) = load_check(&state, &app, &check).await?;
    let now = raxx_store::now_ms();
    let week = state
        .store
        .check_results_since(&app, &check, now - 7 * 86_400_000, 50_000)
        .await?;
    let stats = raxx_core::uptime::all_windows(&samples(&week), now);
    // The last hour on a time axis; a check polled rarely shows the span of its newest results.
    let hour: Vec<CheckResult> = week
        .iter()
        .filter(|r| r.at >= now - 3_600_000)
        .cloned()
        .collect();
    let (shown, t0) = if hour.len() >= 2 {
        // A check younger than an hour fills the chart from its first result; gaps after
        // that stay visible.
        let first = hour.first().map_or(now - 3_600_000, |r| r.at);
        (hour, (now - 3_600_000).max(first - 1_000))
    } else {
        let mut oldest_first = recent.clone();
        oldest_first.reverse();
        let t0 = oldest_first
            .first()
            .map_or(now - 3_600_000, |r| r.at.min(now - 60_000));
        (oldest_first, t0)
    };
    let max_gap_ms = (cfg.interval_seconds as i64).saturating_mul(2_500);
    let rows = recent
        .iter()
        .map(|r| ResultRow {
            at: fmt_time(r.at),
            state: r.status.into(),
            http_status: r
                .http_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "—".into()),
            latency_ms: if r.status == CheckStatus::Down {
                "—".into()
            } else {
                r.latency_ms.to_string()
            },
            error: r.error.clone().unwrap_or_default(),
        })
        .collect();
    Ok(render(&CheckPage {
        layout: Layout::new(&state, Some(&ctx), format!("{app} · {check}"), "Status"),
        chart: chart(&shown, cfg.timeout_ms, t0, now, max_gap_ms),
        stats,
        cell,
        check: cfg,
        rows,
    }))
}

pub async fn check_api(
    State(state): State<AppState>,
    Path((app, check)): Path<(String, String)>,
) -> AppResult<Json<CheckView>> {
    let (cell, cfg, recent) = load_check(&state, &app, &check).await?;
    let now = raxx_store::now_ms();
    let week = state
        .store
        .check_results_since(&app, &check, now - 7 * 86_400_000, 50_000)
        .await?;
    Ok(Json(CheckView {
        uptime: raxx_core::uptime::all_windows(&samples(&week), now),
        check: cell,
        expect_status: cfg.expect_status,
        timeout_ms: cfg.timeout_ms,
        interval_seconds: cfg.interval_seconds,
        recent,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> CheckConfig {
        CheckConfig {
            name: "healthz".into(),
            url: "http://x/healthz".into(),
            expect_status: 200,
            timeout_ms: 2000,
            interval_seconds: 30,
            env: None,
        }
    }

    fn result(at: i64, status: CheckStatus, latency_ms: i64) -> CheckResult {
        CheckResult {
            app: "a".into(),
            check: "healthz".into(),
            at,
            status,
            http_status: Some(200),
            latency_ms,
            error: None,
        }
    }

    #[test]
    fn a_password_in_a_check_url_is_never_shown() {
        assert_eq!(
            display_url("https://probe:s3cret@api.raxx.app/healthz"),
            "https://probe:***@api.raxx.app/healthz"
        );
        assert_eq!(
            display_url("http://127.0.0.1:9/ok"),
            "http://127.0.0.1:9/ok"
        );
    }

    #[test]
    fn a_cell_is_unknown_without_a_recent_result() {
        let c = check();
        let now = 1_000_000_000;
        assert_eq!(cell_state(None, &c, now), CellState::Unknown);
        let fresh = result(now - 10_000, CheckStatus::Down, 5);
        assert_eq!(cell_state(Some(&fresh), &c, now), CellState::Down);
        let old = result(now - 91_000, CheckStatus::Ok, 5);
        assert_eq!(cell_state(Some(&old), &c, now), CellState::Unknown);
    }

    #[test]
    fn the_chart_holds_only_numbers_and_fits_its_box() {
        let rs: Vec<_> = (0..10)
            .map(|i| {
                result(
                    i * 30_000,
                    if i == 5 {
                        CheckStatus::Down
                    } else {
                        CheckStatus::Ok
                    },
                    i * 37,
                )
            })
            .collect();
        let ch = chart(&rs, 2000, 0, 300_000, 75_000).expect("chart");
        // The failure is a mark, not a point at 0 ms; the line breaks at it.
        assert_eq!(ch.points.len(), 9);
        assert_eq!(ch.failures.len(), 1);
        assert!(ch.failures[0].y < ch.top);
        assert_eq!(ch.lines.len(), 2);
        for line in &ch.lines {
            assert!(
                line.chars()
                    .all(|c| c.is_ascii_digit() || ".,- ".contains(c))
            );
        }
        for p in &ch.points {
            assert!(p.x >= ch.left && p.x <= ch.plot_right(), "{}", p.x);
            assert!(p.y >= ch.top && p.y <= ch.plot_bottom(), "{}", p.y);
        }
        // x is time: samples 30 s apart on a 300 s axis are a tenth of the width apart.
        let step = ch.points[1].x - ch.points[0].x;
        assert!(
            (step - (ch.plot_right() - ch.left) / 10.0).abs() < 0.2,
            "{step}"
        );
        // A gap longer than max_gap breaks the line too.
        let mut gappy = rs.clone();
        gappy.retain(|r| r.at != 60_000 && r.at != 90_000);
        let ch2 = chart(&gappy, 2000, 0, 300_000, 45_000).expect("chart");
        // 0 s and 30 s; a gap; 120 s alone (a point, no line); the failure; 180–270 s.
        assert_eq!(ch2.lines.len(), 2, "{:?}", ch2.lines);
        assert_eq!(ch2.lines[0].split(' ').count(), 2);
        assert_eq!(ch2.points.len(), 7);
        assert_eq!(ch.ticks.len(), 5);
        assert!(ch.max_ms >= 333);
        assert!(chart(&[], 2000, 0, 1, 1).is_none());
        assert_eq!(nice_ceiling(333), 500);
        assert_eq!(nice_ceiling(1000), 1000);
        assert_eq!(nice_ceiling(0), 10);
    }
}
