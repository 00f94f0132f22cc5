//! Dual-phase rotation of a provider secret (SPEC §8), independent of the provider:
//! create the new credential, publish it, and undo the creation if publishing fails.
//! Revoking the previous credential is a separate call, made after the grace period.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::{ProviderError, Step};
use crate::secret::Secret;

/// What a [`TokenProvider`] method returns: boxed so the trait stays usable as
/// `dyn TokenProvider` (one provider per token, chosen from config at run time).
pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// A secret provider that supports dual-phase rotation.
///
/// Contract:
/// - `create` makes a new credential and changes nothing else;
/// - `publish` writes the secret to every configured place, or, on failure, puts back
///   what it had already written (listing in `ProviderError::left_behind` what it could
///   not put back);
/// - `revoke` deletes a credential; one that is already gone is `Revocation::AlreadyGone`,
///   so revoking is safe to retry.
pub trait TokenProvider: Send + Sync {
    /// For messages: "Heroku".
    fn name(&self) -> &'static str;
    fn create<'a>(&'a self, spec: &'a TokenSpec) -> ProviderFuture<'a, NewCredential>;
    fn publish<'a>(&'a self, spec: &'a TokenSpec, secret: &'a Secret) -> ProviderFuture<'a, ()>;
    fn revoke<'a>(&'a self, authorization_id: &'a str) -> ProviderFuture<'a, Revocation>;
}

/// One place a token is written to: a config var of a Heroku app.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigVarTarget {
    pub app: String,
    pub var: String,
}

impl ConfigVarTarget {
    pub fn new(app: impl Into<String>, var: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            var: var.into(),
        }
    }
}

impl fmt::Display for ConfigVarTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.app, self.var)
    }
}

/// A provider token as configured (`[[apps.tokens]]`), without any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    /// The token's name in the inventory: "deploy-bot".
    pub name: String,
    /// The authorization in use now. Kept by `rotate`; its scope is copied when `scope`
    /// is `None`.
    pub current_authorization_id: Option<String>,
    /// The scope for the new authorization; `None` means "the same as the current one".
    pub scope: Option<Vec<String>>,
    /// Where the token is written.
    pub config_vars: Vec<ConfigVarTarget>,
}

/// A freshly created credential. `Debug` shows the id, never the secret.
#[derive(Debug)]
pub struct NewCredential {
    pub authorization_id: String,
    pub secret: Secret,
    /// The description the provider stored with it, which names the token.
    pub description: String,
    /// Seconds until the provider expires it; `None` for no expiry.
    pub expires_in: Option<u64>,
}

/// How a revocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Deleted,
    /// The provider no longer knew the credential (revoked earlier, or by hand).
    AlreadyGone,
}

/// A completed rotation: the new authorization is live and published, the previous one
/// still works until `revoke_previous`. Holds ids only, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub token_name: String,
    pub new_authorization_id: String,
    /// To revoke after the grace period.
    pub previous_authorization_id: Option<String>,
    pub published_to: Vec<ConfigVarTarget>,
    pub expires_in: Option<u64>,
}

/// What `rotate` did to undo a failed rotation.
#[derive(Debug, Clone)]
pub enum Compensation {
    /// Step 1 failed: no new credential was made.
    NothingToUndo,
    /// Step 2 failed and the new authorization was deleted again.
    NewAuthorizationDeleted { authorization_id: String },
    /// Step 2 failed and deleting the new authorization failed too: it is still live and
    /// must be deleted by hand.
    NewAuthorizationKept {
        authorization_id: String,
        error: ProviderError,
    },
}

/// A failed rotation: the step that failed and what was done about it.
#[derive(Debug, Clone)]
pub struct RotationFailure {
    pub error: ProviderError,
    pub compensation: Compensation,
}

impl RotationFailure {
    pub fn step(&self) -> Step {
        self.error.step
    }

    /// True when the provider is exactly as before the rotation: the previous
    /// authorization, the config vars, and no new authorization left live.
    pub fn changed_nothing(&self) -> bool {
        self.error.left_behind.is_empty()
            && !matches!(self.compensation, Compensation::NewAuthorizationKept { .. })
    }
}

