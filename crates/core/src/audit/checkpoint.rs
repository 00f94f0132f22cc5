//! Signed checkpoints of the audit chain (SPEC §6), in the spirit of CloudTrail's signed
//! digest files.
//!
//! The chain alone only proves that the rows are consistent with each other: whoever can
//! write the database can delete the newest rows and move the head back, or rewrite a row
//! and re-chain everything after it. A checkpoint is an Ed25519 signature, by a key the
//! database never holds, over (env, seq, last id, last hash, row count, time). It is stored
//! in the database and also emitted to the outside (a log line, a webhook). `audit verify`
//! then checks that the signed hash is still the hash of that row and that no checkpoint
//! kept outside is missing from the database. Pure: keys, signing, parsing, the verdict.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The version tag at the start of every signed message.
pub const SIGNED_PREFIX: &str = "raxx-audit-checkpoint/v1";

/// The `message` (and target) of the log line a checkpoint is emitted as.
pub const LOG_MESSAGE: &str = "audit_checkpoint";

/// One signed checkpoint: rows 1..=`last_id` of `env`'s chain end in `last_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `staging` or `prod`: a checkpoint of one console never vouches for the other.
    pub env: String,
    /// 1, 2, 3, … without gaps, in the order they were written.
    pub seq: i64,
    pub last_id: i64,
    pub last_hash: String,
    /// Rows covered (ids are gap-free from 1, so this equals `last_id`).
    pub rows: i64,
    /// Unix milliseconds, UTC, when it was signed.
    pub at: i64,
    /// [`key_id`] of the public key that verifies it.
    pub key_id: String,
    /// Ed25519 signature of [`Checkpoint::signed_message`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes that are signed: one field per line, after a version tag.
    pub fn signed_message(&self) -> String {
        format!(
            "{SIGNED_PREFIX}\nenv={}\nseq={}\nlast_id={}\nlast_hash={}\nrows={}\nat={}\nkey_id={}",
            self.env, self.seq, self.last_id, self.last_hash, self.rows, self.at, self.key_id
        )
    }

    /// The checkpoint as one compact JSON object (the webhook body, one line of a file).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A short, stable name for a public key: the first 8 bytes of its SHA-256, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The console's signing key. Never stored in the database; given from a file or an env var.
pub struct CheckpointKey {
    key: SigningKey,
    id: String,
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointKey({})", self.id)
    }
}

impl CheckpointKey {
    /// A new random key.
    pub fn generate() -> CheckpointKey {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        CheckpointKey::from_signing(SigningKey::from_bytes(&seed))
    }

    fn from_signing(key: SigningKey) -> CheckpointKey {
        let id = key_id(&key.verifying_key());
        CheckpointKey { key, id }
    }

    /// A PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey -algorithm ed25519`
    /// writes it) or the 32-byte seed in base64 or hex.
    pub fn parse(text: &str) -> Result<CheckpointKey, String> {
        let text = text.trim();
        if text.contains("-----BEGIN") {
            return SigningKey::from_pkcs8_pem(text)
                .map(CheckpointKey::from_signing)
                .map_err(|e| format!("not an Ed25519 PKCS#8 private key: {e}"));
        }
        let seed = decode_32(text).ok_or(
            "expected an Ed25519 private key: a PKCS#8 PEM, or the 32-byte seed in base64 or hex",
        )?;
        Ok(CheckpointKey::from_signing(SigningKey::from_bytes(&seed)))
    }

    /// The key as PKCS#8 PEM (what `audit keygen` writes).
    pub fn to_pem(&self) -> Result<String, String> {
        self.key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|s| s.to_string())
            .map_err(|e| format!("cannot encode the key: {e}"))
    }

    pub fn key_id(&self) -> &str {
        &self.id
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// Sign (env, seq, last id, last hash, at) as one checkpoint.
    pub fn sign(&self, env: &str, seq: i64, last_id: i64, last_hash: &str, at: i64) -> Checkpoint {
        let mut cp = Checkpoint {
            env: env.to_string(),
            seq,
            last_id,
            last_hash: last_hash.to_string(),
            rows: last_id,
            at,
            key_id: self.id.clone(),
            signature: String::new(),
        };
        let sig = self.key.sign(cp.signed_message().as_bytes());
        cp.signature = B64.encode(sig.to_bytes());
        cp
    }
}

