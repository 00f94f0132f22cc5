//! The customers database (SPEC §9): a connection of its own per console, never the
//! console's database and never the other env's.
//!
//! Table and column names come from config and are spliced into SQL, so each must be a
//! plain identifier (`[A-Za-z_][A-Za-z0-9_]*`); every value is bound. Columns are read as
//! `CAST(col AS TEXT)`, so an integer or UUID id and an integer or timestamp `created_at`
//! all work on both backends.
//!
//! Without `[customers]` the console uses an embedded fixture database beside its own
//! (`customers-<env>.db`), seeded with fake accounts of its env and stamped with the env
//! so that one env's fixture is never opened by the other env's console.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raxx_core::Env;
use raxx_core::config::{CustomersConfig, normalise_email, plausible_email};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow, install_default_drivers};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row, Transaction};

use crate::{Backend, redact_url};

/// The status values a suspend and a reactivate write.
pub const ACTIVE: &str = "active";
pub const SUSPENDED: &str = "suspended";

#[derive(Debug, thiserror::Error)]
pub enum CustomersError {
    /// The database is down, or the table or columns do not match the config.
    #[error("{0}")]
    Unavailable(String),
    #[error("customer {0} was not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

pub type Result<T, E = CustomersError> = std::result::Result<T, E>;

/// Is `s` safe to splice into SQL as a table or column name?
pub fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

/// Where the customer fields live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMapping {
    pub table: String,
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    pub created_at: String,
}

impl Default for CustomerMapping {
    fn default() -> Self {
        CustomerMapping {
            table: "customers".into(),
            id: "id".into(),
            email: "email".into(),
            name: "name".into(),
            status: "status".into(),
            created_at: "created_at".into(),
        }
    }
}

impl CustomerMapping {
    /// From `[customers] table` and `columns = { email = "email_address", … }`.
    pub fn from_config(
        table: &str,
        columns: &BTreeMap<String, String>,
    ) -> std::result::Result<Self, String> {
        let mut m = CustomerMapping {
            table: table.to_string(),
            ..Default::default()
        };
        for (field, column) in columns {
            let slot = match field.as_str() {
                "id" => &mut m.id,
                "email" => &mut m.email,
                "name" => &mut m.name,
                "status" => &mut m.status,
                "created_at" => &mut m.created_at,
                other => {
                    return Err(format!(
                        "[customers] columns: unknown field `{other}` (id, email, name, status, created_at)"
                    ));
                }
            };
            *slot = column.clone();
        }
        for (what, ident) in [
            ("table", &m.table),
            ("columns.id", &m.id),
            ("columns.email", &m.email),
            ("columns.name", &m.name),
            ("columns.status", &m.status),
            ("columns.created_at", &m.created_at),
        ] {
            if !valid_identifier(ident) {
                return Err(format!(
                    "[customers] {what} = `{ident}` is not a plain identifier (letters, digits and `_`, not starting with a digit)"
                ));
            }
        }
        Ok(m)
    }

