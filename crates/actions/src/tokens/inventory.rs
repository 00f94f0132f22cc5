//! The inventory: app keys (provider `local`) and provider tokens as one list, each with
//! its state. Never a secret: keys are listed by id, provider tokens by authorization id.
//!
//! A token keeps its id across rotations (SPEC §8): an app key token is its lineage of
//! versions (`AppKey::token_id`), a provider token one row whose authorization a rotation
//! moves. Each token lists its versions under it: the current one, and the previous one
//! while it is in its grace period.

use std::collections::{BTreeMap, HashMap};

use raxx_core::config::{AppConfig, Resolved};
use raxx_store::keys::AppKey;
use raxx_store::tokens::{ConfiguredToken, ProviderToken};

use crate::console::Console;
use crate::error::Result;
use crate::fmt_time;

pub use raxx_core::tokens::{DAY_MS, EXPIRING_SOON_MS, TokenState, expires_at, token_state};

/// "in grace until 2026-11-21 09:30:00 UTC".
pub fn state_label(state: TokenState) -> String {
    match state {
        TokenState::Active => "active".into(),
        TokenState::InGrace { until } => format!("in grace until {} UTC", fmt_time(until)),
        TokenState::ExpiringSoon { at } => format!("expiring soon ({} UTC)", fmt_time(at)),
        TokenState::Overdue { since } => format!("overdue since {} UTC", fmt_time(since)),
    }
}

/// The badge colour class of a state (shared with the audit outcomes).
pub fn state_css(state: TokenState) -> &'static str {
    match state {
        TokenState::Active => "outcome-allowed",
        TokenState::InGrace { .. } => "",
        TokenState::ExpiringSoon { .. } => "outcome-error",
        TokenState::Overdue { .. } => "outcome-denied",
    }
}

/// A token's id in the API and in URLs: `key:12` (an app key) or `heroku:3` (a provider
/// token), so the two tables never collide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenId {
    Key(i64),
    Provider { provider: String, id: i64 },
}

impl TokenId {
    pub fn parse(s: &str) -> Option<TokenId> {
        let (kind, n) = s.split_once(':')?;
        let id: i64 = n.parse().ok().filter(|n| *n > 0)?;
        match kind {
            "key" => Some(TokenId::Key(id)),
            p if !p.is_empty() && p != "local" && p.chars().all(|c| c.is_ascii_lowercase()) => {
                Some(TokenId::Provider {
                    provider: p.to_string(),
                    id,
                })
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenId::Key(id) => write!(f, "key:{id}"),
            TokenId::Provider { provider, id } => write!(f, "{provider}:{id}"),
        }
    }
}

/// The credential a rotation replaced, while it may still work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    /// `version 1` (an app key), or the provider's authorization id.
    pub reference: String,
    pub grace_until: i64,
}

/// Where one version of a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// The credential in use now.
    Current,
    /// Replaced by a rotation, still working until its grace period ends.
    Previous,
    /// Revoked, or its grace period is over.
    Ended,
}

impl VersionState {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Current => "current",
            VersionState::Previous => "previous",
            VersionState::Ended => "ended",
        }
    }
}

/// One version of a token: one secret of an app key, or one provider authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// App keys: 1 for the first secret, one more per rotation. `None` for provider
    /// tokens (the authorization id names them).
    pub number: Option<usize>,
    pub state: VersionState,
    /// Provider tokens: the authorization id (not a secret).
    pub authorization_id: Option<String>,
    /// When it started (for a provider's previous authorization: unknown).
    pub created_at: Option<i64>,
    /// Who made it (the operator's email, or `system:<job>`).
    pub created_by: Option<String>,
    pub grace_until: Option<i64>,
    pub ended_at: Option<i64>,
    /// App keys: the last request it opened, as last flushed (`keycache.rs`).
    pub last_used_at: Option<i64>,
}

