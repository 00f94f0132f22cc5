//! The route manifest: every route the console serves, declared once with its method,
//! path, class and access. [`crate::server::build_router`] mounts exactly these and
//! wraps each in the gate, so a route that is not here cannot be reached.

use std::sync::LazyLock;

use axum::http::Method;
use raxx_core::Env;
use raxx_core::gate::{Access, Class};
use raxx_core::rbac::{Level, Resource};

use crate::kernel::apidoc::ApiDoc;
use crate::kernel::apidoc::IntId;
use crate::kernel::apidoc::Membership;
use crate::kernel::apidoc::StrId;
use crate::kernel::route::{Route, route};

use Access::*;

static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    let mut routes = core_routes();
    // Each capability declares its routes beside its handlers; one line each here.
    routes.extend(feature_routes());
    routes
});

/// Capabilities' routes (flags, tokens, customers, status, jobs) are appended here.
fn feature_routes() -> Vec<Route> {
    [
        crate::tokens::routes(),
        crate::flags::routes(),
        crate::customers::routes(),
        crate::status::routes(),
        crate::jobs::routes(),
        crate::signin::passkeys::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn core_routes() -> Vec<Route> {
    vec![
        // Health and assets.
        route!(GET "/healthz", Read, Public, "health", crate::health::healthz),
        route!(GET "/readyz", Read, Public, "health", crate::health::readyz),
        route!(GET "/metrics", Read, Public, "metrics", crate::health::metrics),
        route!(GET "/static/{file}", Read, Public, "asset", crate::kernel::views::asset),
        // Sign-in: public by nature; cross-origin posts are still refused.
        route!(GET "/login", Read, Public, "auth.page", crate::signin::auth::login_page),
        route!(POST "/auth/login/start", Write, Public, "auth.login", crate::signin::auth::login_start, doc = ApiDoc::reply::<crate::signin::auth::Ceremony>().body::<crate::signin::auth::LoginStart>()),
        route!(POST "/auth/login/finish", Write, Public, "auth.login", crate::signin::auth::login_finish, doc = ApiDoc::reply::<crate::signin::auth::SignedIn>().body::<crate::signin::auth::LoginFinish>()),
        route!(POST "/auth/register/start", Write, Public, "auth.register", crate::signin::auth::register_start, doc = ApiDoc::reply::<crate::signin::auth::Ceremony>().body::<crate::signin::auth::RegisterStart>()),
        route!(POST "/auth/register/finish", Write, Public, "auth.register", crate::signin::auth::register_finish, doc = ApiDoc::reply::<crate::signin::auth::SignedIn>().body::<crate::signin::auth::RegisterFinish>()),
        // The break-glass link (SPEC §3): opening it only shows "Sign in as E"; the page's
        // same-origin POST (token in the body) uses it once. HEAD is GET: it changes nothing.
        route!(GET "/auth/link/{token}", Read, Public, "auth.login_link.view", crate::signin::login_link::confirm_page),
        route!(POST "/auth/link", Write, Public, "auth.login_link", crate::signin::login_link::sign_in),
        route!(GET "/invite/{token}", Read, Public, "invite.page", crate::signin::auth::invite_page),
        route!(POST "/logout", Write, SignedIn, "auth.logout", crate::signin::auth::logout),
        // Pages.
        route!(GET "/", Read, SignedIn, "dashboard.view", crate::dashboard::dashboard),
        route!(GET "/sessions", Read, SignedIn, "session.list", crate::operators::pages::sessions),
        route!(POST "/sessions/{id}/revoke", Write, OwnOrRole(Resource::Session), "session.revoke", crate::operators::pages::revoke_session),
        route!(GET "/operators", Read, SignedIn, "operator.list", crate::operators::pages::operators),
        route!(POST "/operators/{id}/disable", Write, Role(Resource::Session), "operator.disable", crate::operators::pages::disable_operator),
        route!(POST "/operators/{id}/enable", Write, Role(Resource::Session), "operator.enable", crate::operators::pages::enable_operator),
        route!(
            POST "/operators/{id}/groups/{group}/remove",
            Write,
            Role(Resource::Invite),
            "operator.group.remove",
            crate::operators::pages::remove_membership
        ),
        route!(GET "/audit", Read, RoleAt(Resource::Audit, Level::User), "audit.view", crate::audit::pages::audit),
        route!(GET "/audit/export", Read, RoleAt(Resource::Audit, Level::User), "audit.export", crate::audit::pages::audit_export),
        route!(GET "/audit/{id}", Read, RoleAt(Resource::Audit, Level::User), "audit.view", crate::audit::pages::audit_entry),
        route!(GET "/invites", Read, Role(Resource::Invite), "invite.list", crate::operators::pages::invites),
        route!(POST "/invites", Write, Role(Resource::Invite), "invite.create", crate::operators::pages::create_invite),
        route!(POST "/invites/{id}/revoke", Write, Role(Resource::Invite), "invite.revoke", crate::operators::pages::revoke_invite),
        // JSON API.
        route!(GET "/api/v1/openapi.json", Read, Public, "api.openapi", crate::openapi::openapi_json, doc = ApiDoc::reply::<crate::openapi::Document>()),
        route!(GET "/api/v1/me", Read, SignedIn, "api.me", crate::dashboard::api::me, doc = ApiDoc::reply::<crate::dashboard::api::Me>()),
        route!(GET "/api/v1/apps", Read, SignedIn, "app.list", crate::dashboard::api::apps, doc = ApiDoc::list::<crate::dashboard::api::AppView>()),
        route!(GET "/api/v1/audit", Read, RoleAt(Resource::Audit, Level::User), "audit.view", crate::audit::api::audit, doc = ApiDoc::reply::<crate::audit::api::AuditPage>().query::<crate::audit::api::AuditQuery>()),
        route!(GET "/api/v1/audit/{id}", Read, RoleAt(Resource::Audit, Level::User), "audit.view", crate::audit::api::audit_entry, doc = ApiDoc::reply::<crate::kernel::apidoc::AnyJson>().path::<IntId>()),
        route!(GET "/api/v1/sessions", Read, SignedIn, "session.list", crate::operators::api::sessions, doc = ApiDoc::list::<crate::operators::api::SessionView>()),
        route!(DELETE "/api/v1/sessions/{id}", Write, OwnOrRole(Resource::Session), "session.revoke", crate::operators::api::revoke_session, doc = ApiDoc::reply::<crate::operators::api::SessionRevoked>().path::<StrId>()),
        route!(GET "/api/v1/invites", Read, Role(Resource::Invite), "invite.list", crate::operators::api::invites, doc = ApiDoc::list::<crate::operators::api::InviteView>()),
        route!(POST "/api/v1/invites", Write, Role(Resource::Invite), "invite.create", crate::operators::api::create_invite, doc = ApiDoc::reply::<crate::operators::api::InviteCreated>().status(201).body::<crate::operators::api::InviteBody>()),
        route!(POST "/api/v1/invites/{id}/revoke", Write, Role(Resource::Invite), "invite.revoke", crate::operators::api::revoke_invite, doc = ApiDoc::reply::<crate::operators::api::InviteRevoked>().path::<IntId>()),
        route!(
            DELETE "/api/v1/operators/{id}/groups/{group}",
            Write,
            Role(Resource::Invite),
            "operator.group.remove",
            crate::operators::api::remove_membership,
            doc = ApiDoc::reply::<crate::operators::api::MembershipRemoved>().path::<Membership>()
        ),
        route!(POST "/api/v1/operators/{id}/disable", Write, Role(Resource::Session), "operator.disable", crate::operators::api::disable_operator, doc = ApiDoc::reply::<crate::operators::api::OperatorState>().path::<IntId>()),
        route!(POST "/api/v1/operators/{id}/enable", Write, Role(Resource::Session), "operator.enable", crate::operators::api::enable_operator, doc = ApiDoc::reply::<crate::operators::api::OperatorState>().path::<IntId>()),
    ]
}

/// Every route, in declaration order. The first call installs it in the kernel
/// ([`crate::kernel::route::install`]), which the gate and the layout read it from.
pub fn route_manifest() -> &'static [Route] {
    let routes: &'static [Route] = &ROUTES;
    crate::kernel::route::install(routes);
    routes
}

/// The manifest as the table `raxx-console routes` prints.
pub fn manifest_table() -> String {
    let rows: Vec<[String; 6]> = route_manifest()
        .iter()
        .map(|r| {
            [
                r.method.to_string(),
                r.path.to_string(),
                r.class.as_str().to_string(),
                r.resource()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_else(|| "-".into()),
                r.permission(Env::Staging),
                r.permission(Env::Prod),
            ]
        })
        .collect();
    let header = [
        "METHOD",
        "PATH",
        "CLASS",
        "RESOURCE",
        "ON STAGING",
        "ON PROD",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String; 6]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header);
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Surface;

    #[test]
    fn every_route_is_declared_once() {
        let mut seen = std::collections::BTreeSet::new();
        for r in route_manifest() {
            assert!(
                seen.insert((r.method.to_string(), r.path)),
                "{r:?} declared twice"
            );
        }
    }

    #[test]
    fn prod_writes_are_refused_on_staging_in_the_table() {
        for r in route_manifest()
            .iter()
            .filter(|r| r.class == Class::ProdWrite)
        {
            assert_eq!(r.permission(Env::Staging), "refused (env_mismatch)");
        }
        let table = manifest_table();
        assert!(table.starts_with("METHOD"));
        assert_eq!(table.lines().count(), route_manifest().len() + 1);
    }

    /// SPEC §13: every action a page offers has a JSON twin (same audit action) under
    /// `/api/v1`. Signing out is the session's own business, not an API action.
    #[test]
    fn every_page_action_has_a_json_twin() {
        for r in route_manifest() {
            if r.surface() != Surface::Page || !r.class.is_write() || r.access == Access::Public {
                continue;
            }
            if r.path == "/logout" {
                continue;
            }
            let twin = route_manifest().iter().find(|j| {
                j.surface() == Surface::Json
                    && j.path.starts_with("/api/v1/")
                    && j.action == r.action
                    && j.class == r.class
            });
            assert!(twin.is_some(), "{r:?} ({}) has no JSON twin", r.action);
        }
    }

    /// A confirmation page is a safe `GET` whose decision is the write it confirms: that
    /// write exists in the manifest, at the same path, and is a write.
    #[test]
    fn confirmation_pages_are_decided_as_the_write_they_confirm() {
        let mut confirms = 0;
        for r in route_manifest() {
            let Some(m) = &r.confirms else { continue };
            confirms += 1;
            assert_eq!(r.method, Method::GET, "{r:?}");
            let w = r.decided_as();
            assert!(
                !std::ptr::eq(w, r),
                "{r:?} confirms {m} {}, which is not in the manifest",
                r.path
            );
            assert!(w.class.is_write(), "{r:?} confirms a read");
            assert_eq!(w.path, r.path);
            for env in Env::ALL {
                assert_eq!(r.permission(env), w.permission(env), "{r:?} on {env}");
            }
        }
        assert!(confirms > 0, "GET /tokens/{{id}}/rotate confirms its POST");
    }

    #[test]
    fn writes_use_methods_that_are_not_safe() {
        for r in route_manifest() {
            // HEAD is served by the GET handler: no GET route may be a write, public or not.
            if r.class.is_write() {
                assert_ne!(r.method, Method::GET, "{r:?} is a write on GET");
            }
            // OFREP evaluation is a read that the protocol puts on POST (the context is the body);
            // so is the playground's (a context too large for a query string). Those two, and
            // only those, are reads on POST: the gate makes an operator's POST read carry the
            // CSRF token (`gate.rs`, tests/it/playground.rs).
            const POST_READS: [&str; 2] = ["/api/v1/apps/{app}/evaluate", "/apps/{app}/playground"];
            if r.class == Class::Read
                && !r.path.starts_with("/ofrep/")
                && !(r.method == Method::POST && POST_READS.contains(&r.path))
            {
                assert_eq!(r.method, Method::GET, "{r:?} is a read on {}", r.method);
            }
        }
    }
}
