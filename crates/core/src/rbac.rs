//! RBAC V2: roles are `console-<resource>-<level>`; groups hold grants scoped to an env;
//! a session's effective roles are the grants whose scope is its env or `any`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::env::Env;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Flag,
    Token,
    Audit,
    Invite,
    Customer,
    Session,
    Job,
}

impl Resource {
    pub const ALL: [Resource; 7] = [
        Resource::Flag,
        Resource::Token,
        Resource::Audit,
        Resource::Invite,
        Resource::Customer,
        Resource::Session,
        Resource::Job,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Flag => "flag",
            Resource::Token => "token",
            Resource::Audit => "audit",
            Resource::Invite => "invite",
            Resource::Customer => "customer",
            Resource::Session => "session",
            Resource::Job => "job",
        }
    }
}

impl FromStr for Resource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Resource::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown resource `{s}`"))
    }
}

/// `reader` < `user` < `admin`; a higher level implies the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Reader,
    User,
    Admin,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Reader, Level::User, Level::Admin];
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Reader => "reader",
            Level::User => "user",
            Level::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role {
    pub resource: Resource,
    pub level: Level,
}

impl Role {
    pub const fn new(resource: Resource, level: Level) -> Self {
        Role { resource, level }
    }
    pub fn all() -> impl Iterator<Item = Role> {
        Resource::ALL
            .into_iter()
            .flat_map(|r| Level::ALL.into_iter().map(move |l| Role::new(r, l)))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "console-{}-{}",
            self.resource.as_str(),
            self.level.as_str()
        )
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a role: expected console-<resource>-<reader|user|admin>");
        let rest = s.strip_prefix("console-").ok_or_else(bad)?;
        let (resource, level) = rest.rsplit_once('-').ok_or_else(bad)?;
        let level = Level::ALL
            .into_iter()
            .find(|l| l.as_str() == level)
            .ok_or_else(bad)?;
        Ok(Role::new(resource.parse().map_err(|_| bad())?, level))
    }
}

/// Where a group's grant applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvScope {
    Staging,
    Prod,
    Any,
}

impl EnvScope {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvScope::Staging => "staging",
            EnvScope::Prod => "prod",
            EnvScope::Any => "any",
        }
    }
    pub fn covers(self, env: Env) -> bool {
        matches!(
            (self, env),
            (EnvScope::Any, _) | (EnvScope::Staging, Env::Staging) | (EnvScope::Prod, Env::Prod)
        )
    }
}

/// May an invite name a group with these grant scopes on a console of `env`? Only a
/// group with at least one grant usable there: a staging console never invites into a
/// prod-only group (an unknown scope counts for nothing).
pub fn invitable_in<'a>(scopes: impl IntoIterator<Item = &'a str>, env: Env) -> bool {
    scopes
        .into_iter()
        .any(|scope| scope.parse::<EnvScope>().is_ok_and(|s| s.covers(env)))
}

impl FromStr for EnvScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "staging" => Ok(EnvScope::Staging),
            "prod" => Ok(EnvScope::Prod),
            "any" => Ok(EnvScope::Any),
            _ => Err(format!(
                "unknown env_scope `{s}`: expected staging, prod or any"
            )),
        }
    }
}

/// One row of `console_admin_group_roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub group: String,
    pub role: Role,
    pub env_scope: EnvScope,
}

/// The grants seeded by migration (SPEC §4). The migration SQL and this list are checked
/// against each other by the store tests.
pub fn seeded_grants() -> Vec<Grant> {
    use Level::*;
    use Resource::*;
    let staging: &[(Resource, Level)] = &[
        (Flag, Reader),
        (Token, User),
        (Audit, User),
        (Customer, Reader),
        (Job, User),
    ];
    let prod: &[(Resource, Level)] = &[
        (Flag, Admin),
        (Token, Admin),
        (Audit, User),
        (Invite, Admin),
        (Customer, Admin),
        (Session, Admin),
        (Job, Admin),
    ];
    let make = |group: &str, scope, list: &[(Resource, Level)]| {
        list.iter()
            .map(|&(r, l)| Grant {
                group: group.to_string(),
                role: Role::new(r, l),
                env_scope: scope,
            })
            .collect::<Vec<_>>()
    };
    let mut all = make("staging-admins", EnvScope::Staging, staging);
    all.extend(make("production-admins", EnvScope::Prod, prod));
    all
}

