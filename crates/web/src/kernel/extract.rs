//! Extractors whose rejection is the console's error: a JSON body that does not parse is a
//! `400 {"error":"invalid","message"}` (or 415 / 413) like every other refusal, never
//! axum's plain-text rejection.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::{AppError, Kind, rejection_code};

/// Largest request body anywhere (a flags file is the largest thing we accept); the
/// router refuses a larger one with 413 before any extractor reads it.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON request body of type `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(rejected(rejection)),
        }
    }
}

fn rejected(rejection: JsonRejection) -> AppError {
    let message = rejection.body_text();
    let status = rejection.status().as_u16();
    let kind = match status {
        413 => Kind::TooLarge,
        415 => Kind::Unsupported,
        // JSON of the wrong shape: the status says so, the code is `invalid`.
        422 => Kind::Unprocessable,
        _ => return AppError::Invalid(message),
    };
    AppError::Conflict {
        kind,
        code: rejection_code(status),
        message,
    }
}