impl fmt::Display for RotationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rotation failed at {}", self.error)?;
        match &self.compensation {
            Compensation::NothingToUndo => {}
            Compensation::NewAuthorizationDeleted { authorization_id } => {
                write!(
                    f,
                    ". The new authorization {authorization_id} was deleted again"
                )?;
            }
            Compensation::NewAuthorizationKept {
                authorization_id,
                error,
            } => write!(
                f,
                ". The new authorization {authorization_id} could NOT be deleted again ({}): delete it by hand",
                error.reason()
            )?,
        }
        if self.changed_nothing() {
            write!(
                f,
                ". Nothing was changed: the previous authorization and the config vars are as they were"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RotationFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Steps 1 and 2 of a rotation, with compensation: if publishing fails, the new
/// authorization is deleted so nothing is left half-done. The previous authorization is
/// not touched; revoke it with [`TokenProvider::revoke`] after the grace period.
pub async fn rotate<P: TokenProvider + ?Sized>(
    provider: &P,
    spec: &TokenSpec,
) -> Result<Rotated, RotationFailure> {
    let created = provider.create(spec).await.map_err(|error| {
        tracing::warn!(token = %spec.name, %error, "token rotation failed");
        RotationFailure {
            error,
            compensation: Compensation::NothingToUndo,
        }
    })?;

    if let Err(error) = provider.publish(spec, &created.secret).await {
        let authorization_id = created.authorization_id.clone();
        // Fail secure: a credential nobody records must not stay live.
        let compensation = match provider.revoke(&authorization_id).await {
            Ok(_) => Compensation::NewAuthorizationDeleted { authorization_id },
            Err(undo) => Compensation::NewAuthorizationKept {
                authorization_id,
                // `revoke` never saw the new secret, so it could not scrub it itself.
                error: undo.scrub(&created.secret),
            },
        };
        let failure = RotationFailure {
            error: error.scrub(&created.secret),
            compensation,
        };
        tracing::warn!(token = %spec.name, error = %failure, "token rotation failed");
        return Err(failure);
    }

    tracing::info!(
        token = %spec.name,
        new_authorization = %created.authorization_id,
        "token rotated; previous authorization kept for the grace period"
    );
    Ok(Rotated {
        token_name: spec.name.clone(),
        new_authorization_id: created.authorization_id,
        previous_authorization_id: spec.current_authorization_id.clone(),
        published_to: spec.config_vars.clone(),
        expires_in: created.expires_in,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::error::ErrorKind;

    /// A provider whose steps succeed or fail as told, recording the calls made.
    struct Scripted {
        create_fails: bool,
        publish_fails: bool,
        revoke_fails: bool,
        calls: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(create_fails: bool, publish_fails: bool, revoke_fails: bool) -> Self {
            Self {
                create_fails,
                publish_fails,
                revoke_fails,
                calls: Mutex::new(Vec::new()),
            }
        }

        fn outcome<T>(
            &self,
            call: String,
            step: Step,
            fails: bool,
            ok: T,
        ) -> Result<T, ProviderError> {
            self.calls.lock().expect("test mutex").push(call);
            if fails {
                Err(ProviderError::new(
                    "Test",
                    step,
                    "x",
                    ErrorKind::Http {
                        status: 500,
                        message: "boom".into(),
                    },
                ))
            } else {
                Ok(ok)
            }
        }
    }

    impl TokenProvider for Scripted {
        fn name(&self) -> &'static str {
            "Test"
        }
        fn create<'a>(&'a self, _: &'a TokenSpec) -> ProviderFuture<'a, NewCredential> {
            let new = NewCredential {
                authorization_id: "new".into(),
                secret: Secret::new("s3cr3t"),
                description: "d".into(),
                expires_in: None,
            };
            Box::pin(std::future::ready(self.outcome(
                "create".into(),
                Step::Create,
                self.create_fails,
                new,
            )))
        }
        fn publish<'a>(&'a self, _: &'a TokenSpec, _: &'a Secret) -> ProviderFuture<'a, ()> {
            Box::pin(std::future::ready(self.outcome(
                "publish".into(),
                Step::Publish,
                self.publish_fails,
                (),
            )))
        }
        fn revoke<'a>(&'a self, id: &'a str) -> ProviderFuture<'a, Revocation> {
            Box::pin(std::future::ready(self.outcome(
                format!("revoke {id}"),
                Step::Revoke,
                self.revoke_fails,
                Revocation::Deleted,
            )))
        }
    }

    fn spec() -> TokenSpec {
        TokenSpec {
            name: "deploy-bot".into(),
            current_authorization_id: Some("old".into()),
            scope: None,
            config_vars: vec![ConfigVarTarget::new("app", "VAR")],
        }
    }

    #[tokio::test]
    async fn rotation_compensates_exactly_when_publishing_fails() {
        // (create fails, publish fails, revoke fails) -> calls made, failed step, changed nothing
        type Case = (
            (bool, bool, bool),
            &'static [&'static str],
            Option<Step>,
            bool,
        );
        let cases: [Case; 4] = [
            ((false, false, false), &["create", "publish"], None, true),
            ((true, false, false), &["create"], Some(Step::Create), true),
            (
                (false, true, false),
                &["create", "publish", "revoke new"],
                Some(Step::Publish),
                true,
            ),
            (
                (false, true, true),
                &["create", "publish", "revoke new"],
                Some(Step::Publish),
                false,
            ),
        ];
        for ((c, p, r), want_calls, want_step, unchanged) in cases {
            let provider = Scripted::new(c, p, r);
            let result = rotate(&provider as &dyn TokenProvider, &spec()).await;
            let calls = provider.calls.lock().expect("test mutex").clone();
            assert_eq!(calls, want_calls, "case {c} {p} {r}");
            match (result, want_step) {
                (Ok(rotated), None) => {
                    assert_eq!(rotated.new_authorization_id, "new");
                    assert_eq!(rotated.previous_authorization_id.as_deref(), Some("old"));
                }
                (Err(failure), Some(step)) => {
                    assert_eq!(failure.step(), step);
                    assert_eq!(failure.changed_nothing(), unchanged, "{failure}");
                    assert!(!format!("{failure} {failure:?}").contains("s3cr3t"));
                }
                (other, _) => panic!("case {c} {p} {r}: unexpected {other:?}"),
            }
        }
    }
}