    fn select(&self) -> String {
        format!(
            "SELECT CAST({} AS TEXT) AS c_id, CAST({} AS TEXT) AS c_email, CAST({} AS TEXT) AS c_name, CAST({} AS TEXT) AS c_status, CAST({} AS TEXT) AS c_created FROM {}",
            self.id, self.email, self.name, self.status, self.created_at, self.table
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    pub id: String,
    pub email: String,
    pub name: String,
    pub status: String,
    /// As the database renders it (unix ms for the fixture).
    pub created_at: String,
}

fn customer(row: &AnyRow) -> std::result::Result<Customer, sqlx::Error> {
    let text = |c: &str| -> std::result::Result<String, sqlx::Error> {
        Ok(row.try_get::<Option<String>, _>(c)?.unwrap_or_default())
    };
    Ok(Customer {
        id: text("c_id")?,
        email: text("c_email")?,
        name: text("c_name")?,
        status: text("c_status")?,
        created_at: text("c_created")?,
    })
}

/// What an operator does to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerChange {
    Suspend,
    Reactivate,
    Email(String),
}

impl CustomerChange {
    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self {
            CustomerChange::Suspend => "customer.suspend",
            CustomerChange::Reactivate => "customer.reactivate",
            CustomerChange::Email(_) => "customer.change_email",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Configured { env: Env },
    Fixture { env: Env, path: PathBuf },
}

/// One console's customers database.
pub struct CustomerDb {
    pool: AnyPool,
    backend: Backend,
    mapping: CustomerMapping,
    /// The database named for messages: a redacted URL or the fixture's path.
    describe: String,
    source: Source,
    fixture_ready: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for CustomerDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerDb")
            .field("db", &self.describe)
            .finish()
    }
}

/// Do two database URLs name the same database? (SQLite: the same file; PostgreSQL: the
/// same host, port and database, whoever connects.)
pub fn same_database(a: &str, b: &str) -> bool {
    fn key(url: &str) -> Option<String> {
        if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or(rest);
            let p = Path::new(path);
            let full = std::fs::canonicalize(p).unwrap_or_else(|_| {
                std::env::current_dir()
                    .map(|d| d.join(p))
                    .unwrap_or_else(|_| p.to_path_buf())
            });
            return Some(format!("sqlite:{}", full.display()));
        }
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))?;
        let rest = rest.split('?').next().unwrap_or(rest);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
        let hostport = hostport.to_ascii_lowercase();
        let hostport = if hostport.contains(':') {
            hostport
        } else {
            format!("{hostport}:5432")
        };
        let hostport = hostport.replace("localhost:", "127.0.0.1:");
        Some(format!("postgres:{hostport}/{db}"))
    }
    match (key(a.trim()), key(b.trim())) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// The embedded fixture's file: beside the console's SQLite file, else under `data/`.
pub fn fixture_path(console_db_url: &str, env: Env) -> PathBuf {
    let dir = console_db_url
        .strip_prefix("sqlite://")
        .or_else(|| console_db_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|p| *p != ":memory:" && !p.is_empty())
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("data"));
    dir.join(format!("customers-{env}.db"))
}

impl CustomerDb {
    /// Open (lazily: nothing is contacted yet) the customers database of a console of
    /// `env` whose own database is `console_db_url`. Refusals are one line, naming what to
    /// fix; they stop the console from starting.
    pub fn open(
        console_db_url: &str,
        env: Env,
        cfg: Option<&CustomersConfig>,
    ) -> std::result::Result<CustomerDb, String> {
        install_default_drivers();
        let (url, describe, mapping, source) = match cfg {
            Some(c) => {
                let url = c.database_url.trim().to_string();
                Backend::from_url(&url).map_err(|e| format!("[customers] database_url: {e}"))?;
                if same_database(&url, console_db_url) {
                    return Err(
                        "[customers] database_url names the console's own database: customer records must live in a separate database (never the console's, never the other env's)".into(),
                    );
                }
                let mapping = CustomerMapping::from_config(&c.table, &c.columns)?;
                (
                    url.clone(),
                    redact_url(&url),
                    mapping,
                    Source::Configured { env },
                )
            }
            None => {
                let path = fixture_path(console_db_url, env);
                let url = format!("sqlite://{}?mode=rwc", path.display());
                if same_database(&url, console_db_url) {
                    return Err(format!(
                        "the console's database is named like the customers fixture ({}); rename it or configure [customers]",
                        path.display()
                    ));
                }
                (
                    url,
                    format!("{} (embedded {env} fixture)", path.display()),
                    CustomerMapping::default(),
                    Source::Fixture { env, path },
                )
            }
        };
        let backend = Backend::from_url(&url).map_err(|e| e.to_string())?;
        let url = match backend {
            Backend::Postgres => {
                crate::connect::postgres_url(&url, "[customers] database_url", |k| {
                    std::env::var(k).ok()
                })
                .map_err(|e| e.to_string())?
            }
            Backend::Sqlite => url,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(&url)
            .map_err(|e| format!("[customers] database_url `{describe}` is not usable: {e}"))?;
        Ok(CustomerDb {
            pool,
            backend,
            mapping,
            describe,
            source,
            fixture_ready: tokio::sync::OnceCell::new(),
        })
    }

    /// The database, for messages (password redacted).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    pub fn is_fixture(&self) -> bool {
        matches!(self.source, Source::Fixture { .. })
    }

