//! Customers (SPEC §9): search, detail, and the audited actions suspend / reactivate /
//! change email, on this console's own customers database.
//!
//! Masking: email and name are masked unless the operator holds `console-customer-reader`
//! or higher; the audit log always stores them masked (its readers need not hold it).
//!
//! A change spans two databases that cannot share a transaction. The order is chosen so
//! that a change never exists without its audit row (docs/customers.md):
//! 1. the customers UPDATE, inside a customers-database transaction (row locked);
//! 2. the audit row, in the console's [`raxx_store::AuditTx`], committed;
//! 3. the customers transaction committed. If that fails, an `error` row is recorded.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use raxx_core::gate::{Access, Class};
use raxx_core::rbac::Resource;
use raxx_store::customers::{Customer, CustomerChange};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use raxx_actions::customers::{self, mask_email, mask_name};

use crate::kernel::apidoc::ApiDoc;
use crate::kernel::apidoc::StrId;
use crate::kernel::ctx::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::route::Route;
use crate::kernel::route::route;
use crate::kernel::state::AppState;
use crate::kernel::views::Layout;
use crate::kernel::views::redirect_with_flash;
use crate::kernel::views::render;
use raxx_actions::Kind;
use raxx_actions::fmt_time;

pub fn routes() -> Vec<Route> {
    use Access::*;
    vec![
        route!(GET "/customers", Read, SignedIn, "customer.search", search_page),
        route!(GET "/customers/{id}", Read, SignedIn, "customer.view", detail_page),
        route!(POST "/customers/{id}/suspend", Write, Role(Resource::Customer), "customer.suspend", suspend_form),
        route!(POST "/customers/{id}/reactivate", Write, Role(Resource::Customer), "customer.reactivate", reactivate_form),
        route!(POST "/customers/{id}/email", Write, Role(Resource::Customer), "customer.change_email", email_form),
        route!(GET "/api/v1/customers", Read, SignedIn, "customer.search", search_api, doc = ApiDoc::reply::<CustomerPage>().query::<SearchQuery>()),
        route!(GET "/api/v1/customers/{id}", Read, SignedIn, "customer.view", detail_api, doc = ApiDoc::reply::<CustomerView>().path::<StrId>()),
        route!(POST "/api/v1/customers/{id}/suspend", Write, Role(Resource::Customer), "customer.suspend", suspend_api, doc = ApiDoc::reply::<Changed>().body::<ChangeBody>().path::<StrId>()),
        route!(POST "/api/v1/customers/{id}/reactivate", Write, Role(Resource::Customer), "customer.reactivate", reactivate_api, doc = ApiDoc::reply::<Changed>().body::<ChangeBody>().path::<StrId>()),
        route!(POST "/api/v1/customers/{id}/email", Write, Role(Resource::Customer), "customer.change_email", email_api, doc = ApiDoc::reply::<Changed>().body::<ChangeBody>().path::<StrId>()),
    ]
}

pub use raxx_actions::customers::open_customer_db;

// ---------------------------------------------------------------- masking (pure)

/// A customer as one operator may see it.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    /// masked (`a***@r***.test`) unless the operator may read customers' details
    pub email: String,
    pub name: String,
    pub status: String,
    /// `YYYY-MM-DD HH:MM:SS` (UTC)
    pub created_at: String,
    pub masked: bool,
}

/// `GET /api/v1/customers`'s query.
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct SearchQuery {
    /// search text: an email prefix or an id (an id only, for masked readers)
    q: Option<String>,
    /// page, from 0
    #[param(minimum = 0, default = 0)]
    page: Option<u32>,
}

/// A page of customers.
#[derive(serde::Serialize, ToSchema)]
pub struct CustomerPage {
    pub customers: Vec<CustomerView>,
    pub masked: bool,
    /// `email_prefix_or_id` or `id_only`
    pub search: &'static str,
    pub note: Option<&'static str>,
    pub page: u32,
    pub next_page: Option<u32>,
}

/// `{"reason"}` (and `"email"` for a change of email).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ChangeBody {
    /// why (audited)
    reason: String,
    /// the new address (change of email only)
    email: Option<String>,
}

/// A customer changed.
#[derive(serde::Serialize, ToSchema)]
pub struct Changed {
    pub customer: CustomerView,
    /// always `true`
    pub audited: bool,
}

impl CustomerView {
    pub fn new(c: &Customer, unmasked: bool) -> Self {
        CustomerView {
            id: c.id.clone(),
            email: if unmasked {
                c.email.clone()
            } else {
                mask_email(&c.email)
            },
            name: if unmasked {
                c.name.clone()
            } else {
                mask_name(&c.name)
            },
            status: c.status.clone(),
            created_at: display_time(&c.created_at),
            masked: !unmasked,
        }
    }
}

/// Unix seconds or milliseconds become a UTC time; anything else is shown as stored.
fn display_time(raw: &str) -> String {
    match raw.trim().parse::<i64>() {
        Ok(n) if n > 100_000_000_000 => fmt_time(n),
        Ok(n) if n > 100_000_000 => fmt_time(n * 1000),
        _ => raw.to_string(),
    }
}

