//! What every handler shares: the use cases' [`Console`], and a slot per capability for
//! what only its pages derive (the flag pages' cache), so the kernel names no capability.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
    /// One value per type, made on first use ([`AppState::slot`]).
    slots: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
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
            slots: RwLock::default(),
        }))
    }

    /// The use cases' handle, for the jobs and the CLI.
    pub fn console(&self) -> Console {
        self.0.console.clone()
    }

    /// This state's one `T`, made with `T::default()` the first time it is asked for: where a
    /// capability keeps what its pages derive and reuse (`flags::page_cache::FlagPages`).
    pub fn slot<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let id = TypeId::of::<T>();
        let found = self
            .0
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned();
        let any = match found {
            Some(any) => any,
            None => self
                .0
                .slots
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(id)
                .or_insert_with(|| Arc::new(T::default()))
                .clone(),
        };
        // The map holds a `T` under `TypeId::of::<T>()` and nothing else.
        any.downcast::<T>()
            .unwrap_or_else(|_| Arc::new(T::default()))
    }
}
