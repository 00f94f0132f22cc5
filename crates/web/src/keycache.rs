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
//! When the database is unreachable, a read route accepts a key this process knew to be
//! valid within [`OUTAGE_GRACE_MS`]; revocations made during the outage cannot be seen by
//! anyone and apply as soon as the database is back.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use raxx_core::secret::hash_token;
use raxx_store::keys::AppKey;
use raxx_store::{Store, StoreError};

/// How long a key verified before an outage keeps working during it.
pub const OUTAGE_GRACE_MS: i64 = 15 * 60_000;
/// Most unknown keys remembered; past it they are all forgotten (a client hammering with
/// random keys costs database reads, not memory).
pub const MAX_UNKNOWN: usize = 1024;
/// Past this many entries, keys not verified within [`OUTAGE_GRACE_MS`] are dropped.
const PRUNE_AT: usize = 10_000;

#[derive(Debug)]
struct Entry {
    /// `None`: the database had no live key with this secret.
    key: Option<AppKey>,
    /// The change generation taken before the database read.
    generation: u64,
    /// Last time the key was known valid (read from the database, or served while fresh).
    verified_at: AtomicI64,
}

#[derive(Debug, Default)]
pub struct KeyCache {
    keys: RwLock<Keys>,
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

    /// A key known valid within the grace window, for use only while the database is down.
    fn during_outage(&self, hash: &str, now: i64) -> Option<AppKey> {
        let m = self.keys.read().ok()?;
        let e = m.by_hash.get(hash)?;
        let key = e.key.as_ref()?;
        (now - e.verified_at.load(Ordering::Relaxed) < OUTAGE_GRACE_MS && key.is_live(now))
            .then(|| key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raxx_core::gate::KeyKind;

    fn key(id: i64) -> AppKey {
        AppKey {
            id,
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
