//! The change signal: tells in-memory caches (API keys, flag state) whether what they
//! read from the database may have changed since, without a database round trip.
//!
//! A cache takes [`ChangeSignal::generation`] *before* it reads the database and tags the
//! entry with it. The entry may be served without reading again only while
//! [`ChangeSignal::is_fresh`] holds for its tag: the signal is live and no change has been
//! seen since the tag was taken. Otherwise the cache reads the database as it always did.
//!
//! Where the generation moves:
//! - in this process, [`crate::AuditTx::commit`] moves it once its commit has returned
//!   (every change goes through an `AuditTx`), so this instance's next request sees it;
//! - PostgreSQL, other instances and the CLI: statement-level triggers on the tables the
//!   caches read (`0008_change_notify.sql`) `pg_notify('raxx_changes', <table>)`; the
//!   watcher ([`Store::watch_changes`]) holds a `LISTEN` connection and moves it on every
//!   notification;
//! - SQLite, other processes on the same file (the CLI's `flags apply`, `keys create`): the
//!   watcher reads `PRAGMA data_version` on its own connection every [`SQLITE_POLL`] and
//!   moves it when the value changes.
//!
//! The signal is live only while the watcher knows it would see a change: its `LISTEN`
//! connection is up (checked with a query after [`HEARTBEAT`] of silence) or its last
//! `data_version` read succeeded. The watcher moves the generation *before* it declares the
//! signal live, so entries made while it was down are never served from memory; it
//! declares the signal not live as soon as it loses its connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool, Connection};

use crate::{Backend, Store};

/// The PostgreSQL notification channel the triggers of `0008_change_notify.sql` use.
pub const CHANNEL: &str = "raxx_changes";
/// How often the SQLite watcher reads `PRAGMA data_version`: the bound on how late this
/// process sees a change another process made to the same file.
pub const SQLITE_POLL: Duration = Duration::from_millis(100);
/// Silence on the `LISTEN` connection after which the watcher checks it with a query (and
/// how long that query may take before the connection counts as lost).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Longest wait between two attempts to reconnect the watcher.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Commits made through any [`crate::AuditTx`] of this process. Part of every signal's
/// generation: a commit on one `Store` also moves the generation of the others in this
/// process (harmless: one more database read), and `AuditTx` needs no handle on its `Store`.
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// Called by [`crate::AuditTx::commit`] after its commit returned, whatever it returned (a
/// failed `COMMIT` may still have committed).
pub(crate) fn committed() {
    COMMITS.fetch_add(1, SeqCst);
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ChangeSignal {
    /// Moves seen by the watcher (notifications, `data_version`, reconnects).
    seen: AtomicU64,
    live: AtomicBool,
    /// A watcher is running for this signal.
    watched: AtomicBool,
}

impl ChangeSignal {
    /// The current generation. Take it before reading the database; tag what was read with it.
    pub fn generation(&self) -> u64 {
        // Both counters only grow, so the sum moves whenever either moves.
        self.seen.load(SeqCst).wrapping_add(COMMITS.load(SeqCst))
    }

    /// Would the watcher see a change made now? When not, caches read the database on
    /// every request.
    pub fn is_live(&self) -> bool {
        self.live.load(SeqCst)
    }

    /// May an entry tagged `tag` be served without reading the database again?
    pub fn is_fresh(&self, tag: u64) -> bool {
        self.is_live() && self.generation() == tag
    }

    /// Something may have changed: every entry tagged so far is stale.
    pub fn bump(&self) {
        self.seen.fetch_add(1, SeqCst);
    }

    /// Declare the signal live or not. Moves the generation first, so no entry made before
    /// (possibly while changes went unseen) is ever fresh afterwards. Also a test hook:
    /// `set_live(false)` holds until the watcher next (re)connects.
    pub fn set_live(&self, live: bool) {
        if live {
            self.bump();
            self.live.store(true, SeqCst);
        } else {
            self.live.store(false, SeqCst);
            self.bump();
        }
    }
}

/// A running watcher; dropping it stops the watcher and the signal stops being live.
#[derive(Debug)]
pub struct Watch {
    task: tokio::task::JoinHandle<()>,
    signal: Arc<ChangeSignal>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
        // `watched` first: a task still running until its next await point sees it and
        // does not declare the signal live again (see `go_live`).
        self.signal.watched.store(false, SeqCst);
        self.signal.set_live(false);
    }
}

/// The watcher's `set_live(true)`, unless its `Watch` was dropped meanwhile.
fn go_live(signal: &ChangeSignal) {
    if !signal.watched.load(SeqCst) {
        return;
    }
    signal.set_live(true);
    if !signal.watched.load(SeqCst) {
        signal.live.store(false, SeqCst);
    }
}

impl Store {
    /// This store's change signal (shared by its clones).
    pub fn changes(&self) -> &ChangeSignal {
        &self.changes
    }

