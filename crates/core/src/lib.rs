//! The raxx-console domain. Pure: no axum, no sqlx, no clock reads except where a
//! caller passes `now` in. Everything here is tested exhaustively and fast.

pub mod audit;
pub mod client_ip;
pub mod config;
pub mod deeplink;
pub mod env;
pub mod flags;
pub mod gate;
pub mod invite;
pub mod jobs;
pub mod notify;
pub mod opaque;
pub mod promotion;
pub mod rbac;
pub mod restore;
pub mod session;
pub mod throttle;
pub mod tokens;
pub mod uptime;

pub use env::Env;
