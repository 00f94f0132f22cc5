//! The customers database connection: open, read, change (each change audited in the
//! console's own log).

use std::path::{Path, PathBuf};
use std::time::Duration;

use raxx_core::Env;
use raxx_core::config::{CustomersConfig, normalise_email, plausible_email};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, AssertSqlSafe, Transaction};

use crate::{Backend, redact_url};

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
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
    pub(super) fn key(url: &str) -> Option<String> {
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

    pub(super) fn unavailable(&self, e: &sqlx::Error) -> CustomersError {
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
    pub(super) async fn ready(&self) -> Result<()> {
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
    pub(super) async fn check_not_other_env(&self) -> Result<()> {
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
pub(super) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out
}
