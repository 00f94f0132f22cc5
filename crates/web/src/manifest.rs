//! The route manifest: every route the console serves, declared once with its method,
//! path, class and access. [`crate::server::build_router`] mounts exactly these and
//! wraps each in the gate, so a route that is not here cannot be reached.

use std::sync::LazyLock;

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use raxx_core::Env;
use raxx_core::gate::{Access, Class, KeyKind, required_role, route_exists_in};
use raxx_core::rbac::{Level, Resource};

use crate::apidoc::{ApiDoc, IntId, Membership, StrId};
use crate::state::AppState;
use crate::{api, auth, login_link, pages};

/// How a route answers errors: JSON `{"error","message"}` or an HTML page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Page,
    Json,
}

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub class: Class,
    pub access: Access,
    /// A write that exists on one env only (applying staging flags).
    pub only_env: Option<Env>,
    /// The audit action name for this route's writes and denials.
    pub action: &'static str,
    /// A confirmation page (`GET /tokens/{id}/rotate`) names the write it confirms (the
    /// `POST` at the same path): the gate decides the page with that write's facts, so the
    /// page opens exactly for those whose confirmation would be allowed.
    pub confirms: Option<Method>,
    pub make: fn(MethodFilter) -> MethodRouter<AppState>,
    /// A JSON route's request and reply types, as the OpenAPI document shows them.
    pub doc: Option<ApiDoc>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

impl Route {
    pub fn surface(&self) -> Surface {
        if self.path.starts_with("/api/")
            || self.path.starts_with("/ofrep/")
            || self.path.starts_with("/auth/")
                && self.method == Method::POST
                && self.path != "/auth/link"
        {
            Surface::Json
        } else {
            Surface::Page
        }
    }

    /// The permission this route needs on a console of `env`, as `routes` prints it.
    pub fn permission(&self, env: Env) -> String {
        let decided = self.decided_as();
        if !std::ptr::eq(decided, self) {
            return decided.permission(env);
        }
        if !route_exists_in(self.class, self.only_env, env) {
            return "refused (env_mismatch)".into();
        }
        let key = |k: KeyKind| format!("{} key of the app", k.as_str());
        match self.access {
            Access::Public => "public".into(),
            Access::SignedIn => "signed in".into(),
            Access::Key(k) => key(k),
            Access::RoleOrKey(_, k) => format!(
                "{} or {}",
                required_role(self.class, self.access, env)
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                key(k)
            ),
            Access::OwnOrRole(_) => format!(
                "own, or {}",
                required_role(self.class, self.access, env)
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ),
            Access::Role(_) | Access::RoleAt(..) => required_role(self.class, self.access, env)
                .map(|r| r.to_string())
                .unwrap_or_default(),
        }
    }

    /// The route whose facts (class, access, env) the gate decides this one by: the write
    /// a confirmation page confirms, else the route itself.
    pub fn decided_as(&self) -> &Route {
        self.confirms
            .as_ref()
            .and_then(|m| {
                route_manifest()
                    .iter()
                    .find(|r| r.method == *m && r.path == self.path)
            })
            .unwrap_or(self)
    }

    pub fn resource(&self) -> Option<Resource> {
        match self.access {
            Access::Role(r)
            | Access::RoleAt(r, _)
            | Access::OwnOrRole(r)
            | Access::RoleOrKey(r, _) => Some(r),
            _ => None,
        }
    }
}

