//! "Your passkeys" (SPEC §3, issue 19): an operator lists, names and removes their own
//! passkeys and adds a backup; `console-session-admin` removes another operator's.
//!
//! Rule: a credential is attached to an EXISTING operator only here, by that operator,
//! signed in, after a fresh passkey assertion in the same session (the step-up: a
//! server-side row bound to the session, 5 minutes, used once). The anonymous
//! registration ceremonies ([`crate::signin`]: bootstrap, invite) only ever create a new
//! operator. The one exception is an operator with no passkey at all (made by a login
//! link): they may add their first one within [`FIRST_PASSKEY_WINDOW_MS`] of signing in.
//!
//! Every passkey added or removed is audited (name and id only, never key material) and
//! leaves a notice the owner sees on the dashboard until they dismiss it.

use raxx_core::audit::{DENIAL_KEY, Outcome};
use raxx_core::gate::{Denial, Owner, Target};
use raxx_store::admins::{Admin, StoredPasskey};
use raxx_store::passkeys::PasskeyNotice;
use raxx_store::sessions::Session;
use serde_json::json;
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid,
};

use crate::actor::Caller;
use crate::console::Console;
use crate::error::{Error, Kind, Result};
use crate::signin::{
    Challenge, assertion_failure, credential_id, keep_ceremony, printable_name, refresh_passkey,
};

/// An operator without any passkey (signed in by a login link) may add a first one within
/// this long after the session started.
pub const FIRST_PASSKEY_WINDOW_MS: i64 = 10 * 60_000;

/// The signed-in operator these use cases act for, and the session a step-up is bound to.
#[derive(Clone, Copy)]
pub struct Me<'a> {
    pub admin: &'a Admin,
    pub session: &'a Session,
}

impl<'a> Me<'a> {
    /// The operator and session of a signed-in request; refused without them.
    pub fn of(admin: Option<&'a Admin>, session: Option<&'a Session>) -> Result<Self> {
        match (admin, session) {
            (Some(admin), Some(session)) => Ok(Me { admin, session }),
            _ => Err(Error::Denied(Denial::Unauthenticated {
                message: "sign in first".into(),
            })),
        }
    }
}

/// A passkey's name: 1 to 60 printable characters.
pub fn name_ok(name: &str) -> Result<String> {
    printable_name(
        name,
        60,
        "a passkey name is 1 to 60 printable characters (e.g. \"work laptop\")",
    )
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// A refused passkey ceremony step, in the one denial row layout (`denial` = `code`).
async fn audit_denied(
    console: &Console,
    caller: &Caller,
    action: &str,
    code: &str,
    reason: &str,
) -> Result<()> {
    console
        .store
        .audit(
            caller
                .event(action, Outcome::Denied)
                .target("operator", caller.actor.clone())
                .reason(reason)
                .with(DENIAL_KEY, code)
                .with("route", caller.route.clone()),
        )
        .await?;
    Ok(())
}

/// Take a ceremony this session started (single use): refused when it expired, was used,
/// or belongs to another session or operator.
async fn take_own_ceremony(
    console: &Console,
    me: Me<'_>,
    ceremony: &str,
    kind: &str,
    refusal: &str,
) -> Result<raxx_store::auth::Ceremony> {
    console
        .store
        .take_ceremony(ceremony, kind)
        .await?
        .filter(|c| {
            c.context["session_id"].as_str() == Some(me.session.id.as_str())
                && c.context["admin_id"].as_i64() == Some(me.admin.id)
        })
        .ok_or_else(|| Error::invalid(refusal))
}

// ---- step-up: a fresh assertion with one of the operator's own passkeys ----

/// Start a step-up: a challenge only the operator's own passkeys can answer.
pub async fn step_up_start(console: &Console, me: Me<'_>) -> Result<Challenge> {
    let passkeys: Vec<Passkey> = console
        .store
        .passkeys_of(me.admin.id)
        .await?
        .iter()
        .filter_map(|p| serde_json::from_str(&p.passkey).ok())
        .collect();
    if passkeys.is_empty() {
        return Err(Error::Conflict {
            kind: Kind::Conflict,
            code: "no_passkey",
            message: "you have no passkey to confirm with; add your first passkey directly (within 10 minutes of signing in)".into(),
        });
    }
    let (challenge, auth) = console
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| Error::Internal(format!("the step-up could not start: {e}")))?;
    let context = json!({"session_id": me.session.id, "admin_id": me.admin.id});
    keep_ceremony(
        console,
        "stepup",
        &me.admin.email,
        &auth,
        &context,
        &challenge,
    )
    .await
}

