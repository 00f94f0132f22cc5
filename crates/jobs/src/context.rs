//! What one run of a job gets: the console's state, its `system:<job>` principal, and
//! [`JobCtx::authorize`] — the write gate every write of a job passes, so a job can never
//! write outside the active env (SPEC §5, §10).

use raxx_actions::Console;
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{Access, Class, Csrf, GateInput, Owner, Principal, Target, write_level};
use raxx_core::rbac::{EffectiveRoles, Resource, Role};
use raxx_store::jobs::RunKind;

/// The roles a job acts with on a console of `env`: the write level of `resource` and of
/// `job` (what an operator would need to run it by hand there).
pub fn system_roles(env: Env, resource: Resource) -> EffectiveRoles {
    let level = write_level(env);
    EffectiveRoles::from_roles([Role::new(Resource::Job, level), Role::new(resource, level)])
}

/// A write the gate refused (already audited as `denied`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

#[derive(Clone)]
pub struct JobCtx {
    pub state: Console,
    pub job: &'static str,
    pub resource: Resource,
    pub roles: EffectiveRoles,
    /// The scheduled tick (unix ms), or the request time of a manual run.
    pub tick: i64,
    pub kind: RunKind,
    pub webhook_url: Option<String>,
}

impl JobCtx {
    pub fn new(
        state: Console,
        job: &'static str,
        resource: Resource,
        tick: i64,
        kind: RunKind,
    ) -> Self {
        let roles = system_roles(state.env(), resource);
        JobCtx {
            state,
            job,
            resource,
            roles,
            tick,
            kind,
            webhook_url: None,
        }
    }

    /// `system:<job>`, the actor of every audit row the job writes.
    pub fn actor(&self) -> String {
        format!("system:{}", self.job)
    }

    pub fn principal(&self) -> Principal {
        Principal::System {
            job: self.job.to_string(),
            roles: self.roles.clone(),
        }
    }

    /// An audit event by this job, noting the tick it runs for.
    pub fn event(&self, action: &str, outcome: Outcome) -> AuditEvent {
        AuditEvent::new(self.actor(), action, outcome)
            .with("job", self.job)
            .with("tick", self.tick)
            .with("run", self.kind.as_str())
    }

    /// The write gate for one target of this job: class `write`, claimed env = this
    /// console's, the target's env and app as the object ([`raxx_core::gate::authorize`],
    /// the same decision handlers ask). A refusal is audited `denied` (actor
    /// `system:<job>`, the one denial row layout of [`raxx_actions::gate::object_denial_event`])
    /// and returned; the caller skips that target.
    pub async fn authorize(
        &self,
        target_env: Env,
        target_type: &str,
        target_id: &str,
        target_app: Option<&str>,
    ) -> Result<(), Refusal> {
        self.decide(Some(target_env), target_type, target_id, target_app)
            .await
    }

    /// The gate for a whole run that has no object of its own (purging this console's
    /// ended sessions, a digest of its audit log): the job's role and env only.
    pub async fn authorize_run(&self, target_type: &str, target_id: &str) -> Result<(), Refusal> {
        self.decide(None, target_type, target_id, None).await
    }

    async fn decide(
        &self,
        target_env: Option<Env>,
        target_type: &str,
        target_id: &str,
        target_app: Option<&str>,
    ) -> Result<(), Refusal> {
        let principal = self.principal();
        let input = GateInput {
            active_env: self.state.env(),
            class: Class::Write,
            access: Access::Role(self.resource),
            only_env: None,
            principal: &principal,
            csrf: Csrf::Valid,
            claimed_env: Some(self.state.env()),
            target_env: None,
            target_app: None,
            own_object: false,
        };
        let target = Target {
            env: target_env,
            app: target_app,
            owner: Owner::Nobody,
        };
        let base = self
            .event(&format!("job.{}", self.job), Outcome::Denied)
            .target(target_type, target_id);
        let what = format!("{target_type} {target_id}");
        raxx_actions::gate::authorize_unattended(&self.state, &input, target, &what, base)
            .await
            .map_err(|denial| Refusal(format!("{what}: {}", denial.message())))
    }
}
