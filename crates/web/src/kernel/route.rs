//! A route as the manifest declares it: method, path, class, access, audit action, the
//! handler and its OpenAPI types; [`route!`] declares one. The manifest itself is the
//! top of the crate (`crate::manifest`); it installs itself here ([`install`]), so the
//! kernel reads it without importing what sits above it.

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};
use raxx_core::Env;
use raxx_core::gate::{Access, Class, KeyKind, required_role, route_exists_in};
use raxx_core::rbac::Resource;

use crate::kernel::apidoc::ApiDoc;
use crate::kernel::state::AppState;

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
                manifest()
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
/// ([`crate::kernel::apidoc::ApiDoc`]): the OpenAPI document is built from them.
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
                let mut d: Option<$crate::kernel::apidoc::ApiDoc> = None;
                $(d = Some($doc);)?
                d
            },
        }
    };
}
#[allow(unused_imports)]
pub(crate) use route;

/// `GET /auth/link/{token}`: what audit rows and logs name a route by.
pub fn route_template(route: &Route) -> String {
    format!("{} {}", route.method, route.path)
}

static MANIFEST: std::sync::OnceLock<&'static [Route]> = std::sync::OnceLock::new();

/// Make `routes` the manifest the kernel reads ([`manifest`]). `crate::manifest` calls this
/// the first time it is read, and the router is built from it, so every request sees it.
pub fn install(routes: &'static [Route]) {
    let _ = MANIFEST.set(routes);
}

/// Every route of the console: what the gate decides a confirmation page by and what the
/// navigation is built from. Empty until `crate::manifest::route_manifest` first ran; the
/// router is built from that, so no request is served before.
pub fn manifest() -> &'static [Route] {
    MANIFEST.get().copied().unwrap_or(&[])
}
