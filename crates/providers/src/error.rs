//! One error type for every provider call: which step failed, against what, and why,
//! worded so an operator can act on it.

use std::fmt;

use crate::secret::Secret;

/// The three steps of a dual-phase rotation (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// 1. create the new credential.
    Create,
    /// 2. write it where the apps read it.
    Publish,
    /// 3. revoke a credential (the previous one after the grace period, or a new one
    ///    being undone).
    Revoke,
}

impl Step {
    pub fn number(self) -> u8 {
        match self {
            Step::Create => 1,
            Step::Publish => 2,
            Step::Revoke => 3,
        }
    }

    /// "step 2 (write config vars to raxx-api-staging)".
    pub fn label(self, target: &str) -> String {
        let what = match self {
            Step::Create => format!("create a new authorization for {target}"),
            Step::Publish => format!("write config vars to {target}"),
            Step::Revoke => format!("delete authorization {target}"),
        };
        format!("step {} ({what})", self.number())
    }
}

/// Why a provider call failed. Messages never carry secret values: the provider scrubs
/// them before building the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// No answer within the request timeout. The call may or may not have taken effect.
    Timeout,
    /// The provider answered with a non-success status.
    Http { status: u16, message: String },
    /// A success status with a body of the wrong shape (not JSON, a field missing).
    BadResponse(String),
    /// The request did not get through (DNS, connection refused, TLS).
    Network(String),
    /// The token's configuration cannot work (no config vars, no scope, bad base URL).
    Config(String),
}

/// A failed provider call.
#[derive(Debug, Clone)]
pub struct ProviderError {
    /// Who we were talking to, for messages: "Heroku".
    pub provider: &'static str,
    pub step: Step,
    /// What the step acted on: the token name (create), the app (publish), the
    /// authorization id (revoke).
    pub target: String,
    pub kind: ErrorKind,
    /// Changes this step made and could not undo (or may have made, on a timeout), in
    /// words an operator can act on. Empty when the step left nothing behind.
    pub left_behind: Vec<String>,
}

impl ProviderError {
    pub fn new(
        provider: &'static str,
        step: Step,
        target: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        Self {
            provider,
            step,
            target: target.into(),
            kind,
            left_behind: Vec::new(),
        }
    }

    /// The HTTP status the provider answered with, if it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Http { status, .. } => Some(status),
            _ => None,
        }
    }

    /// Cut `secret` out of every message this error carries.
    pub fn scrub(mut self, secret: &Secret) -> Self {
        match &mut self.kind {
            ErrorKind::Http { message: text, .. }
            | ErrorKind::BadResponse(text)
            | ErrorKind::Network(text)
            | ErrorKind::Config(text) => *text = secret.scrub(text),
            ErrorKind::Timeout => {}
        }
        for item in &mut self.left_behind {
            *item = secret.scrub(item);
        }
        self
    }

    /// The cause without the step label: "Heroku answered 422: ...".
    pub fn reason(&self) -> String {
        let p = self.provider;
        match &self.kind {
            ErrorKind::Timeout => format!("no answer from {p} before the request timeout"),
            ErrorKind::Http {
                status: 401,
                message,
            } => format!(
                "{p} answered 401: the API key was rejected, check the configured key ({message})"
            ),
            ErrorKind::Http {
                status: 403,
                message,
            } => format!("{p} answered 403: the API key is not allowed to do this ({message})"),
            ErrorKind::Http {
                status: 429,
                message,
            } => {
                format!("{p} answered 429: rate limited, try again later ({message})")
            }
            ErrorKind::Http { status, message } => format!("{p} answered {status}: {message}"),
            ErrorKind::BadResponse(why) => format!("{p}'s answer was not understood: {why}"),
            ErrorKind::Network(why) => format!("could not reach {p}: {why}"),
            ErrorKind::Config(why) => format!("configuration problem: {why}"),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step.label(&self.target), self.reason())?;
        if !self.left_behind.is_empty() {
            write!(f, "; left behind: {}", self.left_behind.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_step_the_target_and_the_answer() {
        let e = ProviderError::new(
            "Heroku",
            Step::Publish,
            "raxx-api-staging",
            ErrorKind::Http {
                status: 422,
                message: "Invalid params (invalid_params)".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "step 2 (write config vars to raxx-api-staging): Heroku answered 422: Invalid params (invalid_params)"
        );
        assert_eq!(e.status(), Some(422));
    }

    #[test]
    fn every_step_has_its_number_and_action() {
        let cases = [
            (
                Step::Create,
                "deploy-bot",
                "step 1 (create a new authorization for deploy-bot)",
            ),
            (Step::Publish, "app", "step 2 (write config vars to app)"),
            (Step::Revoke, "abc", "step 3 (delete authorization abc)"),
        ];
        for (step, target, want) in cases {
            assert_eq!(step.label(target), want);
        }
    }

    #[test]
    fn unauthorized_says_to_check_the_key_and_left_behind_is_listed() {
        let mut e = ProviderError::new(
            "Heroku",
            Step::Create,
            "deploy-bot",
            ErrorKind::Http {
                status: 401,
                message: "Invalid credentials provided. (unauthorized)".into(),
            },
        );
        assert!(e.to_string().contains("API key was rejected"), "{e}");
        e.left_behind.push("X still holds the new token".into());
        assert!(
            e.to_string()
                .ends_with("; left behind: X still holds the new token"),
            "{e}"
        );
    }
}
