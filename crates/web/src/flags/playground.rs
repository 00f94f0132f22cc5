//! The flag playground (issue 16 item 3): an operator enters an evaluation context and sees,
//! for every flag of an app (or one), what OFREP would answer — value, variant, reason —
//! and why: which rule matched, and for every earlier rule the first condition that failed.
//!
//! It evaluates with [`raxx_core::flags::explain`], the walk OFREP's `evaluate` is built
//! on, so the two cannot disagree. On prod, `promotion=ID` evaluates a pending promotion's
//! proposed state: prod's current flags with the promotion's flags put in.
//!
//! `GET /apps/{app}/playground` (the form), `POST /apps/{app}/playground` (the form
//! re-rendered with the answer, or the error and the input kept) and
//! `POST /api/v1/apps/{app}/evaluate` are reads (`console-flag-reader`); their POST still
//! needs the session's CSRF token (`gate.rs`).

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use raxx_core::Env;
use raxx_core::flags::{
    AppFlags, ConditionMiss, EvaluationContext, Explanation, Flag, RuleStep, explain,
};
use raxx_core::promotion::PromotionStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::known_app;
use super::view::{condition_text, rule_text, value_text};
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use crate::kernel::views::filters;

/// Largest context the playground takes (as OFREP: a context is small).
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;

/// A refusal that names the input field to fix (`context`, `flag`, `promotion`).
#[derive(Debug)]
pub struct FieldError {
    pub status: StatusCode,
    pub code: &'static str,
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn invalid(field: &'static str, message: String) -> Self {
        FieldError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            field,
            message,
        }
    }

    fn not_found(field: &'static str, message: String) -> Self {
        FieldError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            field,
            message,
        }
    }
}

pub enum PlaygroundError {
    Field(FieldError),
    App(AppError),
}

impl From<FieldError> for PlaygroundError {
    fn from(e: FieldError) -> Self {
        PlaygroundError::Field(e)
    }
}

impl From<AppError> for PlaygroundError {
    fn from(e: AppError) -> Self {
        PlaygroundError::App(e)
    }
}

impl From<raxx_store::StoreError> for PlaygroundError {
    fn from(e: raxx_store::StoreError) -> Self {
        PlaygroundError::App(e.into())
    }
}

impl IntoResponse for PlaygroundError {
    fn into_response(self) -> Response {
        match self {
            PlaygroundError::Field(f) => (
                f.status,
                Json(json!({"error": f.code, "field": f.field, "message": f.message})),
            )
                .into_response(),
            PlaygroundError::App(e) => e.into_response(),
        }
    }
}

/// What to evaluate.
pub struct Request<'a> {
    pub context: Value,
    pub flag: Option<&'a str>,
    pub promotion: Option<i64>,
}

/// One rule of one flag, as the walk left it.
#[derive(Debug, Serialize)]
pub struct RuleExplained {
    /// 1-based, as the flag page numbers rules.
    pub number: usize,
    pub rule: String,
    /// `matched`, `missed` or `not_reached` (after the matching rule).
    pub outcome: &'static str,
    /// For a missed rule: the first condition that failed (1-based) and its words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_condition: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The context's value for the failed condition's attribute (absent: not in the context).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// The rollout bucket of the targeting key (0..10 000), for a matched rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<u64>,
    /// A sentence: why this rule matched, failed or was not reached.
    pub why: String,
}

/// One flag's answer and its explanation.
#[derive(Debug, Serialize)]
pub struct FlagExplained {
    pub key: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
    /// The rule that decided (1-based), if one did.
    pub matched_rule: Option<usize>,
    /// One sentence: the answer and why.
    pub summary: String,
    pub rules: Vec<RuleExplained>,
}

#[derive(Debug, Serialize)]
pub struct Answer {
    pub app: String,
    /// The promotion whose proposed state was evaluated, if any.
    pub promotion: Option<i64>,
    pub flags: Vec<FlagExplained>,
}