/// A public key that verifies checkpoints; printed as `ed25519:<base64>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", B64.encode(self.0.as_bytes()))
    }
}

impl PublicKey {
    /// `ed25519:<base64>` (what `audit public-key` prints), bare base64 or hex of the
    /// 32 bytes, or a PEM public key (`openssl pkey -pubout`).
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let text = text.trim();
        if text.contains("-----BEGIN") {
            return VerifyingKey::from_public_key_pem(text)
                .map(PublicKey)
                .map_err(|e| format!("not an Ed25519 public key: {e}"));
        }
        let bare = text.strip_prefix("ed25519:").unwrap_or(text);
        let bytes = decode_32(bare).ok_or_else(|| {
            format!("`{text}` is not an Ed25519 public key (expected ed25519:<base64> as `raxx-console audit public-key` prints it)")
        })?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| format!("`{text}` is not a valid Ed25519 public key: {e}"))
    }

    pub fn key_id(&self) -> String {
        key_id(&self.0)
    }

    /// Whether `cp` carries a valid signature by this key (strict Ed25519 verification).
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        let Ok(bytes) = B64.decode(cp.signature.trim()) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
            return false;
        };
        let sig = Signature::from_bytes(&bytes);
        cp.key_id == self.key_id()
            && self
                .0
                .verify_strict(cp.signed_message().as_bytes(), &sig)
                .is_ok()
    }
}

fn decode_32(text: &str) -> Option<[u8; 32]> {
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        B64.decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .ok()?
    };
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

/// Checkpoints as kept outside, one per line: a checkpoint's JSON object (the webhook
/// body), a JSON log line (`--log-format json`: the fields under `fields`), or a text log
/// line (`… audit_checkpoint env=prod seq=3 …`, colours and any prefix a log shipper adds
/// allowed). Lines that mention no checkpoint are skipped; a line that does but cannot be
/// read is an error, naming its line number.
pub fn parse_external(text: &str) -> Result<Vec<(usize, Checkpoint)>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = strip_ansi(raw);
        let line = line.trim();
        // Other log lines around the checkpoints are no concern of ours.
        if !line.contains(LOG_MESSAGE) && !line.contains("\"signature\"") {
            continue;
        }
        let json_at = line.find('{');
        let parsed = if let Some(start) = json_at.filter(|_| line.ends_with('}')) {
            serde_json::from_str::<serde_json::Value>(&line[start..])
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    let fields = v.get("fields").cloned().unwrap_or(v);
                    serde_json::from_value::<Checkpoint>(fields).map_err(|e| e.to_string())
                })
        } else if let Some(at) = line.find(&format!("{LOG_MESSAGE} ")) {
            parse_key_values(&line[at + LOG_MESSAGE.len()..])
        } else {
            continue;
        };
        match parsed {
            Ok(cp) => out.push((line_no, cp)),
            Err(e) => errors.push(format!("line {line_no}: not a readable checkpoint ({e})")),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn parse_key_values(s: &str) -> Result<Checkpoint, String> {
    let mut map = serde_json::Map::new();
    for token in s.split_whitespace() {
        let Some((k, v)) = token.split_once('=') else {
            continue;
        };
        let v = v.trim_matches('"');
        let value = match k {
            "seq" | "last_id" | "rows" | "at" => serde_json::Value::from(
                v.parse::<i64>()
                    .map_err(|_| format!("`{k}` is not a number"))?,
            ),
            _ => serde_json::Value::from(v),
        };
        map.insert(k.to_string(), value);
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
}

/// Where a checkpoint was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Database,
    /// The external file, at this line.
    External(usize),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Database => write!(f, "in the database"),
            Source::External(l) => write!(f, "in the external file, line {l}"),
        }
    }
}

