//! Storage for raxx-console: one [`Store`] over SQLite or PostgreSQL (chosen by the URL
//! scheme), one schema, migrations embedded per backend under `migrations/<backend>/`.
//!
//! Every write that changes state goes through [`audit::AuditTx`], which commits the change
//! and its audit row together (fail closed), locking the audit chain head only at commit.

pub mod admins;
pub mod anon_denials;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod checks;
pub mod connect;
pub mod customers;
pub mod flag_usage;
pub mod flags;
pub mod identity;
pub mod jobs;
pub mod keys;
pub mod notify;
pub mod passkeys;
pub mod review;
pub mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;

use std::time::Duration;

use raxx_core::Env;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

pub use audit::AuditTx;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "this database belongs to the {recorded} console, but this console is {console}: point DATABASE_URL at the {console} database"
    )]
    EnvMismatch { recorded: String, console: Env },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// Connecting failed in a way that will not heal by retrying (wrong password, no such
    /// database, pg_hba.conf, TLS): one line saying what to fix ([`connect::cannot_heal`]).
    #[error("{0}")]
    Connect(String),
}

impl StoreError {
    /// The database could not be reached (as opposed to refusing the request): no
    /// connection, or PostgreSQL going away under one — SQLSTATE class 08 (connection
    /// exception), 57P01–57P03 (shut down by the operator, crashed, still starting up) —
    /// or out of resources other than disk (class 53 but 53100: memory, connection slots).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Db(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::Io(_)
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_),
            ) => true,
            StoreError::Db(sqlx::Error::Database(e)) => e.code().is_some_and(|c| {
                c.len() == 5
                    && (c.starts_with("08")
                        || matches!(&*c, "57P01" | "57P02" | "57P03")
                        || (c.starts_with("53") && c != "53100"))
            }),
            _ => false,
        }
    }

    /// The database has no space left for a write: SQLite's `SQLITE_FULL` (code 13 and
    /// its extended codes: the disk or the file system is full, or the file reached
    /// `max_page_count`) or PostgreSQL's SQLSTATE 53100 (`disk_full`). Also inside a
    /// migration error.
    pub fn is_storage_full(&self) -> bool {
        self.database_code().is_some_and(|c| {
            c == "53100" || (c.len() < 5 && c.parse::<u32>().is_ok_and(|n| n & 0xff == 13))
        })
    }

    /// The database's own message, without its code (for one-line CLI errors).
    pub fn database_message(&self) -> Option<&str> {
        self.database_error().map(|e| e.message())
    }

    fn database_code(&self) -> Option<String> {
        self.database_error()?.code().map(|c| c.into_owned())
    }

    fn database_error(&self) -> Option<&(dyn sqlx::error::DatabaseError + 'static)> {
        use sqlx::migrate::MigrateError;
        match self {
            StoreError::Db(sqlx::Error::Database(e))
            | StoreError::Migrate(
                MigrateError::Execute(sqlx::Error::Database(e))
                | MigrateError::ExecuteMigration(sqlx::Error::Database(e), _),
            ) => Some(&**e),
            _ => None,
        }
    }
}

impl StoreError {
    /// The database refused a value the request carried (SQLSTATE class 22, "data
    /// exception": a NUL character in text on PostgreSQL, a number out of range).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e))
            if e.code().is_some_and(|c| c.starts_with("22")))
    }

    /// The database refused a write because it is read-only: SQLite's `SQLITE_READONLY`
    /// (code 8 and its extended codes, e.g. a file opened with `mode=ro`) or PostgreSQL's
    /// SQLSTATE 25006 (`read_only_sql_transaction`: a standby, `default_transaction_read_only`).
    /// Migrations count too: PostgreSQL refuses even `CREATE TABLE IF NOT EXISTS`.
    pub fn is_read_only(&self) -> bool {
        self.database_code().is_some_and(|c| {
            c == "25006" || (c.len() < 5 && c.parse::<u32>().is_ok_and(|n| n & 0xff == 8))
        })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Invalid(format!(
                "DATABASE_URL must start with sqlite:// or postgres:// (got `{}`)",
                redact_url(url)
            )))
        }
    }
}