/// Evaluate `req` against `app`'s flags (or a pending promotion's proposed state).
pub async fn evaluate(
    state: &AppState,
    app: &str,
    req: Request<'_>,
) -> Result<Answer, PlaygroundError> {
    known_app(state, app).map_err(AppError::from)?;
    let context = match req.context {
        Value::Object(map) => EvaluationContext::from_map(map)
            .map_err(|e| FieldError::invalid("context", format!("context: {}", e.details)))?,
        other => {
            return Err(FieldError::invalid(
                "context",
                format!(
                    "context must be a JSON object (like {{\"targetingKey\": \"user-1\"}}), not {}",
                    raxx_core::flags::validate::describe_json(&other)
                ),
            )
            .into());
        }
    };
    let cached = state.flag_cache.get(&state.store, app).await?;
    let proposed;
    let flags: &AppFlags = match req.promotion {
        None => &cached.flags,
        Some(id) => {
            proposed = proposed_state(state, app, id, &cached.flags).await?;
            &proposed
        }
    };
    let selected: Vec<(&String, &Flag)> = match req.flag {
        None => flags.flags.iter().collect(),
        Some(key) => match flags.flags.get_key_value(key) {
            Some(kv) => vec![kv],
            None => {
                return Err(FieldError::not_found(
                    "flag",
                    format!("flag: `{key}` is not a flag of {app}"),
                )
                .into());
            }
        },
    };
    Ok(Answer {
        app: app.to_owned(),
        promotion: req.promotion,
        flags: selected
            .into_iter()
            .map(|(key, flag)| explained(key, flag, &explain(flag, &context)))
            .collect(),
    })
}

/// Prod's current flags with a pending promotion's flags put in (a removal removed).
async fn proposed_state(
    state: &AppState,
    app: &str,
    id: i64,
    current: &AppFlags,
) -> Result<AppFlags, PlaygroundError> {
    if state.env() != Env::Prod {
        return Err(FieldError::invalid(
            "promotion",
            "promotion: promotions are on the prod console; staging evaluates its own state".into(),
        )
        .into());
    }
    let not_found = || {
        FieldError::not_found(
            "promotion",
            format!("promotion: {id} is not a pending promotion of {app}"),
        )
    };
    let record = state
        .store
        .promotion(id, &[app.to_owned()])
        .await?
        .ok_or_else(not_found)?;
    if record.promotion.status != PromotionStatus::Pending {
        return Err(FieldError::invalid(
            "promotion",
            format!(
                "promotion: {id} is {}, not pending; its state is prod's now or never will be",
                record.promotion.status
            ),
        )
        .into());
    }
    let mut flags = current.clone();
    for f in &record.promotion.flags {
        match &f.new {
            Some(new) => {
                flags.flags.insert(f.key.clone(), new.clone());
            }
            None => {
                flags.flags.remove(&f.key);
            }
        }
    }
    Ok(flags)
}

