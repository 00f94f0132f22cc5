//! When a presented session may be used (SPEC §3): the rule, with no storage. A session is
//! usable only on the console of its selected env, before it is revoked, before its absolute
//! expiry, within the idle timeout, and while its operator is enabled.

use crate::Env;

/// The idle and absolute lifetimes of a session, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle_ms: i64,
    pub absolute_ms: i64,
}

impl SessionPolicy {
    pub fn from_minutes_hours(idle_minutes: u32, absolute_hours: u32) -> Self {
        SessionPolicy {
            idle_ms: i64::from(idle_minutes) * 60_000,
            absolute_ms: i64::from(absolute_hours) * 3_600_000,
        }
    }
}

/// Why a presented session is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRejection {
    Unknown,
    Revoked,
    Expired,
    Idle,
    OtherEnv,
    Disabled,
}

/// What the rule reads of a session and its operator (unix milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct SessionFacts<'a> {
    pub selected_env: &'a str,
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub operator_disabled: bool,
}

/// May this session be used on a console of `env` at `now`? The first reason it may not,
/// in the order an operator would want to hear it.
pub fn judge(
    facts: &SessionFacts<'_>,
    env: Env,
    policy: SessionPolicy,
    now: i64,
) -> Result<(), SessionRejection> {
    if facts.selected_env != env.as_str() {
        Err(SessionRejection::OtherEnv)
    } else if facts.revoked_at.is_some() {
        Err(SessionRejection::Revoked)
    } else if now >= facts.expires_at {
        Err(SessionRejection::Expired)
    } else if now >= facts.last_seen_at + policy.idle_ms {
        Err(SessionRejection::Idle)
    } else if facts.operator_disabled {
        Err(SessionRejection::Disabled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: SessionPolicy = SessionPolicy {
        idle_ms: 1_000,
        absolute_ms: 10_000,
    };

    fn fresh() -> SessionFacts<'static> {
        SessionFacts {
            selected_env: "staging",
            revoked_at: None,
            expires_at: 10_000,
            last_seen_at: 0,
            operator_disabled: false,
        }
    }

    #[test]
    fn a_fresh_session_is_usable_on_its_own_env_only() {
        assert_eq!(judge(&fresh(), Env::Staging, POLICY, 500), Ok(()));
        assert_eq!(
            judge(&fresh(), Env::Prod, POLICY, 500),
            Err(SessionRejection::OtherEnv)
        );
    }

    #[test]
    fn each_reason_refuses_and_the_env_is_named_first() {
        let revoked = SessionFacts {
            revoked_at: Some(1),
            ..fresh()
        };
        assert_eq!(
            judge(&revoked, Env::Staging, POLICY, 500),
            Err(SessionRejection::Revoked)
        );
        assert_eq!(
            judge(&revoked, Env::Prod, POLICY, 500),
            Err(SessionRejection::OtherEnv)
        );
        assert_eq!(
            judge(&fresh(), Env::Staging, POLICY, 10_000),
            Err(SessionRejection::Expired)
        );
        assert_eq!(
            judge(&fresh(), Env::Staging, POLICY, 1_000),
            Err(SessionRejection::Idle)
        );
        let disabled = SessionFacts {
            operator_disabled: true,
            ..fresh()
        };
        assert_eq!(
            judge(&disabled, Env::Staging, POLICY, 500),
            Err(SessionRejection::Disabled)
        );
    }
}
