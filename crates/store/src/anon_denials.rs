//! Anonymous denials, aggregated (SPEC §6; issue 19 item 9).
//!
//! A denial by a signed-in principal is one chained audit row. A denial with no principal
//! is counted here instead — one row per (interval, source, route template, code) in the
//! non-chained table `console_anon_denials` — and flushed into the chain as ONE summary
//! row per such key once its interval is over. Unauthenticated traffic therefore grows the
//! chain by at most one row per source, route and reason per interval, whatever its rate,
//! and nothing it sends (paths, headers) is stored: the key is an IP, a manifest template
//! and a denial code.
//!
//! Bounded: a process counts at most [`MAX_KEYS_PER_INTERVAL`] distinct keys per interval;
//! past that, further sources are counted under the source `other`, so the table holds at
//! most that many keys (plus one `other` key per route and code) per interval and process.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use raxx_core::audit::{AuditEvent, Outcome, cap_str};
use sqlx::Row;

use crate::{Result, Store, now_ms};

/// Length of one aggregation interval.
pub const INTERVAL_MS: i64 = 60_000;
/// Distinct (source, route, code) keys one process counts per interval before it folds new
/// sources into `other`.
pub const MAX_KEYS_PER_INTERVAL: usize = 1_000;
/// The source under which sources past [`MAX_KEYS_PER_INTERVAL`] are counted.
pub const OVERFLOW_SOURCE: &str = "other";
/// Longest source string stored (an IPv6 address is at most 45 characters).
const MAX_SOURCE: usize = 64;

/// One anonymous denial, as the gate saw it. Every field is server-side: `route` is the
/// manifest's template (`GET /auth/link/{token}`), never the request's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonDenial<'a> {
    pub source: Option<&'a str>,
    pub route: &'a str,
    pub action: &'a str,
    pub code: &'a str,
}

/// The start of the interval `at` falls in.
pub fn interval_of(at: i64) -> i64 {
    at.div_euclid(INTERVAL_MS) * INTERVAL_MS
}

/// The interval in which this process last flushed the intervals before it.
static FLUSHED_BEFORE: AtomicI64 = AtomicI64::new(i64::MIN);

/// (source, route, code)
type Key = (String, String, String);

/// The keys counted in the current interval by this process (the bound).
static SEEN: Mutex<Option<(i64, HashSet<Key>)>> = Mutex::new(None);

/// The source to count under: the given one while the interval has room for its key.
fn bounded_source(bucket: i64, source: &str, route: &str, code: &str) -> String {
    let key = (source.to_string(), route.to_string(), code.to_string());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let slot = seen.get_or_insert_with(|| (bucket, HashSet::new()));
    if slot.0 != bucket {
        *slot = (bucket, HashSet::new());
    }
    if slot.1.contains(&key) {
        return key.0;
    }
    if slot.1.len() < MAX_KEYS_PER_INTERVAL {
        slot.1.insert(key.clone());
        return key.0;
    }
    OVERFLOW_SOURCE.to_string()
}

/// One pending (not yet flushed) aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonAggregate {
    pub bucket: i64,
    pub source: String,
    pub route: String,
    pub code: String,
    pub action: String,
    pub count: i64,
    pub first_at: i64,
    pub last_at: i64,
}

impl AnonAggregate {
    /// The chained summary row of this aggregate.
    pub fn event(&self) -> AuditEvent {
        let mut e = AuditEvent::new("anonymous", self.action.clone(), Outcome::Denied)
            .reason(format!(
                "{} anonymous request(s) refused ({}) in this interval, not recorded one by one",
                self.count, self.code
            ))
            .with(raxx_core::audit::DENIAL_KEY, self.code.clone())
            .with("route", self.route.clone())
            .with("aggregated", true)
            .with("count", self.count)
            .with("interval_start", self.bucket)
            .with("interval_end", self.bucket + INTERVAL_MS)
            .with("first_at", self.first_at)
            .with("last_at", self.last_at);
        e.ip = Some(self.source.clone());
        e
    }
}

impl Store {
    /// Count one anonymous denial (outside the chain). Flushes the intervals that have
    /// ended first, so the chain catches up on the next anonymous request after an
    /// interval closes.
    pub async fn count_anon_denial(&self, d: &AnonDenial<'_>) -> Result<()> {
        let now = now_ms();
        let bucket = interval_of(now);
        let source = cap_str(d.source.unwrap_or("unknown"), MAX_SOURCE);
        let source = bounded_source(bucket, &source, d.route, d.code);
        sqlx::query(
            "INSERT INTO console_anon_denials (bucket, source, route, code, action, count, first_at, last_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6) \
             ON CONFLICT (bucket, source, route, code) DO UPDATE SET count = console_anon_denials.count + 1, last_at = excluded.last_at",
        )
        .bind(bucket)
        .bind(&source)
        .bind(d.route)
        .bind(d.code)
        .bind(d.action)
        .bind(now)
        .execute(&self.pool)
        .await?;
        // Once per interval and process: earlier intervals (of this process, another
        // instance or a previous run) join the chain.
        if FLUSHED_BEFORE.swap(bucket, Ordering::Relaxed) != bucket {
            self.flush_anon_denials(now).await?;
        }
        Ok(())
    }