// ---------------------------------------------------------------- the actions

pub struct SearchResult {
    pub rows: Vec<CustomerView>,
    pub page: u32,
    pub has_next: bool,
}

/// What the search of an operator without `console-customer-reader` may do: look one
/// customer up by id. A prefix search (or a listing, ordered by email) would let them
/// recover a masked address one character at a time (issue 19 item 12).
pub const MASKED_SEARCH_NOTE: &str = "without the role console-customer-reader on this console, customers can be looked up by id only (searching by email needs that role)";

fn unmasked(ctx: &Ctx) -> bool {
    customers::unmasked(&ctx.caller())
}

pub async fn search(state: &AppState, ctx: &Ctx, q: &str, page: u32) -> AppResult<SearchResult> {
    let found = customers::search(state, &ctx.caller(), q, page).await?;
    Ok(SearchResult {
        rows: found
            .rows
            .iter()
            .map(|c| CustomerView::new(c, found.clear))
            .collect(),
        page: found.page,
        has_next: found.has_next,
    })
}

pub async fn find(state: &AppState, ctx: &Ctx, id: &str) -> AppResult<CustomerView> {
    let (c, clear) = customers::find(state, &ctx.caller(), id).await?;
    Ok(CustomerView::new(&c, clear))
}

/// [`customers::change`], seen as this operator may see it.
pub async fn change(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    change: CustomerChange,
    reason: &str,
) -> AppResult<CustomerView> {
    let (c, clear) = customers::change(state, &ctx.caller(), id, change, reason).await?;
    Ok(CustomerView::new(&c, clear))
}

// ---------------------------------------------------------------- pages

#[derive(Template)]
#[template(path = "customers.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    result: SearchResult,
    masked: bool,
    q_param: String,
}

#[derive(Template)]
#[template(path = "customers_error.html")]
struct UnavailablePage {
    layout: Layout,
    message: String,
}

/// A customers database that is down or mis-mapped gets its own page (503); the rest
/// of the console is untouched.
fn page_error(state: &AppState, ctx: &Ctx, e: AppError) -> Response {
    match e {
        AppError::Conflict {
            kind: Kind::Unavailable,
            message,
            ..
        } => {
            let mut resp = render(&UnavailablePage {
                layout: Layout::new(state, Some(ctx), "Customers unavailable", "Customers"),
                message,
            });
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp
        }
        other => other.into_response(),
    }
}

pub async fn search_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let q = p.get("q").cloned().unwrap_or_default();
    let page = p.get("page").and_then(|n| n.parse().ok()).unwrap_or(0u32);
    match search(&state, &ctx, &q, page).await {
        Ok(result) => render(&SearchPage {
            layout: Layout::new(&state, Some(&ctx), "Customers", "Customers"),
            q_param: url::form_urlencoded::byte_serialize(q.as_bytes()).collect(),
            q,
            masked: !unmasked(&ctx),
            result,
        }),
        Err(e) => page_error(&state, &ctx, e),
    }
}

#[derive(Template)]
#[template(path = "customer.html")]
struct DetailPage {
    layout: Layout,
    c: CustomerView,
    can_write: bool,
    suspended: bool,
    /// A refused submit: the form, its field at fault, what was typed and why.
    typed: Option<Typed>,
}

/// What an operator typed into one of the customer forms, kept when it is refused.
pub struct Typed {
    /// `suspend`, `reactivate` or `email`.
    pub form: &'static str,
    /// `reason` or `email`: the field the message is about.
    pub field: &'static str,
    pub reason: String,
    pub email: String,
    pub message: String,
}

impl DetailPage {
    /// The typed value of `field` in `form`, or "" (a fresh form).
    fn value(&self, form: &str, field: &str) -> &str {
        match &self.typed {
            Some(t) if t.form == form && field == "reason" => &t.reason,
            Some(t) if t.form == form && field == "email" => &t.email,
            _ => "",
        }
    }
    /// The message for `field` of `form`, when that is what was refused.
    fn error(&self, form: &str, field: &str) -> Option<&str> {
        self.typed
            .as_ref()
            .filter(|t| t.form == form && t.field == field)
            .map(|t| t.message.as_str())
    }
}

async fn detail(state: &AppState, ctx: &Ctx, id: &str, typed: Option<Typed>) -> Response {
    match find(state, ctx, id).await {
        Ok(c) => render(&DetailPage {
            layout: Layout::new(state, Some(ctx), format!("Customer {}", c.id), "Customers"),
            can_write: ctx.can_write(Resource::Customer),
            suspended: c.status == raxx_store::customers::SUSPENDED,
            c,
            typed,
        }),
        Err(e) => page_error(state, ctx, e),
    }
}

