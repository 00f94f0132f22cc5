//! The HTTP layer of raxx-console. It only translates: requests become gate inputs and
//! use-case calls (`raxx-actions`); their errors become status codes or pages.
//!
//! - [`kernel`]: what every capability builds on (route, ctx, gate, error, extract,
//!   views, state) and the only part of the crate a capability imports;
//! - one module per capability: [`audit`], [`customers`], [`dashboard`], [`flags`],
//!   [`health`], [`jobs`], [`operators`], [`signin`], [`status`], [`tokens`] — its routes,
//!   handlers (pages and JSON) and templates;
//! - on top: [`manifest`] (every route, declared once), [`openapi`] (the document built
//!   from it), [`server`] (the router and the accept loop).

pub mod kernel;

pub mod audit;
pub mod customers;
pub mod dashboard;
pub mod flags;
pub mod health;
pub mod jobs;
pub mod operators;
pub mod signin;
pub mod status;
pub mod tokens;

pub mod contract;
pub mod manifest;
pub mod openapi;
pub mod server;

pub use kernel::{AppState, Route};
pub use manifest::route_manifest;
pub use server::{build_router, serve};
