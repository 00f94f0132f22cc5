//! Operators (SPEC §3, §4): sessions, operators and their groups, invites — pages and JSON.

pub mod api;
pub mod pages;
