//! What the operators' pages and their JSON twins both do: revoke a session, invite,
//! remove a membership, disable or enable an operator.

use raxx_core::audit::Outcome;
use raxx_core::config::{normalise_email, plausible_email};
use raxx_core::gate::{Owner, Target};
use raxx_core::rbac::Resource;

use crate::identity::invitable_groups;

use crate::actor::Caller;
use crate::console::Console;
use crate::error::Kind;
use crate::error::{Error, Result};

/// End a session: your own always; anyone's with `console-session-admin` (on prod; on
/// staging the level the env requires).
pub async fn revoke_session(state: &Console, ctx: &Caller, id: &str) -> Result<()> {
    let target = state
        .store
        .session_by_id(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("session {id}")))?;
    let own = Some(target.admin_id) == ctx.admin_id;
    // The object half of the gate: the session's env (a session of the other console is
    // not this console's to end) and whose it is.
    let object = Target {
        env: Some(target.selected_env.parse().unwrap_or(ctx.env.other())),
        app: None,
        owner: if own { Owner::Principal } else { Owner::Other },
    };
    ctx.authorize(
        state,
        object,
        &format!("session of operator {}", target.admin_id),
    )
    .await?;
    let mut tx = state.store.begin().await?;
    tx.revoke_session(id).await?;
    tx.record(
        ctx.event("session.revoke", Outcome::Allowed)
            .target("session", id)
            .with("owner", target.admin_id)
            .with("own", own),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn create_invite(
    state: &Console,
    ctx: &Caller,
    email: &str,
    group: &str,
) -> Result<(String, i64)> {
    let email = normalise_email(email);
    if !plausible_email(&email) {
        return Err(Error::invalid(format!("`{email}` is not an email address")));
    }
    if !invitable_groups(state).await?.iter().any(|g| g == group) {
        return Err(Error::invalid(format!(
            "`{group}` is not a group of the {} console; choose one of the listed groups",
            state.env()
        )));
    }
    let by = ctx
        .admin_id
        .ok_or_else(|| Error::Internal("invites need an operator".into()))?;
    // The facts read outside the transaction (a transaction holds the audit chain's lock
    // and one pooled connection: reading through the pool inside it starves the pool under
    // concurrent writes); the pending-invite fact inside it, and the unique index below.
    let mut facts = crate::identity::invite_facts(state, &email, group, by, false).await?;
    let mut tx = state.store.begin().await?;
    // An invite makes a new operator, never a way onto an existing one (issue 19).
    facts.other_pending = tx.has_pending_invite(&email).await?;
    let decided = raxx_core::invite::decide_create(&facts);
    // The database has the last word (one pending invite per address, a unique index):
    // a concurrent invite that committed first makes this one the sequential duplicate.
    let created = match decided {
        Ok(()) => match tx.create_invite(&email, group, by).await {
            Ok(made) => Ok(made),
            Err(raxx_store::StoreError::Conflict(m))
                if m.starts_with(raxx_store::auth::PENDING_INVITE_CONFLICT) =>
            {
                Err(raxx_core::invite::InviteRefusal::AlreadyInvited)
            }
            Err(e) => return Err(e.into()),
        },
        Err(refusal) => Err(refusal),
    };
    let (token, id) = match created {
        Ok(made) => made,
        Err(refusal) => {
            tx.rollback().await?;
            state
                .store
                .audit(
                    ctx.event("invite.create", Outcome::Denied)
                        .target("operator", email.clone())
                        .reason(refusal.message(&email, group))
                        .with(raxx_core::audit::DENIAL_KEY, refusal.code())
                        .with("email", email.clone())
                        .with("group", group),
                )
                .await?;
            return Err(crate::identity::invite_error(refusal, &email, group));
        }
    };
    tx.record(
        ctx.event("invite.create", Outcome::Allowed)
            .target("invite", id.to_string())
            .with("email", email.clone())
            .with("group", group),
    )
    .await?;
    tx.commit().await?;
    Ok((state.cfg.url(&format!("/invite/{token}")), id))
}

pub async fn revoke_invite(state: &Console, ctx: &Caller, id: i64) -> Result<()> {
    let mut tx = state.store.begin().await?;
    let invite = tx.revoke_invite(id).await?;
    tx.record(
        ctx.event("invite.revoke", Outcome::Allowed)
            .target("invite", id.to_string())
            .with("email", invite.email),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Take an operator out of a group of this console (the grant change applies on their next
/// request). Memberships made by config are refused: config would restore them at start-up.
pub async fn remove_membership(state: &Console, ctx: &Caller, id: i64, group: &str) -> Result<()> {
    let target = state
        .store
        .admin_by_id(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("operator {id}")))?;
    if !invitable_groups(state).await?.iter().any(|g| g == group) {
        return Err(Error::NotFound(format!("group {group} on this console")));
    }
    let view = state.store.groups().await?;
    let source = view
        .iter()
        .find(|g| g.name == group)
        .and_then(|g| g.members.iter().find(|(m, _)| *m == target.email))
        .map(|(_, source)| source.clone())
        .ok_or_else(|| Error::NotFound(format!("{} in {group}", target.email)))?;
    if source == "config" {
        return Err(Error::Conflict {
            kind: Kind::Conflict,
            code: "config_managed",
            message: format!(
                "{} is in {group} because the console's config lists them; remove them from [groups.{group}] members instead",
                target.email
            ),
        });
    }
    // Invites die with their creator's authority: without this group, may they still invite?
    let remaining: Vec<_> = state
        .store
        .grants_for(&target.email)
        .await?
        .into_iter()
        .filter(|g| g.group != group)
        .collect();
    let keeps_invite_role = raxx_core::rbac::EffectiveRoles::from_grants(state.env(), &remaining)
        .has(Resource::Invite, raxx_core::gate::write_level(state.env()));
    let mut tx = state.store.begin().await?;
    tx.remove_member(group, &target.email).await?;
    let revoked = if keeps_invite_role {
        Vec::new()
    } else {
        tx.revoke_pending_invites_by(id).await?
    };
    tx.record(
        ctx.event("operator.group.remove", Outcome::Allowed)
            .target("operator", id.to_string())
            .with("email", target.email)
            .with("group", group)
            .with("source", source)
            .with("invites_revoked", revoked),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn set_operator_disabled(
    state: &Console,
    ctx: &Caller,
    id: i64,
    disabled: bool,
) -> Result<u64> {
    if ctx.admin_id == Some(id) {
        return Err(Error::invalid("you cannot disable or enable yourself"));
    }
    let target = state
        .store
        .admin_by_id(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("operator {id}")))?;
    let mut tx = state.store.begin().await?;
    let ended = tx.set_admin_disabled(id, disabled).await?;
    // A disabled operator's pending invites die with them (and stay dead if re-enabled).
    let revoked = if disabled {
        tx.revoke_pending_invites_by(id).await?
    } else {
        Vec::new()
    };
    tx.record(
        ctx.event(
            if disabled {
                "operator.disable"
            } else {
                "operator.enable"
            },
            Outcome::Allowed,
        )
        .target("operator", id.to_string())
        .with("email", target.email)
        .with("sessions_ended", ended as i64)
        .with("invites_revoked", revoked),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}
