//! The handle every use case takes: the resolved config (and so the env), the store,
//! WebAuthn, the customers database and the caches.

use std::sync::Arc;

use raxx_core::Env;
use raxx_core::config::Resolved;
use raxx_store::Store;
use raxx_store::sessions::SessionPolicy;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

/// What every use case shares, behind one `Arc`: the web layer's state, every job run and
/// the CLI hold a copy, so a clone is one reference count (issue 18). Fields read through
/// `Deref`.
#[derive(Clone)]
pub struct Console(Arc<Shared>);

impl std::ops::Deref for Console {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`Console`].
pub struct Shared {
    pub cfg: Arc<Resolved>,
    pub store: Store,
    pub webauthn: Arc<Webauthn>,
    pub policy: SessionPolicy,
    /// SHA-256 of the bootstrap enrolment code (from `ADMIN_ENROL_CODE` or generated).
    pub enrol_code_hash: Option<Arc<str>>,
    /// This console's customers database (SPEC §9), its own connection.
    pub customers: Arc<raxx_store::customers::CustomerDb>,
    /// Each app's evaluated flags, keyed by revision and served from memory while the
    /// store's change signal says nothing changed (see `flags::FlagCache`).
    pub flag_cache: Arc<crate::flags::FlagCache>,
    /// Verified API keys: served while the change signal says nothing changed, and on
    /// read routes while the database is unreachable (see `keycache.rs`).
    pub key_cache: Arc<crate::keycache::KeyCache>,
}

impl Console {
    pub fn new(
        cfg: Resolved,
        store: Store,
        enrol_code_hash: Option<String>,
    ) -> anyhow::Result<Self> {
        let origin = Url::parse(&cfg.origin)?;
        let webauthn = WebauthnBuilder::new(&cfg.host, &origin)
            .map_err(|e| {
                anyhow::anyhow!(
                    "WebAuthn cannot use RP ID `{}` with origin {}: {e}",
                    cfg.host,
                    cfg.origin
                )
            })?
            .rp_name(match cfg.env {
                Env::Staging => "raxx console (staging)",
                Env::Prod => "raxx console (prod)",
            })
            .build()?;
        let policy = SessionPolicy::from_minutes_hours(
            cfg.config.session.idle_minutes,
            cfg.config.session.absolute_hours,
        );
        let customers = crate::customers::open_customer_db(&cfg).map_err(anyhow::Error::msg)?;
        // `[[notify]]`: audited events get their outbox rows in their own transaction.
        store.set_notify(raxx_store::notify::NotifyRules {
            origin: cfg.origin.clone(),
            env: cfg.env,
            targets: cfg
                .config
                .notify
                .iter()
                .enumerate()
                .map(|(i, t)| raxx_store::notify::NotifyTarget {
                    name: t.display_name(i),
                    kind: t.kind,
                    events: t.events.clone(),
                })
                .collect(),
        });
        Ok(Console(Arc::new(Shared {
            customers: Arc::new(customers),
            flag_cache: Default::default(),
            key_cache: Default::default(),
            cfg: Arc::new(cfg),
            store,
            webauthn: Arc::new(webauthn),
            policy,
            enrol_code_hash: enrol_code_hash.map(Into::into),
        })))
    }

    pub fn env(&self) -> Env {
        self.cfg.env
    }

    /// The enrolment code's hash: `ADMIN_ENROL_CODE`'s, else the one the last start
    /// generated and printed (kept in `console_meta` so every instance agrees).
    pub async fn enrol_code_hash(&self) -> Option<String> {
        match &self.enrol_code_hash {
            Some(h) => Some(h.to_string()),
            None => self.store.meta("enrol_code_hash").await.ok().flatten(),
        }
    }
}
