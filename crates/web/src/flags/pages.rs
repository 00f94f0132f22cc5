//! The flag and promotion pages. Flags are read-only on both envs; the prod-write
//! controls (new promotion, approve, reject, kill) are rendered on prod only, and only for
//! an operator who can take them — on staging they are absent from the HTML.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use raxx_core::Env;
use raxx_core::flags::diff_flag;
use raxx_core::promotion::PromotionStatus;
use raxx_core::rbac::Resource;
use raxx_core::restore::PromotionKind;
use serde::Deserialize;

use super::api::status_filter;
use super::page_cache::{LastFileView, sort_index};
use super::promote::{self, promotable_apps};
use super::review_view::{ReviewView, review_view};
use super::view::{
    FlagRow, HistoryRow, VariantRow, default_text, history_rows, rule_text, variant_rows,
};
use super::{env_apps, known_app};
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use crate::kernel::views::filters;
use crate::kernel::views::redirect_with_flash;
use raxx_actions::Kind;
use raxx_actions::fmt_time;

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// [`render`] into a buffer of `capacity` bytes (for a page much larger than its
/// template's literal text).
fn render_sized(t: &impl Template, capacity: usize) -> Response {
    let mut html = String::with_capacity(capacity);
    match t.render_into(&mut html) {
        Ok(()) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

fn parse_id(id: &str) -> AppResult<i64> {
    id.parse()
        .map_err(|_| AppError::NotFound(format!("promotion `{id}` was not found")))
}

/// Operator id → email, for "requested by" columns.
async fn emails(state: &AppState) -> AppResult<HashMap<i64, String>> {
    Ok(state
        .store
        .admins()
        .await?
        .into_iter()
        .map(|a| (a.id, a.email))
        .collect())
}

fn who(emails: &HashMap<i64, String>, id: i64) -> String {
    emails
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("operator {id}"))
}

// ---------------------------------------------------------------------------- flags

pub struct AppSummary {
    pub name: String,
    pub flags: usize,
    pub enabled: usize,
    pub promote_from: String,
}

#[derive(Template)]
#[template(path = "flags_index.html")]
struct IndexPage {
    layout: Layout,
    apps: Vec<AppSummary>,
}

/// `GET /flags`: this env's apps and their flag counts.
pub async fn index(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let mut apps = Vec::new();
    for cfg in state
        .cfg
        .config
        .apps
        .iter()
        .filter(|a| a.env == state.env())
    {
        let cached = state.flag_cache.get(&state.store, &cfg.name).await?;
        let flags = &cached.state.flags;
        apps.push(AppSummary {
            name: cfg.name.clone(),
            flags: flags.len(),
            enabled: flags.values().filter(|s| s.flag.enabled).count(),
            promote_from: cfg.promote_from.clone().unwrap_or_default(),
        });
    }
    Ok(render(&IndexPage {
        layout: Layout::new(&state, Some(&ctx), "Flags", "Flags"),
        apps,
    }))
}

#[derive(Template)]
#[template(path = "flags_app.html")]
struct AppFlagsPage<'a> {
    layout: Layout,
    app: &'a str,
    /// The flags table, sorted by `?sort=` (`key`, the default, `type`, `state`,
    /// `updated`): rendered once per state and order (see `page_cache`).
    table: &'a str,
    revision: i64,
    staging: bool,
    last_file: Option<&'a LastFileView>,
    promote_from: Option<&'a str>,
    can_promote: bool,
    /// Each flag's OFREP usage and staleness, in key order (`usage.rs`).
    usage: Vec<UsageRow>,
    stale_days: u32,
}

/// One flag's usage on the flags pages.
pub struct UsageRow {
    pub key: String,
    pub evaluations: i64,
    pub last_evaluated: String,
    pub stale: bool,
}

