//! What one run of a job gets: the console's state, its `system:<job>` principal, and
//! [`JobCtx::authorize`] — the write gate every write of a job passes, so a job can never
//! write outside the active env (SPEC §5, §10).

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{Access, Class, Csrf, GateInput, Principal, decide, write_level};
use raxx_core::rbac::{EffectiveRoles, Resource, Role};
use raxx_store::jobs::RunKind;
use raxx_web::AppState;

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
    pub state: AppState,
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
        state: AppState,
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
    /// console's, target env = the target's. A refusal is audited `denied` (actor
    /// `system:<job>`) and returned; the caller skips that target.
    pub async fn authorize(
        &self,
        target_env: Env,
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
            target_env: Some(target_env),
            target_app: None,
            own_object: false,
        };
        let Err(denial) = decide(&input) else {
            return Ok(());
        };
        let mut event = self
            .event(&format!("job.{}", self.job), Outcome::Denied)
            .target(target_type, target_id)
            .reason(denial.message())
            .with("denial", denial.code())
            .with("target_env", target_env.as_str());
        if let Some(app) = target_app {
            event = event.app(app);
        }
        if let Err(e) = self.state.store.audit(event).await {
            tracing::error!(job = self.job, error = %e, "could not audit a job's denial");
        }
        tracing::warn!(
            job = self.job,
            target = target_id,
            "the write gate refused a job's write"
        );
        Err(Refusal(format!(
            "{target_type} {target_id}: {}",
            denial.message()
        )))
    }
}
