//! The object half of the write gate as the use cases ask it: one decision
//! ([`raxx_core::gate::authorize`]) for a request's caller and for a job alike, and one
//! layout of the denial row it writes.

use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{Denial, GateInput, Owner, Target, authorize};

use crate::console::Console;

pub use raxx_core::audit::DENIAL_KEY;

/// The one context layout of every denial row: `denial` (the denial's code) and `route`
/// (the manifest template, `GET /auth/link/{token}`), on `base` (who, which session and
/// request, which action). Never the request's raw path: a path can carry a secret (a
/// login link, an invite token).
pub fn denial_row(base: AuditEvent, route: Option<&str>, denial: &Denial) -> AuditEvent {
    let mut e = base
        .reason(denial.message())
        .with(DENIAL_KEY, denial.code());
    e.outcome = Outcome::Denied;
    if let Some(route) = route {
        e = e.with("route", route);
    }
    e
}

/// [`denial_row`] plus the object: `target` (what it is, in words), `target_env` and
/// `owner` as the decision saw them, and the app column.
pub fn object_denial_event(
    base: AuditEvent,
    route: Option<&str>,
    denial: &Denial,
    target: &Target<'_>,
    what: &str,
) -> AuditEvent {
    let mut e = denial_row(base, route, denial)
        .with("target", what)
        .with("owner", owner_str(target.owner));
    if let Some(env) = target.env {
        e = e.with("target_env", env.as_str());
    }
    if let Some(app) = target.app {
        e = e.app(app);
    }
    e
}

fn owner_str(o: Owner) -> &'static str {
    match o {
        Owner::Principal => "own",
        Owner::Other => "other",
        Owner::Nobody => "none",
    }
}

/// An env mismatch about an object says which object ("the app raxx-api-prod: the
/// target belongs to prod; …"), so the operator can tell what was refused.
pub fn name_the_object(denial: Denial, what: &str) -> Denial {
    match denial {
        Denial::EnvMismatch { message } if message.ends_with("nothing was changed") => {
            Denial::EnvMismatch {
                message: format!("{what}: {message}"),
            }
        }
        Denial::EnvMismatch { message } => Denial::EnvMismatch {
            message: format!("{what}: {message}; nothing was changed"),
        },
        other => other,
    }
}

/// The object decision for a principal that is not a request's (a job's `system:<job>`
/// actor): the same [`raxx_core::gate::authorize`] over `input`, the same denial row
/// (`base` carries the actor and the action). A row that cannot be written is logged; the
/// refusal stands (fail closed).
pub async fn authorize_unattended(
    console: &Console,
    input: &GateInput<'_>,
    target: Target<'_>,
    what: &str,
    base: AuditEvent,
) -> Result<(), Denial> {
    let Err(denial) = authorize(input, &target) else {
        return Ok(());
    };
    let denial = name_the_object(denial, what);
    let event = object_denial_event(base, None, &denial, &target, what);
    if let Err(e) = console.store.audit(event).await {
        tracing::error!(error = %e, "could not audit a denial");
    }
    tracing::warn!(
        code = denial.code(),
        target = what,
        "the gate refused an unattended write"
    );
    crate::metrics::gate_denial(denial.code());
    Err(denial)
}
