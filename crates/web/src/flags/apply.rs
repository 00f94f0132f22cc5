//! Staging flags are config: a flags file replaces an app's whole flag state in one
//! transaction (`PUT /api/v1/apps/{app}/flags` with a deploy key, or
//! `raxx-console flags apply FILE`), and `GET /api/v1/apps/{app}/flags` returns the
//! definitions with versions (what the prod console promotes from).

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use raxx_core::audit::Outcome;
use raxx_core::flags::{FileFormat, FlagChange};
use raxx_store::flags::FlagState;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use raxx_actions::flags::{ApplyError, apply_flags_file};

use super::{authorize_app, known_app};
use crate::kernel::apidoc::AnyJson;
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::extract::BODY_LIMIT;
use crate::kernel::state::AppState;
use raxx_actions::Kind;

/// A flag's key and version.
#[derive(Serialize, ToSchema)]
pub struct FlagVersion {
    pub key: String,
    pub version: i64,
}

/// The answer to an apply: what changed and the versions now.
#[derive(Serialize, ToSchema)]
pub struct Applied {
    pub app: String,
    pub revision: i64,
    /// how many flags changed
    pub changed: usize,
    /// each change (`key`, `change`, the definitions before and after)
    #[schema(value_type = AnyJson)]
    pub diff: Value,
    pub flags: Vec<FlagVersion>,
}

/// The JSON answer to an apply: what changed and the versions now.
pub fn applied_json(app: &str, changes: &[FlagChange], state: &FlagState) -> Applied {
    Applied {
        app: app.to_string(),
        revision: state.revision,
        changed: changes.len(),
        diff: json!(changes),
        flags: state
            .flags
            .iter()
            .map(|(k, s)| FlagVersion {
                key: k.clone(),
                version: s.version,
            })
            .collect(),
    }
}

/// A flags file refused: the first problem, with its line.
#[derive(Serialize, ToSchema)]
pub struct FileRefused {
    /// `invalid_flags_file`
    pub error: &'static str,
    pub message: String,
    pub line: Option<usize>,
    pub flag: Option<String>,
    pub reason: String,
}

/// The flags file, sent as `PUT /api/v1/apps/{app}/flags`'s body: JSON (the default),
/// `application/toml` or `application/yaml` (docs/flags.md).
pub struct FlagsFile;

impl utoipa::PartialSchema for FlagsFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::ObjectBuilder;
        use utoipa::openapi::schema::Type;
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "a flags file: `{\"app\"?, \"flags\": {KEY: definition}}` (docs/flags.md)",
            ))
            .into()
    }
}

impl ToSchema for FlagsFile {
    fn name() -> std::borrow::Cow<'static, str> {
        "FlagsFile".into()
    }
}

/// `PUT /api/v1/apps/{app}/flags`: the body is a flags file (JSON by default; TOML or YAML
/// by `Content-Type`). A bad file is refused whole (400 with `line` and `reason`).
pub async fn put_flags(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    authorize_app(&state, &ctx.caller(), &app).await?;
    known_app(&state, &app)?;
    let format = match headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => FileFormat::Json,
        Some(ct) => FileFormat::from_content_type(ct).ok_or_else(|| AppError::Conflict {
            kind: Kind::Unsupported,
            code: "unsupported_media_type",
            message: format!(
                "Content-Type `{ct}` is not a flags file: use application/json, application/toml or application/yaml"
            ),
        })?,
    };
    let bytes = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| AppError::Conflict {
            kind: Kind::TooLarge,
            code: "too_large",
            message: format!("a flags file is at most {BODY_LIMIT} bytes"),
        })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| AppError::invalid("the flags file is not UTF-8 text"))?;
    let by = ctx.actor();
    let event = ctx.event("flag.apply", Outcome::Allowed);
    match apply_flags_file(
        &state.store,
        &state.cfg,
        Some(&app),
        text,
        format,
        &by,
        event,
    )
    .await
    {
        Ok((changes, flags)) => Ok(Json(applied_json(&app, &changes, &flags)).into_response()),
        Err(ApplyError::File(e)) => Ok((
            StatusCode::BAD_REQUEST,
            Json(FileRefused {
                error: "invalid_flags_file",
                message: e.to_string(),
                line: e.line,
                flag: e.flag.clone(),
                reason: e.reason.clone(),
            }),
        )
            .into_response()),
        Err(e @ ApplyError::WrongApp { .. }) => Ok((
            StatusCode::BAD_REQUEST,
            Json(FileRefused {
                error: "invalid_flags_file",
                message: e.to_string(),
                line: None,
                flag: None,
                reason: e.to_string(),
            }),
        )
            .into_response()),
        Err(ApplyError::UnknownApp(a)) => Err(AppError::NotFound(format!(
            "`{a}` is not an app of the {} console",
            state.env()
        ))),
        Err(ApplyError::NotStaging(env)) => {
            Err(AppError::Denied(raxx_core::gate::Denial::EnvMismatch {
                message: format!(
                    "flags files are applied on the staging console only, not on {env}"
                ),
            }))
        }
        Err(ApplyError::Store(e)) => Err(e.into()),
    }
}

/// `GET /api/v1/apps/{app}/flags`: definitions with versions.
pub async fn get_flags(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(app): Path<String>,
) -> AppResult<Json<FlagStateView>> {
    authorize_app(&state, &ctx.caller(), &app).await?;
    known_app(&state, &app)?;
    let flags = state.store.flag_state(&app).await?;
    let mut body = state_json(&state, &flags);
    // Each flag's OFREP usage and whether it is stale (flags/usage.rs).
    let usage = state.store.flag_usage(&app).await?;
    let (now, days) = (raxx_store::now_ms(), state.cfg.config.flag_stale_days);
    for item in &mut body.flags {
        item.usage = Some(super::usage::usage_view(
            usage.get(&item.key),
            item.updated_at,
            now,
            days,
        ));
    }
    Ok(Json(body))
}

/// One flag of an app's state. Times are unix milliseconds.
#[derive(Serialize, ToSchema)]
pub struct StoredFlagView {
    pub key: String,
    pub version: i64,
    pub updated_at: i64,
    pub updated_by: String,
    /// the flag as the flags file defines it
    #[schema(value_type = AnyJson)]
    pub definition: Value,
    /// OFREP evaluations and staleness (`GET /api/v1/apps/{app}/flags` only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<super::usage::UsageView>,
}

/// An app's flag state.
#[derive(Serialize, ToSchema)]
pub struct FlagStateView {
    pub app: String,
    #[schema(value_type = crate::kernel::apidoc::EnvName)]
    pub env: raxx_core::Env,
    pub revision: i64,
    pub flags: Vec<StoredFlagView>,
}

/// The read API's body: `{app, env, revision, flags: [{key, version, updated_at,
/// updated_by, definition}]}`, read back by [`super::source`].
pub fn state_json(state: &AppState, flags: &FlagState) -> FlagStateView {
    FlagStateView {
        app: flags.app.clone(),
        env: state.env(),
        revision: flags.revision,
        flags: flags
            .flags
            .iter()
            .map(|(k, s)| StoredFlagView {
                key: k.clone(),
                version: s.version,
                updated_at: s.updated_at,
                updated_by: s.updated_by.clone(),
                definition: json!(s.flag),
                usage: None,
            })
            .collect(),
    }
}
