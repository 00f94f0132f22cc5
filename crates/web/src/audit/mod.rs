//! The audit log (SPEC §11): the searchable table, one entry, the exports, and their
//! JSON twins.

pub mod api;
pub mod filter;
pub mod pages;
