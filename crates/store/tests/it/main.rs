//! The store crate's integration tests, one binary (link time): one module per
//! capability or concern, the shared helpers beside them.

mod checkpoints;
mod flags;
mod migrations;
mod store;
mod tokens;