/// The checkpoint half of `audit verify`. Build it from the checkpoints (database and
/// outside) and the public keys, feed it every row's (id, hash) in id order with
/// [`CheckpointVerifier::row`], then [`CheckpointVerifier::finish`] with the chain walk's
/// result. Every failure is collected, not just the first.
#[derive(Debug)]
pub struct CheckpointVerifier {
    failures: Vec<String>,
    notes: Vec<String>,
    /// Checkpoints to hold the rows to, by the row they end at.
    by_row: BTreeMap<i64, Vec<Checkpoint>>,
    /// Checkpoints that are kept outside, by seq (to say what is anchored outside).
    external_seqs: BTreeMap<i64, i64>,
    signed: bool,
    have_external: bool,
    /// The last row seen.
    last_row: i64,
    /// The highest checkpoint whose row matched: (seq, last_id).
    proven: Option<(i64, i64)>,
}

/// What `audit verify` concluded about the checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Evidence of tampering or a bad checkpoint; non-empty means exit non-zero.
    pub failures: Vec<String>,
    /// What was proven and what could not be, in plain words.
    pub notes: Vec<String>,
}

impl CheckpointVerifier {
    /// `keys` empty: no public key was given, so signatures are not checked (and said so).
    /// `external`: `None` when no file was given.
    pub fn new(
        env: &str,
        keys: &[PublicKey],
        database: Vec<Checkpoint>,
        external: Option<Vec<(usize, Checkpoint)>>,
    ) -> CheckpointVerifier {
        let mut v = CheckpointVerifier {
            failures: Vec::new(),
            notes: Vec::new(),
            by_row: BTreeMap::new(),
            external_seqs: BTreeMap::new(),
            signed: !keys.is_empty(),
            have_external: external.is_some(),
            last_row: 0,
            proven: None,
        };
        let mut accepted: BTreeMap<i64, (Checkpoint, Source)> = BTreeMap::new();
        let check = |v: &mut CheckpointVerifier, cp: &Checkpoint, src: Source| -> bool {
            if cp.env != env {
                v.failures.push(format!(
                    "checkpoint {} {src} belongs to the {} console, not this {env} one",
                    cp.seq, cp.env
                ));
                return false;
            }
            if cp.rows != cp.last_id || cp.last_id < 1 || cp.seq < 1 {
                v.failures.push(format!(
                    "checkpoint {} {src} is malformed (seq {}, last_id {}, rows {})",
                    cp.seq, cp.seq, cp.last_id, cp.rows
                ));
                return false;
            }
            if keys.is_empty() {
                return true;
            }
            match keys.iter().find(|k| k.key_id() == cp.key_id) {
                None => {
                    v.failures.push(format!(
                        "checkpoint {} {src} names signing key {}, which is not among the public keys given: it cannot be trusted (give every key in use since it was written, see docs/audit.md on rotation)",
                        cp.seq, cp.key_id
                    ));
                    false
                }
                Some(k) if !k.verifies(cp) => {
                    v.failures.push(format!(
                        "checkpoint {} {src} has a bad signature: it was forged or changed",
                        cp.seq
                    ));
                    false
                }
                Some(_) => true,
            }
        };
        let mut prev: Option<Checkpoint> = None;
        let mut db_seqs = std::collections::BTreeSet::new();
        for cp in database {
            db_seqs.insert(cp.seq);
            if let Some(p) = &prev {
                if cp.seq != p.seq + 1 {
                    v.failures.push(format!(
                        "checkpoint {} is missing from the database (the database goes from checkpoint {} to {}): checkpoints were deleted",
                        p.seq + 1,
                        p.seq,
                        cp.seq
                    ));
                }
                if cp.last_id < p.last_id || cp.at < p.at {
                    v.failures.push(format!(
                        "checkpoint {} in the database goes back in the chain (row {} after row {}): the checkpoints were rewritten",
                        cp.seq, cp.last_id, p.last_id
                    ));
                }
            } else if cp.seq != 1 {
                v.failures.push(format!(
                    "the database's checkpoints start at {}, not 1: checkpoints 1..{} were deleted",
                    cp.seq,
                    cp.seq - 1
                ));
            }
            if check(&mut v, &cp, Source::Database) {
                accepted.insert(cp.seq, (cp.clone(), Source::Database));
            }
            prev = Some(cp);
        }
        for (line, cp) in external.unwrap_or_default() {
            let src = Source::External(line);
            if !check(&mut v, &cp, src) {
                continue;
            }
            v.external_seqs.insert(cp.seq, cp.last_id);
            match accepted.get(&cp.seq) {
                Some((db, _)) if *db == cp => {}
                Some((db, _)) => {
                    v.failures.push(format!(
                        "checkpoint {} in the database (row {}) differs from the copy kept outside ({src}, row {}): the database copy was replaced",
                        cp.seq, db.last_id, cp.last_id
                    ));
                    // The outside copy is the one to hold the rows to.
                    accepted.insert(cp.seq, (cp, src));
                }
                None => {
                    if !db_seqs.contains(&cp.seq) {
                        v.failures.push(format!(
                            "checkpoint {} ({src}, row {}) is missing from the database: checkpoints were deleted",
                            cp.seq, cp.last_id
                        ));
                    }
                    accepted.insert(cp.seq, (cp, src));
                }
            }
        }
        for (cp, _) in accepted.into_values() {
            v.by_row.entry(cp.last_id).or_default().push(cp);
        }
        v
    }