/// The roles a session holds: the highest level per resource is enough to answer
/// every question, but the set keeps what was granted for display.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveRoles {
    roles: BTreeSet<Role>,
}

impl EffectiveRoles {
    /// Effective roles of a session in `env` from its operator's grants.
    pub fn from_grants<'a>(env: Env, grants: impl IntoIterator<Item = &'a Grant>) -> Self {
        EffectiveRoles {
            roles: grants
                .into_iter()
                .filter(|g| g.env_scope.covers(env))
                .map(|g| g.role)
                .collect(),
        }
    }

    pub fn from_roles(roles: impl IntoIterator<Item = Role>) -> Self {
        EffectiveRoles {
            roles: roles.into_iter().collect(),
        }
    }

    /// Does the holder have `resource` at `level` or higher?
    pub fn has(&self, resource: Resource, level: Level) -> bool {
        self.roles
            .iter()
            .any(|r| r.resource == resource && r.level >= level)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter()
    }

    pub fn names(&self) -> Vec<String> {
        self.roles.iter().map(Role::to_string).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_group_is_invitable_where_one_of_its_grants_applies() {
        assert!(invitable_in(["staging"], Env::Staging));
        assert!(invitable_in(["prod", "any"], Env::Staging));
        assert!(!invitable_in(["prod"], Env::Staging));
        assert!(!invitable_in(["nonsense"], Env::Prod));
        assert!(!invitable_in([], Env::Prod));
    }

    use super::*;

    #[test]
    fn every_role_round_trips_through_its_name() {
        for role in Role::all() {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        for bad in [
            "console-flag",
            "flag-admin",
            "console-flag-owner",
            "console-thing-admin",
            "",
        ] {
            assert!(bad.parse::<Role>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn higher_level_implies_lower_for_the_same_resource_only() {
        let roles = EffectiveRoles::from_roles([Role::new(Resource::Flag, Level::Admin)]);
        assert!(roles.has(Resource::Flag, Level::Reader));
        assert!(roles.has(Resource::Flag, Level::User));
        assert!(roles.has(Resource::Flag, Level::Admin));
        assert!(!roles.has(Resource::Token, Level::Reader));
        let reader = EffectiveRoles::from_roles([Role::new(Resource::Audit, Level::Reader)]);
        assert!(!reader.has(Resource::Audit, Level::User));
    }

    #[test]
    fn effective_roles_follow_env_scope() {
        let grants = seeded_grants();
        let prod_admin: Vec<_> = grants
            .iter()
            .filter(|g| g.group == "production-admins")
            .cloned()
            .collect();
        // A production-admins member signed in to a staging console holds nothing.
        assert!(EffectiveRoles::from_grants(Env::Staging, &prod_admin).is_empty());
        assert!(
            EffectiveRoles::from_grants(Env::Prod, &prod_admin).has(Resource::Flag, Level::Admin)
        );
        let any = [Grant {
            group: "g".into(),
            role: Role::new(Resource::Job, Level::Reader),
            env_scope: EnvScope::Any,
        }];
        for env in Env::ALL {
            assert!(EffectiveRoles::from_grants(env, &any).has(Resource::Job, Level::Reader));
        }
    }

    #[test]
    fn staging_admins_never_hold_an_admin_role() {
        for g in seeded_grants()
            .iter()
            .filter(|g| g.group == "staging-admins")
        {
            assert_ne!(g.role.level, Level::Admin, "{}", g.role);
            assert_eq!(g.env_scope, EnvScope::Staging);
        }
    }
}
