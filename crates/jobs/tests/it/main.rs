//! The jobs crate's integration tests, one binary (link time): one module per
//! capability or concern, the shared helpers beside them.

mod jobs;
mod notify;
mod scheduler;
