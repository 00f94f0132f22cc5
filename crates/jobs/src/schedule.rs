//! Schedules: `[jobs.<name>] schedule = "<cron>"`, or the job's default.
//!
//! Cron expressions are UTC. Five fields (`min hour dom month dow`, as in crontab) run at
//! second 0; six or seven fields (`sec min hour dom month dow [year]`) are the `cron`
//! crate's own form. An expression that does not parse, or a `[jobs.<name>]` naming no
//! job, stops the console at start-up with a message naming the job.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cron::Schedule;
use raxx_core::config::JobConfig;

use crate::Job;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

/// Parse a cron expression (5, 6 or 7 fields).
pub fn parse_cron(expr: &str) -> Result<Schedule, String> {
    let expr = expr.trim();
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    // The parser's message spans lines; start-up refusals are one line.
    Schedule::from_str(&full).map_err(|e| {
        e.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// One job with its effective schedule.
#[derive(Clone)]
pub struct JobSchedule {
    pub job: Arc<dyn Job>,
    /// The expression as configured (or the default), for the jobs page.
    pub expr: String,
    pub schedule: Schedule,
    pub enabled: bool,
    pub webhook_url: Option<String>,
}

impl std::fmt::Debug for JobSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobSchedule")
            .field("job", &self.job.name())
            .field("expr", &self.expr)
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl JobSchedule {
    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&t).next()
    }
}

/// The effective schedules of `jobs` under `[jobs]`.
pub fn resolve(
    jobs: &[Arc<dyn Job>],
    config: &BTreeMap<String, JobConfig>,
) -> Result<Vec<JobSchedule>, ScheduleError> {
    for name in config.keys() {
        if !jobs.iter().any(|j| j.name() == name) {
            let known: Vec<_> = jobs.iter().map(|j| j.name()).collect();
            return Err(ScheduleError(format!(
                "[jobs.{name}] names no job; the jobs are {}",
                known.join(", ")
            )));
        }
    }
    jobs.iter()
        .map(|job| {
            let cfg = config.get(job.name());
            let expr = cfg
                .map(|c| c.schedule.trim().to_string())
                .unwrap_or_else(|| job.default_schedule().to_string());
            let schedule = parse_cron(&expr).map_err(|e| {
                ScheduleError(format!(
                    "[jobs.{}] schedule `{expr}` is not a cron expression ({e}); use 5 fields `min hour day month weekday` or 6 with seconds first, e.g. \"0 */10 * * * *\"",
                    job.name()
                ))
            })?;
            let webhook_url = cfg.and_then(|c| c.webhook_url.clone());
            if let Some(url) = &webhook_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ScheduleError(format!(
                    "[jobs.{}] webhook_url must be an http or https URL",
                    job.name()
                )));
            }
            Ok(JobSchedule {
                job: job.clone(),
                expr,
                schedule,
                enabled: cfg.is_none_or(|c| c.enabled),
                webhook_url,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::builtin_jobs;

    fn cfg(schedule: &str) -> JobConfig {
        JobConfig {
            schedule: schedule.into(),
            enabled: true,
            webhook_url: None,
        }
    }

    #[test]
    fn defaults_follow_the_spec() {
        let all = resolve(&builtin_jobs(), &BTreeMap::new()).unwrap();
        let t = Utc.with_ymd_and_hms(2026, 5, 10, 5, 59, 59).unwrap();
        let next = |name: &str| {
            all.iter()
                .find(|s| s.job.name() == name)
                .and_then(|s| s.next_after(t))
                .unwrap()
        };
        assert_eq!(
            next("status-poll"),
            Utc.with_ymd_and_hms(2026, 5, 10, 6, 0, 0).unwrap()
        );
        assert_eq!(
            next("audit-digest"),
            Utc.with_ymd_and_hms(2026, 5, 10, 6, 0, 0).unwrap()
        );
        let poll = all.iter().find(|s| s.job.name() == "status-poll").unwrap();
        let a = poll.next_after(t).unwrap();
        assert_eq!((poll.next_after(a).unwrap() - a).num_seconds(), 30);
        let expiry = all
            .iter()
            .find(|s| s.job.name() == "promotion-expiry")
            .unwrap();
        let a = expiry.next_after(t).unwrap();
        assert_eq!((expiry.next_after(a).unwrap() - a).num_minutes(), 10);
        for hourly in ["token-rotation-sweep", "session-purge"] {
            let s = all.iter().find(|s| s.job.name() == hourly).unwrap();
            let a = s.next_after(t).unwrap();
            assert_eq!((s.next_after(a).unwrap() - a).num_hours(), 1, "{hourly}");
        }
        let digest = all.iter().find(|s| s.job.name() == "audit-digest").unwrap();
        let a = digest.next_after(t).unwrap();
        assert_eq!((digest.next_after(a).unwrap() - a).num_hours(), 24);
    }

    #[test]
    fn five_field_crontab_runs_at_second_zero() {
        let s = parse_cron("*/15 * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 7, 3).unwrap();
        assert_eq!(
            s.after(&t).next().unwrap(),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 15, 0).unwrap()
        );
    }

    #[test]
    fn a_bad_schedule_names_its_job() {
        let mut config = BTreeMap::new();
        config.insert("session-purge".to_string(), cfg("every tuesday"));
        let e = resolve(&builtin_jobs(), &config).unwrap_err().0;
        assert!(
            e.starts_with("[jobs.session-purge] schedule `every tuesday`"),
            "{e}"
        );
        let mut config = BTreeMap::new();
        config.insert("status-pol".to_string(), cfg("* * * * *"));
        let e = resolve(&builtin_jobs(), &config).unwrap_err().0;
        assert!(e.contains("[jobs.status-pol] names no job"), "{e}");
        let mut config = BTreeMap::new();
        let mut c = cfg("0 6 * * *");
        c.webhook_url = Some("ftp://x".into());
        config.insert("audit-digest".to_string(), c);
        assert!(resolve(&builtin_jobs(), &config).is_err());
    }
}
