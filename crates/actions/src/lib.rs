//! raxx-actions: the console's use cases, one module per capability, over the store and
//! the providers. The web handlers, the jobs and the CLI all call these; nothing here
//! knows HTTP (errors carry a stable code and a [`Kind`], which the web layer maps to a
//! status once). See docs/ARCHITECTURE.md.
//!
//! - [`Console`]: the handle every use case takes (config, store, caches, WebAuthn);
//! - [`Actor`]: who acts — a request the gate let through ([`Caller`]) or a job;
//! - [`gate`]: the object half of the write gate for both, one denial row layout;
//! - [`tokens`]: the token inventory, rotation and the sweep;
//! - [`flags`]: the evaluated-flag cache and the usage counters;
//! - [`keycache`], [`metrics`], [`customers`].

pub mod actor;
pub mod audit;
pub mod console;
pub mod customers;
pub mod error;
pub mod flags;
pub mod gate;
pub mod identity;
pub mod jobs;
pub mod keycache;
pub mod metrics;
pub mod operators;
pub mod passkeys;
pub mod signin;
pub mod tokens;

pub use actor::{Actor, Caller};
pub use console::Console;
pub use error::{Error, Kind, Result};

/// `2026-12-01 15:04:05` (UTC) from unix milliseconds; empty when out of range.
pub fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}