/// The usage rows of `flags` (one database read: the stored counts).
async fn usage_rows(
    state: &AppState,
    app: &str,
    flags: &raxx_store::flags::FlagState,
) -> AppResult<Vec<UsageRow>> {
    let usage = state.store.flag_usage(app).await?;
    let (now, days) = (raxx_store::now_ms(), state.cfg.config.flag_stale_days);
    Ok(flags
        .flags
        .iter()
        .map(|(key, s)| {
            let v = super::usage::usage_view(usage.get(key), s.updated_at, now, days);
            UsageRow {
                key: key.clone(),
                evaluations: v.evaluations,
                last_evaluated: v
                    .last_evaluated_at
                    .map_or_else(|| "never".to_owned(), |t| format!("{} UTC", fmt_time(t))),
                stale: v.stale,
            }
        })
        .collect())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SortQuery {
    sort: String,
}

/// `GET /apps/{app}/flags`: the state at a glance; on staging, the last applied file.
pub async fn app_flags(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(app): Path<String>,
    Query(q): Query<SortQuery>,
) -> AppResult<Response> {
    let cfg = known_app(&state, &app)?;
    let promote_from = cfg.promote_from.as_deref();
    let staging = state.env() == Env::Staging;
    let cached = state.flag_cache.get(&state.store, &app).await?;
    let page = state
        .slot::<super::page_cache::FlagPages>()
        .get(&state.store, &cached, staging)
        .await?;
    let t = AppFlagsPage {
        layout: Layout::new(&state, Some(&ctx), format!("Flags · {app}"), "Flags"),
        table: page.table(sort_index(&q.sort)),
        revision: page.revision(),
        staging,
        last_file: page.last_file.as_ref(),
        can_promote: state.env() == Env::Prod
            && promote_from.is_some()
            && ctx.can_write(Resource::Flag),
        promote_from,
        usage: usage_rows(&state, &app, &cached.state).await?,
        stale_days: state.cfg.config.flag_stale_days,
        app: &app,
    };
    // The table is most of the page: size the buffer for it and the layout around it.
    Ok(render_sized(&t, t.table.len() + 8192 + t.usage.len() * 200))
}

pub struct FlagView {
    pub row: FlagRow,
    pub default: String,
    pub variants: Vec<VariantRow>,
    pub rules: Vec<String>,
}

#[derive(Template)]
#[template(path = "flags_detail.html")]
struct FlagPage {
    layout: Layout,
    app: String,
    key: String,
    flag: Option<FlagView>,
    history: Vec<HistoryRow>,
    can_kill: bool,
    /// Killed (disabled by the kill switch) and the operator may queue a restore.
    can_restore: bool,
    usage: Option<UsageRow>,
    stale_days: u32,
}

/// `GET /apps/{app}/flags/{key}`: variants, rules in words, history; the kill switch on prod.
pub async fn flag(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((app, key)): Path<(String, String)>,
) -> AppResult<Response> {
    known_app(&state, &app)?;
    let cached = state.flag_cache.get(&state.store, &app).await?;
    let history = state.store.flag_history(&app, &key, 100).await?;
    let stored = cached.state.flags.get(&key);
    if stored.is_none() && history.is_empty() {
        return Err(AppError::NotFound(format!("`{app}` has no flag `{key}`")));
    }
    let flag = stored.map(|s| FlagView {
        row: FlagRow::new(s),
        default: default_text(&s.flag),
        variants: variant_rows(&s.flag),
        rules: s.flag.rules.iter().map(rule_text).collect(),
    });
    let can_kill = state.env() == Env::Prod
        && ctx.can_write(Resource::Flag)
        && stored.is_some_and(|s| s.flag.enabled);
    let can_restore = state.env() == Env::Prod
        && ctx.can_write(Resource::Flag)
        && stored.is_some_and(|s| {
            !s.flag.enabled
                && history
                    .first()
                    .is_some_and(|h| h.version == s.version && h.via == "kill")
        });
    let usage = usage_rows(&state, &app, &cached.state)
        .await?
        .into_iter()
        .find(|u| u.key == key);
    Ok(render(&FlagPage {
        layout: Layout::new(&state, Some(&ctx), format!("{key} · {app}"), "Flags"),
        usage,
        stale_days: state.cfg.config.flag_stale_days,
        history: history_rows(&key, &history),
        flag,
        can_kill,
        can_restore,
        app,
        key,
    }))
}

/// `POST /apps/{app}/flags/{key}/restore`: queue a restore promotion, land on its review.
pub async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((app, key)): Path<(String, String)>,
    Form(f): Form<ReasonForm>,
) -> AppResult<Response> {
    let p = promote::restore(&state, &ctx.caller(), &app, &key, &f.reason).await?;
    Ok(redirect_with_flash(
        &format!("/promotions/{}", p.id),
        &format!(
            "Restore #{} of {key} queued: it carries only enabled = true on the current prod definition. Another flag admin must approve it within 7 days.",
            p.id
        ),
    ))
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

/// `POST /apps/{app}/flags/{key}/kill`.
pub async fn kill(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((app, key)): Path<(String, String)>,
    Form(f): Form<ReasonForm>,
) -> AppResult<Response> {
    let killed = promote::kill(&state, &ctx.caller(), &app, &key, &f.reason).await?;
    let msg = if killed.changed {
        format!(
            "{key} is disabled on {} ({app}): apps now get its default variant with reason DISABLED. Re-enabling goes through a promotion.",
            state.env().pill()
        )
    } else {
        format!("{key} was already disabled; recorded.")
    };
    Ok(redirect_with_flash(
        &format!("/apps/{app}/flags/{key}"),
        &msg,
    ))
}

// ----------------------------------------------------------------------- promotions

pub struct PromotionRow {
    pub id: i64,
    pub app: String,
    pub status: String,
    pub flags: String,
    pub requested_by: String,
    pub reason: String,
    pub created: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "promotions.html")]
