//! The object half of the gate: one decision about the object a request or job acts on
//! (its env, its app, its owner), next to the route half ([`super::decide`]).

use super::{Denial, GateInput, decide};
use crate::env::Env;

/// How the target object's owner relates to the principal acting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The principal's own object (their session).
    Principal,
    /// Another operator's object.
    Other,
    /// Nobody's in particular (an app's key, a flag, a customer).
    Nobody,
}

impl Owner {
    pub const ALL: [Owner; 3] = [Owner::Principal, Owner::Other, Owner::Nobody];
}

/// The object a request or job acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The env of the object (its app's env); `None` when it has none.
    pub env: Option<Env>,
    /// The app it belongs to; a key principal may act on its own app only.
    pub app: Option<&'a str>,
    pub owner: Owner,
}

impl<'a> Target<'a> {
    /// An object of `env` belonging to `app`, owned by nobody in particular.
    pub fn app(env: Env, app: &'a str) -> Self {
        Target {
            env: Some(env),
            app: Some(app),
            owner: Owner::Nobody,
        }
    }
}

/// The object-level decision: the route's facts (`ctx`, as the gate gathered them) with
/// the target's env, app and owner. Pure; every handler and job that checks an object asks
/// this, so the route half and the object half cannot disagree.
///
/// Beyond the route half: an object of another env is refused on reads too (a console
/// never acts on, nor looks up, the other env's objects; SPEC §9).
pub fn authorize(ctx: &GateInput<'_>, target: &Target<'_>) -> Result<(), Denial> {
    decide(&GateInput {
        target_env: target.env,
        target_app: target.app,
        own_object: target.owner == Owner::Principal,
        ..ctx.clone()
    })?;
    match target.env {
        Some(e) if e != ctx.active_env && ctx.access != super::Access::Public => {
            Err(Denial::EnvMismatch {
                message: format!(
                    "the target belongs to {e}; this console acts on {} only",
                    ctx.active_env
                ),
            })
        }
        _ => Ok(()),
    }
}
