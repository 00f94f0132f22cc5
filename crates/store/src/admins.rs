//! Operators, their passkeys, groups, grants and memberships.

use std::collections::{BTreeMap, BTreeSet};

use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::GroupConfig;
use raxx_core::rbac::{EnvScope, Grant, Role};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AuditTx, Result, Store, StoreError, now_ms};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub disabled: bool,
    pub created_at: i64,
}

fn admin(row: &AnyRow) -> Result<Admin> {
    Ok(Admin {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub id: i64,
    pub admin_id: i64,
    pub cred_id: String,
    pub name: String,
    /// The serialised webauthn-rs `Passkey` (public key material only).
    pub passkey: String,
    pub counter: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub name: String,
    pub description: String,
    pub grants: Vec<(String, String)>,
    pub members: Vec<(String, String)>,
}

const ADMIN_COLS: &str = "id, email, display_name, disabled, created_at";

impl Store {
    pub async fn admin_by_email(&self, email: &str) -> Result<Option<Admin>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ADMIN_COLS} FROM console_admins WHERE email = $1"
        )))
        .bind(raxx_core::config::normalise_email(email))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(admin).transpose()
    }

    pub async fn admin_by_id(&self, id: i64) -> Result<Option<Admin>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ADMIN_COLS} FROM console_admins WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(admin).transpose()
    }

    pub async fn admins(&self) -> Result<Vec<Admin>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ADMIN_COLS} FROM console_admins ORDER BY email"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(admin).collect()
    }

    pub async fn passkeys_of(&self, admin_id: i64) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query(
            "SELECT id, admin_id, cred_id, name, passkey, counter, created_at, last_used_at FROM console_passkeys WHERE admin_id = $1 ORDER BY id",
        )
        .bind(admin_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredPasskey {
                    id: r.try_get("id")?,
                    admin_id: r.try_get("admin_id")?,
                    cred_id: r.try_get("cred_id")?,
                    name: r.try_get("name")?,
                    passkey: r.try_get("passkey")?,
                    counter: r.try_get("counter")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    /// The grants of every group `email` belongs to (all env scopes; the caller filters
    /// by the session's env through `EffectiveRoles::from_grants`).
    pub async fn grants_for(&self, email: &str) -> Result<Vec<Grant>> {
        let rows = sqlx::query(
            "SELECT r.group_name, r.role, r.env_scope FROM console_admin_group_roles r
             JOIN console_group_members m ON m.group_name = r.group_name
             WHERE m.email = $1",
        )
        .bind(raxx_core::config::normalise_email(email))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let role: String = r.try_get("role")?;
            let scope: String = r.try_get("env_scope")?;
            out.push(Grant {
                group: r.try_get("group_name")?,
                role: role.parse::<Role>().map_err(StoreError::Invalid)?,
                env_scope: scope.parse::<EnvScope>().map_err(StoreError::Invalid)?,
            });
        }
        Ok(out)
    }

    pub async fn groups_of(&self, email: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT group_name FROM console_group_members WHERE email = $1 ORDER BY group_name",
        )
        .bind(raxx_core::config::normalise_email(email))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn group_exists(&self, name: &str) -> Result<bool> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT name FROM console_groups WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    pub async fn groups(&self) -> Result<Vec<GroupView>> {
        let groups = sqlx::query("SELECT name, description FROM console_groups ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let grants = sqlx::query(
            "SELECT group_name, role, env_scope FROM console_admin_group_roles ORDER BY role",
        )
        .fetch_all(&self.pool)
        .await?;
        let members = sqlx::query(
            "SELECT group_name, email, source FROM console_group_members ORDER BY email",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for g in &groups {
            let name: String = g.try_get("name")?;
            let mut view = GroupView {
                description: g.try_get("description")?,
                grants: Vec::new(),
                members: Vec::new(),
                name: name.clone(),
            };
            for r in grants
                .iter()
                .filter(|r| r.try_get::<String, _>("group_name").ok().as_deref() == Some(&name))
            {
                view.grants
                    .push((r.try_get("role")?, r.try_get("env_scope")?));
            }
            for m in members
                .iter()
                .filter(|r| r.try_get::<String, _>("group_name").ok().as_deref() == Some(&name))
            {
                view.members
                    .push((m.try_get("email")?, m.try_get("source")?));
            }
            out.push(view);
        }
        Ok(out)
    }

    /// Make the config's `[groups.*]` true in the database: groups and their grants
    /// exist, and memberships whose source is `config` match the config exactly
    /// (memberships made by invites or bootstrap are left alone). Audited when it
    /// changes anything.
    pub async fn reconcile_config_groups(
        &self,
        groups: &BTreeMap<String, GroupConfig>,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        let mut changes: Vec<String> = Vec::new();
        for (name, group) in groups {
            let inserted = sqlx::query(
                "INSERT INTO console_groups (name, description) VALUES ($1, 'from config') ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if inserted > 0 {
                changes.push(format!("group {name} created"));
            }
            for grant in &group.grants {
                let role: Role = grant.role.parse().map_err(StoreError::Invalid)?;
                let n = sqlx::query(
                    "INSERT INTO console_admin_group_roles (group_name, role, env_scope, source) VALUES ($1, $2, $3, 'config') ON CONFLICT DO NOTHING",
                )
                .bind(name)
                .bind(role.to_string())
                .bind(grant.env_scope.as_str())
                .execute(tx.conn())
                .await?
                .rows_affected();
                if n > 0 {
                    changes.push(format!(
                        "{name} granted {role} ({})",
                        grant.env_scope.as_str()
                    ));
                }
            }
            // Grants from config that the config no longer lists are removed.
            let want: BTreeSet<(String, String)> = group
                .grants
                .iter()
                .filter_map(|g| {
                    g.role
                        .parse::<Role>()
                        .ok()
                        .map(|r| (r.to_string(), g.env_scope.as_str().to_string()))
                })
                .collect();
            let have = sqlx::query("SELECT role, env_scope FROM console_admin_group_roles WHERE group_name = $1 AND source = 'config'")
                .bind(name)
                .fetch_all(tx.conn())
                .await?;
            for r in &have {
                let key: (String, String) = (r.try_get("role")?, r.try_get("env_scope")?);
                if !want.contains(&key) {
                    sqlx::query("DELETE FROM console_admin_group_roles WHERE group_name = $1 AND role = $2 AND env_scope = $3 AND source = 'config'")
                        .bind(name)
                        .bind(&key.0)
                        .bind(&key.1)
                        .execute(tx.conn())
                        .await?;
                    changes.push(format!("{name} lost {} ({})", key.0, key.1));
                }
            }
        }
        let wanted: BTreeSet<(String, String)> = groups
            .iter()
            .flat_map(|(g, c)| {
                c.members
                    .iter()
                    .map(move |m| (g.clone(), raxx_core::config::normalise_email(m)))
            })
            .collect();
        let current = sqlx::query(
            "SELECT group_name, email FROM console_group_members WHERE source = 'config'",
        )
        .fetch_all(tx.conn())
        .await?;
        let mut have = BTreeSet::new();
        for r in &current {
            have.insert((
                r.try_get::<String, _>("group_name")?,
                r.try_get::<String, _>("email")?,
            ));
        }
        for (group, email) in have.difference(&wanted) {
            sqlx::query("DELETE FROM console_group_members WHERE group_name = $1 AND email = $2 AND source = 'config'")
                .bind(group)
                .bind(email)
                .execute(tx.conn())
                .await?;
            changes.push(format!("{email} removed from {group}"));
        }
        for (group, email) in wanted.difference(&have) {
            let n = sqlx::query(
                "INSERT INTO console_group_members (group_name, email, source, created_at) VALUES ($1, $2, 'config', $3) ON CONFLICT DO NOTHING",
            )
            .bind(group)
            .bind(email)
            .bind(now_ms())
            .execute(tx.conn())
            .await?
            .rows_affected();
            if n > 0 {
                changes.push(format!("{email} added to {group}"));
            }
        }
        if changes.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        tx.record(
            AuditEvent::new("config", "rbac.reconcile", Outcome::Allowed)
                .target("config", "groups")
                .with("changes", changes.clone()),
        )
        .await?;
        tx.commit().await?;
        Ok(changes.len())
    }
}

/// Changes made inside an audited transaction.
impl AuditTx {
    pub async fn create_admin(&mut self, email: &str, display_name: &str) -> Result<Admin> {
        let email = raxx_core::config::normalise_email(email);
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO console_admins (email, display_name, disabled, created_at) VALUES ($1, $2, 0, $3) RETURNING id",
        )
        .bind(&email)
        .bind(display_name)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        Ok(Admin {
            id,
            email,
            display_name: display_name.to_string(),
            disabled: false,
            created_at: now,
        })
    }

    /// Disable or enable an operator; disabling ends all their sessions.
    pub async fn set_admin_disabled(&mut self, admin_id: i64, disabled: bool) -> Result<u64> {
        let n = sqlx::query("UPDATE console_admins SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(admin_id)
            .execute(self.conn())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("operator {admin_id}")));
        }
        if disabled {
            return self.revoke_sessions_of(admin_id).await;
        }
        Ok(0)
    }

    pub async fn add_passkey(
        &mut self,
        admin_id: i64,
        cred_id: &str,
        name: &str,
        passkey: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_passkeys (admin_id, cred_id, name, passkey, counter, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(admin_id)
        .bind(cred_id)
        .bind(name)
        .bind(passkey)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn update_passkey(
        &mut self,
        cred_id: &str,
        passkey: &str,
        counter: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE console_passkeys SET passkey = $1, counter = $2, last_used_at = $3 WHERE cred_id = $4")
            .bind(passkey)
            .bind(counter)
            .bind(now_ms())
            .bind(cred_id)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn add_member(&mut self, group: &str, email: &str, source: &str) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO console_group_members (group_name, email, source, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(raxx_core::config::normalise_email(email))
        .bind(source)
        .bind(now_ms())
        .execute(self.conn())
        .await?
        .rows_affected()
            > 0)
    }

    pub async fn remove_member(&mut self, group: &str, email: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM console_group_members WHERE group_name = $1 AND email = $2")
                .bind(group)
                .bind(raxx_core::config::normalise_email(email))
                .execute(self.conn())
                .await?
                .rows_affected()
                > 0,
        )
    }
}
