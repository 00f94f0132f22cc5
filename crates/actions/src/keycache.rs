//! API keys verified against the database, kept in memory.
//!
//! Each entry is tagged with the store's change generation taken before the database read
//! (`raxx_store::changes`). While the signal is live and nothing changed since, a read
//! route accepts (or refuses) the key from memory, re-checking its grace period on every
//! use; any state-changing commit in this process, a `NOTIFY` from another instance (PostgreSQL)
//! or a `data_version` move (SQLite) makes every entry stale, and the next request reads
//! the database again. While the signal is not live every request reads the database.
//! Write routes always read the database.
//!
//! "Last used" per key version (issue 17) comes from the same entries: a use moves an
//! entry's `verified_at`, and [`KeyCache::flush_usage`] (every [`USAGE_FLUSH_EVERY`], from
//! [`UsageFlusher`] while serving) writes the uses since its last run in batches — never a
//! write per request. What a crash loses is at most that interval's "last used".
//!
//! When the database is unreachable, a read route accepts a key this process knew to be
//! valid within [`OUTAGE_GRACE_MS`]; revocations made during the outage cannot be seen by
//! anyone and apply as soon as the database is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use raxx_core::opaque::hash_token;
use raxx_store::keys::AppKey;
use raxx_store::{Store, StoreError};

/// How long a key verified before an outage keeps working during it.
pub const OUTAGE_GRACE_MS: i64 = 15 * 60_000;
/// Most unknown keys remembered; past it they are all forgotten (a client hammering with
/// random keys costs database reads, not memory).
pub const MAX_UNKNOWN: usize = 1024;
/// How often "last used" times are written to the database.
pub const USAGE_FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Past this many entries, keys not verified within [`OUTAGE_GRACE_MS`] are dropped.
const PRUNE_AT: usize = 10_000;

#[derive(Debug)]
struct Entry {
    /// `None`: the database had no live key with this secret.
    key: Option<AppKey>,
    /// The change generation taken before the database read.
    generation: u64,
    /// Last time the key was known valid (read from the database, or served while fresh):
    /// the key's last use through this process.
    verified_at: AtomicI64,
    /// The `verified_at` the last usage flush took.
    flushed_at: AtomicI64,
}

#[derive(Debug, Default)]
pub struct KeyCache {
    keys: RwLock<Keys>,
    /// Uses a failed flush could not write, by key version id: written by the next one.
    unflushed: Mutex<HashMap<i64, i64>>,
    /// Flushes that wrote something (tests tell a flush from a write per request).
    flushes: AtomicU64,
}

#[derive(Debug, Default)]
struct Keys {
    /// By the secret's SHA-256.
    by_hash: HashMap<String, Entry>,
    /// Entries with `key: None`.
    unknown: usize,
}

use crate::metrics::{Cache, Lookup};

