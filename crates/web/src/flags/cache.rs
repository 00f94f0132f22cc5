//! Each app's evaluated flag state, kept in memory and keyed by the app's revision.
//!
//! A request costs one primary-key read (`console_flag_apps.revision`); the flag rows are
//! read, parsed and hashed (the state ETag) only when the revision moved. The revision
//! lives in the database, so a change made by another instance is seen on the next
//! request: no TTL, no staleness beyond the transaction that is committing right now.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use raxx_core::flags::{AppFlags, etag_for};
use raxx_store::{Store, StoreError};

/// One app's state as OFREP serves it.
#[derive(Debug)]
pub struct CachedFlags {
    pub revision: i64,
    pub flags: AppFlags,
    /// [`etag_for`] of `flags`: computed once per revision.
    pub etag: String,
}

#[derive(Debug, Default)]
pub struct FlagCache {
    apps: RwLock<HashMap<String, Arc<CachedFlags>>>,
}

impl FlagCache {
    /// The app's current state: from memory when its revision has not moved.
    pub async fn get(&self, store: &Store, app: &str) -> Result<Arc<CachedFlags>, StoreError> {
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
                    return Ok(hit);
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if let Some(hit) = self.cached(app).filter(|c| c.revision == revision) {
            return Ok(hit);
        }
        // `flag_state` reads the revision before the rows: a change racing this load
        // leaves the entry with an older revision than its flags, so the next request
        // reloads; it can never pin old flags under a new revision.
        let state = store.flag_state(app).await?;
        let flags = state.app_flags();
        let fresh = Arc::new(CachedFlags {
            revision: state.revision,
            etag: etag_for(&flags),
            flags,
        });
        if let Ok(mut apps) = self.apps.write() {
            let newer = apps
                .get(app)
                .is_none_or(|old| old.revision <= fresh.revision);
            if newer {
                apps.insert(app.to_owned(), fresh.clone());
            }
        }
        Ok(fresh)
    }

    fn cached(&self, app: &str) -> Option<Arc<CachedFlags>> {
        self.apps.read().ok()?.get(app).cloned()
    }
}
