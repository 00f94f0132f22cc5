//! Identity lifecycle in the HTTP layer (issue 19): sign-in and enrolment throttling, and
//! the facts an invite is created and redeemed on. The rules themselves are pure, in
//! `raxx_core::throttle` and `raxx_core::invite`.

use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::invite::{InviteFacts, InviteRefusal};
use raxx_core::rbac::invitable_in;
use raxx_core::rbac::{EffectiveRoles, Resource};
use raxx_core::throttle;
use raxx_store::anon_denials::AnonDenial;
use raxx_store::auth::Invite;

use crate::console::Console;
use crate::error::Kind;
use crate::error::{Error, Result};

/// The source an attempt is counted under: the client address, as the gate resolved it.
fn source(ip: Option<&str>) -> &str {
    ip.unwrap_or("unknown")
}

/// Refuse a sign-in or enrolment attempt when this source has failed too often, for this
/// account or overall (audited as `auth.rate_limited`). The account as a whole is never
/// locked: see [`record_failure`] for its back-off.
pub async fn check_attempt(
    state: &Console,
    route: &str,
    account: &str,
    ip: Option<&str>,
) -> Result<()> {
    let failures = state.store.auth_failures(account, source(ip)).await?;
    let Err(refusal) = throttle::decide_attempt(&failures) else {
        return Ok(());
    };
    let mut ev = AuditEvent::new("anonymous", "auth.rate_limited", Outcome::Denied)
        .target("operator", account.to_string())
        .reason(refusal.as_str())
        .with("route", route.to_string());
    ev.ip = ip.map(str::to_string);
    // Nobody is signed in: aggregated like the gate's anonymous denials (a throttled flood
    // is one chained row per source and interval, plus one summary row).
    let template = route.to_string();
    state
        .store
        .audit_anon_refusal(
            &AnonDenial {
                source: ip,
                route: &template,
                action: "auth.rate_limited",
                code: "rate_limited",
            },
            ev,
        )
        .await?;
    Err(Error::Conflict {
        kind: Kind::Throttled,
        code: "rate_limited",
        message: match refusal {
            throttle::Refusal::AccountSource => {
                "too many failed attempts for this account from your address in the last hour; try again later"
            }
            throttle::Refusal::Source => {
                "too many failed attempts from your address in the last hour; try again later"
            }
        }
        .into(),
    })
}

/// Record a failed attempt (its audit row and its count), then hold the answer back by
/// the account's back-off: failures for this account from other sources slow every
/// further failure down, so a distributed guess gets slower without locking anyone out.
pub async fn record_failure(
    state: &Console,
    account: &str,
    ip: Option<&str>,
    event: AuditEvent,
) -> Result<()> {
    let src = source(ip);
    let before = state.store.auth_failures(account, src).await?;
    state.store.audit_auth_failure(account, src, event).await?;
    back_off(&before).await;
    Ok(())
}

/// [`record_failure`] for a failure by nobody (an unknown account, a bad passkey
/// assertion): counted for the throttle the same way, its audit row aggregated per
/// (interval, source, route, `code`) like the gate's anonymous denials — the first in
/// full, the rest as one summary row (`raxx_store::anon_denials`).
pub async fn record_anonymous_failure(
    state: &Console,
    route: &str,
    code: &'static str,
    account: &str,
    ip: Option<&str>,
    event: AuditEvent,
) -> Result<()> {
    let before = state.store.auth_failures(account, source(ip)).await?;
    let template = route.to_string();
    let action = event.action.clone();
    state
        .store
        .count_auth_failure(
            account,
            &AnonDenial {
                source: ip,
                route: &template,
                action: &action,
                code,
            },
            event.with("route", template.clone()),
        )
        .await?;
    back_off(&before).await;
    Ok(())
}