    /// An anonymous refusal outside the gate (a failed sign-in, the throttle's refusal):
    /// counted under its key like [`Store::count_anon_denial`], except that the first of
    /// its key in an interval is also written in full as `first` (one chained row naming
    /// the account and the reason, with `denial` = the key's code); the rest are only
    /// counted and join the chain as one summary row when the interval is over. Returns
    /// whether `first` was written.
    pub async fn audit_anon_refusal(&self, d: &AnonDenial<'_>, first: AuditEvent) -> Result<bool> {
        let now = now_ms();
        let bucket = interval_of(now);
        let source = cap_str(d.source.unwrap_or("unknown"), MAX_SOURCE);
        let source = bounded_source(bucket, &source, d.route, d.code);
        // The first of a key is stored with count 0 (its chained row carries it); every
        // further one adds 1. Atomic: of two concurrent firsts, one inserts, one counts.
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO console_anon_denials (bucket, source, route, code, action, count, first_at, last_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6) \
             ON CONFLICT (bucket, source, route, code) DO UPDATE SET count = console_anon_denials.count + 1, last_at = excluded.last_at \
             RETURNING count",
        )
        .bind(bucket)
        .bind(&source)
        .bind(d.route)
        .bind(d.code)
        .bind(d.action)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let chained = count == 0;
        if chained {
            self.audit(first.with(raxx_core::audit::DENIAL_KEY, d.code.to_string()))
                .await?;
        }
        if FLUSHED_BEFORE.swap(bucket, Ordering::Relaxed) != bucket {
            self.flush_anon_denials(now).await?;
        }
        Ok(chained)
    }

    /// Move every aggregate of an interval that ended by `now` into the chain: one summary
    /// row each, and the counted rows deleted, in one audited transaction. Returns how many
    /// summary rows were written. Safe to call from several instances at once.
    pub async fn flush_anon_denials(&self, now: i64) -> Result<u64> {
        let cutoff = interval_of(now);
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "SELECT bucket, source, route, code, action, count, first_at, last_at FROM console_anon_denials WHERE bucket < $1 ORDER BY bucket, source, route, code",
        )
        .bind(cutoff)
        .fetch_all(&mut *tx.conn())
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let mut n = 0;
        for r in &rows {
            let agg = AnonAggregate {
                bucket: r.try_get("bucket")?,
                source: r.try_get("source")?,
                route: r.try_get("route")?,
                code: r.try_get("code")?,
                action: r.try_get("action")?,
                count: r.try_get("count")?,
                first_at: r.try_get("first_at")?,
                last_at: r.try_get("last_at")?,
            };
            // Count 0: only a first, already chained in full (`audit_anon_refusal`).
            if agg.count == 0 {
                continue;
            }
            tx.record(agg.event()).await?;
            n += 1;
        }
        sqlx::query("DELETE FROM console_anon_denials WHERE bucket < $1")
            .bind(cutoff)
            .execute(&mut *tx.conn())
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Anonymous denials counted and not yet flushed (every interval).
    pub async fn anon_denials_pending(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS n FROM console_anon_denials",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// The pending aggregates, oldest first (tests and the audit page's note).
    pub async fn anon_aggregates(&self) -> Result<Vec<AnonAggregate>> {
        let rows = sqlx::query(
            "SELECT bucket, source, route, code, action, count, first_at, last_at FROM console_anon_denials ORDER BY bucket, source, route, code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AnonAggregate {
                    bucket: r.try_get("bucket")?,
                    source: r.try_get("source")?,
                    route: r.try_get("route")?,
                    code: r.try_get("code")?,
                    action: r.try_get("action")?,
                    count: r.try_get("count")?,
                    first_at: r.try_get("first_at")?,
                    last_at: r.try_get("last_at")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_aligned_and_the_key_set_is_bounded() {
        assert_eq!(interval_of(0), 0);
        assert_eq!(interval_of(INTERVAL_MS - 1), 0);
        assert_eq!(interval_of(INTERVAL_MS), INTERVAL_MS);
        let bucket = 7 * INTERVAL_MS;
        let mut overflowed = 0;
        for i in 0..MAX_KEYS_PER_INTERVAL + 10 {
            if bounded_source(
                bucket,
                &format!("10.0.{}.{}", i / 256, i % 256),
                "GET /x",
                "csrf",
            ) == OVERFLOW_SOURCE
            {
                overflowed += 1;
            }
        }
        assert_eq!(overflowed, 10, "past the bound, sources fold into `other`");
        assert_eq!(
            bounded_source(bucket, "10.0.0.0", "GET /x", "csrf"),
            "10.0.0.0",
            "a key already counted keeps its source"
        );
        assert_eq!(
            bounded_source(bucket + INTERVAL_MS, "10.9.9.9", "GET /x", "csrf"),
            "10.9.9.9",
            "a new interval starts empty"
        );
    }
}
