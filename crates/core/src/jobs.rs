//! The console's scheduled jobs by name (SPEC §10): one list, below everything that names
//! them (the jobs crate implements them, the web pages list them, the config sets their
//! schedules). `raxx_jobs::builtin_jobs` is checked against it.

/// Every job the console knows, in the order the jobs page lists them.
pub const JOB_NAMES: [&str; 6] = [
    "status-poll",
    "token-rotation-sweep",
    "promotion-expiry",
    "session-purge",
    "audit-digest",
    "notify-delivery",
];
