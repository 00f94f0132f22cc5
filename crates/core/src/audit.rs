//! Audit entries and their hash chain (SPEC §6).
//!
//! `hash = SHA-256(prev_hash ‖ canonical row)`. Ids are gap-free and assigned in chain
//! order, so a deleted, inserted or reordered row breaks either the id sequence or the
//! `prev_hash` link, and an edited row breaks its own hash.

pub mod checkpoint;
pub mod settings;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Denied,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "allowed" => Some(Outcome::Allowed),
            "denied" => Some(Outcome::Denied),
            "error" => Some(Outcome::Error),
            _ => None,
        }
    }
}

/// The context key naming the denial's code in every denial row (route, object, job and
/// aggregated anonymous denials alike).
pub const DENIAL_KEY: &str = "denial";

/// What a caller records; the writer adds id, time and the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Operator id as a decimal string, `system:<job>`, `key:<id>`, `cli` or `anonymous`.
    pub actor: String,
    pub session_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_app: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// Always an object that includes `selected_env` (the writer enforces it).
    pub context: Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: impl Into<String>, outcome: Outcome) -> Self {
        AuditEvent {
            actor: actor.into(),
            session_id: None,
            action: action.into(),
            target_type: None,
            target_id: None,
            target_app: None,
            outcome,
            reason: None,
            context: Value::Object(Default::default()),
            request_id: None,
            ip: None,
        }
    }
    pub fn target(mut self, kind: &str, id: impl Into<String>) -> Self {
        self.target_type = Some(kind.to_string());
        self.target_id = Some(id.into());
        self
    }
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.target_app = Some(app.into());
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.context {
            map.insert(key.to_string(), value.into());
        }
        self
    }
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds, UTC.
    pub at: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical serialisation that is hashed: a JSON array in a fixed field order,
/// with the context's keys sorted (serde_json's map is ordered).
pub fn canonical(id: i64, at: i64, e: &AuditEvent) -> String {
    let row = serde_json::json!([
        id,
        at,
        e.actor,
        e.session_id,
        e.action,
        e.target_type,
        e.target_id,
        e.target_app,
        e.outcome.as_str(),
        e.reason,
        e.context,
        e.request_id,
        e.ip,
    ]);
    row.to_string()
}

pub fn chain_hash(prev_hash: &str, id: i64, at: i64, e: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical(id, at, e).as_bytes());
    hex::encode(h.finalize())
}

/// Where and why a chain stops being intact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at row {id}: {reason}")]
pub struct ChainBreak {
    pub id: i64,
    pub reason: String,
}

/// Walks a chain in id order. Feed it every row, then call [`ChainVerifier::finish`]
/// with the recorded head so that a truncated tail is caught too.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_id: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_id: 1,
            prev_hash: GENESIS_HASH.to_string(),
        }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, row: &AuditEntry) -> Result<(), ChainBreak> {
        let brk = |reason: String| ChainBreak { id: row.id, reason };
        if row.id != self.expected_id {
            return Err(brk(format!(
                "expected row {} next (a row was deleted, inserted or reordered)",
                self.expected_id
            )));
        }
        if row.prev_hash != self.prev_hash {
            return Err(brk(
                "prev_hash does not match the previous row's hash".into()
            ));
        }
        let want = chain_hash(&row.prev_hash, row.id, row.at, &row.event);
        if row.hash != want {
            return Err(brk(
                "row content does not match its hash (the row was changed)".into(),
            ));
        }
        self.expected_id += 1;
        self.prev_hash = row.hash.clone();
        Ok(())
    }

    /// `head` is the recorded (last id, last hash); `None` when nothing was ever written.
    pub fn finish(self, head: Option<(i64, &str)>) -> Result<u64, ChainBreak> {
        let last_id = self.expected_id - 1;
        match head {
            None if last_id == 0 => Ok(0),
            Some((id, hash)) if id == last_id && hash == self.prev_hash => Ok(last_id as u64),
            Some((id, _)) => Err(ChainBreak {
                id: last_id + 1,
                reason: format!(
                    "the chain head records row {id} but the log ends at row {last_id}"
                ),
            }),
            None => Err(ChainBreak {
                id: 1,
                reason: "rows exist but no chain head was recorded".into(),
            }),
        }
    }
}

/// Longest text kept of a client-supplied value in a stored audit row (characters).
pub const MAX_REASON: usize = 1_000;
pub const MAX_CONTEXT_STRING: usize = 2_048;
pub const MAX_FIELD: usize = 256;
/// What a capped string ends with.
pub const TRUNCATED: &str = "…[truncated]";

/// `s`, cut to at most `max` characters (marked when cut).
pub fn cap_str(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let marker = TRUNCATED.chars().count();
    if max <= marker {
        return s.chars().take(max).collect();
    }
    let keep = max - marker;
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(TRUNCATED);
    out
}

fn cap_opt(v: &mut Option<String>, max: usize) {
    if let Some(s) = v
        && s.chars().count() > max
    {
        *s = cap_str(s, max);
    }
}

fn cap_value(v: &mut Value) {
    match v {
        Value::String(s) if s.chars().count() > MAX_CONTEXT_STRING => {
            *s = cap_str(s, MAX_CONTEXT_STRING);
        }
        Value::Array(items) => items.iter_mut().for_each(cap_value),
        Value::Object(map) => map.values_mut().for_each(cap_value),
        _ => {}
    }
}