    pub fn mapping(&self) -> &CustomerMapping {
        &self.mapping
    }

    fn unavailable(&self, e: &sqlx::Error) -> CustomersError {
        if let Some(line) = crate::connect::refused_connection(e, "[customers] database_url") {
            return CustomersError::Unavailable(format!(
                "the customers database {} refused the connection: {line}. The rest of the console is unaffected.",
                self.describe
            ));
        }
        let hint = match e {
            sqlx::Error::Database(_) | sqlx::Error::ColumnNotFound(_) => {
                "check [customers] table and columns against the database"
            }
            _ => "is it running, and is [customers] database_url right?",
        };
        CustomersError::Unavailable(format!(
            "the customers database {} could not be queried ({e}); {hint}. The rest of the console is unaffected.",
            self.describe
        ))
    }

    /// Create and seed the fixture on first use; refuse a fixture stamped for another env.
    async fn ready(&self) -> Result<()> {
        let Source::Fixture { env, path } = &self.source else {
            return self.check_not_other_env().await;
        };
        let env = *env;
        self.fixture_ready
            .get_or_try_init(|| async {
                if let Some(dir) = path.parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        CustomersError::Unavailable(format!(
                            "cannot create the folder {} for the customers fixture: {e}",
                            dir.display()
                        ))
                    })?;
                }
                seed_fixture(&self.pool, env).await.map_err(|e| match e {
                    FixtureError::Db(e) => self.unavailable(&e),
                    FixtureError::OtherEnv(recorded) => CustomersError::Unavailable(format!(
                        "the customers fixture {} belongs to the {recorded} console; this is the {env} console, which never reads another env's customers",
                        self.describe
                    )),
                })
            })
            .await
            .map(|_| ())
    }

    /// A configured database that is one of our fixtures must be this env's (a staging
    /// console pointed at `customers-prod.db` refuses it). Checked once per process.
    async fn check_not_other_env(&self) -> Result<()> {
        let Source::Configured { env } = self.source else {
            return Ok(());
        };
        self.fixture_ready
            .get_or_try_init(|| async {
                let recorded = sqlx::query_scalar::<_, String>(
                    "SELECT value FROM raxx_fixture_meta WHERE key = 'env'",
                )
                .fetch_optional(&self.pool)
                .await;
                match recorded {
                    Ok(Some(recorded)) if recorded != env.as_str() => {
                        Err(CustomersError::Unavailable(format!(
                            "the customers database {} belongs to the {recorded} console; this is the {env} console, which never reads another env's customers",
                            self.describe
                        )))
                    }
                    Ok(_) => Ok(()),
                    // No such table: not a fixture, nothing to check.
                    Err(sqlx::Error::Database(_)) => Ok(()),
                    Err(e) => Err(self.unavailable(&e)),
                }
            })
            .await
            .map(|_| ())
    }

    /// Customers whose email starts with `q` (case-insensitive) or whose id is `q`;
    /// every customer when `q` is empty. Ordered by email.
    pub async fn search(&self, q: &str, offset: u32, limit: u32) -> Result<Vec<Customer>> {
        self.ready().await?;
        let q = q.trim();
        if q.chars().count() > 200 {
            return Err(CustomersError::Invalid(
                "the search is longer than 200 characters".into(),
            ));
        }
        let m = &self.mapping;
        let pattern = format!("{}%", escape_like(&q.to_lowercase()));
        let sql = format!(
            "{} WHERE LOWER({}) LIKE $1 ESCAPE '!' OR CAST({} AS TEXT) = $2 ORDER BY {}, {} LIMIT {} OFFSET {}",
            m.select(),
            m.email,
            m.id,
            m.email,
            m.id,
            limit.clamp(1, 200),
            offset
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(pattern)
            .bind(q.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.unavailable(&e))?;
        rows.iter()
            .map(|r| customer(r).map_err(|e| self.unavailable(&e)))
            .collect()
    }

    pub async fn get(&self, id: &str) -> Result<Option<Customer>> {
        self.ready().await?;
        let sql = format!(
            "{} WHERE CAST({} AS TEXT) = $1",
            self.mapping.select(),
            self.mapping.id
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.unavailable(&e))?;
        row.as_ref()
            .map(customer)
            .transpose()
            .map_err(|e| self.unavailable(&e))
    }

    /// Make the change inside a customers-database transaction that is *not* committed:
    /// the caller records the audit row first, then commits this (see docs/customers.md).
    pub async fn begin_change(&self, id: &str, change: &CustomerChange) -> Result<PendingChange> {
        self.ready().await?;
        let m = &self.mapping;
        let unavailable = |e: sqlx::Error| self.unavailable(&e);
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(unavailable)?;
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let select = format!("{} WHERE CAST({} AS TEXT) = $1", m.select(), m.id);
        let before = sqlx::query(AssertSqlSafe(format!("{select}{lock}")))
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .as_ref()
            .map(customer)
            .transpose()
            .map_err(unavailable)?
            .ok_or_else(|| CustomersError::NotFound(id.to_string()))?;
        let (column, value) = match change {
            CustomerChange::Suspend if before.status == SUSPENDED => {
                return Err(CustomersError::Conflict(format!(
                    "customer {id} is already suspended"
                )));
            }
            CustomerChange::Reactivate if before.status == ACTIVE => {
                return Err(CustomersError::Conflict(format!(
                    "customer {id} is already active"
                )));
            }
            CustomerChange::Suspend => (&m.status, SUSPENDED.to_string()),
            CustomerChange::Reactivate => (&m.status, ACTIVE.to_string()),
            CustomerChange::Email(new) => {
                let new = normalise_email(new);
                if !plausible_email(&new) {
                    return Err(CustomersError::Invalid(format!(
                        "`{new}` is not an email address"
                    )));
                }
                if new == before.email.to_lowercase() {
                    return Err(CustomersError::Invalid(format!(
                        "customer {id} already has that email"
                    )));
                }
                (&m.email, new)
            }
        };
        let updated = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET {column} = $1 WHERE CAST({} AS TEXT) = $2",
            m.table, m.id
        )))
        .bind(value)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(r) => {
                return Err(CustomersError::Conflict(format!(
                    "the change would touch {} rows, not one; nothing was changed",
                    r.rows_affected()
                )));
            }
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(CustomersError::Conflict(
                    "another customer already has that email".into(),
                ));
            }
            Err(e) => return Err(unavailable(e)),
        }
        let after = sqlx::query(AssertSqlSafe(select))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)
            .and_then(|r| customer(&r).map_err(unavailable))?;
        Ok(PendingChange {
            tx,
            before,
            after,
            describe: self.describe.clone(),
        })
    }
}