impl Version {
    /// "version 2", or the authorization id.
    pub fn label(&self) -> String {
        match (self.number, &self.authorization_id) {
            (Some(n), _) => format!("version {n}"),
            (None, Some(a)) => format!("authorization {a}"),
            (None, None) => "no authorization".into(),
        }
    }
}

/// Every version of one app key token, newest first, numbered from its first version.
/// `versions` are the token's rows in id order; `last_used` is by version id; `who`
/// turns a `created_by` into an email.
pub fn key_versions(
    versions: &[&AppKey],
    now: i64,
    last_used: &HashMap<i64, i64>,
    who: impl Fn(&str) -> String,
) -> Vec<Version> {
    let mut out: Vec<Version> = versions
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let state = if k.revoked_at.is_none() && k.grace_until.is_none() {
                VersionState::Current
            } else if k.is_live(now) {
                VersionState::Previous
            } else {
                VersionState::Ended
            };
            Version {
                number: Some(i + 1),
                state,
                authorization_id: None,
                created_at: Some(k.created_at),
                created_by: Some(who(&k.created_by)),
                grace_until: k.grace_until,
                ended_at: match state {
                    VersionState::Ended => k.revoked_at.or(k.grace_until),
                    _ => None,
                },
                last_used_at: last_used.get(&k.id).copied(),
            }
        })
        .collect();
    out.reverse();
    out
}

/// One row of the inventory.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: TokenId,
    pub app: String,
    pub name: String,
    /// `client` / `deploy` / `read` for app keys, `oauth` for Heroku authorizations.
    pub kind: String,
    pub provider: String,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    /// The operator's email, or the actor (`system:<job>`).
    pub rotated_by: Option<String>,
    pub max_age_days: Option<i64>,
    pub expires_at: Option<i64>,
    pub state: TokenState,
    pub previous: Option<Previous>,
    /// The current version first, then the previous one while it works.
    pub versions: Vec<Version>,
    /// Provider tokens: the current authorization id (not a secret).
    pub authorization_id: Option<String>,
    /// Why the console cannot rotate this token by itself, if it cannot.
    pub manual_reason: Option<String>,
    /// The last failed provider call (step and reason).
    pub last_error: Option<String>,
}

impl Token {
    /// The previous credential's grace period ended but the provider still holds it
    /// (the sweep, or "revoke previous now", deletes it).
    pub fn previous_pending(&self, now: i64) -> bool {
        self.previous.as_ref().is_some_and(|p| p.grace_until <= now)
    }

    /// "client key", "Heroku token".
    pub fn noun(&self) -> String {
        match self.id {
            TokenId::Key(_) => format!("{} key", self.kind),
            TokenId::Provider { .. } => format!("{} token", provider_label(&self.provider)),
        }
    }
}

pub fn provider_label(provider: &str) -> &str {
    match provider {
        "heroku" => "Heroku",
        "local" => "local",
        other => other,
    }
}

/// The provider tokens the config declares (provider other than `local`).
pub fn configured_tokens(cfg: &Resolved) -> Vec<ConfiguredToken> {
    cfg.config
        .apps
        .iter()
        .flat_map(|app| {
            app.tokens
                .iter()
                .filter(|t| t.provider != "local")
                .map(|t| ConfiguredToken {
                    app: app.name.clone(),
                    name: t.name.clone(),
                    provider: t.provider.clone(),
                    authorization_id: t.authorization_id.clone(),
                    max_age_days: t.max_age_days.map(i64::from),
                })
        })
        .collect()
}

/// The max age of an app key: a `provider = "local"` entry of its app named after the
/// key's name, else after its kind (`client`, `deploy`, `read`).
pub fn key_max_age(app: &AppConfig, key: &AppKey) -> Option<i64> {
    let local = || app.tokens.iter().filter(|t| t.provider == "local");
    local()
        .find(|t| t.name == key.name)
        .or_else(|| local().find(|t| t.name == key.kind.as_str()))
        .and_then(|t| t.max_age_days)
        .map(i64::from)
}