/// Cap every string of an event, so that nothing a client sends (an email typed into a
/// form, a user agent, a search) can make one stored row large (issue 19 item 9). Applied
/// by the audit writer to every row before it is hashed.
pub fn cap(e: &mut AuditEvent) {
    if e.actor.chars().count() > MAX_FIELD {
        e.actor = cap_str(&e.actor, MAX_FIELD);
    }
    if e.action.chars().count() > MAX_FIELD {
        e.action = cap_str(&e.action, MAX_FIELD);
    }
    for f in [
        &mut e.session_id,
        &mut e.target_type,
        &mut e.target_id,
        &mut e.target_app,
        &mut e.request_id,
        &mut e.ip,
    ] {
        cap_opt(f, MAX_FIELD);
    }
    cap_opt(&mut e.reason, MAX_REASON);
    cap_value(&mut e.context);
}

/// Keys whose values never enter the audit log, wherever they appear in a context.
pub fn redact(value: &mut Value) {
    // Exact key names only: `key` (a flag key) and `code` (an error code) are not secrets.
    const SECRET_KEYS: &[&str] = &[
        "secret",
        "token",
        "password",
        "api_key",
        "private_key",
        "enrol_code",
        "credential",
        "access_token",
        "authorization",
        "cookie",
    ];
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|id| {
                let event = AuditEvent::new("1", "token.rotate", Outcome::Allowed)
                    .with("selected_env", "staging")
                    .with("n", id);
                let hash = chain_hash(&prev, id, 1000 + id, &event);
                let e = AuditEntry {
                    id,
                    at: 1000 + id,
                    event,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn verify(rows: &[AuditEntry], head: Option<(i64, &str)>) -> Result<u64, ChainBreak> {
        let mut v = ChainVerifier::default();
        for r in rows {
            v.push(r)?;
        }
        v.finish(head)
    }

    fn head(rows: &[AuditEntry]) -> Option<(i64, &str)> {
        rows.last().map(|r| (r.id, r.hash.as_str()))
    }

    #[test]
    fn intact_chain_verifies() {
        let rows = chain(5);
        assert_eq!(verify(&rows, head(&rows)), Ok(5));
        assert_eq!(verify(&[], None), Ok(0));
    }

    #[test]
    fn each_tamper_kind_names_the_first_bad_row() {
        let rows = chain(5);
        let h = head(&rows).map(|(i, h)| (i, h.to_string()));
        let h = h.as_ref().map(|(i, s)| (*i, s.as_str()));

        let mut updated = rows.clone();
        updated[2].event.actor = "2".into();
        assert_eq!(verify(&updated, h).unwrap_err().id, 3);

        let mut deleted = rows.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, h).unwrap_err().id, 3);

        let mut reordered = rows.clone();
        reordered.swap(1, 2);
        assert_eq!(verify(&reordered, h).unwrap_err().id, 3);

        let mut inserted = rows.clone();
        let mut extra = rows[1].clone();
        extra.id = 3;
        inserted.insert(2, extra);
        assert_eq!(verify(&inserted, h).unwrap_err().id, 3);

        let truncated = &rows[..4];
        assert_eq!(verify(truncated, h).unwrap_err().id, 5);
    }

    #[test]
    fn context_key_order_does_not_change_the_hash() {
        let a = AuditEvent::new("1", "x", Outcome::Denied)
            .with("b", 1)
            .with("a", 2);
        let b = AuditEvent::new("1", "x", Outcome::Denied)
            .with("a", 2)
            .with("b", 1);
        assert_eq!(
            chain_hash(GENESIS_HASH, 1, 1, &a),
            chain_hash(GENESIS_HASH, 1, 1, &b)
        );
    }

    #[test]
    fn cap_bounds_every_string_of_an_event() {
        let huge = "x".repeat(60_000);
        let mut e = AuditEvent::new(huge.clone(), huge.clone(), Outcome::Denied)
            .target(&huge, huge.clone())
            .app(huge.clone())
            .reason(huge.clone())
            .with("email", huge.clone())
            .with("nested", serde_json::json!([{"ua": huge.clone()}]));
        e.ip = Some(huge.clone());
        e.session_id = Some(huge.clone());
        e.request_id = Some(huge.clone());
        cap(&mut e);
        let row = canonical(1, 1, &e);
        assert!(
            row.len() < 12 * 1024,
            "one row stays small: {} bytes",
            row.len()
        );
        assert_eq!(
            e.reason.as_deref().map(|r| r.chars().count()),
            Some(MAX_REASON)
        );
        assert!(
            e.target_id
                .as_deref()
                .is_some_and(|t| t.ends_with(TRUNCATED))
        );
        assert_eq!(
            e.context["nested"][0]["ua"]
                .as_str()
                .map(|s| s.chars().count()),
            Some(MAX_CONTEXT_STRING)
        );
        let mut short = AuditEvent::new("1", "token.rotate", Outcome::Allowed).reason("ok");
        let before = short.clone();
        cap(&mut short);
        assert_eq!(short, before, "short values are kept as they are");
        assert_eq!(
            cap_str("ééé", 2).chars().count(),
            2,
            "counts characters, not bytes"
        );
    }

    #[test]
    fn redact_removes_secret_values_at_any_depth() {
        let mut v = serde_json::json!({"secret": "s3", "nested": [{"token": "t"}], "app": "a"});
        redact(&mut v);
        assert_eq!(v["secret"], "[redacted]");
        assert_eq!(v["nested"][0]["token"], "[redacted]");
        assert_eq!(v["app"], "a");
        let mut denial = serde_json::json!({"code": "env_mismatch", "key": "new-checkout"});
        redact(&mut denial);
        assert_eq!(
            denial["code"], "env_mismatch",
            "error codes are not secrets"
        );
        assert_eq!(denial["key"], "new-checkout", "flag keys are not secrets");
    }
}
