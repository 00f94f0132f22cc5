//! The active environment. Computed once at start-up from the host of `public_url`;
//! nothing at run time can change it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    Staging,
    Prod,
}

impl Env {
    pub const ALL: [Env; 2] = [Env::Staging, Env::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Env::Staging => "staging",
            Env::Prod => "prod",
        }
    }

    /// The text of the env pill.
    pub fn pill(self) -> &'static str {
        match self {
            Env::Staging => "STAGING",
            Env::Prod => "PROD",
        }
    }

    pub fn other(self) -> Env {
        match self {
            Env::Staging => Env::Prod,
            Env::Prod => Env::Staging,
        }
    }

    /// The group that `ADMIN_EMAIL` bootstrap enrols into.
    pub fn admin_group(self) -> &'static str {
        match self {
            Env::Staging => "staging-admins",
            Env::Prod => "production-admins",
        }
    }
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown environment `{0}`: expected `staging` or `prod`")]
pub struct UnknownEnv(pub String);

impl FromStr for Env {
    type Err = UnknownEnv;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "staging" => Ok(Env::Staging),
            "prod" => Ok(Env::Prod),
            other => Err(UnknownEnv(other.to_string())),
        }
    }
}

/// Built-in host mapping for local use; `[environments]` in the config is consulted first.
pub fn default_env_for_host(host: &str) -> Option<Env> {
    match host {
        "localhost" | "staging.localhost" | "127.0.0.1" => Some(Env::Staging),
        "prod.localhost" => Some(Env::Prod),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_round_trips_through_its_name() {
        for env in Env::ALL {
            assert_eq!(env.as_str().parse::<Env>(), Ok(env));
            assert_ne!(env.other(), env);
        }
        assert!("production".parse::<Env>().is_err());
        assert!("PROD".parse::<Env>().is_err());
    }

    #[test]
    fn local_hosts_map_to_their_env() {
        assert_eq!(default_env_for_host("localhost"), Some(Env::Staging));
        assert_eq!(
            default_env_for_host("staging.localhost"),
            Some(Env::Staging)
        );
        assert_eq!(default_env_for_host("prod.localhost"), Some(Env::Prod));
        assert_eq!(default_env_for_host("console.raxx.app"), None);
    }
}
