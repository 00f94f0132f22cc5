//! Each app's evaluated flag state, kept in memory and keyed by the app's revision.
//!
//! An entry is tagged with the store's change generation taken before its database read
//! (`raxx_store::changes`). While the change signal is live and the generation has not
//! moved, a request is served from memory with no database read at all. Otherwise it
//! costs one primary-key read (`console_flag_apps.revision`), and the flag rows are read,
//! parsed and hashed (the state ETag) only when the revision moved. The generation moves
//! after every state-changing commit in this process, on every `NOTIFY` from the triggers on the
//! flag tables (PostgreSQL, other instances) and when SQLite's `data_version` moves (other
//! processes on the file, polled every 100 ms); while the signal is not live (listener
//! down) every request reads the revision, as before.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use raxx_core::flags::{AppFlags, etag_for};
use raxx_store::flags::FlagState;
use raxx_store::{Store, StoreError};

use crate::metrics::{Cache, Lookup};

/// One app's state as OFREP serves it.
#[derive(Debug)]
pub struct CachedFlags {
    pub revision: i64,
    pub flags: AppFlags,
    /// The stored state the flags came from (versions, who changed what, when): what the
    /// flag pages render.
    pub state: FlagState,
    /// [`etag_for`] of `flags`: computed once per revision.
    pub etag: String,
    /// Each flag's OFREP evaluation counter (`usage.rs`), in key order like `flags.flags`.
    pub counters: std::collections::BTreeMap<String, Arc<super::usage::FlagCounter>>,
}

impl CachedFlags {
    /// Count one evaluation of `key` (no lock, no write: `usage.rs`).
    #[inline]
    pub fn count(&self, key: &str) {
        if let Some(c) = self.counters.get(key) {
            c.hit();
        }
    }

    /// Count one evaluation of every flag (a bulk evaluation).
    #[inline]
    pub fn count_all(&self) {
        for c in self.counters.values() {
            c.hit();
        }
    }
}

#[derive(Debug, Default)]
pub struct FlagCache {
    apps: RwLock<HashMap<String, Entry>>,
    usage: super::usage::UsageCounters,
}

#[derive(Debug)]
struct Entry {
    flags: Arc<CachedFlags>,
    /// The change generation taken before `flags` was last confirmed current.
    generation: u64,
}

impl FlagCache {
    /// The OFREP evaluation counters (`usage.rs`).
    pub fn usage(&self) -> &super::usage::UsageCounters {
        &self.usage
    }

    /// The app's current state: from memory when nothing changed since it was read, or
    /// when its revision has not moved.
    pub async fn get(&self, store: &Store, app: &str) -> Result<Arc<CachedFlags>, StoreError> {
        let signal = store.changes();
        // Before any database read: a change committed after this moves the generation.
        let generation = signal.generation();
        if signal.is_live()
            && let Some(hit) = self.fresh(app, generation)
        {
            crate::metrics::cache_lookup(Cache::Flags, Lookup::Hit);
            return Ok(hit);
        }
        let revision = match store.flag_revision(app).await {
            Ok(r) => r,
            // The database is unreachable: serve the state last read, as it was then.
            Err(e) if e.is_unavailable() => match self.cached(app) {
                Some(hit) => {
                    tracing::warn!(
                        app,
                        revision = hit.revision,
                        "database unreachable: serving cached flags"
                    );
                    crate::metrics::cache_lookup(Cache::Flags, Lookup::Stale);
                    return Ok(hit);
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        crate::metrics::cache_lookup(Cache::Flags, Lookup::Miss);
        if let Some(hit) = self.cached(app).filter(|c| c.revision == revision) {
            self.store(app, &hit, generation);
            return Ok(hit);
        }
        // `flag_state` reads the revision before the rows: a change racing this load
        // leaves the entry with an older revision than its flags, so the next request
        // reloads; it can never pin old flags under a new revision.
        let state = store.flag_state(app).await?;
        let flags = state.app_flags();
        let counters = flags
            .flags
            .keys()
            .map(|k| (k.clone(), self.usage.counter(app, k)))
            .collect();
        let fresh = Arc::new(CachedFlags {
            revision: state.revision,
            counters,
            etag: etag_for(&flags),
            flags,
            state,
        });
        self.store(app, &fresh, generation);
        Ok(fresh)
    }

    /// Keep `flags`, read (or confirmed by its revision) after `generation` was taken,
    /// unless a newer revision or a later confirmation is already there.
    fn store(&self, app: &str, flags: &Arc<CachedFlags>, generation: u64) {
        if let Ok(mut apps) = self.apps.write() {
            let newer = apps.get(app).is_none_or(|old| {
                (old.flags.revision, old.generation) <= (flags.revision, generation)
            });
            if newer {
                apps.insert(
                    app.to_owned(),
                    Entry {
                        flags: flags.clone(),
                        generation,
                    },
                );
            }
        }
    }

    /// The entry when it was read or confirmed at `generation` (the current one).
    fn fresh(&self, app: &str, generation: u64) -> Option<Arc<CachedFlags>> {
        let apps = self.apps.read().ok()?;
        let e = apps.get(app).filter(|e| e.generation == generation)?;
        Some(e.flags.clone())
    }

    fn cached(&self, app: &str) -> Option<Arc<CachedFlags>> {
        Some(self.apps.read().ok()?.get(app)?.flags.clone())
    }
}
