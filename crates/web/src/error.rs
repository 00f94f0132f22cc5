//! One error type for handlers. It answers JSON `{"error","message"}`; for page routes
//! the gate middleware turns that answer into an HTML page with the same words.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    /// A state conflict with a stable code (`stale`, `self_approval`, ...).
    #[error("{message}")]
    Conflict {
        status: u16,
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
            AppError::Conflict { status, code, .. } => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::CONFLICT),
                code,
            ),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(format!("{what} was not found")),
            StoreError::Conflict(m) => AppError::Conflict {
                status: 409,
                code: "conflict",
                message: m,
            },
            StoreError::Invalid(m) => AppError::Invalid(m),
            e if e.is_unavailable() => AppError::Unavailable("the database did not answer".into()),
            e if e.is_read_only() => AppError::Conflict {
                status: 503,
                code: "read_only",
                message: "the database is read-only: reads work, changes are refused; nothing was changed".into(),
            },
            e if e.is_storage_full() => {
                tracing::error!(error = %e, "the database has no space left");
                AppError::Conflict {
                    status: 503,
                    code: "storage_full",
                    message: "the database has no space left: reads work, changes are refused until space is freed; nothing was changed".into(),
                }
            }
            e if e.is_bad_input() => AppError::Invalid(
                "the request holds a value the database cannot store (such as a NUL character); nothing was changed".into(),
            ),
            other => {
                tracing::error!(error = %other, "store error");
                AppError::Internal("a storage error occurred; nothing was changed".into())
            }
        }
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
