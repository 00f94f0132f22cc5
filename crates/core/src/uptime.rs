//! Uptime and latency over a window of check samples (the status drill-down): pure, so
//! the page, the API and tests share one definition.
//!
//! A sample is *up* when the check answered as expected or degraded (slow, another 2xx/3xx)
//! and *down* otherwise. Uptime is up samples over all samples in the window; p95 is the
//! nearest-rank 95th percentile of the latencies of up samples only — a failed sample has
//! no latency worth ranking (a refused connection in 2 ms is not a fast answer).

use serde::Serialize;

/// One check result as the statistics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unix milliseconds.
    pub at: i64,
    pub up: bool,
    pub latency_ms: i64,
}

/// The windows the drill-down reports: (label, length in milliseconds).
pub const WINDOWS: [(&str, i64); 3] = [
    ("1 h", 3_600_000),
    ("24 h", 86_400_000),
    ("7 d", 7 * 86_400_000),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowStats {
    pub window: &'static str,
    pub samples: usize,
    pub down: usize,
    /// Percent of samples that were up; `None` without samples.
    pub uptime_pct: Option<f64>,
    /// Nearest-rank p95 latency of up samples; `None` without any.
    pub p95_ms: Option<i64>,
}

/// Statistics of the samples with `now - len < at <= now`.
pub fn window_stats(samples: &[Sample], now: i64, window: &'static str, len: i64) -> WindowStats {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at > now - len && s.at <= now)
        .collect();
    let down = inside.iter().filter(|s| !s.up).count();
    let mut lat: Vec<i64> = inside
        .iter()
        .filter(|s| s.up)
        .map(|s| s.latency_ms)
        .collect();
    lat.sort_unstable();
    let p95_ms = (!lat.is_empty()).then(|| {
        // Nearest rank: the smallest value with at least 95 % of values at or below it.
        let rank = (lat.len() * 95).div_ceil(100).max(1);
        lat[rank - 1]
    });
    let uptime_pct = (!inside.is_empty()).then(|| {
        let up = (inside.len() - down) as f64;
        (up * 1000.0 / inside.len() as f64).round() / 10.0
    });
    WindowStats {
        window,
        samples: inside.len(),
        down,
        uptime_pct,
        p95_ms,
    }
}

/// [`window_stats`] for every window of [`WINDOWS`].
pub fn all_windows(samples: &[Sample], now: i64) -> Vec<WindowStats> {
    WINDOWS
        .iter()
        .map(|(w, len)| window_stats(samples, now, w, *len))
        .collect()
}

/// Split samples (oldest first) into runs the chart draws as one line: a run ends at a
/// down sample (which is drawn as a failure, never as a latency) and where two samples are
/// further apart than `max_gap_ms` (no data: the gap stays visible).
pub fn line_runs(samples: &[Sample], max_gap_ms: i64) -> Vec<Vec<Sample>> {
    let mut runs: Vec<Vec<Sample>> = Vec::new();
    let mut cur: Vec<Sample> = Vec::new();
    for s in samples {
        let gap = cur.last().is_some_and(|p| s.at - p.at > max_gap_ms);
        if !s.up || gap {
            if !cur.is_empty() {
                runs.push(std::mem::take(&mut cur));
            }
            if !s.up {
                continue;
            }
        }
        cur.push(*s);
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// A check's newest result is older than this: no longer the check's state (three missed
/// polls, and at least 90 s; the default poll runs every 30 s).
pub fn stale_after_ms(interval_seconds: u64) -> i64 {
    (interval_seconds.saturating_mul(3) as i64 * 1000).max(90_000)
}

/// Is a result taken at `at` still the state of a check polled every `interval_seconds`?
pub fn is_current(at: i64, interval_seconds: u64, now: i64) -> bool {
    now - at <= stale_after_ms(interval_seconds)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_result_is_current_for_three_polls_and_at_least_90_seconds() {
        assert_eq!(stale_after_ms(30), 90_000);
        assert_eq!(stale_after_ms(60), 180_000);
        assert_eq!(stale_after_ms(5), 90_000);
        assert!(is_current(0, 30, 90_000));
        assert!(!is_current(0, 30, 90_001));
    }

    use super::*;
    use proptest::prelude::*;

    fn s(at: i64, up: bool, latency_ms: i64) -> Sample {
        Sample { at, up, latency_ms }
    }

    #[test]
    fn down_samples_count_against_uptime_and_never_as_latency() {
        let now = 10_000_000;
        let samples: Vec<Sample> = (0..20)
            .map(|i| {
                s(
                    now - i * 60_000,
                    i % 10 != 3,
                    if i % 10 == 3 { 2 } else { 100 + i },
                )
            })
            .collect();
        let st = window_stats(&samples, now, "1 h", 3_600_000);
        assert_eq!(st.samples, 20);
        assert_eq!(st.down, 2);
        assert_eq!(st.uptime_pct, Some(90.0));
        // 18 up latencies 100..=119 without 103 and 113: rank ceil(18*0.95) = 18 → 119.
        assert_eq!(st.p95_ms, Some(119));
        let empty = window_stats(&[], now, "1 h", 3_600_000);
        assert_eq!((empty.uptime_pct, empty.p95_ms), (None, None));
        let all_down = window_stats(&[s(now, false, 1)], now, "1 h", 3_600_000);
        assert_eq!((all_down.uptime_pct, all_down.p95_ms), (Some(0.0), None));
    }

    #[test]
    fn windows_include_only_their_samples() {
        let now = 30 * 86_400_000;
        let samples = [
            s(now - 30 * 60_000, true, 5),
            s(now - 2 * 3_600_000, false, 0),
            s(now - 3 * 86_400_000, true, 9),
            s(now - 8 * 86_400_000, false, 0),
        ];
        let w = all_windows(&samples, now);
        assert_eq!(w.iter().map(|x| x.samples).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(w[2].uptime_pct, Some(66.7));
    }

    #[test]
    fn runs_break_at_failures_and_gaps() {
        let samples = [
            s(0, true, 1),
            s(30, true, 2),
            s(60, false, 0),
            s(90, true, 3),
            s(500, true, 4),
            s(530, true, 5),
        ];
        let runs = line_runs(&samples, 100);
        let ats: Vec<Vec<i64>> = runs
            .iter()
            .map(|r| r.iter().map(|x| x.at).collect())
            .collect();
        assert_eq!(ats, vec![vec![0, 30], vec![90], vec![500, 530]]);
    }

    proptest! {
        #[test]
        fn uptime_is_a_percentage_and_p95_is_an_observed_up_latency(
            raw in proptest::collection::vec((0i64..7 * 86_400_000, any::<bool>(), 0i64..10_000), 0..200)
        ) {
            let now = 7 * 86_400_000;
            let samples: Vec<Sample> = raw.iter().map(|(a, u, l)| s(*a, *u, *l)).collect();
            for st in all_windows(&samples, now) {
                if let Some(p) = st.uptime_pct { prop_assert!((0.0..=100.0).contains(&p)); }
                if let Some(p95) = st.p95_ms {
                    prop_assert!(samples.iter().any(|x| x.up && x.latency_ms == p95));
                }
                prop_assert!(st.down <= st.samples);
            }
            let runs = line_runs(&samples, 60_000);
            prop_assert!(runs.iter().flatten().all(|x| x.up));
            prop_assert_eq!(runs.iter().map(Vec::len).sum::<usize>(), samples.iter().filter(|x| x.up).count());
        }
    }
}
