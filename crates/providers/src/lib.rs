//! raxx-console's external systems, each behind a small trait (SPEC §8), and the
//! outbound HTTP client the rest of the console reuses.
//!
//! - [`TokenProvider`] and [`rotate`]: dual-phase rotation of a provider secret, with
//!   compensation when publishing fails.
//! - [`HerokuProvider`]: that trait over the Heroku Platform API.
//! - `fake::FakeHeroku` (feature `fake`): a local Heroku fake for tests and the demo.
//! - [`http_client`]: rustls, a timeout, `.localhost` resolved to loopback.
//!
//! No type here prints a secret: they are held as [`Secret`], whose `Debug` is redacted.

pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod heroku;
pub mod http;
pub mod rotation;
pub mod secret;

pub use error::{ErrorKind, ProviderError, Step};
pub use heroku::{HerokuConfig, HerokuProvider};
pub use http::{http_client, http_client_builder, is_localhost_name};
pub use rotation::{
    Compensation, ConfigVarTarget, NewCredential, ProviderFuture, Revocation, Rotated,
    RotationFailure, TokenProvider, TokenSpec, rotate,
};
pub use secret::Secret;
