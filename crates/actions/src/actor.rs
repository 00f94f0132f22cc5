//! Who acts in a use case: a request the gate let through ([`Caller`]) or a job
//! (`system:<job>`). Both are audited under their actor and pass the same object decision.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{Access, Class, Csrf, GateInput, Principal, Target, authorize};
use raxx_core::rbac::{EffectiveRoles, Level, Resource};

use crate::console::Console;
use crate::error::{Error, Result};
use crate::gate::{name_the_object, object_denial_event};

/// A request as the gate decided it: the principal, what the audit rows say about it,
/// and the route facts the object half of the decision starts from.
#[derive(Clone, Debug)]
pub struct Caller {
    pub env: Env,
    pub principal: Principal,
    /// The audit actor: an operator's id, `key:<app>:<kind>`, `anonymous`.
    pub actor: String,
    /// The signed-in operator's id, if an operator acts.
    pub admin_id: Option<i64>,
    /// And their email.
    pub admin_email: Option<String>,
    pub session_id: Option<String>,
    pub request_id: String,
    pub ip: Option<String>,
    /// The route's audit action and its manifest template (`POST /tokens/{id}/rotate`).
    pub action: &'static str,
    pub route: String,
    /// The facts the gate decided the route by.
    pub class: Class,
    pub access: Access,
    pub only_env: Option<Env>,
    pub csrf: Csrf,
    pub claimed_env: Option<Env>,
}

impl Caller {
    /// An audit event prefilled with who, which session, which request.
    pub fn event(&self, action: &str, outcome: Outcome) -> AuditEvent {
        let mut e = AuditEvent::new(self.actor.clone(), action, outcome);
        e.session_id = self.session_id.clone();
        e.request_id = Some(self.request_id.clone());
        e.ip = self.ip.clone();
        e
    }

    /// The roles the principal holds on this console.
    pub fn roles(&self) -> EffectiveRoles {
        self.principal.roles()
    }

    pub fn has(&self, resource: Resource, level: Level) -> bool {
        self.roles().has(resource, level)
    }

    /// The route facts as the gate saw them, for [`raxx_core::gate::authorize`].
    pub fn gate_input(&self) -> GateInput<'_> {
        GateInput {
            active_env: self.env,
            class: self.class,
            access: self.access,
            only_env: self.only_env,
            principal: &self.principal,
            csrf: self.csrf,
            claimed_env: self.claimed_env,
            target_env: None,
            target_app: None,
            own_object: false,
        }
    }

    /// The object half of the gate: may this request act on `target`? One decision and
    /// one denial row layout ([`object_denial_event`]); audits and refuses otherwise.
    pub async fn authorize(&self, console: &Console, target: Target<'_>, what: &str) -> Result<()> {
        let Err(denial) = authorize(&self.gate_input(), &target) else {
            return Ok(());
        };
        let denial = name_the_object(denial, what);
        let base = self.event(self.action, Outcome::Denied);
        let event = object_denial_event(base, Some(&self.route), &denial, &target, what);
        console.store.audit(event).await?;
        tracing::info!(code = denial.code(), route = %self.route, "gate denied an object");
        crate::metrics::gate_denial(denial.code());
        Err(Error::Denied(denial))
    }
}

/// Who acts in a use case.
#[derive(Clone, Debug)]
pub enum Actor {
    /// An operator (or a key) through a request.
    Operator(Box<Caller>),
    /// A job or the console itself: `system:<name>`.
    System(String),
}

impl Actor {
    /// An audit event by this actor.
    pub fn event(&self, action: &str, outcome: Outcome) -> AuditEvent {
        match self {
            Actor::Operator(caller) => caller.event(action, outcome),
            Actor::System(actor) => AuditEvent::new(actor.clone(), action, outcome),
        }
    }

    /// The audit actor.
    pub fn name(&self) -> String {
        match self {
            Actor::Operator(caller) => caller.actor.clone(),
            Actor::System(actor) => actor.clone(),
        }
    }
}