/// A URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    env: Env,
    /// When cached reads may be trusted without a round trip (see [`changes`]).
    changes: std::sync::Arc<changes::ChangeSignal>,
    /// The `[[notify]]` targets, set once at start-up (`notify.rs`).
    notify: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<notify::NotifyRules>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Connect (without migrating) for a console of `env`. SQLite files and their folder
    /// are created if missing.
    pub async fn connect(url: &str, env: Env) -> Result<Store> {
        install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => {
                connect::postgres_url(url, "DATABASE_URL", |k| std::env::var(k).ok())?
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(3))
            // A pooled connection is never inside a transaction. One that still counts one
            // is stuck: SQLite rolls a transaction back by itself on some errors
            // (`SQLITE_FULL`, `SQLITE_IOERR`, ...), the `ROLLBACK` sent when the transaction
            // is dropped then fails, and sqlx keeps counting it open, so every later
            // `BEGIN` on that connection fails. Drop such a connection; the pool opens a
            // new one (docs/reliability.md, full disk).
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        Ok(Store {
            pool,
            backend,
            env,
            changes: Default::default(),
            notify: Default::default(),
        })
    }

    /// Connect, retrying while the database is unreachable (a console that starts
    /// before its database should wait, not die), up to `attempts` times. Errors that
    /// retrying cannot heal (a bad URL, password or TLS set-up, an unknown database, a
    /// pg_hba.conf refusal) end it at once ([`connect::cannot_heal`]).
    pub async fn connect_with_retry(url: &str, env: Env, attempts: u32) -> Result<Store> {
        let mut delay = Duration::from_millis(250);
        let mut last = None;
        for attempt in 1..=attempts.max(1) {
            match Store::connect(url, env).await {
                Ok(s) => return Ok(s),
                Err(e @ (StoreError::Invalid(_) | StoreError::Migrate(_))) => return Err(e),
                Err(StoreError::Db(e)) if connect::cannot_heal(&e, "DATABASE_URL").is_some() => {
                    let line = connect::cannot_heal(&e, "DATABASE_URL").unwrap_or_default();
                    return Err(StoreError::Connect(line));
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "database unreachable; retrying");
                    last = Some(e);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Invalid("no connection attempt made".into())))
    }

    /// The env of the console this store serves.
    pub fn env(&self) -> Env {
        self.env
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Run the embedded migrations of this backend, then check (or, on a new database,
    /// record) the env fingerprint in `console_meta`.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        self.check_env().await
    }

    /// Refuse a database recorded for the other env.
    pub async fn check_env(&self) -> Result<()> {
        let env = self.env;
        // Read first: a database that already has its fingerprint is not written to
        // (a read-only database passes this check).
        let recorded = match self.meta("env").await? {
            Some(r) => r,
            None => {
                sqlx::query(
                    "INSERT INTO console_meta (key, value) VALUES ('env', $1) ON CONFLICT (key) DO NOTHING",
                )
                .bind(env.as_str())
                .execute(&self.pool)
                .await?;
                sqlx::query_scalar("SELECT value FROM console_meta WHERE key = 'env'")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        if recorded != env.as_str() {
            return Err(StoreError::EnvMismatch {
                recorded,
                console: env,
            });
        }
        Ok(())
    }

    /// Is the database reachable? (`/readyz`)
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .is_ok()
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM console_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_url(url: &str) -> Result<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(StoreError::Invalid("sqlite URL has no file path".into()));
    }
    if path != ":memory:"
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Invalid(format!(
                "cannot create the folder {}: {e}",
                parent.display()
            ))
        })?;
    }
    let mut out = format!("sqlite://{path}");
    if query.is_empty() {
        out.push_str("?mode=rwc");
    } else {
        out.push('?');
        out.push_str(query);
        if !query.contains("mode=") {
            out.push_str("&mode=rwc");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://data/x.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        let e = Backend::from_url("mysql://root:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sqlite:// or postgres://"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }
}
