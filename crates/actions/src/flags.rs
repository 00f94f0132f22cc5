//! Flags as the use cases hold them: each app's evaluated state served from memory
//! ([`FlagCache`]) and the evaluations counted per flag ([`usage`]).

mod cache;
pub mod usage;

pub use cache::{CachedFlags, FlagCache};