fn explained(key: &str, flag: &Flag, e: &Explanation<'_>) -> FlagExplained {
    let mut rules: Vec<RuleExplained> = flag
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| RuleExplained {
            number: i + 1,
            rule: rule_text(rule),
            outcome: "not_reached",
            failed_condition: None,
            condition: None,
            actual: None,
            bucket: None,
            why: if flag.enabled {
                "not reached: an earlier rule decided".into()
            } else {
                "not reached: the flag is disabled".into()
            },
        })
        .collect();
    for step in &e.steps {
        match step {
            RuleStep::Matched { rule, bucket } => {
                let Some(r) = rules.get_mut(*rule) else {
                    continue;
                };
                r.outcome = "matched";
                r.bucket = *bucket;
                r.why = match (bucket, flag.rules[*rule].when.is_empty()) {
                    (Some(b), true) => format!(
                        "no conditions; the targeting key's bucket is {b} of 10000 (rollout)"
                    ),
                    (Some(b), false) => format!(
                        "every condition held; the targeting key's bucket is {b} of 10000 (rollout)"
                    ),
                    (None, true) => "no conditions: always matches".into(),
                    (None, false) => "every condition held".into(),
                };
            }
            RuleStep::Missed {
                rule,
                miss: ConditionMiss { condition, actual },
            } => {
                let Some(r) = rules.get_mut(*rule) else {
                    continue;
                };
                let c = &flag.rules[*rule].when[*condition];
                let words = condition_text(c);
                r.outcome = "missed";
                r.failed_condition = Some(condition + 1);
                r.why = match actual {
                    None => format!(
                        "condition {} `{words}` failed: `{}` is not in the context",
                        condition + 1,
                        c.attr
                    ),
                    Some(v) => format!(
                        "condition {} `{words}` failed: `{}` is {}",
                        condition + 1,
                        c.attr,
                        value_text(v)
                    ),
                };
                r.condition = Some(words);
                r.actual = actual.clone();
            }
        }
    }
    let matched_rule = e.matched_rule().map(|i| i + 1);
    match &e.result {
        Ok(ev) => {
            // The reason as the app's SDK receives it over OFREP (`DEFAULT` goes out as
            // `STATIC`); the summary and the rules say which case it was.
            let reason = raxx_core::flags::ofrep::wire_reason(ev.reason);
            let summary = match (ev.reason, matched_rule) {
                (_, Some(n)) => format!(
                    "serves `{}` ({}) because rule {n} matched",
                    ev.variant,
                    value_text(ev.value)
                ),
                (raxx_core::flags::Reason::Disabled, _) => format!(
                    "serves the default `{}` ({}): the flag is disabled",
                    ev.variant,
                    value_text(ev.value)
                ),
                (raxx_core::flags::Reason::Static, _) => format!(
                    "serves the default `{}` ({}): the flag has no rules",
                    ev.variant,
                    value_text(ev.value)
                ),
                _ => format!(
                    "serves the default `{}` ({}): no rule matched",
                    ev.variant,
                    value_text(ev.value)
                ),
            };
            FlagExplained {
                key: key.to_owned(),
                enabled: flag.enabled,
                value: Some(ev.value.clone()),
                variant: Some(ev.variant.to_owned()),
                reason: Some(reason),
                error_code: None,
                error_details: None,
                matched_rule,
                summary,
                rules,
            }
        }
        Err(err) => FlagExplained {
            key: key.to_owned(),
            enabled: flag.enabled,
            value: None,
            variant: None,
            reason: Some("ERROR"),
            error_code: Some(err.code.as_str()),
            error_details: Some(err.details.clone()),
            matched_rule,
            summary: format!("error {}: {}", err.code.as_str(), err.details),
            rules,
        },
    }
}

// ------------------------------------------------------------------------------ API

/// `POST /api/v1/apps/{app}/evaluate`'s body.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateBody {
    /// the evaluation context, as OFREP takes it (`targetingKey` and attributes)
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// only this flag (default: every flag of the app)
    #[serde(default)]
    flag: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct PromotionQuery {
    #[serde(default)]
    promotion: Option<String>,
}

/// `POST /api/v1/apps/{app}/evaluate`'s query, as the OpenAPI document shows it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct EvaluateQuery {
    /// prod: evaluate this pending promotion's proposed state
    promotion: Option<i64>,
}

fn promotion_param(raw: Option<&str>) -> Result<Option<i64>, FieldError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            FieldError::invalid(
                "promotion",
                format!("promotion: `{s}` is not a promotion number"),
            )
        }),
    }
}

/// `POST /api/v1/apps/{app}/evaluate[?promotion=ID]` with `{"context": {...}, "flag"?: key}`.
pub async fn api_evaluate(
    State(state): State<AppState>,
    Path(app): Path<String>,
    Query(q): Query<PromotionQuery>,
    body: Bytes,
) -> Result<Json<Answer>, PlaygroundError> {
    if body.len() > MAX_CONTEXT_BYTES {
        return Err(FieldError::invalid(
            "context",
            format!("context: the body is larger than {MAX_CONTEXT_BYTES} bytes"),
        )
        .into());
    }
    let parsed: EvaluateBody = if body.iter().all(u8::is_ascii_whitespace) {
        EvaluateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            FieldError::invalid(
                "context",
                format!("the body must be {{\"context\": {{...}}, \"flag\"?: \"key\"}}: {e}"),
            )
        })?
    };
    let promotion = promotion_param(q.promotion.as_deref())?;
    let answer = evaluate(
        &state,
        &app,
        Request {
            context: parsed.context.unwrap_or(Value::Object(Map::new())),
            flag: parsed.flag.as_deref().filter(|f| !f.is_empty()),
            promotion,
        },
    )
    .await?;
    Ok(Json(answer))
}

