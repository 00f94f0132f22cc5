//! The HTTP layer of raxx-console. It only translates: requests become gate inputs and
//! store calls; domain and store errors become status codes or pages.
//!
//! - [`manifest`]: every route, declared once; the router is built from it.
//! - [`gate`]: the middleware that runs the write gate for every route.
//! - [`pages`], [`api`], [`auth`]: handlers.

pub mod api;
pub mod apidoc;
pub mod audit_filter;
pub mod auth;
pub mod client_ip;
pub mod contract;
pub mod cors;
pub mod customers;
pub mod error;
pub mod flags;
pub mod gate;
pub mod identity;
pub mod jobs_pages;
pub mod login_link;
pub mod manifest;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod passkeys;
pub mod server;
pub mod state;
pub mod status;
pub mod tokens;

pub use manifest::{Route, route_manifest};
pub use server::{build_router, serve};
pub use state::AppState;

// The use cases' modules the handlers read by their old paths.
pub use raxx_actions::{keycache, metrics};
