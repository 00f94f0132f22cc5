//! Who else depends on a token (issue 17). The prod console reads staging's flags for
//! "New promotion" with a `read` key of the staging app (its `staging_source_key`, SPEC
//! §7): rotating that key on staging breaks prod once the grace period ends, unless prod's
//! config gets the new secret first. Staging's config does not say which read key prod
//! holds, so every `read` key of a staging console carries the warning, before the
//! rotation (confirm page) and after it (the result and the JSON answer).

use raxx_core::Env;
use raxx_core::gate::KeyKind;
use raxx_store::keys::AppKey;

use crate::console::Console;

/// The console that depends on keys of `kind` on a console of `env`, if any.
pub fn dependent(env: Env, kind: KeyKind) -> Option<Env> {
    match (env, kind) {
        (Env::Staging, KeyKind::Read) => Some(Env::Prod),
        _ => None,
    }
}

/// The warning for rotating `key` on this console, if another console depends on it.
pub fn notice(state: &Console, key: &AppKey) -> Option<String> {
    warning(state.env(), key.kind, &key.app)
}

/// "The prod console reads …": the words, for a key of `kind` of `app` on `env`.
pub fn warning(env: Env, kind: KeyKind, app: &str) -> Option<String> {
    dependent(env, kind).map(|other| {
        format!(
            "The {other} console reads {app}'s flags with a read key of this app (its staging_source_key). If it uses this key, put the new secret into the {other} config's staging_source_key and restart it before the grace period ends; otherwise \"New promotion\" on {other} stops working when the previous version ends."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_staging_read_keys_have_a_dependent_console() {
        for env in [Env::Staging, Env::Prod] {
            for kind in [KeyKind::Client, KeyKind::Deploy, KeyKind::Read] {
                let want = (env == Env::Staging && kind == KeyKind::Read).then_some(Env::Prod);
                assert_eq!(dependent(env, kind), want, "{env} {kind:?}");
                assert_eq!(warning(env, kind, "a").is_some(), want.is_some());
            }
        }
        let w = warning(Env::Staging, KeyKind::Read, "raxx-api-staging").unwrap_or_default();
        assert!(
            w.contains("staging_source_key") && w.contains("prod"),
            "{w}"
        );
    }
}
