//! Signing in and enrolling: the passkey ceremonies (WebAuthn via webauthn-rs, user
//! verification required, ceremony state server-side, single use, 5 minutes), bootstrap
//! enrolment with the code, invite redemption, the break-glass login link, signing out.
//! The web layer reads the bodies, sets and clears the cookie and picks the status;
//! every decision, store write and audit row is here.

use raxx_core::audit::{AuditEvent, DENIAL_KEY, Outcome};
use raxx_core::config::{normalise_email, plausible_email};
use raxx_core::gate::Denial;
use raxx_core::opaque::{constant_time_eq, hash_token};
use raxx_store::auth::Invite;
use raxx_store::identity::LoginLinkState;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use crate::actor::Caller;
use crate::console::Console;
use crate::error::{Error, Kind, Result};
use crate::identity::{check_attempt, record_anonymous_failure, record_failure};

/// A ceremony started: its id (sent back with the result) and the options for
/// `navigator.credentials`.
pub struct Challenge {
    pub ceremony: String,
    pub challenge: Value,
}

/// A session begun: the cookie's token (for the browser, once) and the session's id.
pub struct Began {
    pub token: String,
    pub session_id: String,
}

/// What a registration starts from: bootstrap (`ADMIN_EMAIL` and the code) or an invite.
pub struct Enrolment<'a> {
    pub email: Option<&'a str>,
    pub display_name: &'a str,
    pub enrol_code: Option<&'a str>,
    pub invite_token: Option<&'a str>,
}