impl KeyCache {
    /// The live key with this secret, if any. `write`: the route changes state, so the key
    /// is checked in the database and no outage fallback applies.
    pub async fn verify(
        &self,
        store: &Store,
        secret: &str,
        now: i64,
        write: bool,
    ) -> Result<Option<AppKey>, StoreError> {
        let hash = hash_token(secret);
        let signal = store.changes();
        // Before the database read: a change committed after this moves the generation.
        let generation = signal.generation();
        if !write
            && signal.is_live()
            && let Some(hit) = self.fresh(&hash, generation, now)
        {
            crate::metrics::cache_lookup(Cache::Keys, Lookup::Hit);
            return Ok(hit);
        }
        match store.api_key_by_secret(secret).await {
            Ok(found) => {
                crate::metrics::cache_lookup(Cache::Keys, Lookup::Miss);
                self.insert(hash, found.clone(), generation, now);
                Ok(found)
            }
            // Database unreachable: reads may go on with a key verified shortly before.
            Err(e) if e.is_unavailable() && !write => match self.during_outage(&hash, now) {
                Some(k) => {
                    crate::metrics::cache_lookup(Cache::Keys, Lookup::Stale);
                    Ok(Some(k))
                }
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// The entry's answer when it was read at `generation` (the current one).
    fn fresh(&self, hash: &str, generation: u64, now: i64) -> Option<Option<AppKey>> {
        let m = self.keys.read().ok()?;
        let e = m.by_hash.get(hash).filter(|e| e.generation == generation)?;
        match &e.key {
            Some(k) if k.is_live(now) => {
                e.verified_at.fetch_max(now, Ordering::Relaxed);
                Some(Some(k.clone()))
            }
            // Revoked by its grace period running out: the database says the same.
            Some(_) | None => Some(None),
        }
    }

    fn insert(&self, hash: String, key: Option<AppKey>, generation: u64, now: i64) {
        let Ok(mut m) = self.keys.write() else { return };
        if m.by_hash
            .get(&hash)
            .is_some_and(|old| old.generation > generation)
        {
            return; // a read that started later already stored its answer
        }
        if key.is_none() && m.unknown >= MAX_UNKNOWN {
            m.by_hash.retain(|_, e| e.key.is_some());
            m.unknown = 0;
        } else if key.is_some() && m.by_hash.len() > PRUNE_AT {
            m.by_hash.retain(|_, e| {
                e.key.is_some() && now - e.verified_at.load(Ordering::Relaxed) < OUTAGE_GRACE_MS
            });
            m.unknown = 0;
        }
        let unknown = key.is_none();
        let entry = Entry {
            key,
            generation,
            verified_at: AtomicI64::new(now),
            flushed_at: AtomicI64::new(0),
        };
        if let Some(old) = m.by_hash.insert(hash, entry)
            && old.key.is_none()
        {
            m.unknown -= 1;
        }
        if unknown {
            m.unknown += 1;
        }
    }

    /// Uses since the last call: `(key version id, last use)` for every key whose last
    /// use moved since, plus what a failed flush left.
    fn take_uses(&self) -> Vec<(i64, i64)> {
        let mut uses: HashMap<i64, i64> = self
            .unflushed
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default();
        if let Ok(m) = self.keys.read() {
            for e in m.by_hash.values() {
                let Some(key) = &e.key else { continue };
                let used = e.verified_at.load(Ordering::Relaxed);
                if e.flushed_at.fetch_max(used, Ordering::Relaxed) < used {
                    let at = uses.entry(key.id).or_insert(used);
                    *at = (*at).max(used);
                }
            }
        }
        let mut uses: Vec<(i64, i64)> = uses.into_iter().collect();
        uses.sort_unstable();
        uses
    }

    /// Write the uses since the last flush (batched, no audit row: bookkeeping like a
    /// session's `last_seen_at`). Returns how many key versions it wrote.
    pub async fn flush_usage(&self, store: &Store) -> Result<usize, StoreError> {
        let uses = self.take_uses();
        if uses.is_empty() {
            return Ok(0);
        }
        match store.record_key_uses(&uses).await {
            Ok(()) => {
                self.flushes.fetch_add(1, Ordering::Relaxed);
                Ok(uses.len())
            }
            Err(e) => {
                if let Ok(mut m) = self.unflushed.lock() {
                    for (id, at) in uses {
                        let kept = m.entry(id).or_insert(at);
                        *kept = (*kept).max(at);
                    }
                }
                Err(e)
            }
        }
    }

    /// How many flushes wrote something so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// A key known valid within the grace window, for use only while the database is down.
    fn during_outage(&self, hash: &str, now: i64) -> Option<AppKey> {
        let m = self.keys.read().ok()?;
        let e = m.by_hash.get(hash)?;
        let key = e.key.as_ref()?;
        (now - e.verified_at.load(Ordering::Relaxed) < OUTAGE_GRACE_MS && key.is_live(now))
            .then(|| key.clone())
    }
}

/// Flushes "last used" every [`USAGE_FLUSH_EVERY`] while it lives (and stops when
/// dropped); [`crate::serve`] holds one.
pub struct UsageFlusher {
    task: tokio::task::JoinHandle<()>,
    cache: Arc<KeyCache>,
    store: Store,
}

impl UsageFlusher {
    pub fn start(cache: Arc<KeyCache>, store: Store) -> UsageFlusher {
        let (c, s) = (cache.clone(), store.clone());
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now() + USAGE_FLUSH_EVERY;
            let mut every = tokio::time::interval_at(start, USAGE_FLUSH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = c.flush_usage(&s).await {
                    tracing::debug!(error = %e, "key last-used times not written yet");
                }
            }
        });
        UsageFlusher { task, cache, store }
    }

    /// Stop, writing what is left first (at shutdown).
    pub async fn finish(self) {
        self.task.abort();
        if let Err(e) = self.cache.flush_usage(&self.store).await {
            tracing::warn!(error = %e, "key last-used times of the last seconds were not written");
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
    use raxx_core::gate::KeyKind;

    fn key(id: i64) -> AppKey {
        AppKey {
            id,
            token_id: id,
            app: "app".into(),
            kind: KeyKind::Client,
            name: "k".into(),
            created_at: 0,
            created_by: "t".into(),
            rotated_from: None,
            grace_until: None,
            revoked_at: None,
        }
    }

    #[test]
    fn unknown_keys_are_capped() {
        let c = KeyCache::default();
        c.insert("known".into(), Some(key(1)), 1, 0);
        for i in 0..(MAX_UNKNOWN * 3) {
            c.insert(format!("unknown-{i}"), None, 1, 0);
        }
        let m = c.keys.read().unwrap();
        assert!(m.by_hash.len() <= MAX_UNKNOWN + 1, "{}", m.by_hash.len());
        assert!(m.by_hash.contains_key("known"), "known keys survive");
        assert_eq!(
            m.unknown,
            m.by_hash.values().filter(|e| e.key.is_none()).count()
        );
    }

    #[test]
    fn entries_answer_only_for_their_generation_and_grace_still_bites() {
        let c = KeyCache::default();
        let mut k = key(1);
        k.grace_until = Some(1_000);
        c.insert("h".into(), Some(k), 7, 0);
        assert!(c.fresh("h", 8, 10).is_none(), "other generation: stale");
        assert!(matches!(c.fresh("h", 7, 10), Some(Some(_))));
        assert!(matches!(c.fresh("h", 7, 1_000), Some(None)), "grace ended");
        // An older read never replaces a newer one.
        c.insert("h".into(), None, 6, 20);
        assert!(matches!(c.fresh("h", 7, 10), Some(Some(_))));
    }

    #[test]
    fn uses_are_taken_once_per_move_of_the_last_use() {
        let c = KeyCache::default();
        c.insert("a".into(), Some(key(1)), 1, 100);
        c.insert("b".into(), Some(key(2)), 1, 150);
        c.insert("x".into(), None, 1, 100);
        assert_eq!(c.take_uses(), vec![(1, 100), (2, 150)]);
        assert!(c.take_uses().is_empty(), "nothing moved since");
        assert!(matches!(c.fresh("a", 1, 300), Some(Some(_))));
        assert!(matches!(c.fresh("a", 1, 200), Some(Some(_))), "late clock");
        assert_eq!(c.take_uses(), vec![(1, 300)], "the latest use only");
        // What a failed flush left comes back with the next one.
        c.unflushed.lock().unwrap().insert(2, 400);
        assert_eq!(c.take_uses(), vec![(2, 400)]);
    }

    #[test]
    fn outage_grace_counts_from_the_last_fresh_use() {
        let c = KeyCache::default();
        c.insert("h".into(), Some(key(1)), 1, 0);
        assert!(c.fresh("h", 1, OUTAGE_GRACE_MS).is_some());
        assert!(c.during_outage("h", OUTAGE_GRACE_MS + 10).is_some());
        assert!(c.during_outage("h", 2 * OUTAGE_GRACE_MS + 10).is_none());
        c.insert("h".into(), None, 2, 0);
        assert!(
            c.during_outage("h", 10).is_none(),
            "refused keys stay refused"
        );
    }
}
