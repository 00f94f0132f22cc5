//! The audit log's filters as an operator types them, resolved to an [`AuditQuery`]:
//! an actor by email or its prefix, a target as the table shows it (`flag theme (web)`,
//! `operator bob@… (#3)`, or a bare id), an action by any part of its name, free text,
//! relative ranges, and reads hidden unless asked for.

use std::collections::HashMap;
use std::sync::LazyLock;

use raxx_core::gate::Class;
use raxx_store::audit::AuditQuery;

use crate::kernel::error::AppError;
use crate::kernel::error::AppResult;
use crate::kernel::route::manifest as route_manifest;
use crate::kernel::state::AppState;

/// The actions of routes that only read (`audit.view`, `customer.view`, …): the rows
/// the viewer hides by default. An action some write route also uses is never in it.
pub fn read_actions() -> &'static [String] {
    static READS: LazyLock<Vec<String>> = LazyLock::new(|| {
        let m = route_manifest();
        let mut v: Vec<String> = m
            .iter()
            .filter(|r| r.class == Class::Read)
            .filter(|r| {
                !m.iter()
                    .any(|w| w.class != Class::Read && w.action == r.action)
            })
            .map(|r| r.action.to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    });
    &READS
}

/// Relative ranges the viewer offers, as (value, label, milliseconds).
pub const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "last hour", 3_600_000),
    ("24h", "last day", 86_400_000),
    ("7d", "last week", 7 * 86_400_000),
    ("30d", "last 30 days", 30 * 86_400_000),
];

/// Whether reads are shown: `reads=show` / `reads=hide`, else `default_show`.
pub fn show_reads(p: &HashMap<String, String>, default_show: bool) -> AppResult<bool> {
    match p.get("reads").map(|v| v.trim()) {
        None | Some("") => Ok(default_show),
        Some("show") => Ok(true),
        Some("hide") => Ok(false),
        Some(v) => Err(AppError::invalid(format!(
            "`reads` must be show or hide, not `{v}`"
        ))),
    }
}

/// Parse and resolve every filter of `p` (page, API and export share it).
pub async fn audit_query(
    state: &AppState,
    p: &HashMap<String, String>,
    limit: u32,
    default_show_reads: bool,
) -> AppResult<AuditQuery> {
    let mut q = raxx_actions::audit::audit_query(p, limit)?;
    let text = |k: &str| {
        p.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(t) = text("q") {
        if t.chars().count() > 200 {
            return Err(AppError::invalid(
                "the search text is longer than 200 characters",
            ));
        }
        q.text = Some(t);
    }
    if let Some(r) = text("range") {
        let Some((_, _, ms)) = RANGES.iter().find(|(v, _, _)| *v == r) else {
            return Err(AppError::invalid(format!(
                "`range` must be one of 1h, 24h, 7d, 30d, not `{r}`"
            )));
        };
        let since = raxx_store::now_ms() - ms;
        q.since = Some(q.since.map_or(since, |s| s.max(since)));
    }
    if !show_reads(p, default_show_reads)? {
        q.hide_actions = read_actions().to_vec();
    }
    if let Some(actor) = q.actor.take() {
        q.actors = Some(resolve_actor(state, &actor).await?);
    }
    if let Some(action) = q.action.take() {
        if action.ends_with('*') {
            q.action = Some(action);
        } else {
            q.actions = Some(resolve_action(state, &action).await?);
        }
    }
    if let Some(target) = q.target.take() {
        resolve_target(state, &target, &mut q).await?;
    }
    Ok(q)
}

/// An operator id, a literal actor (`system:…`), or an email / its prefix
/// (case-insensitive), as the actor strings it names.
async fn resolve_actor(state: &AppState, actor: &str) -> AppResult<Vec<String>> {
    let mut ids = vec![actor.to_string()];
    if actor.bytes().all(|b| b.is_ascii_digit()) || actor.contains(':') {
        return Ok(ids);
    }
    let needle = actor.to_lowercase();
    for a in state.store.admins().await? {
        if a.email.to_lowercase().starts_with(&needle) {
            ids.push(a.id.to_string());
        }
    }
    Ok(ids)
}

/// Every action name (recorded or routed) containing `part`, ignoring case.
async fn resolve_action(state: &AppState, part: &str) -> AppResult<Vec<String>> {
    let needle = part.to_lowercase();
    let needle = needle.strip_suffix('.').unwrap_or(&needle).to_string();
    let mut names = state.store.audit_actions().await?;
    names.extend(route_manifest().iter().map(|r| r.action.to_string()));
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .filter(|n| n.to_lowercase().contains(&needle))
        .collect())
}

/// `type id (app)`, `type id` or `id`; an operator's email stands for its id; a flag
/// also finds the promotions that carried it.
async fn resolve_target(state: &AppState, target: &str, q: &mut AuditQuery) -> AppResult<()> {
    let (rest, app) = match target.strip_suffix(')').and_then(|t| t.rsplit_once(" (")) {
        Some((rest, app)) if !app.is_empty() => (rest.trim(), Some(app.to_string())),
        _ => (target, None),
    };
    let (kind, id) = match rest.split_once(' ') {
        Some((k, id))
            if !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            (Some(k.to_string()), id.trim().to_string())
        }
        _ => (None, rest.to_string()),
    };
    // `operator bob@raxx.test (#3)` as the table shows it: the id is in the bracket.
    let (id, app) = match (&kind, app) {
        (Some(k), Some(a)) if k == "operator" && a.starts_with('#') => {
            (a.trim_start_matches('#').to_string(), None)
        }
        (_, app) => (id, app),
    };
    let id = if kind.as_deref() == Some("operator") && id.contains('@') {
        let email = id.to_lowercase();
        state
            .store
            .admins()
            .await?
            .into_iter()
            .find(|a| a.email.to_lowercase() == email)
            .map(|a| a.id.to_string())
            .unwrap_or(id)
    } else {
        id
    };
    if kind.as_deref() == Some("flag") {
        q.target_promotions = state
            .store
            .promotions_touching(&id, app.as_deref())
            .await?
            .into_iter()
            .map(|p| p.to_string())
            .collect();
    }
    q.target = Some(id);
    q.target_type = kind;
    q.target_app = app;
    Ok(())
}
