//! The one error of the use cases. Each carries a stable code ([`Error::code`]) and, for
//! refusals, a [`Kind`] that says what sort of refusal it is; the web layer maps the two
//! to a status once (`raxx_web::kernel::error`), jobs and the CLI print the message.

use raxx_core::gate::Denial;
use raxx_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gate refused (already audited).
    #[error("{}", .0.message())]
    Denied(Denial),
    /// Input that does not validate: says what to fix.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A refusal with a stable code (`stale`, `self_approval`, `provider_timeout`, ...).
    #[error("{message}")]
    Conflict {
        kind: Kind,
        code: &'static str,
        message: String,
    },
    #[error("the database is unavailable; nothing was changed: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What sort of refusal an [`Error::Conflict`] is: the state forbids it, the input is
/// too large, a service the console depends on failed, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The object's state forbids it now (a pending grace period, a stale review).
    Conflict,
    /// The request as a whole is malformed for this action.
    BadRequest,
    /// The caller may not, for a reason beyond the gate (no passkey yet).
    Forbidden,
    /// What the caller points at does not exist (or no longer does).
    Gone,
    /// The input is larger than this action takes.
    TooLarge,
    /// The input's format is not one this action reads.
    Unsupported,
    /// The input parses but has the wrong shape for this action.
    Unprocessable,
    /// Too many attempts; try again later.
    Throttled,
    /// The console's own setup forbids it (a provider without credentials).
    Misconfigured,
    /// A service the console depends on answered with an error.
    Upstream,
    /// A service the console depends on did not answer in time.
    UpstreamTimeout,
    /// The console cannot change anything now (read-only or full database, a source down).
    Unavailable,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// The stable code of the `{"error","message"}` envelope and of audit rows.
    pub fn code(&self) -> &str {
        match self {
            Error::Denied(d) => d.code(),
            Error::Invalid(_) => "invalid",
            Error::NotFound(_) => "not_found",
            Error::Conflict { code, .. } => code,
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Error::NotFound(format!("{what} was not found")),
            StoreError::Conflict(m) => Error::Conflict {
                kind: Kind::Conflict,
                code: "conflict",
                message: m,
            },
            StoreError::Invalid(m) => Error::Invalid(m),
            e if e.is_unavailable() => Error::Unavailable("the database did not answer".into()),
            e if e.is_read_only() => Error::Conflict {
                kind: Kind::Unavailable,
                code: "read_only",
                message: "the database is read-only: reads work, changes are refused; nothing was changed".into(),
            },
            e if e.is_storage_full() => {
                tracing::error!(error = %e, "the database has no space left");
                Error::Conflict {
                    kind: Kind::Unavailable,
                    code: "storage_full",
                    message: "the database has no space left: reads work, changes are refused until space is freed; nothing was changed".into(),
                }
            }
            e if e.is_bad_input() => Error::Invalid(
                "the request holds a value the database cannot store (such as a NUL character); nothing was changed".into(),
            ),
            other => {
                tracing::error!(error = %other, "store error");
                Error::Internal("a storage error occurred; nothing was changed".into())
            }
        }
    }
}
