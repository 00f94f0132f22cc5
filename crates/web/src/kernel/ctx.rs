//! The request as the gate saw it ([`Ctx`]): who, which session and request, the route
//! facts; handlers take it as an extractor, and hand the use cases its [`Caller`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{Csrf, Owner, Principal, Target};
use raxx_core::rbac::{EffectiveRoles, Level, Resource};
use raxx_store::admins::Admin;
use raxx_store::sessions::Session;

use crate::kernel::error::AppError;
use crate::kernel::route::Route;
use crate::kernel::state::AppState;
use raxx_actions::Caller;

use crate::kernel::route::route_template;

/// The request as the gate saw it; handlers take it as an extractor.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub env: Env,
    pub route_action: &'static str,
    /// The manifest route, and the CSRF and claimed-env facts the gate found: what the
    /// object half of the decision ([`Ctx::authorize`]) starts from.
    pub route: &'static Route,
    pub csrf_fact: Csrf,
    pub claimed_env: Option<Env>,
    pub principal: Principal,
    pub admin: Option<Admin>,
    pub session: Option<Session>,
    pub request_id: String,
    pub ip: Option<String>,
    pub flash: Option<String>,
}

impl Ctx {
    pub fn roles(&self) -> EffectiveRoles {
        self.principal.roles()
    }

    pub fn has(&self, resource: Resource, level: Level) -> bool {
        self.roles().has(resource, level)
    }

    /// May this principal make a `write` of `resource` on this console? (Renders
    /// controls only where the action is possible.)
    pub fn can_write(&self, resource: Resource) -> bool {
        self.has(resource, raxx_core::gate::write_level(self.env))
    }

    pub fn actor(&self) -> String {
        match (&self.principal, &self.admin) {
            (_, Some(a)) => a.id.to_string(),
            (Principal::Key { app, kind, .. }, _) => format!("key:{app}:{}", kind.as_str()),
            (Principal::System { job, .. }, _) => format!("system:{job}"),
            _ => "anonymous".into(),
        }
    }

    pub fn admin_id(&self) -> Option<i64> {
        self.admin.as_ref().map(|a| a.id)
    }

    /// An audit event prefilled with who, which session, which request.
    pub fn event(&self, action: &str, outcome: Outcome) -> AuditEvent {
        let mut e = AuditEvent::new(self.actor(), action, outcome);
        e.session_id = self.session.as_ref().map(|s| s.id.clone());
        e.request_id = Some(self.request_id.clone());
        e.ip = self.ip.clone();
        e
    }

    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf_token.as_str())
    }

    /// The request as the use cases see it (who, which session and request, the route
    /// facts the object decision starts from).
    pub fn caller(&self) -> Caller {
        let decided = self.route.decided_as();
        Caller {
            env: self.env,
            principal: self.principal.clone(),
            actor: self.actor(),
            admin_id: self.admin_id(),
            admin_email: self.admin.as_ref().map(|a| a.email.clone()),
            session_id: self.session.as_ref().map(|s| s.id.clone()),
            request_id: self.request_id.clone(),
            ip: self.ip.clone(),
            action: self.route_action,
            route: route_template(self.route),
            class: decided.class,
            access: decided.access,
            only_env: decided.only_env,
            csrf: self.csrf_fact,
            claimed_env: self.claimed_env,
        }
    }

    /// The object half of the gate: may this request act on `target`? One decision
    /// ([`Caller::authorize`], the one the use cases ask) and one denial row layout.
    /// Audits and refuses otherwise. Every handler that acts on an object calls this.
    pub async fn authorize(
        &self,
        state: &AppState,
        target: Target<'_>,
        what: &str,
    ) -> Result<(), AppError> {
        Ok(self.caller().authorize(state, target, what).await?)
    }

    /// The target object's env must be this console's: [`Ctx::authorize`] with the env
    /// only (an object nobody owns, of no app in particular).
    pub async fn check_target_env(
        &self,
        state: &AppState,
        target_env: Env,
        target: &str,
    ) -> Result<(), AppError> {
        let t = Target {
            env: Some(target_env),
            app: None,
            owner: Owner::Nobody,
        };
        self.authorize(state, t, target).await
    }
}

pub use raxx_actions::gate::authorize_unattended;

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| AppError::Internal("route mounted outside the gate".into()))
    }
}
