//! The OpenFeature Remote Evaluation Protocol wire format (open-feature/protocol,
//! `service/openapi.yaml`): request and response bodies, the status code of each outcome,
//! and the ETag of a bulk evaluation.
//!
//! Decisions:
//! - A disabled flag answers `200` with reason `DISABLED` and the *default variant's value*.
//!   Every OFREP provider understands a typed `value`; the protocol's newer `codeDefaultFlag`
//!   (no `value`: "use your code default") is representable here (`value: None`) but not
//!   produced, so what a killed flag serves is decided and shown by the console.
//! - When rules exist and none matched, the reason is `STATIC` (OFREP's enum has no
//!   OpenFeature `DEFAULT`; see [`wire_reason`]).
//! - Single evaluation: `404` for `FLAG_NOT_FOUND`; `400` for `PARSE_ERROR`,
//!   `INVALID_CONTEXT`, `TARGETING_KEY_MISSING`; `500` for `TYPE_MISMATCH` and `GENERAL`,
//!   which only corrupt stored state can cause. Bulk evaluation: `200` with per-flag failures
//!   in `flags`, or `400` with [`BulkEvaluationFailure`] when the request itself is bad.
//! - Bulk evaluation sends a per-flag `TYPE_MISMATCH` as `GENERAL` (OFREP's
//!   `evaluationFailure` enum has no `TYPE_MISMATCH`); single evaluation answers it with 500,
//!   whose body OFREP leaves open (`generalErrorResponse`).
//! - A `float` flag's value is always a JSON float (`1.0`, never `1`): [`served_value`].
//! - Bulk ETag = hash of (flag-state ETag, canonical request context): the same flags with
//!   another context evaluate differently, so a provider that changed context must not get
//!   a `304` for its old answers.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::diff::{canonical_json, canonical_object, to_value};
use super::eval::{ErrorCode, Evaluation, EvaluationContext, EvaluationError, evaluate};
use super::model::{AppFlags, FlagType};

/// Body of both evaluation endpoints: `{"context": {...}}`; `targetingKey` is in the context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRequest {
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub context: Value,
}

/// Reads a request body into a context. An empty body is the empty context; invalid JSON is
/// `PARSE_ERROR`; a non-object context or non-string `targetingKey` is `INVALID_CONTEXT`.
pub fn parse_request(body: &[u8]) -> Result<EvaluationContext, EvaluationError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EvaluationContext::default());
    }
    let request: EvaluationRequest = serde_json::from_slice(body).map_err(|e| {
        EvaluationError::new(
            ErrorCode::ParseError,
            format!("the request body is not an evaluation request: {e}"),
        )
    })?;
    EvaluationContext::from_value(request.context)
}

/// `evaluationSuccess`. Borrowed when built from a flag, owned when deserialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationSuccess<'a> {
    pub key: Cow<'a, str>,
    /// `None` is OFREP's `codeDefaultFlag`: the provider uses the caller's code default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, Value>>,
    pub reason: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Cow<'a, str>>,
    /// Values must be booleans, strings or numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `evaluationFailure` (and `flagNotFound`): `{key, errorCode, errorDetails}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationFailure<'a> {
    pub key: Cow<'a, str>,
    pub error_code: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
}

/// One flag's answer: the single-evaluation body, and an item of a bulk answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlagResult<'a> {
    Success(EvaluationSuccess<'a>),
    Failure(EvaluationFailure<'a>),
}

/// The reason as OFREP's definition spells it. Its enum (`STATIC`, `TARGETING_MATCH`,
/// `SPLIT`, `DISABLED`, `UNKNOWN`) has no `DEFAULT`: "rules exist, none matched, the default
/// variant was served" goes out as `STATIC` — the flag's own configured value, no rule
/// applied. The playground keeps the finer `DEFAULT`.
pub fn wire_reason(r: super::eval::Reason) -> &'static str {
    match r {
        super::eval::Reason::Default => "STATIC",
        other => other.as_str(),
    }
}

impl<'a> FlagResult<'a> {
    fn from_evaluation(
        key: &'a str,
        flag_type: FlagType,
        outcome: Result<Evaluation<'a>, EvaluationError>,
    ) -> Self {
        match outcome {
            Ok(e) => FlagResult::Success(EvaluationSuccess {
                key: Cow::Borrowed(key),
                value: Some(served_value(flag_type, e.value)),
                reason: Cow::Borrowed(wire_reason(e.reason)),
                variant: Some(Cow::Borrowed(e.variant)),
                metadata: None,
            }),
            Err(e) => FlagResult::failure(key, e),
        }
    }

    fn failure(key: &'a str, error: EvaluationError) -> Self {
        FlagResult::Failure(EvaluationFailure {
            key: Cow::Borrowed(key),
            error_code: error.code,
            error_details: Some(error.details),
        })
    }

