//! Provider tokens (SPEC §8): the `[[apps.tokens]]` of a provider other than `local`,
//! synced from config into `console_provider_tokens`, with the authorization ids that a
//! rotation moves. Token values never reach this table. App keys (provider `local`)
//! live in [`crate::keys`]; `raxx-web`'s `tokens` module joins both into one inventory.
//!
//! - [`plan_sync`] (pure) says what syncing the config would change; [`AuditTx::apply_sync`]
//!   applies one step inside an audited transaction.
//! - [`AuditTx::record_rotation`] and [`AuditTx::clear_previous`] record what the provider
//!   did, guarded so a stale caller cannot overwrite a newer rotation.
//! - [`Store::claim_provider_token`] is a lease (bookkeeping, like a session's
//!   `last_seen_at`): one rotation or revocation per token at a time, on any instance.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AuditTx, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderToken {
    pub id: i64,
    pub app: String,
    pub name: String,
    pub provider: String,
    pub authorization_id: Option<String>,
    pub config_authorization_id: Option<String>,
    pub previous_authorization_id: Option<String>,
    pub previous_grace_until: Option<i64>,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub rotated_by: Option<String>,
    pub max_age_days: Option<i64>,
    pub state: String,
    pub busy_until: Option<i64>,
    pub last_error: Option<String>,
}

impl ProviderToken {
    /// When the current authorization started: its rotation, else when the console
    /// first saw it.
    pub fn current_since(&self) -> i64 {
        self.rotated_at.unwrap_or(self.created_at)
    }

    pub fn is_active(&self) -> bool {
        self.state == "active"
    }
}

/// A provider token as the config declares it (the part the table mirrors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredToken {
    pub app: String,
    pub name: String,
    pub provider: String,
    pub authorization_id: Option<String>,
    pub max_age_days: Option<i64>,
}

/// One change syncing the config makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStep {
    /// A token the table does not know yet.
    Add(ConfiguredToken),
    /// The config names a different authorization than it did when last adopted: the
    /// operator replaced it by hand, so it becomes the current one.
    AdoptAuthorization {
        id: i64,
        from: Option<String>,
        to: Option<String>,
    },
    /// Provider or max age changed in the config.
    Update {
        id: i64,
        provider: String,
        max_age_days: Option<i64>,
    },
    /// The token left the config: kept for the record, out of the inventory.
    Remove { id: i64 },
    /// A removed token is back in the config.
    Restore { id: i64 },
}

impl SyncStep {
    /// For the audit row: `add`, `adopt_authorization`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            SyncStep::Add(_) => "add",
            SyncStep::AdoptAuthorization { .. } => "adopt_authorization",
            SyncStep::Update { .. } => "update",
            SyncStep::Remove { .. } => "remove",
            SyncStep::Restore { .. } => "restore",
        }
    }
}

/// What syncing `configured` into `stored` changes; empty when they agree. The table
/// keeps what only the console knows (rotations, the previous authorization); the
/// config owns the rest.
pub fn plan_sync(stored: &[ProviderToken], configured: &[ConfiguredToken]) -> Vec<SyncStep> {
    let mut steps = Vec::new();
    for c in configured {
        let Some(s) = stored.iter().find(|s| s.app == c.app && s.name == c.name) else {
            steps.push(SyncStep::Add(c.clone()));
            continue;
        };
        if !s.is_active() {
            steps.push(SyncStep::Restore { id: s.id });
        }
        if s.config_authorization_id != c.authorization_id {
            steps.push(SyncStep::AdoptAuthorization {
                id: s.id,
                from: s.authorization_id.clone(),
                to: c.authorization_id.clone(),
            });
        }
        if s.provider != c.provider || s.max_age_days != c.max_age_days {
            steps.push(SyncStep::Update {
                id: s.id,
                provider: c.provider.clone(),
                max_age_days: c.max_age_days,
            });
        }
    }
    for s in stored.iter().filter(|s| s.is_active()) {
        if !configured
            .iter()
            .any(|c| c.app == s.app && c.name == s.name)
        {
            steps.push(SyncStep::Remove { id: s.id });
        }
    }
    steps
}