/// Finish a step-up: the session may add or remove passkeys for the seconds returned.
pub async fn step_up_finish(
    console: &Console,
    caller: &Caller,
    me: Me<'_>,
    ceremony: &str,
    credential: &PublicKeyCredential,
) -> Result<i64> {
    let (admin, session) = (me.admin, me.session);
    let c = take_own_ceremony(
        console,
        me,
        ceremony,
        "stepup",
        "this confirmation expired, was used, or belongs to another session; start again",
    )
    .await?;
    let auth: PasskeyAuthentication = serde_json::from_str(&c.state).map_err(internal)?;
    let result = match console
        .webauthn
        .finish_passkey_authentication(credential, &auth)
    {
        Ok(r) => r,
        Err(e) => {
            let (_, reason) = assertion_failure(&e);
            audit_denied(
                console,
                caller,
                "passkey.step_up",
                "unauthenticated",
                &reason,
            )
            .await?;
            return Err(Error::Denied(Denial::Unauthenticated {
                message: format!("your passkey could not be verified: {reason}"),
            }));
        }
    };
    let cred_id = credential_id(result.cred_id().as_slice());
    let stored = console.store.passkeys_of(admin.id).await?;
    let Some(row) = stored.iter().find(|p| p.cred_id == cred_id) else {
        audit_denied(
            console,
            caller,
            "passkey.step_up",
            "unauthenticated",
            "not one of this operator's passkeys",
        )
        .await?;
        return Err(Error::invalid("this is not one of your passkeys"));
    };
    let mut tx = console.store.begin().await?;
    refresh_passkey(&mut tx, row, &result).await?;
    tx.put_stepup(&session.id, admin.id).await?;
    tx.record(
        caller
            .event("passkey.step_up", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("passkey_id", row.id),
    )
    .await?;
    tx.commit().await?;
    Ok(raxx_store::passkeys::STEPUP_TTL_MS / 1000)
}

// ---- adding a passkey: after the step-up, in the same session ----

/// May this session add a passkey without a step-up? Only an operator with none, shortly
/// after signing in (which, without a passkey, only a login link can do).
pub fn first_passkey_allowed(session: &Session, count: usize) -> bool {
    count == 0 && raxx_store::now_ms() - session.created_at < FIRST_PASSKEY_WINDOW_MS
}

/// Does this session hold a fresh step-up (the page offers the registration form)?
pub async fn stepped_up(console: &Console, me: Me<'_>) -> Result<bool> {
    Ok(console
        .store
        .stepup_fresh(&me.session.id, me.admin.id)
        .await?)
}

async fn step_up_needed(console: &Console, caller: &Caller, none: bool) -> Result<Error> {
    let message = if none {
        "you have no passkey yet and signed in more than 10 minutes ago: sign in again (a new login link) and add it straight away"
    } else {
        "confirm with one of your passkeys first (step-up, valid 5 minutes); then add the new one"
    };
    audit_denied(console, caller, "passkey.add", "step_up_required", message).await?;
    Ok(Error::Conflict {
        kind: Kind::Forbidden,
        code: "step_up_required",
        message: message.into(),
    })
}

/// Start adding a passkey named `name` (after a step-up, or the first one).
pub async fn add_start(
    console: &Console,
    caller: &Caller,
    me: Me<'_>,
    name: &str,
) -> Result<Challenge> {
    let (admin, session) = (me.admin, me.session);
    let name = name_ok(name)?;
    let stored = console.store.passkeys_of(admin.id).await?;
    let first = first_passkey_allowed(session, stored.len());
    if !first && !console.store.stepup_fresh(&session.id, admin.id).await? {
        return Err(step_up_needed(console, caller, stored.is_empty()).await?);
    }
    let exclude: Vec<_> = stored
        .iter()
        .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let (challenge, reg) = console
        .webauthn
        .start_passkey_registration(
            Uuid::new_v4(),
            &admin.email,
            &admin.display_name,
            Some(exclude),
        )
        .map_err(|e| Error::Internal(format!("passkey registration could not start: {e}")))?;
    let context =
        json!({"session_id": session.id, "admin_id": admin.id, "name": name, "first": first});
    keep_ceremony(
        console,
        "register-own",
        &admin.email,
        &reg,
        &context,
        &challenge,
    )
    .await
}

/// Finish adding a passkey: its id and name.
pub async fn add_finish(
    console: &Console,
    caller: &Caller,
    me: Me<'_>,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
) -> Result<(i64, String)> {
    let (admin, session) = (me.admin, me.session);
    let c = take_own_ceremony(
        console,
        me,
        ceremony,
        "register-own",
        "this registration expired, was used, or belongs to another session; start again",
    )
    .await?;
    let reg: PasskeyRegistration = serde_json::from_str(&c.state).map_err(internal)?;
    let passkey = match console
        .webauthn
        .finish_passkey_registration(credential, &reg)
    {
        Ok(p) => p,
        Err(e) => {
            audit_denied(
                console,
                caller,
                "passkey.add",
                "invalid",
                &format!("passkey verification failed: {e}"),
            )
            .await?;
            return Err(Error::invalid(format!(
                "the new passkey could not be verified: {e}"
            )));
        }
    };
    let name = c.context["name"].as_str().unwrap_or("passkey").to_string();
    let first = c.context["first"].as_bool() == Some(true);
    let cred_id = credential_id(passkey.cred_id().as_slice());
    let passkey_json = serde_json::to_string(&passkey).map_err(internal)?;
    let mut tx = console.store.begin().await?;
    // The step-up is used once, here, in the transaction that adds the passkey; the first
    // passkey of an operator with none needs none (the count is re-read under the lock).
    let allowed = if first {
        tx.passkey_count(admin.id).await? == 0
    } else {
        tx.take_stepup(&session.id, admin.id).await?
    };
    if !allowed {
        tx.rollback().await?;
        return Err(step_up_needed(console, caller, false).await?);
    }
    if console.store.passkey_by_cred(&cred_id).await?.is_some() {
        tx.rollback().await?;
        audit_denied(
            console,
            caller,
            "passkey.add",
            "conflict",
            "credential already registered",
        )
        .await?;
        return Err(Error::Conflict {
            kind: Kind::Conflict,
            code: "duplicate",
            message: "this authenticator's passkey is already registered".into(),
        });
    }
    tx.add_passkey(admin.id, &cred_id, &name, &passkey_json)
        .await?;
    let id = tx.passkey_id_by_cred(&cred_id).await?;
    tx.add_passkey_notice(admin.id, "added", &name, None)
        .await?;
    tx.record(
        caller
            .event("passkey.add", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("passkey_id", id)
            .with("name", name.clone())
            .with("via", if first { "first passkey" } else { "step-up" }),
    )
    .await?;
    tx.commit().await?;
    Ok((id, name))
}

// ---- rename, remove, notices: one implementation for the page and the API ----

/// Rename one of your own passkeys; the new name.
pub async fn rename(
    console: &Console,
    caller: &Caller,
    me: Me<'_>,
    id: i64,
    name: &str,
) -> Result<String> {
    let admin = me.admin;
    let name = name_ok(name)?;
    let mut tx = console.store.begin().await?;
    let Some(old) = tx.rename_passkey(id, admin.id, &name).await? else {
        tx.rollback().await?;
        return Err(Error::NotFound(format!("your passkey {id}")));
    };
    tx.record(
        caller
            .event("passkey.rename", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("passkey_id", id)
            .with("from", old)
            .with("to", name.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(name)
}

/// Remove a passkey: your own (never your last one), or anyone's with the session write
/// role (`console-session-admin` on prod), which also ends all of that operator's sessions.
/// The passkey removed, and whether it was the caller's own.
pub async fn remove(
    console: &Console,
    caller: &Caller,
    me: Me<'_>,
    id: i64,
) -> Result<(StoredPasskey, bool)> {
    let admin = me.admin;
    let target = console
        .store
        .passkey_by_id(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("passkey {id}")))?;
    let own = target.admin_id == admin.id;
    // The object half of the gate: your own passkey, or another operator's with the
    // session write role (`console-session-admin` on prod).
    let object = Target {
        env: None,
        app: None,
        owner: if own { Owner::Principal } else { Owner::Other },
    };
    caller
        .authorize(
            console,
            object,
            &format!("passkey {id} of operator {}", target.admin_id),
        )
        .await?;
    let mut tx = console.store.begin().await?;
    if own && tx.passkey_count(admin.id).await? <= 1 {
        tx.rollback().await?;
        console
            .store
            .audit(
                caller
                    .event("passkey.remove", Outcome::Denied)
                    .target("operator", admin.id.to_string())
                    .reason("the operator's last passkey")
                    .with(DENIAL_KEY, "last_passkey")
                    .with("passkey_id", id),
            )
            .await?;
        return Err(Error::Conflict {
            kind: Kind::Conflict,
            code: "last_passkey",
            message: "this is your only passkey: add a backup passkey first, then remove this one"
                .into(),
        });
    }
    let Some(removed) = tx.delete_passkey(id).await? else {
        tx.rollback().await?;
        return Err(Error::NotFound(format!("passkey {id}")));
    };
    let ended = if own {
        0
    } else {
        tx.revoke_sessions_of(removed.admin_id).await?
    };
    tx.add_passkey_notice(
        removed.admin_id,
        "removed",
        &removed.name,
        (!own).then_some(admin.id),
    )
    .await?;
    tx.record(
        caller
            .event("passkey.remove", Outcome::Allowed)
            .target("operator", removed.admin_id.to_string())
            .with("passkey_id", id)
            .with("name", removed.name.clone())
            .with("own", own)
            .with("sessions_ended", ended),
    )
    .await?;
    tx.commit().await?;
    Ok((removed, own))
}

/// Dismiss your pending notices; how many there were.
pub async fn ack(console: &Console, caller: &Caller, me: Me<'_>) -> Result<u64> {
    let admin = me.admin;
    let mut tx = console.store.begin().await?;
    let n = tx.ack_passkey_notices(admin.id).await?;
    if n == 0 {
        tx.rollback().await?;
        return Ok(0);
    }
    tx.record(
        caller
            .event("passkey.notice.ack", Outcome::Allowed)
            .target("operator", admin.id.to_string())
            .with("count", n),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// The words of a notice: "A new passkey “X” was added on 2026-12-01 09:30:12 UTC."
pub async fn notice_text(console: &Console, n: &PasskeyNotice) -> Result<String> {
    let when = crate::fmt_time(n.created_at);
    let by = match n.by_admin_id {
        Some(id) => match console.store.admin_by_id(id).await? {
            Some(a) => format!(" by {}", a.email),
            None => format!(" by operator {id}"),
        },
        None => String::new(),
    };
    Ok(match n.kind.as_str() {
        "added" => format!(
            "A new passkey “{}” was added to your account on {when} UTC{by}.",
            n.passkey_name
        ),
        _ => format!(
            "A passkey “{}” was removed from your account on {when} UTC{by}.",
            n.passkey_name
        ),
    })
}

/// An operator's pending notices, each with its words.
pub async fn notices(console: &Console, admin_id: i64) -> Result<Vec<(PasskeyNotice, String)>> {
    let mut out = Vec::new();
    for n in console.store.passkey_notices(admin_id).await? {
        let text = notice_text(console, &n).await?;
        out.push((n, text));
    }
    Ok(out)
}
