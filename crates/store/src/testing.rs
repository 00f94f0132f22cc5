//! Fresh databases for tests, on both backends.
//!
//! `RAXX_TEST_PG` names a PostgreSQL server URL (e.g. `postgres://postgres@127.0.0.1:5432/test`);
//! each call creates a new, empty database on it. Without it the PostgreSQL half is
//! skipped with a loud message — except under `CI=true`, where a missing server fails
//! the run: Postgres tests are never skipped silently.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

/// A throwaway SQLite URL in the system temp folder.
pub fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join("raxx-tests");
    let _ = std::fs::create_dir_all(&dir);
    format!(
        "sqlite://{}/{}.db",
        dir.display(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A new empty PostgreSQL database, or `None` when no server is configured outside CI.
pub async fn postgres_url() -> Option<String> {
    let base = match std::env::var("RAXX_TEST_PG") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "RAXX_TEST_PG is not set under CI=true: PostgreSQL tests must run in CI (use scripts/test.sh)"
                );
            }
            eprintln!(
                "!! RAXX_TEST_PG not set: skipping the PostgreSQL half of this test (scripts/test.sh sets it)"
            );
            return None;
        }
    };
    sqlx::any::install_default_drivers();
    let name = format!("raxx_t_{}", uuid::Uuid::new_v4().simple());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot reach RAXX_TEST_PG={base}: {e}"));
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
    pool.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap_or((&base, ""));
    Some(format!("{prefix}/{name}"))
}

/// Both backends' fresh URLs (PostgreSQL only when available): run a test body once per URL.
pub async fn database_urls() -> Vec<String> {
    let mut urls = vec![sqlite_url()];
    if let Some(pg) = postgres_url().await {
        urls.push(pg);
    }
    urls
}

/// Run one statement against a store (tests that tamper with rows on purpose).
pub async fn exec(store: &crate::Store, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The first column of the first row, as text.
pub async fn query_string(store: &crate::Store, sql: &str) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