    /// The next row of the log, in id order (every row, even past a chain break).
    pub fn row(&mut self, id: i64, hash: &str) {
        self.last_row = id;
        if let Some(cps) = self.by_row.remove(&id) {
            for cp in cps {
                if cp.last_hash == hash {
                    if self.proven.is_none_or(|(_, last)| last <= id) {
                        self.proven = Some((cp.seq, id));
                    }
                } else {
                    self.failures.push(format!(
                        "row {id} does not have the hash that signed checkpoint {} recorded: rows up to {id} were rewritten (the chain was recomputed after a change)",
                        cp.seq
                    ));
                }
            }
        }
    }

    /// `chain_ok`: the chain walk found no break. `chain_len`: the last row id.
    pub fn finish(mut self, chain_ok: bool) -> CheckpointReport {
        let last = self.last_row;
        if let Some((&row, cps)) = self.by_row.iter().next() {
            let seqs: Vec<String> = cps.iter().map(|c| c.seq.to_string()).collect();
            let what = if last == 0 {
                "the log is empty (it was wiped)".to_string()
            } else {
                format!("the log ends at row {last}")
            };
            self.failures.push(format!(
                "{what} but checkpoint {} covers rows up to {row}: rows {}..{row} were deleted",
                seqs.join(", "),
                last + 1
            ));
            // Later checkpoints say the same; name the furthest one too.
            if let Some((&far, _)) = self.by_row.iter().next_back()
                && far != row
            {
                self.failures.push(format!(
                    "checkpoints up to row {far} exist: rows {}..{far} are missing",
                    last + 1
                ));
            }
        }
        let signed = if self.signed {
            "signed checkpoint"
        } else {
            "checkpoint (signature NOT checked: no public key)"
        };
        match self.proven {
            Some((seq, id)) if chain_ok => {
                self.notes
                    .push(format!("rows 1..{id} match {signed} {seq}"));
            }
            Some((seq, id)) => self.notes.push(format!(
                "row {id} matches {signed} {seq}, but the chain is broken (see above)"
            )),
            None if last > 0 => self
                .notes
                .push("no checkpoint covers any row of the log".to_string()),
            None => {}
        }
        let covered = self.proven.map_or(0, |(_, id)| id);
        if last > covered {
            self.notes.push(format!(
                "NOT PROVEN: rows {}..{last} ({} row(s)) come after the last checkpoint; the chain links them, but whoever can write the database could have changed, added or deleted them",
                covered + 1,
                last - covered
            ));
        }
        if !self.signed {
            self.notes.push(
                "NOT PROVEN: no public key was given (--public-key) and no signing key is configured, so no signature was checked: whoever can write the database can rewrite the whole chain, its head and its checkpoints consistently".to_string(),
            );
        }
        if self.have_external {
            let anchored = self
                .external_seqs
                .iter()
                .filter(|(_, id)| **id <= last)
                .map(|(seq, id)| (*seq, *id))
                .next_back();
            match anchored {
                Some((seq, id)) if covered > id => self.notes.push(format!(
                    "rows 1..{id} are anchored outside (checkpoint {seq} of the external file); rows {}..{covered} only by checkpoints in the database: deleting those rows together with their checkpoints would not be detected",
                    id + 1
                )),
                Some((seq, id)) => self.notes.push(format!(
                    "rows 1..{id} are anchored outside (checkpoint {seq} of the external file)"
                )),
                None => self
                    .notes
                    .push("the external file holds no checkpoint".to_string()),
            }
        } else {
            self.notes.push(
                "NOT PROVEN: checkpoints were read from the database only (no --checkpoints FILE): deleting the newest rows together with their checkpoints, or wiping both, would not be detected".to_string(),
            );
        }
        CheckpointReport {
            failures: self.failures,
            notes: self.notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CheckpointKey {
        CheckpointKey::parse(&hex::encode([7u8; 32])).unwrap()
    }

    fn verify(
        keys: &[PublicKey],
        db: Vec<Checkpoint>,
        ext: Option<Vec<(usize, Checkpoint)>>,
        rows: &[(i64, &str)],
    ) -> CheckpointReport {
        let mut v = CheckpointVerifier::new("prod", keys, db, ext);
        for (id, h) in rows {
            v.row(*id, h);
        }
        v.finish(true)
    }

    #[test]
    fn keys_round_trip_through_pem_seed_and_public_text() {
        let k = CheckpointKey::generate();
        let pem = k.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = CheckpointKey::parse(&pem).unwrap();
        assert_eq!(again.key_id(), k.key_id());
        let public = k.public().to_string();
        assert!(public.starts_with("ed25519:"));
        assert_eq!(PublicKey::parse(&public).unwrap(), k.public());
        assert_eq!(
            PublicKey::parse(public.trim_start_matches("ed25519:")).unwrap(),
            k.public()
        );
        assert_eq!(k.public().key_id(), k.key_id());
        assert!(CheckpointKey::parse("not a key").is_err());
        assert!(PublicKey::parse("ed25519:AAAA").is_err());
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_its_fields() {
        let k = key();
        let cp = k.sign("prod", 1, 10, "ab", 1000);
        assert!(k.public().verifies(&cp));
        let other = CheckpointKey::generate();
        assert!(!other.public().verifies(&cp), "another key");
        for tamper in [
            |c: &mut Checkpoint| c.last_id = 9,
            |c: &mut Checkpoint| c.last_hash = "cd".into(),
            |c: &mut Checkpoint| c.at = 1,
            |c: &mut Checkpoint| c.env = "staging".into(),
            |c: &mut Checkpoint| c.seq = 2,
            |c: &mut Checkpoint| c.signature = "AAAA".into(),
        ] {
            let mut bad = cp.clone();
            tamper(&mut bad);
            assert!(!k.public().verifies(&bad), "{bad:?}");
        }
    }

    #[test]
    fn external_lines_are_read_from_json_json_logs_and_text_logs() {
        let cp = key().sign("prod", 2, 20, "ff", 5);
        let json = cp.to_json();
        let json_log = format!(
            r#"{{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","fields":{{"message":"audit_checkpoint","env":"prod","seq":2,"last_id":20,"last_hash":"ff","rows":20,"at":5,"key_id":"{}","signature":"{}"}},"target":"audit_checkpoint"}}"#,
            cp.key_id, cp.signature
        );
        let text_log = format!(
            "2026-12-01T10:00:00Z app[web.1]: \u{1b}[32m INFO\u{1b}[0m \u{1b}[2maudit_checkpoint\u{1b}[0m: audit_checkpoint \u{1b}[3menv\u{1b}[0m\u{1b}[2m=\u{1b}[0mprod seq=2 last_id=20 last_hash=ff rows=20 at=5 key_id={} signature={}",
            cp.key_id, cp.signature
        );
        let file = format!("{json}\nunrelated line {{not json}}\n\n{json_log}\n{text_log}\n");
        let got = parse_external(&file).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (1, cp.clone()));
        assert_eq!(got[1], (4, cp.clone()));
        assert_eq!(got[2], (5, cp.clone()));
        let err = parse_external("audit_checkpoint seq=x\n").unwrap_err();
        assert!(err[0].contains("line 1"), "{err:?}");
    }

    #[test]
    fn matching_rows_are_proven_and_the_tail_is_named() {
        let k = key();
        let cps = vec![k.sign("prod", 1, 2, "h2", 1), k.sign("prod", 2, 3, "h3", 2)];
        let r = verify(
            &[k.public()],
            cps.clone(),
            Some(vec![(1, cps[0].clone())]),
            &[(1, "h1"), (2, "h2"), (3, "h3"), (4, "h4")],
        );
        assert!(r.failures.is_empty(), "{r:?}");
        let notes = r.notes.join("\n");
        assert!(
            notes.contains("rows 1..3 match signed checkpoint 2"),
            "{notes}"
        );
        assert!(notes.contains("NOT PROVEN: rows 4..4"), "{notes}");
        assert!(notes.contains("rows 1..2 are anchored outside"), "{notes}");
    }

    #[test]
    fn each_attack_on_rows_or_checkpoints_is_a_failure() {
        let k = key();
        let pk = [k.public()];
        let cps = vec![k.sign("prod", 1, 2, "h2", 1), k.sign("prod", 2, 3, "h3", 2)];
        let rows = [(1, "h1"), (2, "h2"), (3, "h3")];
        let fails = |r: CheckpointReport, want: &str| {
            assert!(
                r.failures.iter().any(|f| f.contains(want)),
                "want `{want}` in {:?}",
                r.failures
            );
        };
        // Rewritten and re-chained: row 2's hash changed.
        fails(
            verify(&pk, cps.clone(), None, &[(1, "x1"), (2, "x2"), (3, "x3")]),
            "row 2 does not have the hash that signed checkpoint 1 recorded",
        );
        // Truncated back to row 1, head moved: checkpoint 2 (and 1) cover more.
        fails(
            verify(&pk, cps.clone(), None, &rows[..1]),
            "the log ends at row 1 but checkpoint 1 covers rows up to 2",
        );
        // Wiped.
        fails(verify(&pk, cps.clone(), None, &[]), "the log is empty");
        // Checkpoints deleted from the database but kept outside.
        let ext = Some(vec![(1, cps[0].clone()), (2, cps[1].clone())]);
        fails(
            verify(&pk, vec![], ext.clone(), &rows[..1]),
            "checkpoint 1 (in the external file, line 1, row 2) is missing from the database",
        );
        fails(
            verify(&pk, vec![], ext, &rows[..1]),
            "rows 2..2 were deleted",
        );
        // A middle checkpoint deleted from the database.
        fails(
            verify(&pk, vec![cps[1].clone()], None, &rows),
            "checkpoints 1..1 were deleted",
        );
        // Forged with another key.
        let forger = CheckpointKey::generate();
        fails(
            verify(&pk, vec![forger.sign("prod", 1, 2, "x2", 1)], None, &rows),
            "not among the public keys given",
        );
        // Forged with the right key id but a wrong signature.
        let mut forged = k.sign("prod", 1, 2, "h2", 1);
        forged.last_hash = "x2".into();
        fails(verify(&pk, vec![forged], None, &rows), "bad signature");
        // Replaced in the database (re-signed rows cannot be, so: a different valid one).
        let ext = Some(vec![(1, cps[0].clone())]);
        fails(
            verify(&pk, vec![k.sign("prod", 1, 3, "h3", 1)], ext, &rows),
            "differs from the copy kept outside",
        );
        // Another console's checkpoint.
        fails(
            verify(&pk, vec![k.sign("staging", 1, 2, "h2", 1)], None, &rows),
            "belongs to the staging console",
        );
    }

    #[test]
    fn without_a_key_verify_says_what_it_could_not_prove() {
        let k = key();
        let r = verify(
            &[],
            vec![k.sign("prod", 1, 1, "h1", 1)],
            None,
            &[(1, "h1"), (2, "h2")],
        );
        assert!(r.failures.is_empty(), "{r:?}");
        let notes = r.notes.join("\n");
        assert!(notes.contains("no public key was given"), "{notes}");
        assert!(notes.contains("signature NOT checked"), "{notes}");
        assert!(notes.contains("NOT PROVEN: rows 2..2"), "{notes}");
        assert!(notes.contains("database only"), "{notes}");
    }
}
