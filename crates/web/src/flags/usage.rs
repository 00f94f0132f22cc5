//! A flag's usage and staleness as pages and the API show it; the counting and the
//! batched writes are [`raxx_actions::flags::usage`]'s.

use raxx_store::flag_usage::FlagUsage;
use serde::Serialize;

pub use raxx_actions::flags::usage::*;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A flag's usage as pages and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub evaluations: i64,
    /// Unix milliseconds, `None` when never evaluated (since usage was recorded).
    pub last_evaluated_at: Option<i64>,
    /// Not evaluated for `flag_stale_days` (never evaluated counts from the flag's last
    /// change: a flag created yesterday is not stale yet).
    pub stale: bool,
    pub stale_days: u32,
}

/// Whether a flag is stale: no evaluation for `days` days, counted from its last
/// evaluation, or from its last change when it never had one.
pub fn usage_view(usage: Option<&FlagUsage>, updated_at: i64, now: i64, days: u32) -> UsageView {
    let since = usage.map_or(updated_at, |u| u.last_evaluated_at);
    UsageView {
        evaluations: usage.map_or(0, |u| u.evaluations),
        last_evaluated_at: usage.map(|u| u.last_evaluated_at),
        stale: now - since >= i64::from(days) * DAY_MS,
        stale_days: days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_counts_from_the_last_evaluation_or_the_last_change() {
        let day = DAY_MS;
        let used = FlagUsage {
            evaluations: 3,
            first_evaluated_at: 0,
            last_evaluated_at: 10 * day,
        };
        assert!(!usage_view(Some(&used), 0, 39 * day, 30).stale);
        assert!(usage_view(Some(&used), 0, 40 * day, 30).stale);
        assert!(!usage_view(None, 20 * day, 40 * day, 30).stale, "new flag");
        assert!(usage_view(None, 0, 40 * day, 30).stale);
        assert_eq!(usage_view(None, 0, 0, 30).evaluations, 0);
    }
}
