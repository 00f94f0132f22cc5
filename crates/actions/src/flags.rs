//! Flags as the use cases hold them: applying a file ([`apply`]), reading the staging
//! console's state from prod ([`source`]), each app's evaluated state served from memory
//! ([`FlagCache`]) and the evaluations counted per flag ([`usage`]).

pub mod apply;
mod cache;
pub mod promote;
pub mod source;
pub mod usage;

pub use apply::{ApplyError, apply_flags_file};
pub use cache::{CachedFlags, FlagCache};
pub use source::{StagingFlags, fetch_staging};

use raxx_core::config::AppConfig;
use raxx_core::gate::{Owner, Target};
use raxx_core::promotion::PromotionError;

use crate::actor::Caller;
use crate::console::Console;
use crate::error::{Error, Kind, Result};

/// The apps of this console's env, from config: every promotion query filters on them.
pub fn env_apps(state: &Console) -> Vec<String> {
    state
        .cfg
        .config
        .apps
        .iter()
        .filter(|a| a.env == state.env())
        .map(|a| a.name.clone())
        .collect()
}

/// An app of this console's env, or 404.
pub fn known_app<'s>(state: &'s Console, app: &str) -> Result<&'s AppConfig> {
    state
        .cfg
        .app(app)
        .filter(|a| a.env == state.env())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "`{app}` is not an app of the {} console",
                state.env()
            ))
        })
}

/// The app a request names, as an object of the gate: a key may only touch its own app,
/// and nobody an app of the other env ([`Caller::authorize`]; audited when refused). An app
/// this console does not know has no env here: [`known_app`] answers 404 for it.
pub async fn authorize_app(state: &Console, ctx: &Caller, app: &str) -> Result<()> {
    let target = Target {
        env: state.cfg.app(app).map(|a| a.env),
        app: Some(app),
        owner: Owner::Nobody,
    };
    ctx.authorize(state, target, &format!("the app {app}"))
        .await
}

/// Promotion refusals as API errors: `self_approval` 403; `stale`, `not_pending`,
/// `expired`, `content_changed` 409; a bad request 400.
pub fn promotion_error(e: PromotionError) -> Error {
    let kind = match e {
        PromotionError::SelfApproval | PromotionError::InvitedReviewer { .. } => Kind::Forbidden,
        PromotionError::Stale { .. }
        | PromotionError::NotPending(_)
        | PromotionError::Expired
        | PromotionError::ContentChanged => Kind::Conflict,
        PromotionError::ReasonRequired | PromotionError::Invalid(_) => Kind::BadRequest,
    };
    Error::Conflict {
        kind,
        code: e.code(),
        message: e.to_string(),
    }
}

/// The operator behind a session principal (promotions and kills are operator actions).
pub fn operator(ctx: &Caller) -> Result<(i64, String)> {
    ctx.admin_id
        .zip(ctx.admin_email.clone())
        .ok_or_else(|| Error::Internal("this action needs a signed-in operator".into()))
}
