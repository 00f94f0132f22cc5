//! Keys verified recently, for riding out a database outage on read paths (OFREP).
//!
//! While the database answers, every request checks its key there, so a revocation takes
//! effect on the next request on every instance. Only when the database is unreachable does
//! the gate accept a key this process verified within [`OUTAGE_GRACE_MS`]; revocations made
//! during the outage cannot be seen by anyone and apply as soon as the database is back.

use std::collections::HashMap;
use std::sync::Mutex;

use raxx_core::secret::hash_token;
use raxx_store::keys::AppKey;

/// How long a key verified before an outage keeps working during it.
pub const OUTAGE_GRACE_MS: i64 = 15 * 60_000;

#[derive(Debug, Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<String, (AppKey, i64)>>,
}

impl KeyCache {
    pub fn remember(&self, secret: &str, key: &AppKey, now: i64) {
        if let Ok(mut m) = self.keys.lock() {
            if m.len() > 10_000 {
                m.retain(|_, (_, at)| now - *at < OUTAGE_GRACE_MS);
            }
            m.insert(hash_token(secret), (key.clone(), now));
        }
    }

    pub fn forget(&self, secret: &str) {
        if let Ok(mut m) = self.keys.lock() {
            m.remove(&hash_token(secret));
        }
    }

    /// A key verified within the grace window, for use only while the database is down.
    pub fn during_outage(&self, secret: &str, now: i64) -> Option<AppKey> {
        let m = self.keys.lock().ok()?;
        let (key, at) = m.get(&hash_token(secret))?;
        (now - at < OUTAGE_GRACE_MS && key.is_live(now)).then(|| key.clone())
    }
}