    /// Start the watcher that keeps [`Store::changes`] live (on the current tokio runtime).
    /// `None` when one is already running for this store. Until it has connected, and
    /// whenever it is down, the signal is not live and caches read the database.
    pub fn watch_changes(&self) -> Option<Watch> {
        let signal = self.changes.clone();
        if signal.watched.swap(true, SeqCst) {
            return None;
        }
        let task = match self.backend {
            Backend::Postgres => {
                let url = self.pool.connect_options().database_url.to_string();
                tokio::spawn(listen_postgres(url, signal.clone()))
            }
            Backend::Sqlite => tokio::spawn(poll_sqlite(self.pool.clone(), signal.clone())),
        };
        Some(Watch { task, signal })
    }
}

async fn listen_postgres(url: String, signal: Arc<ChangeSignal>) {
    use sqlx::postgres::PgListener;

    async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect(url).await?;
        // Return `Ok(None)` as soon as the connection is lost, not after reconnecting:
        // the signal must stop being live at once.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    loop {
        let connected = tokio::time::timeout(MAX_BACKOFF, connect(&url)).await;
        match connected {
            Ok(Ok(mut listener)) => {
                // LISTEN is active: every later commit will be notified.
                go_live(&signal);
                if failing {
                    tracing::info!("change listener reconnected: caches in use again");
                }
                failing = false;
                backoff = Duration::from_millis(100);
                let why = follow(&mut listener, &signal).await;
                signal.set_live(false);
                tracing::warn!(
                    reason = %why,
                    "change listener lost its connection: caches bypassed until it reconnects"
                );
            }
            Ok(Err(e)) => {
                if !failing {
                    tracing::warn!(error = %e, "change listener cannot connect; retrying");
                }
                failing = true;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!("change listener connect timed out; retrying");
                }
                failing = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Move the generation on every notification until the connection is lost; says why.
async fn follow(listener: &mut sqlx::postgres::PgListener, signal: &ChangeSignal) -> String {
    loop {
        // `try_recv` is cancel-safe (sqlx reads whole messages into its buffer).
        match tokio::time::timeout(HEARTBEAT, listener.try_recv()).await {
            Ok(Ok(Some(_))) => signal.bump(),
            Ok(Ok(None)) => return "connection closed".into(),
            Ok(Err(e)) => return e.to_string(),
            Err(_) => {
                // Silence: make sure the connection is still there (a notification that
                // arrives meanwhile is buffered and returned by the next `try_recv`).
                let ping = sqlx::query::<sqlx::Postgres>("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(HEARTBEAT, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "heartbeat timed out".into(),
                }
            }
        }
    }
}

async fn poll_sqlite(pool: AnyPool, signal: Arc<ChangeSignal>) {
    let options = pool.connect_options();
    // Its own connection: `data_version` only moves for commits made by *other* connections.
    let mut conn: Option<AnyConnection> = None;
    let mut last: Option<i64> = None;
    let mut ok = false;
    let mut tick = tokio::time::interval(SQLITE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let read = async {
            if conn.is_none() {
                conn = Some(AnyConnection::connect_with(&options).await?);
            }
            let c = conn.as_mut().expect("connected above");
            sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                .fetch_one(c)
                .await
        };
        match tokio::time::timeout(HEARTBEAT, read).await {
            Ok(Ok(version)) => {
                if !ok {
                    // First read, or back after a failure: moves the generation first.
                    go_live(&signal);
                    ok = true;
                } else if last != Some(version) {
                    signal.bump();
                }
                last = Some(version);
            }
            failed => {
                if ok {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".into(),
                    };
                    tracing::warn!(%error, "cannot read data_version: caches bypassed");
                    signal.set_live(false);
                }
                ok = false;
                conn = None;
                last = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_fresh_only_while_live_and_unchanged() {
        let s = ChangeSignal::default();
        let tag = s.generation();
        assert!(!s.is_fresh(tag), "not live before the watcher runs");

        s.set_live(true);
        assert!(!s.is_fresh(tag), "going live moves the generation");
        let tag = s.generation();
        assert!(s.is_fresh(tag));
        assert!(s.is_fresh(tag), "reading does not move it");

        s.bump();
        assert!(!s.is_fresh(tag), "a change seen by the watcher");
        let tag = s.generation();
        assert!(s.is_fresh(tag));

        committed();
        assert!(!s.is_fresh(tag), "a commit in this process");
        let tag = s.generation();

        s.set_live(false);
        assert!(!s.is_fresh(tag), "not live");
        let during = s.generation();
        assert!(!s.is_fresh(during), "nothing is fresh while not live");
        s.set_live(true);
        assert!(!s.is_fresh(during), "entries made while down stay stale");
        assert!(!s.is_fresh(tag));
        assert!(s.is_fresh(s.generation()));
    }

    #[test]
    fn generations_only_grow() {
        let s = ChangeSignal::default();
        let mut last = s.generation();
        for i in 0..100 {
            match i % 3 {
                0 => s.bump(),
                1 => committed(),
                _ => s.set_live(i % 2 == 0),
            }
            let g = s.generation();
            assert!(g > last);
            last = g;
        }
    }
}
