//! Customers (SPEC §9): the console's own customers database (opened at start-up), search
//! and lookup (masked unless the caller may read customers' details), and the changes —
//! suspend, reactivate, email — each with a reason, audited before it commits.

use raxx_core::audit::Outcome;
use raxx_core::config::Resolved;
use raxx_core::rbac::{Level, Resource};
use raxx_store::customers::{Customer, CustomerChange, CustomerDb, CustomersError};
use serde_json::{Value, json};

use crate::actor::Caller;
use crate::console::Console;
use crate::error::{Error, Kind, Result};

/// The customers database of a console: `[customers]`, or the embedded fixture of its env.
/// Refuses (at start-up) the console's own database and unsafe table or column names.
pub fn open_customer_db(cfg: &Resolved) -> Result<CustomerDb, String> {
    CustomerDb::open(
        &cfg.config.database_url,
        cfg.env,
        cfg.config.customers.as_ref(),
    )
}

/// `alice.smith@raxx.test` → `a***@r***.test`: first letter of the local part and of the
/// domain, and the top-level domain.
pub fn mask_email(email: &str) -> String {
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let tld = domain
                .rsplit_once('.')
                .map(|(_, t)| format!(".{t}"))
                .unwrap_or_default();
            format!("{}***@{}***{tld}", first(local), first(domain))
        }
        None if email.is_empty() => String::new(),
        None => format!("{}***", first(email)),
    }
}

/// `Ada Demo-Customer` → `A*** D***`.
pub fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .map(|w| format!("{}***", w.chars().next().unwrap_or('*')))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn unmasked(ctx: &Caller) -> bool {
    ctx.has(Resource::Customer, Level::Reader)
}

/// What the audit log keeps of a customer: masked as a non-reader would see it.
pub fn audit_view(c: &Customer) -> Value {
    json!({"email": mask_email(&c.email), "name": mask_name(&c.name), "status": c.status})
}

pub fn customers_error(e: CustomersError) -> Error {
    match e {
        CustomersError::Unavailable(m) => Error::Conflict {
            kind: Kind::Unavailable,
            code: "customers_unavailable",
            message: m,
        },
        CustomersError::NotFound(id) => Error::NotFound(format!("customer {id}")),
        CustomersError::Invalid(m) => Error::Invalid(m),
        CustomersError::Conflict(m) => Error::Conflict {
            kind: Kind::Conflict,
            code: "conflict",
            message: m,
        },
    }
}

const PAGE: u32 = 25;

/// One page of a search: the customers, and whether this caller sees them unmasked.
pub struct Search {
    pub rows: Vec<Customer>,
    pub clear: bool,
    pub page: u32,
    pub has_next: bool,
}

pub async fn search(state: &Console, ctx: &Caller, q: &str, page: u32) -> Result<Search> {
    if !unmasked(ctx) {
        let q = q.trim();
        let found = if q.is_empty() || page > 0 {
            None
        } else {
            state.customers.get(q).await.map_err(customers_error)?
        };
        return Ok(Search {
            rows: found.into_iter().collect(),
            clear: false,
            page,
            has_next: false,
        });
    }
    let mut rows = state
        .customers
        .search(q, page.saturating_mul(PAGE), PAGE + 1)
        .await
        .map_err(customers_error)?;
    let has_next = rows.len() as u32 > PAGE;
    rows.truncate(PAGE as usize);
    Ok(Search {
        rows,
        clear: unmasked(ctx),
        page,
        has_next,
    })
}

pub async fn find(state: &Console, ctx: &Caller, id: &str) -> Result<(Customer, bool)> {
    let c = state
        .customers
        .get(id)
        .await
        .map_err(customers_error)?
        .ok_or_else(|| Error::NotFound(format!("customer {id}")))?;
    Ok((c, unmasked(ctx)))
}

/// Suspend, reactivate or change the email of one customer, with a mandatory reason.
/// The gate has already checked the role (`console-customer-user` on staging,
/// `console-customer-admin` on prod), CSRF and the claimed env.
pub async fn change(
    state: &Console,
    ctx: &Caller,
    id: &str,
    change: CustomerChange,
    reason: &str,
) -> Result<(Customer, bool)> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::invalid(
            "a reason is required: say why, for the audit log",
        ));
    }
    if reason.chars().count() > 500 {
        return Err(Error::invalid("the reason is longer than 500 characters"));
    }
    // Actions on customers are writes of the console's own env: the customers database is
    // this console's (a separate connection per console, never the other env's), so a
    // customer has no env of its own to decide about. The route's decision (class, claimed
    // env, role) is the gate's, made before this handler ran; no object check here would
    // be one that cannot fail.
    let action = change.action();
    // 1. The change, uncommitted, in the customers database.
    let pending = state
        .customers
        .begin_change(id, &change)
        .await
        .map_err(customers_error)?;
    let event = ctx
        .event(action, Outcome::Allowed)
        .target("customer", id)
        .reason(reason)
        .with("before", audit_view(&pending.before))
        .with("after", audit_view(&pending.after))
        .with("customers_db", state.customers.describe());
    // 2. The audit row, committed first: if it cannot be written, the change is rolled back.
    let recorded = async {
        let mut tx = state.store.begin().await?;
        tx.record(event).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = recorded {
        pending.rollback().await;
        return Err(e.into());
    }
    let after = pending.after.clone();
    // 3. The customers commit. If it fails the change did not happen; say so in the log.
    if let Err(e) = pending.commit().await {
        let failure = ctx
            .event(action, Outcome::Error)
            .target("customer", id)
            .reason(format!("{e}"))
            .with("step", "customers_commit");
        if let Err(audit_err) = state.store.audit(failure).await {
            tracing::error!(error = %audit_err, "could not audit a failed customers commit");
        }
        return Err(customers_error(e));
    }
    Ok((after, unmasked(ctx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_only_first_letters_and_the_tld() {
        let cases = [
            ("alice.smith@raxx.test", "a***@r***.test"),
            ("qa.checkout-01@qa.raxx.test", "q***@q***.test"),
            ("x@localhost", "x***@l***"),
            ("", ""),
            ("not-an-email", "n***"),
        ];
        for (email, want) in cases {
            assert_eq!(mask_email(email), want, "{email}");
        }
        assert_eq!(mask_name("Ada Demo-Customer"), "A*** D***");
        assert_eq!(mask_name("  Ünïcødé  Tester "), "Ü*** T***");
        assert_eq!(mask_name(""), "");
    }
}
