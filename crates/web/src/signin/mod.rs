//! Signing in (SPEC §3): passkeys, the break-glass login link, invites and the checks
//! that throttle and refuse.

pub mod auth;
pub mod login_link;
pub mod passkeys;