    /// Set the `metadata` of a success (OpenFeature's `flagMetadata`); failures carry none.
    pub fn set_metadata(&mut self, metadata: Map<String, Value>) {
        if let FlagResult::Success(s) = self {
            s.metadata = Some(metadata);
        }
    }

    pub fn key(&self) -> &str {
        match self {
            FlagResult::Success(s) => &s.key,
            FlagResult::Failure(f) => &f.key,
        }
    }

    /// The status of a single-flag evaluation answering with this body.
    pub fn http_status(&self) -> u16 {
        match self {
            FlagResult::Success(_) => 200,
            FlagResult::Failure(f) => f.error_code.http_status(),
        }
    }
}

impl ErrorCode {
    /// The status of a single-flag evaluation failing with this code (see module docs).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::FlagNotFound => 404,
            ErrorCode::ParseError | ErrorCode::TargetingKeyMissing | ErrorCode::InvalidContext => {
                400
            }
            ErrorCode::TypeMismatch | ErrorCode::General => 500,
        }
    }
}

/// `bulkEvaluationSuccess`: every flag of the app, in key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkEvaluationSuccess<'a> {
    pub flags: Vec<FlagResult<'a>>,
}

/// `bulkEvaluationFailure`: the request as a whole was bad (status 400).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkEvaluationFailure {
    pub error_code: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
}

impl From<EvaluationError> for BulkEvaluationFailure {
    fn from(e: EvaluationError) -> Self {
        BulkEvaluationFailure {
            error_code: e.code,
            error_details: Some(e.details),
        }
    }
}

/// The value as served: a `float` flag's whole-number variant (`1` in the file) goes out as
/// a JSON float (`1.0`), so a strictly typed SDK reading a float never sees an integer.
pub fn served_value(flag_type: FlagType, value: &Value) -> Cow<'_, Value> {
    if flag_type == FlagType::Float
        && let Value::Number(n) = value
        && !n.is_f64()
        && let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64)
    {
        return Cow::Owned(Value::Number(f));
    }
    Cow::Borrowed(value)
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub fn evaluate_flag<'a>(
    app_flags: &'a AppFlags,
    key: &'a str,
    ctx: &EvaluationContext,
) -> FlagResult<'a> {
    match app_flags.flags.get_key_value(key) {
        Some((key, flag)) => FlagResult::from_evaluation(key, flag.flag_type, evaluate(flag, ctx)),
        None => FlagResult::failure(
            key,
            EvaluationError::new(
                ErrorCode::FlagNotFound,
                format!("flag `{key}` was not found"),
            ),
        ),
    }
}

/// `POST /ofrep/v1/evaluate/flags`.
pub fn evaluate_all<'a>(
    app_flags: &'a AppFlags,
    ctx: &EvaluationContext,
) -> BulkEvaluationSuccess<'a> {
    let flags = app_flags
        .flags
        .iter()
        .map(|(key, flag)| {
            let mut result = FlagResult::from_evaluation(key, flag.flag_type, evaluate(flag, ctx));
            // OFREP's `evaluationFailure` has no TYPE_MISMATCH (the server cannot know the
            // type the caller wants); the stored-state fault it stands for is GENERAL here.
            if let FlagResult::Failure(f) = &mut result
                && f.error_code == ErrorCode::TypeMismatch
            {
                f.error_code = ErrorCode::General;
            }
            result
        })
        .collect();
    BulkEvaluationSuccess { flags }
}

/// Strong ETag of an app's flag state: `"` + 32 hex digits of SHA-256 over its canonical
/// JSON + `"`. It changes exactly when the state does; compute it once per state change
/// (it serializes every flag), not per request.
pub fn etag_for(app_flags: &AppFlags) -> String {
    quoted_hash(&[canonical_json(&to_value(app_flags)).as_bytes()])
}

/// Strong ETag of a bulk evaluation: the state's [`etag_for`] plus the canonical context.
pub fn bulk_etag(flags_etag: &str, ctx: &EvaluationContext) -> String {
    let context = canonical_object(ctx.attributes());
    quoted_hash(&[flags_etag.as_bytes(), b"\n", context.as_bytes()])
}

fn quoted_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    format!("\"{}\"", &hex::encode(hasher.finalize())[..32])
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, RFC 9110 §13.1.2):
/// `*`, or any listed entity tag with the same opaque value, `W/` or not.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let want = opaque(etag);
    let mut rest = header.trim();
    if rest == "*" {
        return true;
    }
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(inner) = tag.strip_prefix('"') else {
            return false;
        };
        let Some(end) = inner.find('"') else {
            return false;
        };
        if Some(&inner[..end]) == want {
            return true;
        }
        rest = &inner[end + 1..];
    }
}

fn opaque(etag: &str) -> Option<&str> {
    let tag = etag.strip_prefix("W/").unwrap_or(etag);
    tag.strip_prefix('"')?.strip_suffix('"')
}

#[cfg(test)]
mod tests;
