//! Flag usage and staleness (issue 16 item 4): OFREP evaluations per app and flag, counted
//! in memory and added to the database in one batched upsert every [`FLUSH_EVERY`].
//!
//! The hot path is one relaxed atomic add per evaluated flag: each [`CachedFlags`] carries
//! the counter of each of its flags (taken from [`UsageCounters`] when the state is loaded,
//! off the hot path), so OFREP takes no lock and makes no write to count. Counters live as
//! long as the process, so a reload of the state between two flushes loses nothing. The
//! flush swaps every counter to zero and adds what it took (`evaluations = evaluations +
//! excluded.evaluations`), so several consoles on one database add up; a failed flush puts
//! its counts back for the next one. The last-evaluated time is the flush's time, so it is
//! accurate to [`FLUSH_EVERY`].
//!
//! [`CachedFlags`]: super::CachedFlags

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use raxx_store::flag_usage::UsageDelta;
use raxx_store::{Store, StoreError, now_ms};

use super::FlagCache;

/// How often counted evaluations are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// One flag's evaluations since the last flush.
#[derive(Debug, Default)]
pub struct FlagCounter(AtomicU64);

impl FlagCounter {
    #[inline]
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every flag counter of this process, by (app, flag).
#[derive(Debug, Default)]
pub struct UsageCounters {
    counters: RwLock<HashMap<(String, String), Arc<FlagCounter>>>,
    flushes: AtomicU64,
}

impl UsageCounters {
    /// The counter of `app`'s flag `key` (created on first use). Off the hot path: called
    /// when an app's flag state is loaded.
    pub fn counter(&self, app: &str, key: &str) -> Arc<FlagCounter> {
        let id = (app.to_owned(), key.to_owned());
        if let Ok(m) = self.counters.read()
            && let Some(c) = m.get(&id)
        {
            return c.clone();
        }
        match self.counters.write() {
            Ok(mut m) => m.entry(id).or_default().clone(),
            // A poisoned map: count into a counter nobody flushes rather than fail OFREP.
            Err(_) => Arc::default(),
        }
    }

    /// Take every non-zero count (resetting it), stamped `at`.
    fn take(&self, at: i64) -> Vec<UsageDelta> {
        let Ok(m) = self.counters.read() else {
            return Vec::new();
        };
        m.iter()
            .filter_map(|((app, key), c)| {
                let n = c.0.swap(0, Ordering::Relaxed);
                (n > 0).then(|| UsageDelta {
                    app: app.clone(),
                    flag_key: key.clone(),
                    evaluations: i64::try_from(n).unwrap_or(i64::MAX),
                    at,
                })
            })
            .collect()
    }

    fn put_back(&self, deltas: &[UsageDelta]) {
        for d in deltas {
            self.counter(&d.app, &d.flag_key)
                .0
                .fetch_add(u64::try_from(d.evaluations).unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// Add the evaluations counted since the last flush to the database (one batched
    /// upsert). Returns how many flags it wrote.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let deltas = self.take(now_ms());
        if deltas.is_empty() {
            return Ok(0);
        }
        match store.add_flag_usage(&deltas).await {
            Ok(()) => {
                self.flushes.fetch_add(1, Ordering::Relaxed);
                Ok(deltas.len())
            }
            Err(e) => {
                self.put_back(&deltas);
                Err(e)
            }
        }
    }

    /// How many flushes wrote something so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

/// Flushes flag usage every [`FLUSH_EVERY`] while it lives; [`crate::serve`] holds one.
pub struct UsageFlusher {
    task: tokio::task::JoinHandle<()>,
    cache: Arc<FlagCache>,
    store: Store,
}

impl UsageFlusher {
    pub fn start(cache: Arc<FlagCache>, store: Store) -> UsageFlusher {
        let (c, s) = (cache.clone(), store.clone());
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + FLUSH_EVERY;
            let mut every = tokio::time::interval_at(start, FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = c.usage().flush(&s).await {
                    tracing::debug!(error = %e, "flag usage not written yet");
                }
            }
        });
        UsageFlusher { task, cache, store }
    }

    /// Stop, writing what is left first (at shutdown).
    pub async fn finish(self) {
        self.task.abort();
        if let Err(e) = self.cache.usage().flush(&self.store).await {
            tracing::warn!(error = %e, "flag usage of the last seconds was not written");
        }
    }
}

impl Drop for UsageFlusher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_taken_once_and_reload_safe() {
        let u = UsageCounters::default();
        let a = u.counter("app", "f");
        let again = u.counter("app", "f");
        a.hit();
        again.hit();
        u.counter("app", "g");
        let taken = u.take(7);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].evaluations, 2);
        assert_eq!(taken[0].at, 7);
        assert!(u.take(8).is_empty(), "taken counts are reset");
        u.put_back(&taken);
        assert_eq!(
            u.take(9)[0].evaluations,
            2,
            "a failed flush keeps its counts"
        );
    }
}