// ---------------------------------------------------------------------------- page

pub struct PendingOption {
    pub id: i64,
    pub label: String,
}

#[derive(Template)]
#[template(path = "playground.html")]
struct PlaygroundPage {
    layout: Layout,
    app: String,
    context: String,
    flag: String,
    promotion: String,
    /// Prod: the app's pending promotions, to evaluate a proposed state.
    pending: Vec<PendingOption>,
    /// `promotion` is set and not one of `pending` (kept as typed, to show the error).
    promotion_unlisted: bool,
    prod: bool,
    error: Option<FieldError>,
    answer: Option<Answer>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PlaygroundForm {
    context: String,
    flag: String,
    promotion: String,
}

const EXAMPLE_CONTEXT: &str =
    "{\n  \"targetingKey\": \"user-1\",\n  \"email\": \"ada@raxx.app\"\n}";

async fn page(
    state: &AppState,
    ctx: &Ctx,
    app: &str,
    form: PlaygroundForm,
    outcome: Option<Result<Answer, FieldError>>,
) -> Result<Response, AppError> {
    let prod = state.env() == Env::Prod;
    let pending = if prod {
        state
            .store
            .promotions(&[app.to_owned()], Some(PromotionStatus::Pending), 50)
            .await?
            .into_iter()
            .map(|r| PendingOption {
                id: r.promotion.id,
                label: format!("#{} — {}", r.promotion.id, r.promotion.reason),
            })
            .collect()
    } else {
        Vec::new()
    };
    let (answer, error) = match outcome {
        None => (None, None),
        Some(Ok(a)) => (Some(a), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let promotion_unlisted = !form.promotion.is_empty()
        && !pending
            .iter()
            .any(|p: &PendingOption| p.id.to_string() == form.promotion);
    let t = PlaygroundPage {
        layout: Layout::new(state, Some(ctx), format!("Playground · {app}"), "Flags"),
        app: app.to_owned(),
        context: form.context,
        flag: form.flag,
        promotion: form.promotion,
        pending,
        promotion_unlisted,
        prod,
        error,
        answer,
    };
    match t.render() {
        Ok(html) => Ok((status, Html(html)).into_response()),
        Err(e) => Err(AppError::Internal(format!("template failed: {e}"))),
    }
}

/// `GET /apps/{app}/playground[?promotion=ID]`: the form.
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(app): Path<String>,
    Query(q): Query<PromotionQuery>,
) -> Result<Response, AppError> {
    known_app(&state, &app)?;
    let form = PlaygroundForm {
        context: EXAMPLE_CONTEXT.into(),
        flag: String::new(),
        promotion: q.promotion.unwrap_or_default(),
    };
    page(&state, &ctx, &app, form, None).await
}

/// `POST /apps/{app}/playground`: the answer, or the error naming the field, the input kept.
pub async fn submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(app): Path<String>,
    axum::Form(form): axum::Form<PlaygroundForm>,
) -> Result<Response, AppError> {
    known_app(&state, &app)?;
    let outcome = run_form(&state, &app, &form).await;
    let outcome = match outcome {
        Ok(a) => Ok(a),
        Err(PlaygroundError::Field(f)) => Err(f),
        Err(PlaygroundError::App(e)) => return Err(e),
    };
    page(&state, &ctx, &app, form, Some(outcome)).await
}

async fn run_form(
    state: &AppState,
    app: &str,
    form: &PlaygroundForm,
) -> Result<Answer, PlaygroundError> {
    let text = form.context.trim();
    let context = if text.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str::<Value>(text).map_err(|e| {
            FieldError::invalid("context", format!("context is not valid JSON: {e}"))
        })?
    };
    let promotion = promotion_param(Some(&form.promotion))?;
    let flag = Some(form.flag.trim()).filter(|f| !f.is_empty());
    evaluate(
        state,
        app,
        Request {
            context,
            flag,
            promotion,
        },
    )
    .await
}