/// Hold the answer back by the account's back-off: failures for this account from other
/// sources slow every further failure down, so a distributed guess gets slower without
/// locking anyone out.
async fn back_off(before: &throttle::Failures) {
    let delay = throttle::failure_delay_ms(before);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
}

/// Groups an invite may name on this console (see [`invitable_groups`]).
async fn group_invitable(state: &Console, group: &str) -> Result<bool> {
    Ok(invitable_groups(state).await?.iter().any(|g| g == group))
}

/// Does operator `id` still hold the invite role at this console's write level?
pub async fn may_invite(state: &Console, email: &str) -> Result<bool> {
    let grants = state.store.grants_for(email).await?;
    Ok(EffectiveRoles::from_grants(state.env(), &grants)
        .has(Resource::Invite, raxx_core::gate::write_level(state.env())))
}

/// The facts about `email`, `group` and the creator `creator_id`, read now.
pub async fn invite_facts(
    state: &Console,
    email: &str,
    group: &str,
    creator_id: i64,
    other_pending: bool,
) -> Result<InviteFacts> {
    let creator = state.store.admin_by_id(creator_id).await?;
    let (creator_disabled, creator_may_invite) = match &creator {
        Some(c) => (c.disabled, may_invite(state, &c.email).await?),
        None => (true, false),
    };
    Ok(InviteFacts {
        operator_exists: state.store.admin_by_email(email).await?.is_some(),
        other_pending,
        group_invitable: group_invitable(state, group).await?,
        creator_disabled,
        creator_may_invite,
    })
}

/// The API error for an invite refusal: `409` for the address and the creator's
/// authority, `400` for a group that cannot be invited into.
pub fn invite_error(r: InviteRefusal, email: &str, group: &str) -> Error {
    Error::Conflict {
        kind: match r {
            InviteRefusal::GroupNotInvitable => Kind::BadRequest,
            _ => Kind::Conflict,
        },
        code: r.code(),
        message: r.message(email, group),
    }
}

/// Why `invite` cannot be redeemed now, if it cannot (reads only).
pub async fn redemption_refusal(state: &Console, invite: &Invite) -> Result<Option<InviteRefusal>> {
    let facts = invite_facts(
        state,
        &invite.email,
        &invite.group_name,
        invite.created_by,
        false,
    )
    .await?;
    Ok(raxx_core::invite::decide_redeem(&facts).err())
}

/// Audit a refused redemption (`invite.accept` denied) and return its API error. Call it
/// outside any open transaction.
pub async fn refuse_redemption(
    state: &Console,
    invite: &Invite,
    refusal: InviteRefusal,
    ip: Option<&str>,
) -> Error {
    let mut ev = AuditEvent::new("anonymous", "invite.accept", Outcome::Denied)
        .target("invite", invite.id.to_string())
        .reason(refusal.message(&invite.email, &invite.group_name))
        .with(raxx_core::audit::DENIAL_KEY, refusal.code())
        .with("email", invite.email.clone())
        .with("created_by", invite.created_by);
    ev.ip = ip.map(str::to_string);
    if let Err(e) = state.store.audit(ev).await {
        return e.into();
    }
    invite_error(refusal, &invite.email, &invite.group_name)
}

/// May `invite` be redeemed now? Audits and refuses otherwise.
pub async fn check_redeemable(state: &Console, invite: &Invite, ip: Option<&str>) -> Result<()> {
    match redemption_refusal(state, invite).await? {
        None => Ok(()),
        Some(refusal) => Err(refuse_redemption(state, invite, refusal, ip).await),
    }
}

/// Groups an invite may name on this console: groups with at least one grant usable
/// here (a staging console never invites into a prod-only group).
pub async fn invitable_groups(state: &Console) -> Result<Vec<String>> {
    let env = state.env();
    Ok(state
        .store
        .groups()
        .await?
        .into_iter()
        .filter(|g| invitable_in(g.grants.iter().map(|(_, scope)| scope.as_str()), env))
        .map(|g| g.name)
        .collect())
}
