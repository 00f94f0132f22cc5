//! The actions behind both the promotion pages and their JSON twins: one implementation
//! each. Queueing reads staging (through [`super::source`]) and prod, and binds the
//! promotion to what was shown; approval, rejection and the kill switch are single
//! audited transactions in the store. A restore after a kill queues a promotion of the
//! prod definition with only `enabled = true`.

use raxx_core::Env;
use raxx_core::audit::Outcome;
use raxx_core::flags::{FlagChange, diff_flag, diff_flags};
use raxx_core::promotion::{NewPromotion, PromotedFlag, Promotion};
use raxx_core::restore::{ProdFlag, PromotionKind, plan_restore};
use raxx_store::flags::{Applied, FlagState, Killed, PromotionRecord};
use raxx_store::now_ms;
use sha2::{Digest, Sha256};

use super::{StagingFlags, fetch_staging};
use super::{env_apps, known_app, operator, promotion_error};
use crate::actor::Caller;
use crate::console::Console;
use crate::error::{Error, Kind, Result};

/// What "New promotion" shows: staging against prod, flag by flag.
#[derive(Debug, Clone)]
pub struct Proposal {
    pub prod_app: String,
    pub staging_app: String,
    pub staging: StagingFlags,
    pub prod: FlagState,
    /// Every flag that differs (staging is the new side), in key order.
    pub changes: Vec<FlagChange>,
    /// Hash of the staging definitions and prod versions the page showed; a queue form
    /// carries it back so what is queued is what was reviewed.
    pub view_hash: String,
}

/// Prod apps that promote from a staging app.
pub fn promotable_apps(state: &Console) -> Vec<String> {
    if state.env() != Env::Prod {
        return Vec::new();
    }
    state
        .cfg
        .config
        .apps
        .iter()
        .filter(|a| a.env == Env::Prod && a.promote_from.is_some())
        .map(|a| a.name.clone())
        .collect()
}

fn prod_only(state: &Console) -> Result<()> {
    if state.env() == Env::Prod {
        Ok(())
    } else {
        Err(Error::NotFound(
            "promotions are queued and reviewed on the prod console".into(),
        ))
    }
}

/// Read staging and prod for `prod_app` and diff them.
pub async fn proposal(state: &Console, prod_app: &str) -> Result<Proposal> {
    prod_only(state)?;
    let app = known_app(state, prod_app)?;
    let staging_app = app.promote_from.clone().ok_or_else(|| {
        Error::invalid(format!(
            "`{prod_app}` has no promote_from in the config: nothing promotes into it"
        ))
    })?;
    let staging = fetch_staging(&state.cfg, &staging_app).await?;
    let prod = state.store.flag_state(prod_app).await?;
    let changes = diff_flags(&prod.app_flags(), &staging.flags);
    let view = serde_json::json!({
        "staging": staging.flags.flags,
        "prod": prod.versions(),
    });
    let view_hash = hex::encode(Sha256::digest(view.to_string().as_bytes()));
    Ok(Proposal {
        prod_app: prod_app.to_owned(),
        staging_app,
        staging,
        prod,
        changes,
        view_hash,
    })
}

/// Queue a promotion of `keys` (flags that differ between staging and prod) into
/// `prod_app`. With `seen_view`, refuse (409 `content_changed`) when staging or prod moved
/// since the page that offered the choice was rendered.
pub async fn queue(
    state: &Console,
    ctx: &Caller,
    prod_app: &str,
    keys: &[String],
    reason: &str,
    seen_view: Option<&str>,
) -> Result<(Promotion, Vec<FlagChange>)> {
    let (me, _) = operator(ctx)?;
    // What the request alone can tell, before staging is asked anything.
    if reason.trim().is_empty() {
        return Err(promotion_error(
            raxx_core::promotion::PromotionError::ReasonRequired,
        ));
    }
    if keys.is_empty() {
        return Err(promotion_error(
            raxx_core::promotion::PromotionError::Invalid(
                "a promotion needs at least one flag".to_owned(),
            ),
        ));
    }
    let p = proposal(state, prod_app).await?;
    if seen_view.is_some_and(|v| v != p.view_hash) {
        return Err(Error::Conflict {
            kind: Kind::Conflict,
            code: "content_changed",
            message: "staging or prod flags changed since this page was shown; review the new diff and queue again".into(),
        });
    }
    let mut flags = Vec::new();
    let mut diff = Vec::new();
    for key in keys {
        let Some(change) = p.changes.iter().find(|c| &c.key == key) else {
            return Err(Error::invalid(format!(
                "flag `{key}` is the same on staging and prod, or exists on neither: there is nothing to promote"
            )));
        };
        flags.push(PromotedFlag {
            key: key.clone(),
            new: p.staging.flags.flags.get(key).cloned(),
            base_version: p.prod.flags.get(key).map(|s| s.version),
        });
        diff.push(change.clone());
    }
    let new =
        NewPromotion::queue(prod_app, me, reason, flags, now_ms()).map_err(promotion_error)?;
    let event = ctx
        .event("flag.promotion.queue", Outcome::Allowed)
        .with("staging_app", p.staging_app.clone())
        .with("staging_revision", p.staging.revision);
    let promotion = state.store.queue_promotion(new, &diff, event).await?;
    Ok((promotion, diff))
}