/// Declare one route: `route!(METHOD "/path", Class, Access, [only_env,] "audit.action",
/// handler[, doc = ApiDoc])`. A JSON route names its types with `doc`
/// ([`crate::apidoc::ApiDoc`]): the OpenAPI document is built from them.
/// Feature modules use it in their `routes()` and the manifest concatenates them.
macro_rules! route {
    ($method:ident $path:literal, $class:ident, $access:expr, $action:literal, $handler:path $(, doc = $doc:expr)?) => {
        route!($method $path, $class, $access, None, $action, $handler $(, doc = $doc)?)
    };
    ($method:ident $path:literal, $class:ident, $access:expr, $only:expr, $action:literal, $handler:path $(, doc = $doc:expr)?) => {
        Route {
            method: Method::$method,
            path: $path,
            class: Class::$class,
            access: $access,
            only_env: $only,
            action: $action,
            confirms: None,
            make: |filter| axum::routing::on(filter, $handler),
            doc: {
                #[allow(unused_mut, unused_assignments)]
                let mut d: Option<$crate::apidoc::ApiDoc> = None;
                $(d = Some($doc);)?
                d
            },
        }
    };
}
#[allow(unused_imports)]
pub(crate) use route;

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
        crate::jobs_pages::routes(),
        crate::passkeys::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn core_routes() -> Vec<Route> {
    vec![
        // Health and assets.
        route!(GET "/healthz", Read, Public, "health", api::healthz),
        route!(GET "/readyz", Read, Public, "health", api::readyz),
        route!(GET "/metrics", Read, Public, "metrics", api::metrics),
        route!(GET "/static/{file}", Read, Public, "asset", pages::asset),
        // Sign-in: public by nature; cross-origin posts are still refused.
        route!(GET "/login", Read, Public, "auth.page", auth::login_page),
        route!(POST "/auth/login/start", Write, Public, "auth.login", auth::login_start, doc = ApiDoc::reply::<auth::Ceremony>().body::<auth::LoginStart>()),
        route!(POST "/auth/login/finish", Write, Public, "auth.login", auth::login_finish, doc = ApiDoc::reply::<auth::SignedIn>().body::<auth::LoginFinish>()),
        route!(POST "/auth/register/start", Write, Public, "auth.register", auth::register_start, doc = ApiDoc::reply::<auth::Ceremony>().body::<auth::RegisterStart>()),
        route!(POST "/auth/register/finish", Write, Public, "auth.register", auth::register_finish, doc = ApiDoc::reply::<auth::SignedIn>().body::<auth::RegisterFinish>()),
        // The break-glass link (SPEC §3): opening it only shows "Sign in as E"; the page's
        // same-origin POST (token in the body) uses it once. HEAD is GET: it changes nothing.
        route!(GET "/auth/link/{token}", Read, Public, "auth.login_link.view", login_link::confirm_page),
        route!(POST "/auth/link", Write, Public, "auth.login_link", login_link::sign_in),
        route!(GET "/invite/{token}", Read, Public, "invite.page", auth::invite_page),
        route!(POST "/logout", Write, SignedIn, "auth.logout", auth::logout),
        // Pages.
        route!(GET "/", Read, SignedIn, "dashboard.view", pages::dashboard),
        route!(GET "/sessions", Read, SignedIn, "session.list", pages::sessions),
        route!(POST "/sessions/{id}/revoke", Write, OwnOrRole(Resource::Session), "session.revoke", pages::revoke_session),
        route!(GET "/operators", Read, SignedIn, "operator.list", pages::operators),
        route!(POST "/operators/{id}/disable", Write, Role(Resource::Session), "operator.disable", pages::disable_operator),
        route!(POST "/operators/{id}/enable", Write, Role(Resource::Session), "operator.enable", pages::enable_operator),
        route!(
            POST "/operators/{id}/groups/{group}/remove",
            Write,
            Role(Resource::Invite),
            "operator.group.remove",
            pages::remove_membership
        ),
        route!(GET "/audit", Read, RoleAt(Resource::Audit, Level::User), "audit.view", pages::audit),
        route!(GET "/audit/export", Read, RoleAt(Resource::Audit, Level::User), "audit.export", pages::audit_export),
        route!(GET "/audit/{id}", Read, RoleAt(Resource::Audit, Level::User), "audit.view", pages::audit_entry),
        route!(GET "/invites", Read, Role(Resource::Invite), "invite.list", pages::invites),
        route!(POST "/invites", Write, Role(Resource::Invite), "invite.create", pages::create_invite),
        route!(POST "/invites/{id}/revoke", Write, Role(Resource::Invite), "invite.revoke", pages::revoke_invite),
        // JSON API.
        route!(GET "/api/v1/openapi.json", Read, Public, "api.openapi", api::openapi, doc = ApiDoc::reply::<crate::openapi::Document>()),
        route!(GET "/api/v1/me", Read, SignedIn, "api.me", api::me, doc = ApiDoc::reply::<api::Me>()),
        route!(GET "/api/v1/apps", Read, SignedIn, "app.list", api::apps, doc = ApiDoc::list::<api::AppView>()),
        route!(GET "/api/v1/audit", Read, RoleAt(Resource::Audit, Level::User), "audit.view", api::audit, doc = ApiDoc::reply::<api::AuditPage>().query::<api::AuditQuery>()),
        route!(GET "/api/v1/audit/{id}", Read, RoleAt(Resource::Audit, Level::User), "audit.view", api::audit_entry, doc = ApiDoc::reply::<crate::apidoc::AnyJson>().path::<IntId>()),
        route!(GET "/api/v1/sessions", Read, SignedIn, "session.list", api::sessions, doc = ApiDoc::list::<api::SessionView>()),
        route!(DELETE "/api/v1/sessions/{id}", Write, OwnOrRole(Resource::Session), "session.revoke", api::revoke_session, doc = ApiDoc::reply::<api::SessionRevoked>().path::<StrId>()),
        route!(GET "/api/v1/invites", Read, Role(Resource::Invite), "invite.list", api::invites, doc = ApiDoc::list::<api::InviteView>()),
        route!(POST "/api/v1/invites", Write, Role(Resource::Invite), "invite.create", api::create_invite, doc = ApiDoc::reply::<api::InviteCreated>().status(201).body::<api::InviteBody>()),
        route!(POST "/api/v1/invites/{id}/revoke", Write, Role(Resource::Invite), "invite.revoke", api::revoke_invite, doc = ApiDoc::reply::<api::InviteRevoked>().path::<IntId>()),
        route!(
            DELETE "/api/v1/operators/{id}/groups/{group}",
            Write,
            Role(Resource::Invite),
            "operator.group.remove",
            api::remove_membership,
            doc = ApiDoc::reply::<api::MembershipRemoved>().path::<Membership>()
        ),
        route!(POST "/api/v1/operators/{id}/disable", Write, Role(Resource::Session), "operator.disable", api::disable_operator, doc = ApiDoc::reply::<api::OperatorState>().path::<IntId>()),
        route!(POST "/api/v1/operators/{id}/enable", Write, Role(Resource::Session), "operator.enable", api::enable_operator, doc = ApiDoc::reply::<api::OperatorState>().path::<IntId>()),
    ]
}

/// Every route, in declaration order.
pub fn route_manifest() -> &'static [Route] {
    &ROUTES
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
