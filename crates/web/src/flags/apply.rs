//! Staging flags are config: a flags file replaces an app's whole flag state in one
//! transaction (`PUT /api/v1/apps/{app}/flags` with a deploy key, or
//! `raxx-console flags apply FILE`), and `GET /api/v1/apps/{app}/flags` returns the
//! definitions with versions (what the prod console promotes from).

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::Resolved;
use raxx_core::flags::{FileFormat, FlagChange, FlagsFileError, parse_flags_file};
use raxx_store::flags::FlagState;
use raxx_store::{Store, StoreError};
use serde_json::{Value, json};

use super::{check_key_app, known_app};
use crate::error::{AppError, AppResult};
use crate::gate::Ctx;
use crate::server::BODY_LIMIT;
use crate::state::AppState;

/// Why a flags file was not applied. Every refusal is audited before it is returned.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "env_mismatch: flags files are applied on the staging console only; this is the {0} console, where flags change through promotions"
    )]
    NotStaging(Env),
    #[error("{0}")]
    File(FlagsFileError),
    #[error("the file is for the app `{file_app}`, but it is being applied to `{target}`")]
    WrongApp { file_app: String, target: String },
    #[error("`{0}` is not an app of this console (add it to [[apps]] in the config)")]
    UnknownApp(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Parse `text` and replace its app's flag state, audited by `event` (action `flag.apply`).
/// `target` is the app the caller means (the URL's); the file's `app` must equal it.
pub async fn apply_flags_file(
    store: &Store,
    cfg: &Resolved,
    target: Option<&str>,
    text: &str,
    format: FileFormat,
    by: &str,
    event: AuditEvent,
) -> Result<(Vec<FlagChange>, FlagState), ApplyError> {
    let checked = check_file(cfg, target, text, format);
    let flags = match checked {
        Ok(flags) => flags,
        Err(refusal) => {
            let mut refused = event
                .reason(refusal.to_string())
                .with("format", format!("{format:?}").to_lowercase());
            refused.outcome = match refusal {
                ApplyError::NotStaging(_) => Outcome::Denied,
                _ => Outcome::Error,
            };
            if let Some(app) = target {
                refused = refused.app(app);
            }
            if let ApplyError::File(e) = &refusal {
                refused = refused.with("line", e.line.map(|l| l as i64));
            }
            store.audit(refused).await?;
            return Err(refusal);
        }
    };
    Ok(store.apply_flags_state(&flags, by, event).await?)
}

fn check_file(
    cfg: &Resolved,
    target: Option<&str>,
    text: &str,
    format: FileFormat,
) -> Result<raxx_core::flags::AppFlags, ApplyError> {
    if cfg.env != Env::Staging {
        return Err(ApplyError::NotStaging(cfg.env));
    }
    let flags = parse_flags_file(text, format).map_err(ApplyError::File)?;
    if let Some(target) = target
        && target != flags.app
    {
        return Err(ApplyError::WrongApp {
            file_app: flags.app,
            target: target.to_owned(),
        });
    }
    if cfg.app(&flags.app).is_none_or(|a| a.env != cfg.env) {
        return Err(ApplyError::UnknownApp(flags.app));
    }
    Ok(flags)
}

/// The JSON answer to an apply: what changed and the versions now.
pub fn applied_json(app: &str, changes: &[FlagChange], state: &FlagState) -> Value {
    json!({
        "app": app,
        "revision": state.revision,
        "changed": changes.len(),
        "diff": changes,
        "flags": state.flags.iter().map(|(k, s)| json!({"key": k, "version": s.version})).collect::<Vec<_>>(),
    })
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
    check_key_app(&state, &ctx, &app).await?;
    known_app(&state, &app)?;
    let format = match headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => FileFormat::Json,
        Some(ct) => FileFormat::from_content_type(ct).ok_or_else(|| AppError::Conflict {
            status: 415,
            code: "unsupported_media_type",
            message: format!(
                "Content-Type `{ct}` is not a flags file: use application/json, application/toml or application/yaml"
            ),
        })?,
    };
    let bytes = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| AppError::Conflict {
            status: 413,
            code: "too_large",
            message: format!("a flags file is at most {BODY_LIMIT} bytes"),
        })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| AppError::invalid("the flags file is not UTF-8 text"))?;
    let by = ctx.actor();
    let event = ctx.event("flag.apply", Outcome::Allowed);
    match apply_flags_file(&state.store, &state.cfg, Some(&app), text, format, &by, event).await {
        Ok((changes, flags)) => Ok(Json(applied_json(&app, &changes, &flags)).into_response()),
        Err(ApplyError::File(e)) => Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "invalid_flags_file",
                "message": e.to_string(),
                "line": e.line,
                "flag": e.flag,
                "reason": e.reason,
            })),
        )
            .into_response()),
        Err(e @ ApplyError::WrongApp { .. }) => Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_flags_file", "message": e.to_string(), "line": null, "flag": null, "reason": e.to_string()})),
        )
            .into_response()),
        Err(ApplyError::UnknownApp(a)) => Err(AppError::NotFound(format!(
            "`{a}` is not an app of the {} console",
            state.env()
        ))),
        Err(ApplyError::NotStaging(env)) => Err(AppError::Denied(
            raxx_core::gate::Denial::EnvMismatch {
                message: format!("flags files are applied on the staging console only, not on {env}"),
            },
        )),
        Err(ApplyError::Store(e)) => Err(e.into()),
    }
}

/// `GET /api/v1/apps/{app}/flags`: definitions with versions.
pub async fn get_flags(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(app): Path<String>,
) -> AppResult<Json<Value>> {
    check_key_app(&state, &ctx, &app).await?;
    known_app(&state, &app)?;
    let flags = state.store.flag_state(&app).await?;
    let mut body = state_json(&state, &flags);
    // Each flag's OFREP usage and whether it is stale (flags/usage.rs).
    let usage = state.store.flag_usage(&app).await?;
    let (now, days) = (raxx_store::now_ms(), state.cfg.config.flag_stale_days);
    if let Some(items) = body["flags"].as_array_mut() {
        for item in items {
            let key = item["key"].as_str().unwrap_or_default().to_owned();
            let updated_at = item["updated_at"].as_i64().unwrap_or(0);
            item["usage"] = serde_json::json!(super::usage::usage_view(
                usage.get(&key),
                updated_at,
                now,
                days
            ));
        }
    }
    Ok(Json(body))
}

/// The read API's body: `{app, env, revision, flags: [{key, version, updated_at,
/// updated_by, definition}]}`, read back by [`super::source`].
pub fn state_json(state: &AppState, flags: &FlagState) -> Value {
    json!({
        "app": flags.app,
        "env": state.env(),
        "revision": flags.revision,
        "flags": flags.flags.iter().map(|(k, s)| json!({
            "key": k,
            "version": s.version,
            "updated_at": s.updated_at,
            "updated_by": s.updated_by,
            "definition": s.flag,
        })).collect::<Vec<_>>(),
    })
}
