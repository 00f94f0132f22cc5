//! Restore after a kill (SPEC §7 "Kill switch"): re-enabling a prod flag the kill switch
//! disabled goes through a promotion that carries only `enabled = true` of the current
//! prod definition — nothing from staging rides along. Pure decisions; the web layer reads
//! the flag and its last change and queues what [`plan_restore`] returns.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::flags::Flag;
use crate::promotion::PromotedFlag;

/// Where a promotion's definitions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PromotionKind {
    /// Flags read from the staging console.
    #[default]
    Staging,
    /// Only `enabled = true` on the current prod definition, after a kill switch.
    Restore,
}

impl PromotionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionKind::Staging => "staging",
            PromotionKind::Restore => "restore",
        }
    }
}

impl fmt::Display for PromotionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PromotionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "staging" => Ok(PromotionKind::Staging),
            "restore" => Ok(PromotionKind::Restore),
            other => Err(format!("unknown promotion kind `{other}`")),
        }
    }
}

/// A prod flag as a restore sees it: its definition, version, and how that version was
/// written (`kill`, `promotion`, `apply`), from its history.
#[derive(Debug, Clone, Copy)]
pub struct ProdFlag<'a> {
    pub flag: &'a Flag,
    pub version: i64,
    /// `via` of the history row that wrote `version`, if there is one.
    pub written_via: Option<&'a str>,
}

/// Why a flag cannot be restored. [`RestoreRefusal::code`] is the stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreRefusal {
    #[error("flag `{0}` is enabled: there is nothing to restore")]
    Enabled(String),
    #[error(
        "flag `{0}` was not disabled by the kill switch (its current version came from a promotion or a flags file): enable it through a promotion from staging"
    )]
    NotKilled(String),
}

impl RestoreRefusal {
    pub fn code(&self) -> &'static str {
        "not_killed"
    }
}

/// The one flag of a restore promotion: the current prod definition with `enabled = true`,
/// based on the current version. Refused unless the flag is disabled and its current
/// version was written by the kill switch.
pub fn plan_restore(key: &str, current: ProdFlag<'_>) -> Result<PromotedFlag, RestoreRefusal> {
    if current.flag.enabled {
        return Err(RestoreRefusal::Enabled(key.to_owned()));
    }
    if current.written_via != Some("kill") {
        return Err(RestoreRefusal::NotKilled(key.to_owned()));
    }
    let mut restored = current.flag.clone();
    restored.enabled = true;
    Ok(PromotedFlag {
        key: key.to_owned(),
        new: Some(restored),
        base_version: Some(current.version),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::fixtures::checkout_flag;

    fn killed() -> Flag {
        Flag {
            enabled: false,
            ..checkout_flag()
        }
    }

    #[test]
    fn a_killed_flag_restores_to_its_prod_definition_enabled() {
        let flag = killed();
        let p = plan_restore(
            "new-checkout",
            ProdFlag {
                flag: &flag,
                version: 7,
                written_via: Some("kill"),
            },
        )
        .expect("restorable");
        assert_eq!(p.key, "new-checkout");
        assert_eq!(p.base_version, Some(7));
        let new = p.new.expect("a definition");
        assert!(new.enabled);
        // Nothing else differs from prod.
        assert_eq!(
            Flag {
                enabled: false,
                ..new
            },
            flag
        );
    }

    #[test]
    fn only_a_kill_is_restored() {
        let enabled = checkout_flag();
        let disabled = killed();
        let cases = [
            (&enabled, Some("kill"), RestoreRefusal::Enabled("f".into())),
            (
                &enabled,
                Some("promotion"),
                RestoreRefusal::Enabled("f".into()),
            ),
            (
                &disabled,
                Some("promotion"),
                RestoreRefusal::NotKilled("f".into()),
            ),
            (
                &disabled,
                Some("apply"),
                RestoreRefusal::NotKilled("f".into()),
            ),
            (&disabled, None, RestoreRefusal::NotKilled("f".into())),
        ];
        for (flag, via, want) in cases {
            let got = plan_restore(
                "f",
                ProdFlag {
                    flag,
                    version: 1,
                    written_via: via,
                },
            );
            assert_eq!(got.as_ref().map(|_| ()), Err(&want), "{via:?}");
            assert_eq!(want.code(), "not_killed");
        }
        assert!(
            RestoreRefusal::Enabled("x".into())
                .to_string()
                .contains("nothing to restore")
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [PromotionKind::Staging, PromotionKind::Restore] {
            assert_eq!(kind.as_str().parse::<PromotionKind>(), Ok(kind));
        }
        assert!("other".parse::<PromotionKind>().is_err());
    }
}