const COLS: &str = "id, app, name, provider, authorization_id, config_authorization_id, previous_authorization_id, previous_grace_until, created_at, rotated_at, rotated_by, max_age_days, state, busy_until, last_error";

fn provider_token(r: &AnyRow) -> Result<ProviderToken> {
    Ok(ProviderToken {
        id: r.try_get("id")?,
        app: r.try_get("app")?,
        name: r.try_get("name")?,
        provider: r.try_get("provider")?,
        authorization_id: r.try_get("authorization_id")?,
        config_authorization_id: r.try_get("config_authorization_id")?,
        previous_authorization_id: r.try_get("previous_authorization_id")?,
        previous_grace_until: r.try_get("previous_grace_until")?,
        created_at: r.try_get("created_at")?,
        rotated_at: r.try_get("rotated_at")?,
        rotated_by: r.try_get("rotated_by")?,
        max_age_days: r.try_get("max_age_days")?,
        state: r.try_get("state")?,
        busy_until: r.try_get("busy_until")?,
        last_error: r.try_get("last_error")?,
    })
}

impl Store {
    /// Every provider token the table holds (removed ones too), by app and name.
    pub async fn provider_tokens(&self) -> Result<Vec<ProviderToken>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_provider_tokens ORDER BY app, name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(provider_token).collect()
    }

    pub async fn provider_token(&self, id: i64) -> Result<Option<ProviderToken>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_provider_tokens WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(provider_token).transpose()
    }

    /// Take the token's lease until `until`; `false` when another rotation or revocation
    /// holds it. The lease is bookkeeping (no audit row): the provider calls it guards
    /// are audited when they end.
    pub async fn claim_provider_token(&self, id: i64, now: i64, until: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE console_provider_tokens SET busy_until = $1 WHERE id = $2 AND (busy_until IS NULL OR busy_until <= $3)",
        )
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give the lease back, noting the failure (step and reason, never a secret) if any.
    pub async fn release_provider_token(&self, id: i64, last_error: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE console_provider_tokens SET busy_until = NULL, last_error = COALESCE($1, last_error) WHERE id = $2",
        )
        .bind(last_error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl AuditTx {
    /// [`Store::provider_tokens`] inside this transaction (plan a sync no other writer
    /// can interleave with).
    pub async fn provider_tokens(&mut self) -> Result<Vec<ProviderToken>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM console_provider_tokens ORDER BY app, name"
        )))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(provider_token).collect()
    }

    /// Apply one sync step; returns the id of the row it touched.
    pub async fn apply_sync(&mut self, step: &SyncStep, now: i64) -> Result<i64> {
        let (sql, id): (&str, i64) = match step {
            SyncStep::Add(c) => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO console_provider_tokens (app, name, provider, authorization_id, config_authorization_id, created_at, max_age_days, state)
                     VALUES ($1, $2, $3, $4, $4, $5, $6, 'active') RETURNING id",
                )
                .bind(&c.app)
                .bind(&c.name)
                .bind(&c.provider)
                .bind(c.authorization_id.as_deref())
                .bind(now)
                .bind(c.max_age_days)
                .fetch_one(self.conn())
                .await?;
                return Ok(id);
            }
            SyncStep::AdoptAuthorization { id, to, .. } => {
                sqlx::query(
                    "UPDATE console_provider_tokens SET authorization_id = $1, config_authorization_id = $1, rotated_at = NULL, rotated_by = NULL, created_at = $2 WHERE id = $3",
                )
                .bind(to.as_deref())
                .bind(now)
                .bind(*id)
                .execute(self.conn())
                .await?;
                return Ok(*id);
            }
            SyncStep::Update {
                id,
                provider,
                max_age_days,
            } => {
                sqlx::query(
                    "UPDATE console_provider_tokens SET provider = $1, max_age_days = $2 WHERE id = $3",
                )
                .bind(provider)
                .bind(*max_age_days)
                .bind(*id)
                .execute(self.conn())
                .await?;
                return Ok(*id);
            }
            SyncStep::Remove { id } => (
                "UPDATE console_provider_tokens SET state = 'removed' WHERE id = $1",
                *id,
            ),
            SyncStep::Restore { id } => (
                "UPDATE console_provider_tokens SET state = 'active' WHERE id = $1",
                *id,
            ),
        };
        sqlx::query(sql).bind(id).execute(self.conn()).await?;
        Ok(id)
    }

    /// Record a completed rotation: `new_authorization_id` is current, the one it
    /// replaced is previous until `grace_until`, and the lease is released. Refuses
    /// (`Conflict`) when the current authorization is no longer `expected_current`.
    pub async fn record_rotation(
        &mut self,
        id: i64,
        expected_current: Option<&str>,
        new_authorization_id: &str,
        grace_until: i64,
        rotated_by: &str,
        now: i64,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE console_provider_tokens
             SET authorization_id = $1, previous_authorization_id = authorization_id, previous_grace_until = $2,
                 rotated_at = $3, rotated_by = $4, busy_until = NULL, last_error = NULL
             WHERE id = $5 AND COALESCE(authorization_id, '') = $6",
        )
        .bind(new_authorization_id)
        .bind(grace_until)
        .bind(now)
        .bind(rotated_by)
        .bind(id)
        .bind(expected_current.unwrap_or(""))
        .execute(self.conn())
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "provider token {id} changed while it was being rotated"
            )));
        }
        Ok(())
    }

    /// The previous authorization is gone (deleted, or already gone at the provider):
    /// forget it and release the lease. `Conflict` when it is no longer the previous one.
    pub async fn clear_previous(&mut self, id: i64, previous: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE console_provider_tokens
             SET previous_authorization_id = NULL, previous_grace_until = NULL, busy_until = NULL, last_error = NULL
             WHERE id = $1 AND previous_authorization_id = $2",
        )
        .bind(id)
        .bind(previous)
        .execute(self.conn())
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict(format!(
                "provider token {id} no longer has {previous} as its previous authorization"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: i64, name: &str, auth: &str, state: &str) -> ProviderToken {
        ProviderToken {
            id,
            app: "raxx-api-staging".into(),
            name: name.into(),
            provider: "heroku".into(),
            authorization_id: Some(format!("{auth}-rotated")),
            config_authorization_id: Some(auth.into()),
            previous_authorization_id: None,
            previous_grace_until: None,
            created_at: 1,
            rotated_at: Some(2),
            rotated_by: Some("7".into()),
            max_age_days: Some(90),
            state: state.into(),
            busy_until: None,
            last_error: None,
        }
    }

    fn configured(name: &str, auth: &str, max_age: i64) -> ConfiguredToken {
        ConfiguredToken {
            app: "raxx-api-staging".into(),
            name: name.into(),
            provider: "heroku".into(),
            authorization_id: Some(auth.into()),
            max_age_days: Some(max_age),
        }
    }

    #[test]
    fn sync_changes_only_what_the_config_owns() {
        let s = || vec![stored(1, "deploy-bot", "a1", "active")];
        // (what, stored, configured, the steps planned)
        type Case = (
            &'static str,
            Vec<ProviderToken>,
            Vec<ConfiguredToken>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "agreeing config changes nothing, rotations are kept",
                s(),
                vec![configured("deploy-bot", "a1", 90)],
                vec![],
            ),
            (
                "a new token is added",
                vec![],
                vec![configured("deploy-bot", "a1", 90)],
                vec!["add"],
            ),
            (
                "a hand-changed authorization id is adopted",
                s(),
                vec![configured("deploy-bot", "b2", 90)],
                vec!["adopt_authorization"],
            ),
            (
                "a new max age is taken",
                s(),
                vec![configured("deploy-bot", "a1", 30)],
                vec!["update"],
            ),
            (
                "a token gone from config is removed",
                s(),
                vec![],
                vec!["remove"],
            ),
            (
                "a removed token that returns is restored",
                vec![stored(1, "deploy-bot", "a1", "removed")],
                vec![configured("deploy-bot", "a1", 90)],
                vec!["restore"],
            ),
            (
                "a removed token stays removed",
                vec![stored(1, "deploy-bot", "a1", "removed")],
                vec![],
                vec![],
            ),
        ];
        for (what, stored, configured, want) in cases {
            let got: Vec<&str> = plan_sync(&stored, &configured)
                .iter()
                .map(SyncStep::kind)
                .collect();
            assert_eq!(got, want, "{what}");
        }
    }
}