/// A customer change made but not yet committed.
pub struct PendingChange {
    tx: Transaction<'static, Any>,
    pub before: Customer,
    pub after: Customer,
    describe: String,
}

impl PendingChange {
    pub async fn commit(self) -> Result<()> {
        let describe = self.describe;
        self.tx.commit().await.map_err(|e| {
            CustomersError::Unavailable(format!(
                "the customers database {describe} did not commit the change ({e}); nothing was changed"
            ))
        })
    }

    pub async fn rollback(self) {
        if let Err(e) = self.tx.rollback().await {
            tracing::warn!(error = %e, "customers rollback failed; the transaction ends with its connection");
        }
    }
}

/// `%`, `_` and the escape character itself are literal in a prefix search.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

enum FixtureError {
    Db(sqlx::Error),
    OtherEnv(String),
}

impl From<sqlx::Error> for FixtureError {
    fn from(e: sqlx::Error) -> Self {
        FixtureError::Db(e)
    }
}

/// Fake accounts only; each env has its own, so a name seen on one console never appears
/// on the other.
fn fixture_rows(env: Env) -> &'static [(i64, &'static str, &'static str, &'static str)] {
    match env {
        Env::Staging => &[
            (
                1001,
                "qa.checkout-01@qa.raxx.test",
                "QA Checkout One",
                ACTIVE,
            ),
            (
                1002,
                "qa.checkout-02@qa.raxx.test",
                "QA Checkout Two",
                ACTIVE,
            ),
            (1003, "qa.refunds@qa.raxx.test", "QA Refunds Bot", ACTIVE),
            (
                1004,
                "qa.suspended@qa.raxx.test",
                "QA Suspended Case",
                SUSPENDED,
            ),
            (
                1005,
                "qa.longname@qa.raxx.test",
                "QA Very Long Display Name For Layout Tests",
                ACTIVE,
            ),
            (1006, "qa.unicode@qa.raxx.test", "QA Ünïcødé Tester", ACTIVE),
            (1007, "qa.mobile-ios@qa.raxx.test", "QA Mobile iOS", ACTIVE),
            (
                1008,
                "qa.mobile-android@qa.raxx.test",
                "QA Mobile Android",
                ACTIVE,
            ),
            (1009, "qa.load-01@qa.raxx.test", "QA Load Test 01", ACTIVE),
            (1010, "qa.load-02@qa.raxx.test", "QA Load Test 02", ACTIVE),
            (
                1011,
                "qa.fraud-flag@qa.raxx.test",
                "QA Fraud Flagged",
                SUSPENDED,
            ),
            (1012, "qa.new-signup@qa.raxx.test", "QA New Signup", ACTIVE),
        ],
        Env::Prod => &[
            (
                5001,
                "ada.demo@customers.raxx.test",
                "Ada Demo-Customer",
                ACTIVE,
            ),
            (
                5002,
                "grace.sample@customers.raxx.test",
                "Grace Sample",
                ACTIVE,
            ),
            (
                5003,
                "linus.example@customers.raxx.test",
                "Linus Example",
                ACTIVE,
            ),
            (
                5004,
                "margaret.placeholder@customers.raxx.test",
                "Margaret Placeholder",
                ACTIVE,
            ),
            (
                5005,
                "alan.fictional@customers.raxx.test",
                "Alan Fictional",
                SUSPENDED,
            ),
            (
                5006,
                "barbara.madeup@customers.raxx.test",
                "Barbara Madeup",
                ACTIVE,
            ),
            (
                5007,
                "dennis.notreal@customers.raxx.test",
                "Dennis Notreal",
                ACTIVE,
            ),
            (
                5008,
                "frances.invented@customers.raxx.test",
                "Frances Invented",
                ACTIVE,
            ),
            (
                5009,
                "ken.imaginary@customers.raxx.test",
                "Ken Imaginary",
                ACTIVE,
            ),
            (
                5010,
                "radia.pretend@customers.raxx.test",
                "Radia Pretend",
                ACTIVE,
            ),
        ],
    }
}

