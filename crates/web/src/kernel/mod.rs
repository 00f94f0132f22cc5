//! What every capability builds on, and the only part of the crate a capability imports:
//! the route type ([`route`]), the request context ([`ctx`]), the gate middleware
//! ([`gate`]), the error ([`error`]), the extractors ([`extract`]), the page layout and
//! rendering ([`views`]), and the shared state ([`state`]). Nothing here imports a
//! capability or the manifest.

pub mod apidoc;
pub mod client_ip;
pub mod ctx;
pub mod error;
pub mod extract;
pub mod gate;
pub mod route;
pub mod state;
pub mod views;

pub use ctx::Ctx;
pub use error::{AppError, AppResult};
pub use extract::ApiJson;
pub use route::{Route, Surface};
pub use state::AppState;
pub use views::{Layout, Page};
