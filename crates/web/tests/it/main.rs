//! The web crate's integration tests, one binary (link time): one module per
//! capability or concern, the shared helpers beside them.

mod anon_flood;
mod audit_search;
mod bad_input;
mod caches;
mod customers;
mod disk_full;
mod flag_usage;
mod flags;
mod foundation;
mod gate_matrix;
mod identity;
mod in_process;
mod observability;
mod ofrep_cors;
mod ofrep_sdk;
mod outage;
mod passkeys;
mod playground;
mod read_only;
mod review;
mod secrets;
mod signin_flood;
mod slow_client;
mod status_jobs;
mod tokens;
mod ui_pages;
mod write_targets;