async fn seed_fixture(pool: &AnyPool, env: Env) -> std::result::Result<(), FixtureError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for sql in [
        "CREATE TABLE IF NOT EXISTS raxx_fixture_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS customers (
            id         INTEGER PRIMARY KEY,
            email      TEXT NOT NULL UNIQUE,
            name       TEXT NOT NULL,
            status     TEXT NOT NULL DEFAULT 'active',
            created_at BIGINT NOT NULL
        )",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    let fresh = sqlx::query(
        "INSERT INTO raxx_fixture_meta (key, value) VALUES ('env', $1) ON CONFLICT (key) DO NOTHING",
    )
    .bind(env.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let recorded: String =
        sqlx::query_scalar("SELECT value FROM raxx_fixture_meta WHERE key = 'env'")
            .fetch_one(&mut *tx)
            .await?;
    if recorded != env.as_str() {
        return Err(FixtureError::OtherEnv(recorded));
    }
    if fresh {
        // Created 2026-01-05 and one day apart, so the list has stable, plausible dates.
        let base = 1_767_571_200_000i64;
        for (i, (id, email, name, status)) in fixture_rows(env).iter().enumerate() {
            sqlx::query(
                "INSERT INTO customers (id, email, name, status, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(*id)
            .bind(*email)
            .bind(*name)
            .bind(*status)
            .bind(base + i as i64 * 86_400_000)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names_only() {
        for ok in ["customers", "_x", "Email_Address2", "a"] {
            assert!(valid_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "cust omers",
            "customers;--",
            "email\"",
            "a.b",
            "naïve",
            "x'",
            &"a".repeat(64),
        ] {
            assert!(!valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn mapping_rejects_unknown_fields_and_unsafe_names() {
        let mut cols = BTreeMap::new();
        cols.insert("email".to_string(), "email_address".to_string());
        let m = CustomerMapping::from_config("users", &cols).unwrap();
        assert_eq!(m.email, "email_address");
        assert_eq!(m.table, "users");
        assert_eq!(m.id, "id");
        cols.insert("name".into(), "name); DROP TABLE users; --".into());
        let e = CustomerMapping::from_config("users", &cols).unwrap_err();
        assert!(e.contains("columns.name"), "{e}");
        let mut cols = BTreeMap::new();
        cols.insert("phone".to_string(), "phone".to_string());
        assert!(
            CustomerMapping::from_config("users", &cols)
                .unwrap_err()
                .contains("unknown field `phone`")
        );
        assert!(CustomerMapping::from_config("users x", &BTreeMap::new()).is_err());
    }

    #[test]
    fn the_same_database_is_recognised_however_it_is_written() {
        let cases = [
            (
                "sqlite://data/console.db",
                "sqlite:data/console.db?mode=rwc",
                true,
            ),
            (
                "sqlite://data/console.db",
                "sqlite://data/customers.db",
                false,
            ),
            (
                "postgres://u:pw@db:5432/console",
                "postgres://other@DB/console",
                true,
            ),
            (
                "postgres://u@localhost/console",
                "postgresql://u@127.0.0.1:5432/console?sslmode=require",
                true,
            ),
            (
                "postgres://u@db/console",
                "postgres://u@db/customers",
                false,
            ),
            (
                "postgres://u@db:5433/console",
                "postgres://u@db/console",
                false,
            ),
            ("sqlite://data/console.db", "postgres://u@db/console", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same_database(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn like_wildcards_in_a_search_are_literal() {
        assert_eq!(escape_like("a%b_c!d"), "a!%b!_c!!d");
        assert_eq!(escape_like("' or 1=1 --"), "' or 1=1 --");
    }

    #[test]
    fn the_fixture_sits_beside_the_console_database_per_env() {
        assert_eq!(
            fixture_path("sqlite://demo-data/staging.db", Env::Staging),
            PathBuf::from("demo-data/customers-staging.db")
        );
        assert_eq!(
            fixture_path("sqlite://data/console.db?mode=rwc", Env::Prod),
            PathBuf::from("data/customers-prod.db")
        );
        assert_eq!(
            fixture_path("postgres://db/console", Env::Prod),
            PathBuf::from("data/customers-prod.db")
        );
        let staging: Vec<_> = fixture_rows(Env::Staging).iter().map(|r| r.1).collect();
        assert!(
            fixture_rows(Env::Prod)
                .iter()
                .all(|r| !staging.contains(&r.1))
        );
    }
}
