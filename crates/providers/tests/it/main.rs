//! The providers crate's integration tests, one binary (link time): one module per
//! capability or concern, the shared helpers beside them.

mod common;
mod fake_heroku;
mod heroku_rotation;
mod secrets;