/// The inventory, per app of this console in config order. `manual` says why a provider
/// token cannot be rotated by the console (no API key, ...), by (app, name).
pub async fn build(
    state: &Console,
    now: i64,
    manual: impl Fn(&ProviderToken) -> Option<String>,
) -> Result<Vec<Token>> {
    let keys = state.store.app_keys(None).await?;
    let last_used = state.store.app_key_last_used().await?;
    let providers = state.store.provider_tokens().await?;
    let admins = state.store.admins().await?;
    let who = |actor: &str| {
        actor
            .parse::<i64>()
            .ok()
            .and_then(|id| admins.iter().find(|a| a.id == id))
            .map_or_else(|| actor.to_string(), |a| a.email.clone())
    };
    let mut out = Vec::new();
    for app in &state.cfg.config.apps {
        // App keys: one token per lineage, under the id of its first version.
        let mut tokens: BTreeMap<i64, Vec<&AppKey>> = BTreeMap::new();
        for key in keys.iter().filter(|k| k.app == app.name) {
            tokens.entry(key.token_id).or_default().push(key);
        }
        for (token_id, rows) in tokens {
            let versions = key_versions(&rows, now, &last_used, who);
            // A token every version of which was revoked is no longer in the inventory.
            let Some(current_row) = rows
                .iter()
                .rev()
                .find(|k| k.revoked_at.is_none() && k.grace_until.is_none())
            else {
                continue;
            };
            let current = versions
                .iter()
                .find(|v| v.state == VersionState::Current)
                .cloned();
            let previous_version = versions
                .iter()
                .find(|v| v.state == VersionState::Previous)
                .cloned();
            let previous = previous_version.as_ref().and_then(|v| {
                v.grace_until.map(|g| Previous {
                    reference: v.label(),
                    grace_until: g,
                })
            });
            let max_age_days = key_max_age(app, current_row);
            let rotated = current_row.rotated_from.is_some();
            out.push(Token {
                id: TokenId::Key(token_id),
                app: app.name.clone(),
                name: current_row.name.clone(),
                kind: current_row.kind.as_str().to_string(),
                provider: "local".into(),
                created_at: rows
                    .first()
                    .map_or(current_row.created_at, |k| k.created_at),
                rotated_at: rotated.then_some(current_row.created_at),
                rotated_by: rotated.then(|| who(&current_row.created_by)),
                max_age_days,
                expires_at: expires_at(current_row.created_at, max_age_days),
                state: token_state(
                    now,
                    current_row.created_at,
                    max_age_days,
                    previous.as_ref().map(|p| p.grace_until),
                ),
                previous,
                versions: current.into_iter().chain(previous_version).collect(),
                authorization_id: None,
                manual_reason: Some(
                    "an app key's new secret must be handed to the app by a person".into(),
                ),
                last_error: None,
            });
        }
        for p in providers.iter().filter(|p| {
            p.app == app.name
                && p.is_active()
                && app
                    .tokens
                    .iter()
                    .any(|t| t.name == p.name && t.provider == p.provider)
        }) {
            let previous = p
                .previous_authorization_id
                .as_ref()
                .map(|reference| Previous {
                    reference: reference.clone(),
                    grace_until: p.previous_grace_until.unwrap_or(now),
                });
            let since = p.current_since();
            let rotated_by = p.rotated_by.as_deref().map(who);
            let mut versions = vec![Version {
                number: None,
                state: VersionState::Current,
                authorization_id: p.authorization_id.clone(),
                created_at: Some(since),
                created_by: rotated_by.clone(),
                grace_until: None,
                ended_at: None,
                last_used_at: None,
            }];
            if let Some(prev) = &previous {
                versions.push(Version {
                    number: None,
                    state: VersionState::Previous,
                    authorization_id: Some(prev.reference.clone()),
                    created_at: None,
                    created_by: None,
                    grace_until: Some(prev.grace_until),
                    ended_at: None,
                    last_used_at: None,
                });
            }
            out.push(Token {
                id: TokenId::Provider {
                    provider: p.provider.clone(),
                    id: p.id,
                },
                app: app.name.clone(),
                name: p.name.clone(),
                kind: "oauth".into(),
                provider: p.provider.clone(),
                created_at: p.created_at,
                rotated_at: p.rotated_at,
                rotated_by,
                max_age_days: p.max_age_days,
                expires_at: expires_at(since, p.max_age_days),
                state: token_state(
                    now,
                    since,
                    p.max_age_days,
                    previous.as_ref().map(|p| p.grace_until),
                ),
                previous,
                versions,
                authorization_id: p.authorization_id.clone(),
                manual_reason: manual(p),
                last_error: p.last_error.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * DAY_MS;

    fn version_row(id: i64, grace_until: Option<i64>, revoked_at: Option<i64>) -> AppKey {
        AppKey {
            id,
            token_id: 1,
            app: "app".into(),
            kind: raxx_core::gate::KeyKind::Client,
            name: "client".into(),
            created_at: id * 10,
            created_by: "7".into(),
            rotated_from: (id > 1).then_some(id - 1),
            grace_until,
            revoked_at,
        }
    }

    #[test]
    fn key_versions_are_numbered_from_the_first_and_listed_newest_first() {
        // (what, the token's rows oldest first, (number, state, ended_at) newest first)
        type Case = (
            &'static str,
            Vec<AppKey>,
            Vec<(usize, VersionState, Option<i64>)>,
        );
        let cases: Vec<Case> = vec![
            (
                "never rotated",
                vec![version_row(1, None, None)],
                vec![(1, VersionState::Current, None)],
            ),
            (
                "rotated, previous in grace",
                vec![
                    version_row(1, Some(NOW + 1), None),
                    version_row(4, None, None),
                ],
                vec![
                    (2, VersionState::Current, None),
                    (1, VersionState::Previous, None),
                ],
            ),
            (
                "grace over, not yet marked by the sweep",
                vec![version_row(1, Some(NOW), None), version_row(4, None, None)],
                vec![
                    (2, VersionState::Current, None),
                    (1, VersionState::Ended, Some(NOW)),
                ],
            ),
            (
                "revoked during its grace",
                vec![
                    version_row(1, Some(NOW - 5), Some(NOW - 5)),
                    version_row(2, Some(NOW + 9), Some(NOW - 1)),
                    version_row(9, None, None),
                ],
                vec![
                    (3, VersionState::Current, None),
                    (2, VersionState::Ended, Some(NOW - 1)),
                    (1, VersionState::Ended, Some(NOW - 5)),
                ],
            ),
        ];
        let used = HashMap::from([(4, 77)]);
        for (what, rows, want) in cases {
            let refs: Vec<&AppKey> = rows.iter().collect();
            let got = key_versions(&refs, NOW, &used, |a| format!("admin {a}"));
            let short: Vec<_> = got
                .iter()
                .map(|v| (v.number.unwrap_or(0), v.state, v.ended_at))
                .collect();
            assert_eq!(short, want, "{what}");
            assert!(
                got.iter()
                    .all(|v| v.created_by.as_deref() == Some("admin 7"))
            );
            for v in &got {
                let row = &rows[v.number.unwrap_or(1) - 1];
                assert_eq!(v.last_used_at, used.get(&row.id).copied(), "{what}");
            }
        }
    }

    #[test]
    fn ids_tell_keys_from_provider_tokens() {
        let cases: [(&str, Option<TokenId>); 8] = [
            ("key:12", Some(TokenId::Key(12))),
            (
                "heroku:3",
                Some(TokenId::Provider {
                    provider: "heroku".into(),
                    id: 3,
                }),
            ),
            ("key:0", None),
            ("key:-1", None),
            ("12", None),
            ("local:1", None),
            (":1", None),
            ("HEROKU:1", None),
        ];
        for (raw, want) in cases {
            let got = TokenId::parse(raw);
            assert_eq!(got, want, "{raw}");
            if let Some(id) = got {
                assert_eq!(id.to_string(), raw);
            }
        }
    }
}