/// The URL-safe id of a passkey's credential, as the store keys it.
pub fn credential_id(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The refusal every anonymous registration gives for an address that has an operator.
pub fn existing_operator_refusal() -> Error {
    Error::Conflict {
        kind: Kind::Conflict,
        code: "operator_exists",
        message: "this address already has an operator: a passkey is added to it only by that operator, signed in, from \"Your passkeys\"".into(),
    }
}

/// Is some `ADMIN_EMAIL` address still without an operator? (An operator that exists,
/// even without a passkey, adds one only signed in: [`crate::passkeys`].)
pub async fn bootstrap_pending(console: &Console) -> Result<bool> {
    for email in &console.cfg.config.admin_emails {
        if console.store.admin_by_email(email).await?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `name` trimmed, when it is 1 to `max` printable characters; else `refusal`.
pub(crate) fn printable_name(name: &str, max: usize, refusal: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(Error::invalid(refusal));
    }
    Ok(name.to_string())
}

/// A display name: 1 to 80 printable characters.
pub fn display_name_ok(name: &str) -> Result<String> {
    printable_name(
        name,
        80,
        "display name must be 1 to 80 printable characters",
    )
}

/// Keep a started ceremony's state server-side (single use, 5 minutes) and hand back its
/// id with the options for the browser.
pub(crate) async fn keep_ceremony(
    console: &Console,
    kind: &str,
    email: &str,
    state: &impl serde::Serialize,
    context: &Value,
    challenge: &impl serde::Serialize,
) -> Result<Challenge> {
    let state_json = serde_json::to_string(state).map_err(internal)?;
    let ceremony = console
        .store
        .put_ceremony(kind, Some(email), &state_json, context)
        .await?;
    Ok(Challenge {
        ceremony,
        challenge: json!(challenge),
    })
}

/// After a verified assertion: store the passkey's new counter and flags.
pub(crate) async fn refresh_passkey(
    tx: &mut raxx_store::AuditTx,
    stored: &raxx_store::admins::StoredPasskey,
    result: &AuthenticationResult,
) -> Result<()> {
    if let Ok(mut pk) = serde_json::from_str::<Passkey>(&stored.passkey) {
        pk.update_credential(result);
        let json = serde_json::to_string(&pk).map_err(internal)?;
        tx.update_passkey(&stored.cred_id, &json, i64::from(result.counter()))
            .await?;
    }
    Ok(())
}

/// Begin a session for `admin_id` in `tx`, record `event` (as that session) and commit.
async fn begin_session(
    console: &Console,
    mut tx: raxx_store::AuditTx,
    admin_id: i64,
    user_agent: Option<&str>,
    ip: Option<String>,
    mut event: AuditEvent,
) -> Result<Began> {
    let (token, session) = tx
        .create_session(
            admin_id,
            console.env(),
            console.policy,
            user_agent,
            ip.as_deref(),
        )
        .await?;
    event.session_id = Some(session.id.clone());
    event.ip = ip;
    tx.record(event).await?;
    tx.commit().await?;
    Ok(Began {
        token,
        session_id: session.id,
    })
}

/// Why an assertion failed, for the audit row: whether the signature counter went backwards
/// (a possibly cloned authenticator), and the reason in words.
pub(crate) fn assertion_failure(e: &WebauthnError) -> (bool, String) {
    if matches!(e, WebauthnError::CredentialPossibleCompromise) {
        (
            true,
            "signature counter went backwards: possible cloned authenticator".to_string(),
        )
    } else {
        (false, format!("passkey assertion failed: {e}"))
    }
}

/// Refuse an attempt from a source that failed too often (audited `auth.rate_limited`).
async fn throttle(console: &Console, caller: &Caller, email: &str) -> Result<()> {
    check_attempt(console, &caller.route, email, caller.ip.as_deref()).await
}

/// Start a passkey registration: a bootstrap admin with the enrolment code, or an
/// invitee with their invite link's token. Either way it only ever creates an operator.
pub async fn register_start(
    console: &Console,
    caller: &Caller,
    e: Enrolment<'_>,
) -> Result<Challenge> {
    let display_name = display_name_ok(e.display_name)?;
    let ip = caller.ip.clone();
    let (email, context) = if let Some(token) = e.invite_token.filter(|t| !t.is_empty()) {
        let invite = console.store.invite_by_token(token).await?.ok_or_else(|| {
            Error::invalid("this invite link is not valid any more (used, revoked or expired)")
        })?;
        crate::identity::check_redeemable(console, &invite, ip.as_deref()).await?;
        if console.store.admin_by_email(&invite.email).await?.is_some() {
            return Err(existing_operator_refusal());
        }
        (
            invite.email.clone(),
            json!({"mode": "invite", "invite_hash": hash_token(token), "group": invite.group_name}),
        )
    } else {
        let email = normalise_email(e.email.unwrap_or_default());
        if !plausible_email(&email) {
            return Err(Error::invalid(
                "enter the email address listed in ADMIN_EMAIL",
            ));
        }
        // The enrolment code is guessed like a password: throttled like sign-in.
        throttle(console, caller, &email).await?;
        let code_ok = match (console.enrol_code_hash().await, e.enrol_code) {
            (Some(want), Some(code)) => constant_time_eq(&hash_token(code.trim()), &want),
            _ => false,
        };
        let listed = console.cfg.config.admin_emails.contains(&email);
        // Bootstrap creates an operator; it never adds a passkey to one that exists.
        let exists = console.store.admin_by_email(&email).await?.is_some();
        if !listed || exists || !code_ok {
            let reason = if !listed {
                "email not in ADMIN_EMAIL"
            } else if exists {
                "the address already has an operator"
            } else {
                "wrong enrolment code"
            };
            let mut ev = AuditEvent::new("anonymous", "auth.register", Outcome::Denied)
                .target("operator", email.clone())
                .reason(reason)
                .with(DENIAL_KEY, "forbidden")
                .with("email", email.clone());
            ev.ip = ip.clone();
            // Nobody is signed in: counted for the throttle, the row aggregated like every
            // anonymous refusal, so guessing cannot flood the chain.
            record_anonymous_failure(
                console,
                &caller.route,
                "forbidden",
                &email,
                ip.as_deref(),
                ev,
            )
            .await?;
            // One message for every case, so the form does not reveal which addresses are listed.
            return Err(Error::Denied(Denial::Forbidden {
                message: "bootstrap enrolment refused: check the email and the enrolment code (an address that already has a passkey signs in instead)".into(),
                needed: None,
            }));
        }
        (email, json!({"mode": "bootstrap"}))
    };
    let (challenge, reg) = console
        .webauthn
        .start_passkey_registration(Uuid::new_v4(), &email, &display_name, None)
        .map_err(|e| Error::Internal(format!("passkey registration could not start: {e}")))?;
    let mut context = context;
    context["display_name"] = json!(display_name);
    keep_ceremony(console, "register", &email, &reg, &context, &challenge).await
}

/// Finish a registration: verify the new passkey, create the operator with it, put them
/// in the group (the invite's, or the env's admin group) and begin their session.
pub async fn register_finish(
    console: &Console,
    caller: &Caller,
    ceremony: &str,
    credential: &RegisterPublicKeyCredential,
    user_agent: Option<&str>,
) -> Result<Began> {
    let ip = caller.ip.clone();
    let c = console
        .store
        .take_ceremony(ceremony, "register")
        .await?
        .ok_or_else(|| {
            Error::invalid("this registration expired or was already used; start again")
        })?;
    let email = c.email.clone().unwrap_or_default();
    let reg: PasskeyRegistration = serde_json::from_str(&c.state).map_err(internal)?;
    let passkey = match console
        .webauthn
        .finish_passkey_registration(credential, &reg)
    {
        Ok(p) => p,
        Err(e) => {
            let mut ev = AuditEvent::new("anonymous", "auth.register", Outcome::Denied)
                .target("operator", email.clone())
                .reason(format!("passkey verification failed: {e}"))
                .with(DENIAL_KEY, "invalid")
                .with("email", email.clone());
            ev.ip = ip;
            console.store.audit(ev).await?;
            return Err(Error::invalid(format!(
                "the passkey could not be verified: {e}"
            )));
        }
    };
    let display_name = c.context["display_name"]
        .as_str()
        .unwrap_or(&email)
        .to_string();
    let mode = c.context["mode"].as_str().unwrap_or_default().to_string();
    let mut tx = console.store.begin().await?;
    let mut invited_by = None;
    let (group, source) = if mode == "invite" {
        let hash = c.context["invite_hash"].as_str().unwrap_or_default();
        let invite = tx
            .accept_invite(hash)
            .await?
            .ok_or_else(|| Error::invalid("this invite was revoked or used meanwhile"))?;
        // Re-checked at redemption: still a new address, a creator who may still invite.
        if let Some(refusal) = crate::identity::redemption_refusal(console, &invite).await? {
            tx.rollback().await?;
            return Err(crate::identity::refuse_redemption(
                console,
                &invite,
                refusal,
                ip.as_deref(),
            )
            .await);
        }
        invited_by = Some(invite.created_by);
        (invite.group_name, "invite")
    } else {
        (console.env().admin_group().to_string(), "bootstrap")
    };
    // A registration ceremony only ever creates an operator: a passkey is added to an
    // existing one only by that operator, signed in, after a step-up (`passkeys.rs`).
    let admin = match console.store.admin_by_email(&email).await? {
        Some(existing) => {
            tx.rollback().await?;
            let mut ev = AuditEvent::new("anonymous", "auth.register", Outcome::Denied)
                .target("operator", existing.id.to_string())
                .reason("the address already has an operator")
                .with(DENIAL_KEY, "operator_exists")
                .with("email", email.clone())
                .with("mode", mode);
            ev.ip = ip;
            console.store.audit(ev).await?;
            return Err(existing_operator_refusal());
        }
        None => tx.create_admin(&email, &display_name).await?,
    };
    if let Some(by) = invited_by {
        tx.set_invited_by(admin.id, by).await?;
    }
    let cred_id = credential_id(passkey.cred_id().as_slice());
    let passkey_json = serde_json::to_string(&passkey).map_err(internal)?;
    tx.add_passkey(admin.id, &cred_id, "passkey", &passkey_json)
        .await?;
    tx.add_member(&group, &email, source).await?;
    let ev = AuditEvent::new(admin.id.to_string(), "auth.register", Outcome::Allowed)
        .target("operator", admin.id.to_string())
        .with("email", email)
        .with("group", group)
        .with("mode", mode);
    begin_session(console, tx, admin.id, user_agent, ip, ev).await
}

/// Start signing in with a passkey of `email`'s operator.
pub async fn login_start(console: &Console, caller: &Caller, email: &str) -> Result<Challenge> {
    let email = normalise_email(email);
    throttle(console, caller, &email).await?;
    let admin = console
        .store
        .admin_by_email(&email)
        .await?
        .filter(|a| !a.disabled);
    let stored = match &admin {
        Some(a) => console.store.passkeys_of(a.id).await?,
        None => Vec::new(),
    };
    let passkeys: Vec<Passkey> = stored
        .iter()
        .filter_map(|p| serde_json::from_str(&p.passkey).ok())
        .collect();
    if passkeys.is_empty() {
        let mut ev = AuditEvent::new("anonymous", "auth.login", Outcome::Denied)
            .target("operator", email.clone())
            .reason("no usable passkey for this email");
        ev.ip = caller.ip.clone();
        record_anonymous_failure(
            console,
            &caller.route,
            "unknown_account",
            &email,
            caller.ip.as_deref(),
            ev,
        )
        .await?;
        return Err(Error::invalid(
            "no passkey is registered for this email on this console",
        ));
    }
    let (challenge, auth) = console
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| Error::Internal(format!("sign-in could not start: {e}")))?;
    keep_ceremony(console, "login", &email, &auth, &json!({}), &challenge).await
}

/// Finish signing in: verify the assertion, move the passkey's counter, begin a session.
pub async fn login_finish(
    console: &Console,
    caller: &Caller,
    ceremony: &str,
    credential: &PublicKeyCredential,
    user_agent: Option<&str>,
) -> Result<Began> {
    let ip = caller.ip.clone();
    let c = console
        .store
        .take_ceremony(ceremony, "login")
        .await?
        .ok_or_else(|| Error::invalid("this sign-in expired or was already used; start again"))?;
    let email = c.email.clone().unwrap_or_default();
    throttle(console, caller, &email).await?;
    let admin = console
        .store
        .admin_by_email(&email)
        .await?
        .filter(|a| !a.disabled)
        .ok_or_else(|| Error::invalid("this operator cannot sign in"))?;
    let auth: PasskeyAuthentication = serde_json::from_str(&c.state).map_err(internal)?;
    let result = match console
        .webauthn
        .finish_passkey_authentication(credential, &auth)
    {
        Ok(r) => r,
        Err(e) => {
            let (regression, reason) = assertion_failure(&e);
            let mut ev = AuditEvent::new(admin.id.to_string(), "auth.login", Outcome::Denied)
                .target("operator", email.clone())
                .reason(reason)
                .with(DENIAL_KEY, "unauthenticated")
                .with("email", email.clone())
                .with("counter_regression", regression);
            ev.ip = ip.clone();
            if regression {
                // A possibly cloned authenticator: always a chained row of its own.
                record_failure(console, &email, ip.as_deref(), ev).await?;
            } else {
                record_anonymous_failure(
                    console,
                    &caller.route,
                    "bad_assertion",
                    &email,
                    ip.as_deref(),
                    ev,
                )
                .await?;
            }
            return Err(Error::Denied(Denial::Unauthenticated {
                message: if regression {
                    "this passkey's signature counter went backwards; sign-in refused and recorded"
                        .into()
                } else {
                    format!("the passkey could not be verified: {e}")
                },
            }));
        }
    };
    let cred_id = credential_id(result.cred_id().as_slice());
    let stored = console.store.passkeys_of(admin.id).await?;
    let Some(row) = stored.iter().find(|p| p.cred_id == cred_id) else {
        return Err(Error::invalid("unknown passkey"));
    };
    let mut tx = console.store.begin().await?;
    refresh_passkey(&mut tx, row, &result).await?;
    let ev = AuditEvent::new(admin.id.to_string(), "auth.login", Outcome::Allowed)
        .target("operator", admin.id.to_string())
        .with("method", "passkey");
    begin_session(console, tx, admin.id, user_agent, ip, ev).await
}

/// Use a login link once and begin a session for its operator (created on first use when
/// `ADMIN_EMAIL` or a config group names the address). Refusals by nobody are aggregated
/// like the gate's anonymous denials: guessing links cannot flood the chain.
pub async fn login_link(
    console: &Console,
    caller: &Caller,
    token: &str,
    user_agent: Option<&str>,
) -> Result<Began> {
    let ip = caller.ip.clone();
    let token = token.trim();
    let mut tx = console.store.begin().await?;
    let consumed = if token.is_empty() {
        None
    } else {
        tx.consume_login_link(token).await?
    };
    let Some(email) = consumed else {
        tx.rollback().await?;
        let mut ev = AuditEvent::new("anonymous", "auth.login_link", Outcome::Denied)
            .reason("unknown, used or expired login link");
        ev.ip = ip.clone();
        console
            .store
            .audit_anon_refusal(
                &raxx_store::anon_denials::AnonDenial {
                    source: ip.as_deref(),
                    route: &caller.route,
                    action: "auth.login_link",
                    code: "unauthenticated",
                },
                ev.with("route", caller.route.clone()),
            )
            .await?;
        return Err(Error::Denied(Denial::Unauthenticated {
            message: "this login link is not valid: it was used already, expired (links last 10 minutes) or never existed".into(),
        }));
    };
    let config = &console.cfg.config;
    let short_name = |email: &str| email.split('@').next().unwrap_or(email).to_string();
    let admin = match console.store.admin_by_email(&email).await? {
        Some(a) if a.disabled => {
            tx.rollback().await?;
            return Err(Error::invalid("this operator is disabled"));
        }
        Some(a) => a,
        None if config.admin_emails.contains(&email) => {
            let a = tx.create_admin(&email, &short_name(&email)).await?;
            tx.add_member(console.env().admin_group(), &email, "bootstrap")
                .await?;
            a
        }
        // Config names this operator in a group: config is the source of membership.
        None if config
            .groups
            .values()
            .any(|g| g.members.iter().any(|m| normalise_email(m) == email)) =>
        {
            tx.create_admin(&email, &short_name(&email)).await?
        }
        None => {
            tx.rollback().await?;
            return Err(Error::invalid("this login link names an unknown operator"));
        }
    };
    let ev = AuditEvent::new(admin.id.to_string(), "auth.login_link", Outcome::Allowed)
        .target("operator", admin.id.to_string())
        .with("email", email);
    begin_session(console, tx, admin.id, user_agent, ip, ev).await
}

/// What opening a login link shows: whom it signs in and until when, or why it cannot.
pub async fn login_link_state(console: &Console, token: &str) -> Result<LoginLinkState> {
    Ok(console.store.login_link_state(token).await?)
}

/// End the caller's own session (nothing to do without one).
pub async fn logout(console: &Console, caller: &Caller) -> Result<()> {
    let Some(id) = &caller.session_id else {
        return Ok(());
    };
    let mut tx = console.store.begin().await?;
    tx.revoke_session(id).await?;
    tx.record(
        caller
            .event("auth.logout", Outcome::Allowed)
            .target("session", id.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A pending invite by its link's token, or why it cannot be used (used, revoked,
/// expired, unknown) in words that say what to do next.
pub async fn pending_invite(console: &Console, token: &str) -> Result<Invite> {
    let now = raxx_store::now_ms();
    let found = console.store.invite_by_token_any_state(token).await?;
    let message = match found {
        Some(i) if i.state(now) == "pending" => return Ok(i),
        Some(i) => match i.state(now) {
            "accepted" => format!(
                "this invite was already used on {} (UTC). If that was you, sign in with your passkey.",
                crate::fmt_time(i.accepted_at.unwrap_or(i.created_at))
            ),
            "revoked" => "this invite was revoked. Ask the operator who invited you for a new one."
                .to_string(),
            _ => format!(
                "this invite expired on {} (UTC): invites last 72 hours. Ask the operator who invited you for a new one.",
                crate::fmt_time(i.expires_at)
            ),
        },
        None => {
            "this invite link is not valid: check that it was copied whole, or ask for a new one."
                .to_string()
        }
    };
    // The link leads nowhere now: gone, with words that say why.
    Err(Error::Conflict {
        kind: Kind::Gone,
        code: "invite_unusable",
        message,
    })
}
