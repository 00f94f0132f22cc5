//! What every handler shares: the use cases' [`Console`] and what only pages derive.

use std::sync::Arc;

use raxx_actions::Console;
use raxx_core::config::Resolved;
use raxx_store::Store;

/// What every handler shares, behind one `Arc`: every layer, route and extractor holds a
/// copy, and axum clones the route's service stack on each request, so a clone is one
/// reference count (issue 18). The console's fields read through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The fields of [`AppState`].
pub struct Shared {
    pub console: Console,
    /// What the flag pages derive from each app's cached flags (see `flags::page_cache`).
    pub(crate) flag_pages: Arc<crate::flags::page_cache::FlagPages>,
}

impl std::ops::Deref for AppState {
    type Target = Console;
    fn deref(&self) -> &Console {
        &self.0.console
    }
}

impl AppState {
    pub fn new(
        cfg: Resolved,
        store: Store,
        enrol_code_hash: Option<String>,
    ) -> anyhow::Result<Self> {
        Ok(Self::serving(Console::new(cfg, store, enrol_code_hash)?))
    }

    /// The web face of `console` (one console, many faces: the jobs share it).
    pub fn serving(console: Console) -> Self {
        AppState(Arc::new(Shared {
            console,
            flag_pages: Default::default(),
        }))
    }

    /// The use cases' handle, for the jobs and the CLI.
    pub fn console(&self) -> Console {
        self.0.console.clone()
    }

    pub(crate) fn flag_pages(&self) -> &crate::flags::page_cache::FlagPages {
        &self.0.flag_pages
    }
}