pub async fn detail_page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    detail(&state, &ctx, &id, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ChangeForm {
    reason: String,
    email: String,
}

async fn form_action(
    state: AppState,
    ctx: Ctx,
    id: String,
    c: CustomerChange,
    f: ChangeForm,
    done: &str,
) -> Response {
    let form = match &c {
        CustomerChange::Suspend => "suspend",
        CustomerChange::Reactivate => "reactivate",
        CustomerChange::Email(_) => "email",
    };
    match change(&state, &ctx, &id, c, &f.reason).await {
        Ok(_) => redirect_with_flash(&format!("/customers/{}", url_segment(&id)), done),
        // Input the operator can fix: the page again, with what was typed and the field
        // marked (the change did not happen).
        Err(
            e @ (AppError::Invalid(_)
            | AppError::Conflict {
                kind: Kind::Conflict,
                ..
            }),
        ) => {
            let status = if matches!(e, AppError::Invalid(_)) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::CONFLICT
            };
            let message = e.to_string();
            let field = if form == "email" && !message.contains("reason") {
                "email"
            } else {
                "reason"
            };
            let typed = Typed {
                form,
                field,
                reason: f.reason,
                email: f.email,
                message,
            };
            let mut resp = detail(&state, &ctx, &id, Some(typed)).await;
            if resp.status().is_success() {
                *resp.status_mut() = status;
            }
            resp
        }
        Err(e) => page_error(&state, &ctx, e),
    }
}

fn url_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn suspend_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Response {
    form_action(
        state,
        ctx,
        id,
        CustomerChange::Suspend,
        f,
        "Customer suspended.",
    )
    .await
}

pub async fn reactivate_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Response {
    form_action(
        state,
        ctx,
        id,
        CustomerChange::Reactivate,
        f,
        "Customer reactivated.",
    )
    .await
}

pub async fn email_form(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Response {
    form_action(
        state,
        ctx,
        id,
        CustomerChange::Email(f.email.clone()),
        f,
        "Email changed.",
    )
    .await
}

// ---------------------------------------------------------------- JSON

pub async fn search_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(p): Query<HashMap<String, String>>,
) -> AppResult<Json<CustomerPage>> {
    let q = p.get("q").cloned().unwrap_or_default();
    let page = match p.get("page") {
        None => 0,
        Some(n) => n
            .parse()
            .map_err(|_| AppError::invalid("page must be a number from 0"))?,
    };
    let r = search(&state, &ctx, &q, page).await?;
    Ok(Json(CustomerPage {
        customers: r.rows,
        masked: !unmasked(&ctx),
        search: if unmasked(&ctx) {
            "email_prefix_or_id"
        } else {
            "id_only"
        },
        note: (!unmasked(&ctx)).then_some(MASKED_SEARCH_NOTE),
        page: r.page,
        next_page: r.has_next.then_some(r.page + 1),
    }))
}

pub async fn detail_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> AppResult<Json<CustomerView>> {
    Ok(Json(find(&state, &ctx, &id).await?))
}

/// `{"reason": "…"}` (and `"email"` for a change of email); a missing or malformed body is
/// a 400 that says what to send.
fn json_body(body: &Bytes, need_email: bool) -> AppResult<(String, String)> {
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| AppError::invalid(format!("the body is not JSON: {e}")))?
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let reason = text("reason");
    if reason.trim().is_empty() {
        return Err(AppError::invalid(
            "a reason is required: send {\"reason\": \"why\"}",
        ));
    }
    let email = text("email");
    if need_email && email.trim().is_empty() {
        return Err(AppError::invalid(
            "send the new address: {\"email\": \"…\", \"reason\": \"why\"}",
        ));
    }
    Ok((reason, email))
}

async fn api_action(
    state: AppState,
    ctx: Ctx,
    id: String,
    body: Bytes,
    make: fn(String) -> CustomerChange,
    need_email: bool,
) -> AppResult<Json<Changed>> {
    let (reason, email) = json_body(&body, need_email)?;
    let c = change(&state, &ctx, &id, make(email), &reason).await?;
    Ok(Json(Changed {
        customer: c,
        audited: true,
    }))
}

pub async fn suspend_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<Changed>> {
    api_action(state, ctx, id, body, |_| CustomerChange::Suspend, false).await
}

pub async fn reactivate_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<Changed>> {
    api_action(state, ctx, id, body, |_| CustomerChange::Reactivate, false).await
}

pub async fn email_api(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<Changed>> {
    api_action(state, ctx, id, body, CustomerChange::Email, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_view_holds_nothing_of_the_real_address() {
        let c = Customer {
            id: "7".into(),
            email: "grace.sample@customers.raxx.test".into(),
            name: "Grace Sample".into(),
            status: "active".into(),
            created_at: "1767571200000".into(),
        };
        let v = CustomerView::new(&c, false);
        assert!(!v.email.contains("grace") && !v.name.contains("Sample"));
        assert!(v.masked);
        assert_eq!(v.created_at, "2026-01-05 00:00:00");
        let v = CustomerView::new(&c, true);
        assert_eq!(v.email, c.email);
        assert!(!v.masked);
    }
}
