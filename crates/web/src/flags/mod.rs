//! Feature flags on the web (SPEC §7, §13): OFREP evaluation for apps, the staging flags
//! apply and the read API the prod console promotes from, the read-only flag pages, and
//! prod's promotion queue and kill switch. Decisions are in `docs/flags.md`.
//!
//! - [`ofrep`]: `POST /ofrep/v1/evaluate/flags[/{key}]`, over the in-memory [`FlagCache`];
//! - [`apply`]: `PUT`/`GET /api/v1/apps/{app}/flags` and [`apply_flags_file`] (also the CLI's);
//! - [`promote`]: the actions behind both the promotion pages and their JSON twins;
//! - [`source`]: reading the staging console's flag state from prod;
//! - [`api`], [`pages`]: the JSON and HTML faces; [`view`]: how flags read on a page.
pub mod api;
pub mod apply;
pub mod cors;
pub mod ofrep;
pub(crate) mod page_cache;
pub mod pages;
pub mod playground;
mod review_view;
pub mod usage;
mod view;

use axum::http::Method;
use raxx_core::Env;
use raxx_core::gate::{Access, Class, KeyKind};
use raxx_core::rbac::Resource;

use crate::kernel::apidoc::ApiDoc;
use crate::kernel::apidoc::AppFlag;
use crate::kernel::apidoc::IntId;
use crate::kernel::route::Route;
use crate::kernel::route::route;

pub use raxx_actions::flags::{
    ApplyError, apply_flags_file, authorize_app, env_apps, known_app, promote,
};
pub use raxx_actions::flags::{CachedFlags, FlagCache};
/// Every flags route. Reads of flag state need `console-flag-reader` (or a key of the
/// app); promotions and the kill switch are prod-writes; applying a file is staging-only.
pub fn routes() -> Vec<Route> {
    use Access::*;
    const FLAG: Resource = Resource::Flag;
    vec![
        // OFREP, for apps with a client key.
        route!(POST "/ofrep/v1/evaluate/flags/{key}", Read, Key(KeyKind::Client), "flag.evaluate", ofrep::evaluate_flag),
        route!(POST "/ofrep/v1/evaluate/flags", Read, Key(KeyKind::Client), "flag.evaluate", ofrep::evaluate_flags),
        route!(GET "/ofrep/v1/configuration", Read, Key(KeyKind::Client), "flag.configuration", ofrep::configuration),
        // CORS preflights for browser apps (no key: a preflight never carries one; `cors.rs`).
        route!(OPTIONS "/ofrep/v1/evaluate/flags/{key}", Read, Public, "flag.preflight", crate::flags::cors::preflight),
        route!(OPTIONS "/ofrep/v1/evaluate/flags", Read, Public, "flag.preflight", crate::flags::cors::preflight),
        route!(OPTIONS "/ofrep/v1/configuration", Read, Public, "flag.preflight", crate::flags::cors::preflight),
        // Flag state as config: staging applies a file; prod reads staging's state.
        route!(GET "/api/v1/apps/{app}/flags", Read, RoleOrKey(FLAG, KeyKind::Read), "flag.read", apply::get_flags, doc = ApiDoc::reply::<apply::FlagStateView>()),
        route!(PUT "/api/v1/apps/{app}/flags", Write, Key(KeyKind::Deploy), Some(Env::Staging), "flag.apply", apply::put_flags, doc = ApiDoc::reply::<apply::Applied>().body::<apply::FlagsFile>().body_also(&["application/toml", "application/yaml"])),
        // Promotions and the kill switch (JSON).
        route!(GET "/api/v1/promotions", Read, Role(FLAG), "flag.promotion.list", api::promotions, doc = ApiDoc::list::<api::PromotionView>().query::<api::PromotionsQuery>()),
        route!(GET "/api/v1/promotions/{id}", Read, Role(FLAG), "flag.promotion.view", api::promotion, doc = ApiDoc::reply::<api::PromotionView>().path::<IntId>()),
        route!(POST "/api/v1/promotions", ProdWrite, Role(FLAG), "flag.promotion.queue", api::queue, doc = ApiDoc::reply::<api::Queued>().status(201).body::<api::QueueBody>()),
        route!(POST "/api/v1/promotions/{id}/approve", ProdWrite, Role(FLAG), "flag.promotion.approve", api::approve, doc = ApiDoc::reply::<api::Approved>().optional_body::<api::ApproveBody>().path::<IntId>()),
        route!(POST "/api/v1/promotions/{id}/reject", ProdWrite, Role(FLAG), "flag.promotion.reject", api::reject, doc = ApiDoc::reply::<api::PromotionView>().body::<api::ReasonBody>().path::<IntId>()),
        route!(POST "/api/v1/apps/{app}/flags/{key}/kill", ProdWrite, Role(FLAG), "flag.kill", api::kill, doc = ApiDoc::reply::<api::Killed>().body::<api::ReasonBody>().path::<AppFlag>()),
        route!(POST "/api/v1/apps/{app}/flags/{key}/restore", ProdWrite, Role(FLAG), "flag.restore", api::restore, doc = ApiDoc::reply::<api::PromotionView>().status(201).body::<api::ReasonBody>().path::<AppFlag>()),
        // The playground: what every flag serves to a context, and why (reads; POST still
        // needs an operator's CSRF token, `gate.rs`).
        route!(POST "/api/v1/apps/{app}/evaluate", Read, Role(FLAG), "flag.playground", playground::api_evaluate, doc = ApiDoc::reply::<crate::kernel::apidoc::AnyJson>().body::<playground::EvaluateBody>().query::<playground::EvaluateQuery>()),
        route!(GET "/apps/{app}/playground", Read, Role(FLAG), "flag.playground", playground::show),
        route!(POST "/apps/{app}/playground", Read, Role(FLAG), "flag.playground", playground::submit),
        // Pages.
        route!(GET "/flags", Read, Role(FLAG), "flag.list", pages::index),
        route!(GET "/apps/{app}/flags", Read, Role(FLAG), "flag.list", pages::app_flags),
        route!(GET "/apps/{app}/flags/{key}", Read, Role(FLAG), "flag.view", pages::flag),
        route!(POST "/apps/{app}/flags/{key}/kill", ProdWrite, Role(FLAG), "flag.kill", pages::kill),
        route!(POST "/apps/{app}/flags/{key}/restore", ProdWrite, Role(FLAG), "flag.restore", pages::restore),
        route!(GET "/promotions", Read, Role(FLAG), "flag.promotion.list", pages::promotions),
        route!(GET "/promotions/new", Read, Role(FLAG), "flag.promotion.new", pages::new_promotion),
        route!(POST "/promotions", ProdWrite, Role(FLAG), "flag.promotion.queue", pages::queue),
        route!(GET "/promotions/{id}", Read, Role(FLAG), "flag.promotion.view", pages::promotion),
        route!(POST "/promotions/{id}/approve", ProdWrite, Role(FLAG), "flag.promotion.approve", pages::approve),
        route!(POST "/promotions/{id}/reject", ProdWrite, Role(FLAG), "flag.promotion.reject", pages::reject),
    ]
}
