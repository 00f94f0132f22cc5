//! One error type for handlers. It answers JSON `{"error","message"}`; for page routes
//! the gate middleware turns that answer into an HTML page with the same words.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use raxx_actions::Kind;
use raxx_core::gate::Denial;
use raxx_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}", .0.message())]
    Denied(Denial),
    /// Input that does not validate: says what to fix.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A refusal with a stable code (`stale`, `self_approval`, ...) and its [`Kind`].
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

/// Attached to error responses so the page layer can render them.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl AppError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        AppError::Invalid(msg.into())
    }

    pub fn parts(&self) -> (StatusCode, &str) {
        match self {
            AppError::Denied(d) => (
                StatusCode::from_u16(d.status()).unwrap_or(StatusCode::FORBIDDEN),
                d.code(),
            ),
            AppError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict { kind, code, .. } => (status_of(*kind), code),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        raxx_actions::Error::from(e).into()
    }
}

/// The use cases' error as HTTP: the one place a [`Kind`] becomes a status.
impl From<raxx_actions::Error> for AppError {
    fn from(e: raxx_actions::Error) -> Self {
        use raxx_actions::Error as E;
        match e {
            E::Denied(d) => AppError::Denied(d),
            E::Invalid(m) => AppError::Invalid(m),
            E::NotFound(m) => AppError::NotFound(m),
            E::Conflict {
                kind,
                code,
                message,
            } => AppError::Conflict {
                kind,
                code,
                message,
            },
            E::Unavailable(m) => AppError::Unavailable(m),
            E::Internal(m) => AppError::Internal(m),
        }
    }
}

/// The code of an extractor's rejection (a body, path or query axum could not read), by its
/// status: what the gate's envelope and [`super::extract::ApiJson`] both answer.
pub fn rejection_code(status: u16) -> &'static str {
    match status {
        413 => "too_large",
        415 => "unsupported_media_type",
        _ => "invalid",
    }
}

/// The status of a refusal of each kind.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::BadRequest => StatusCode::BAD_REQUEST,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::Gone => StatusCode::NOT_FOUND,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Throttled => StatusCode::TOO_MANY_REQUESTS,
        Kind::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
        Kind::Upstream => StatusCode::BAD_GATEWAY,
        Kind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = self.to_string();
        let info = ErrorInfo {
            status,
            code: code.to_string(),
            message: message.clone(),
        };
        let mut resp = (
            status,
            Json(serde_json::json!({ "error": code, "message": message })),
        )
            .into_response();
        resp.extensions_mut().insert(info);
        resp
    }
}

pub type AppResult<T> = Result<T, AppError>;