struct PromotionsPage {
    layout: Layout,
    rows: Vec<PromotionRow>,
    status: String,
    statuses: Vec<&'static str>,
    new_for: Vec<String>,
    prod: bool,
}

/// `GET /promotions?status=`: the queue of this env's apps.
pub async fn promotions(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let status = status_filter(&p)?;
    let records = state
        .store
        .promotions(&env_apps(&state), status, 200)
        .await?;
    let emails = emails(&state).await?;
    let rows = records
        .iter()
        .map(|r| {
            let p = &r.promotion;
            PromotionRow {
                id: p.id,
                app: p.target_app.clone(),
                status: p.status.to_string(),
                flags: p
                    .flags
                    .iter()
                    .map(|f| f.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                requested_by: who(&emails, p.requested_by),
                reason: p.reason.clone(),
                created: fmt_time(p.created_at),
                expires: fmt_time(p.expires_at),
            }
        })
        .collect();
    let new_for = if ctx.can_write(Resource::Flag) {
        promotable_apps(&state)
    } else {
        Vec::new()
    };
    Ok(render(&PromotionsPage {
        layout: Layout::new(&state, Some(&ctx), "Promotions", "Promotions"),
        rows,
        status: status.map(|s| s.to_string()).unwrap_or_default(),
        statuses: PromotionStatus::ALL.iter().map(|s| s.as_str()).collect(),
        new_for,
        prod: state.env() == Env::Prod,
    }))
}

pub struct CandidateRow {
    pub key: String,
    pub kind: &'static str,
    pub summary: String,
    pub staging_version: String,
    pub prod_version: String,
}

#[derive(Template)]
#[template(path = "promotion_new.html")]
struct NewPromotionPage {
    layout: Layout,
    app: String,
    staging_app: String,
    rows: Vec<CandidateRow>,
    view_hash: String,
    can_queue: bool,
    /// Why the staging flags could not be read (the page still renders, with a retry).
    source_error: Option<String>,
    /// What a refused submit had in it, and what to fix.
    form: PromotionFormView,
}

/// The new-promotion form as submitted: ticked flags and reason kept when it is refused.
#[derive(Default)]
pub struct PromotionFormView {
    pub keys: Vec<String>,
    pub reason: String,
    pub error: Option<String>,
    /// `flags` or `reason`: the field the error is about (empty: the whole form).
    pub field: &'static str,
    /// The refusal's own status (400 for input, 409 for a view that went stale, …).
    pub status: Option<axum::http::StatusCode>,
}

impl NewPromotionPage {
    fn ticked(&self, key: &str) -> bool {
        self.form.keys.iter().any(|k| k == key)
    }
}

/// `GET /promotions/new?app=`: staging against prod, flag by flag, to choose from.
pub async fn new_promotion(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Response> {
    let app = match p.get("app").filter(|a| !a.is_empty()) {
        Some(a) => a.clone(),
        None => promotable_apps(&state).into_iter().next().ok_or_else(|| {
            AppError::NotFound("no app of this console promotes from staging".into())
        })?,
    };
    new_promotion_page(&state, &ctx, app, PromotionFormView::default()).await
}

async fn new_promotion_page(
    state: &AppState,
    ctx: &Ctx,
    app: String,
    form: PromotionFormView,
) -> AppResult<Response> {
    let proposal = match promote::proposal(state, &app).await.map_err(AppError::from) {
        Ok(p) => p,
        Err(AppError::Conflict {
            code: "staging_source",
            message,
            ..
        }) => {
            let mut resp = render(&NewPromotionPage {
                layout: Layout::new(state, Some(ctx), "New promotion", "Promotions"),
                staging_app: String::new(),
                rows: Vec::new(),
                view_hash: String::new(),
                can_queue: false,
                source_error: Some(message),
                app,
                form,
            });
            *resp.status_mut() = axum::http::StatusCode::BAD_GATEWAY;
            return Ok(resp);
        }
        Err(e) => return Err(e),
    };
    let version = |v: Option<i64>| v.map_or_else(|| "—".to_owned(), |v| format!("v{v}"));
    let rows = proposal
        .changes
        .iter()
        .map(|c| CandidateRow {
            key: c.key.clone(),
            kind: super::view::kind_text(c.kind),
            summary: c.summary.clone(),
            staging_version: version(proposal.staging.versions.get(&c.key).copied()),
            prod_version: version(proposal.prod.flags.get(&c.key).map(|s| s.version)),
        })
        .collect();
    let refused = form.error.is_some().then(|| {
        form.status
            .unwrap_or(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
    });
    let mut resp = render(&NewPromotionPage {
        layout: Layout::new(state, Some(ctx), "New promotion", "Promotions"),
        staging_app: proposal.staging_app,
        rows,
        view_hash: proposal.view_hash,
        can_queue: ctx.can_write(Resource::Flag),
        source_error: None,
        app,
        form,
    });
    if let Some(status) = refused {
        *resp.status_mut() = status;
    }
    Ok(resp)
}

/// `POST /promotions`: `app`, `flag` (repeated), `reason`, `view_hash`.
pub async fn queue(State(state): State<AppState>, ctx: Ctx, body: Bytes) -> AppResult<Response> {
    let mut app = String::new();
    let mut keys = Vec::new();
    let mut reason = String::new();
    let mut view = None;
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "app" => app = v.into_owned(),
            "flag" => keys.push(v.into_owned()),
            "reason" => reason = v.into_owned(),
            "view_hash" => view = Some(v.into_owned()),
            _ => {}
        }
    }
    let queued = promote::queue(&state, &ctx.caller(), &app, &keys, &reason, view.as_deref())
        .await
        .map_err(AppError::from);
    let p = match queued {
        Ok((p, _)) => p,
        // A refusal about what was submitted: the form again, with the ticked flags and
        // the typed reason kept and the field to fix marked (the diff is read anew).
        Err(
            e @ (AppError::Invalid(_)
            | AppError::Conflict {
                kind: Kind::BadRequest | Kind::Conflict | Kind::Unprocessable,
                ..
            }),
        ) if !app.is_empty() && promotable_apps(&state).contains(&app) => {
            let field = if reason.trim().is_empty() {
                "reason"
            } else if keys.is_empty() {
                "flags"
            } else {
                ""
            };
            let form = PromotionFormView {
                status: Some(e.parts().0),
                error: Some(e.to_string()),
                keys,
                reason,
                field,
            };
            return new_promotion_page(&state, &ctx, app, form).await;
        }
        Err(e) => return Err(e),
    };
    Ok(redirect_with_flash(
        &format!("/promotions/{}", p.id),
        &format!(
            "Promotion #{} queued. Another flag admin must approve it within 7 days.",
            p.id
        ),
    ))
}

pub struct PromotedRow {
    pub key: String,
    pub base_version: String,
    pub current_version: String,
    pub moved: bool,
    pub kind: &'static str,
    pub summary: String,
    pub fields: Vec<String>,
}

#[derive(Template)]
#[template(path = "promotion_detail.html")]
struct PromotionPage {
    layout: Layout,
    id: i64,
    app: String,
    status: String,
    pending: bool,
    reason: String,
    requested_by: String,
    created: String,
    expires: String,
    decided: Option<(String, String, String)>,
    applied: String,
    content_hash: String,
    rows: Vec<PromotedRow>,
    can_decide: bool,
    own: bool,
    restore: bool,
    review: ReviewView,
    /// Why a decision just made on this page was refused ("this went stale because …").
    refusal: Option<(String, String)>,
    /// A refused reject: (what was typed, why), so the reason is not lost.
    reject_typed: Option<(String, String)>,
}

/// `GET /promotions/{id}`: each flag against prod now; approve/reject on prod.
pub async fn promotion(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Response> {
    promotion_page(&state, &ctx, parse_id(&id)?, None, None).await
}

/// The promotion page; `refusal` is (heading, why) of a refused approve or reject.
async fn promotion_page(
    state: &AppState,
    ctx: &Ctx,
    id: i64,
    refusal: Option<(String, String)>,
    reject_typed: Option<(String, String)>,
) -> AppResult<Response> {
    let record = promote::find(state, id).await?;
    let p = &record.promotion;
    let prod = state.store.flag_state(&p.target_app).await?;
    let emails = emails(state).await?;
    let version = |v: Option<i64>| v.map_or_else(|| "absent".to_owned(), |v| format!("v{v}"));
    let rows = p
        .flags
        .iter()
        .map(|f| {
            let current = prod.flags.get(&f.key);
            let change = diff_flag(&f.key, current.map(|c| &c.flag), f.new.as_ref());
            PromotedRow {
                key: f.key.clone(),
                base_version: version(f.base_version),
                current_version: version(current.map(|c| c.version)),
                moved: current.map(|c| c.version) != f.base_version,
                kind: change
                    .as_ref()
                    .map_or("same", |c| super::view::kind_text(c.kind)),
                summary: change
                    .as_ref()
                    .map_or_else(|| "prod already has this".to_owned(), |c| c.summary.clone()),
                fields: change
                    .map(|c| {
                        c.fields
                            .iter()
                            .map(|f| format!("{}: {}", super::view::field_name(f.field), f.detail))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let pending = p.status == PromotionStatus::Pending;
    let own = ctx.admin_id() == Some(p.requested_by);
    let frozen = state.store.promotion_review(&record).await?;
    let bases: Vec<(String, Option<i64>)> = p
        .flags
        .iter()
        .map(|f| (f.key.clone(), f.base_version))
        .collect();
    let review = review_view(&frozen, &bases);
    let refused = refusal.is_some();
    let invalid = reject_typed.is_some();
    let mut resp = render(&PromotionPage {
        layout: Layout::new(
            state,
            Some(ctx),
            format!("Promotion #{}", p.id),
            "Promotions",
        ),
        id: p.id,
        app: p.target_app.clone(),
        status: p.status.to_string(),
        pending,
        reason: p.reason.clone(),
        requested_by: who(&emails, p.requested_by),
        created: fmt_time(p.created_at),
        expires: fmt_time(p.expires_at),
        decided: record.decided_by.map(|by| {
            (
                who(&emails, by),
                record.decided_at.map(fmt_time).unwrap_or_default(),
                record.decision_reason.clone().unwrap_or_default(),
            )
        }),
        applied: record.applied_at.map(fmt_time).unwrap_or_default(),
        content_hash: p.content_hash.clone(),
        rows,
        can_decide: state.env() == Env::Prod && pending && ctx.can_write(Resource::Flag),
        own,
        restore: record.kind == PromotionKind::Restore,
        review,
        refusal,
        reject_typed,
    });
    if refused {
        *resp.status_mut() = axum::http::StatusCode::CONFLICT;
    } else if invalid {
        *resp.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct ApproveForm {
    #[serde(default)]
    content_hash: String,
}

/// `POST /promotions/{id}/approve`: the form carries the content hash that was shown.
pub async fn approve(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<ApproveForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let applied = match promote::approve(&state, &ctx.caller(), id, Some(&f.content_hash))
        .await
        .map_err(AppError::from)
    {
        Ok(a) => a,
        // Stale, expired, changed or decided meanwhile: the promotion itself, saying why.
        Err(AppError::Conflict {
            kind: Kind::Conflict,
            code,
            message,
        }) => {
            let heading = match code {
                "stale" => "This promotion went stale",
                "expired" => "This promotion expired",
                "content_changed" => "This promotion changed since you reviewed it",
                _ => "This promotion was decided meanwhile",
            };
            let why = match code {
                "stale" => format!(
                    "It was not applied because {message}: prod moved on after the request was queued, so the reviewed change no longer says what it would do. Queue a new promotion from the current diff."
                ),
                "content_changed" => format!(
                    "It was not applied because {message}. Reload the page and review it again."
                ),
                _ => format!("It was not applied: {message}."),
            };
            return promotion_page(&state, &ctx, id, Some((heading.to_string(), why)), None).await;
        }
        Err(e) => return Err(e),
    };
    Ok(redirect_with_flash(
        &format!("/promotions/{id}"),
        &format!(
            "Promotion #{id} approved and applied to {} on {}: {} flag change(s).",
            applied.target_app,
            state.env().pill(),
            applied.changes.len()
        ),
    ))
}

/// `POST /promotions/{id}/reject`.
pub async fn reject(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<ReasonForm>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    match promote::reject(&state, &ctx.caller(), id, &f.reason)
        .await
        .map_err(AppError::from)
    {
        Ok(_) => {}
        // A reason to fix: the promotion again, with what was typed and the field marked.
        Err(
            AppError::Invalid(message)
            | AppError::Conflict {
                kind: Kind::BadRequest,
                message,
                ..
            },
        ) => {
            return promotion_page(&state, &ctx, id, None, Some((f.reason, message))).await;
        }
        // Decided or expired meanwhile: the promotion, saying so.
        Err(AppError::Conflict {
            kind: Kind::Conflict,
            message,
            ..
        }) => {
            return promotion_page(
                &state,
                &ctx,
                id,
                Some((
                    "This promotion was decided meanwhile".to_string(),
                    format!("It was not rejected: {message}."),
                )),
                None,
            )
            .await;
        }
        Err(e) => return Err(e),
    }
    Ok(redirect_with_flash(
        &format!("/promotions/{id}"),
        &format!("Promotion #{id} rejected."),
    ))
}
