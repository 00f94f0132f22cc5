//! `promotion-expiry` (every 10 minutes by default): pending flag promotions whose
//! review window (7 days) is over become `expired` (SPEC §7). Each app the promotions
//! target passes the write gate first; the store writes one audit row per promotion,
//! by `system:promotion-expiry`, in one transaction.

use raxx_core::rbac::Resource;
use raxx_store::now_ms;

use crate::{Job, JobCtx, JobError, JobFuture, JobReport};

pub struct PromotionExpiry;

impl Job for PromotionExpiry {
    fn name(&self) -> &'static str {
        "promotion-expiry"
    }
    fn default_schedule(&self) -> &'static str {
        "0 */10 * * * *"
    }
    fn resource(&self) -> Resource {
        Resource::Flag
    }
    fn run(&self, ctx: JobCtx) -> JobFuture {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: JobCtx) -> Result<JobReport, JobError> {
    let mut apps = Vec::new();
    let mut refused = Vec::new();
    for app in &ctx.state.cfg.config.apps {
        match ctx
            .authorize(app.env, "app", &app.name, Some(&app.name))
            .await
        {
            Ok(()) => apps.push(app.name.clone()),
            Err(r) => refused.push(r.0),
        }
    }
    let expired = ctx
        .state
        .store
        .expire_promotions(&apps, &ctx.actor(), now_ms())
        .await?;
    Ok(JobReport {
        message: format!(
            "{} promotion(s) expired{}",
            expired.len(),
            if expired.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    expired
                        .iter()
                        .map(|id| format!("#{id}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
        refused,
    })
}
