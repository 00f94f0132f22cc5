//! Tokens (SPEC §8): the inventory of every key and provider token, rotation with a grace
//! period and its compensation, and the sweep that retires, syncs and reminds.

pub mod depends;
pub mod inventory;
pub mod rotation;
pub mod sweep;

pub use inventory::{Token, TokenId, TokenState, Version, VersionState};
pub use rotation::{GRACE_DEFAULT, GRACE_MAX, Rotation};
pub use sweep::{ExpiringToken, SweepReport, expiring_tokens, rotation_sweep};

use raxx_store::now_ms;

use crate::console::Console;
use crate::error::Result;

/// Bring the provider-token table in line with the config (at start-up; token actions
/// call it too, so a console started another way never acts on a stale table).
pub async fn sync_inventory(state: &Console) -> Result<usize> {
    sweep::sync(state).await
}

/// Start-up: refuse a tokens config that can never work, then sync.
pub async fn start_up(state: &Console) -> anyhow::Result<usize> {
    rotation::check_config(state).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    sync_inventory(state)
        .await
        .map_err(|e| anyhow::anyhow!("cannot sync the token inventory: {e}"))
}

/// The inventory of this console's apps.
pub async fn inventory_of(state: &Console) -> Result<Vec<Token>> {
    sync_inventory(state).await?;
    inventory::build(state, now_ms(), |p| rotation::manual_reason(state, p)).await
}
