//! The core crate's integration tests, one binary (link time): one module per
//! capability or concern, the shared helpers beside them.

mod fuzz_parsers;
mod gate_exhaustive;