/// One promotion of this env's apps, or 404.
pub async fn find(state: &Console, id: i64) -> Result<PromotionRecord> {
    state
        .store
        .promotion(id, &env_apps(state))
        .await?
        .ok_or_else(|| Error::NotFound(format!("promotion {id} was not found")))
}

/// Approve (and so apply) a promotion as the signed-in operator. `reviewed_hash` is the
/// content hash the approver saw, when the request carries it.
pub async fn approve(
    state: &Console,
    ctx: &Caller,
    id: i64,
    reviewed_hash: Option<&str>,
) -> Result<Applied> {
    prod_only(state)?;
    let (me, email) = operator(ctx)?;
    let event = ctx.event("flag.promotion.approve", Outcome::Allowed);
    state
        .store
        .approve_promotion(id, me, &email, reviewed_hash, &env_apps(state), event)
        .await?
        .map_err(promotion_error)
}

/// Reject a promotion (the requester may withdraw their own).
pub async fn reject(
    state: &Console,
    ctx: &Caller,
    id: i64,
    reason: &str,
) -> Result<PromotionRecord> {
    prod_only(state)?;
    let (me, _) = operator(ctx)?;
    let event = ctx.event("flag.promotion.reject", Outcome::Allowed);
    state
        .store
        .reject_promotion(id, me, reason, &env_apps(state), event)
        .await?
        .map_err(promotion_error)
}

/// The kill switch: disable a prod flag now, without review, with a reason.
pub async fn kill(
    state: &Console,
    ctx: &Caller,
    app: &str,
    key: &str,
    reason: &str,
) -> Result<Killed> {
    prod_only(state)?;
    // The app as an object of the gate (another env's app is refused and audited), then
    // an app this console knows.
    super::authorize_app(state, ctx, app).await?;
    known_app(state, app)?;
    let (_, email) = operator(ctx)?;
    if reason.trim().is_empty() {
        return Err(Error::Conflict {
            kind: Kind::BadRequest,
            code: "reason_required",
            message: "a reason is required to disable a flag without review".into(),
        });
    }
    let event = ctx.event("flag.kill", Outcome::Allowed);
    Ok(state
        .store
        .kill_flag(app, key, reason, &email, event)
        .await?)
}

/// Queue a restore of a killed prod flag: a promotion carrying only `enabled = true` on
/// the current prod definition, reviewed like any other. 409 `not_killed` (nothing queued)
/// when the flag is enabled or was disabled by something other than the kill switch.
pub async fn restore(
    state: &Console,
    ctx: &Caller,
    app: &str,
    key: &str,
    reason: &str,
) -> Result<Promotion> {
    prod_only(state)?;
    // The app as an object of the gate (another env's app is refused and audited), then
    // an app this console knows.
    super::authorize_app(state, ctx, app).await?;
    known_app(state, app)?;
    let (me, _) = operator(ctx)?;
    let prod = state.store.flag_state(app).await?;
    let Some(current) = prod.flags.get(key) else {
        return Err(Error::NotFound(format!("`{app}` has no flag `{key}`")));
    };
    let last = state.store.flag_history(app, key, 1).await?;
    let written_via = last
        .first()
        .filter(|h| h.version == current.version)
        .map(|h| h.via.as_str());
    let promoted = plan_restore(
        key,
        ProdFlag {
            flag: &current.flag,
            version: current.version,
            written_via,
        },
    )
    .map_err(|e| Error::Conflict {
        kind: Kind::Conflict,
        code: e.code(),
        message: e.to_string(),
    })?;
    let diff: Vec<FlagChange> = diff_flag(key, Some(&current.flag), promoted.new.as_ref())
        .into_iter()
        .collect();
    let new =
        NewPromotion::queue(app, me, reason, vec![promoted], now_ms()).map_err(promotion_error)?;
    let event = ctx
        .event("flag.restore", Outcome::Allowed)
        .with("flag", key)
        .with("from_version", current.version);
    Ok(state
        .store
        .queue_promotion_as(new, &diff, PromotionKind::Restore, event)
        .await?)
}
