//! The embedded per-env customers fixture, seeded into a fresh database.

use std::path::{Path, PathBuf};

use raxx_core::Env;
use sqlx::AnyPool;

use super::*;

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

pub(super) enum FixtureError {
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
pub(super) fn fixture_rows(env: Env) -> &'static [(i64, &'static str, &'static str, &'static str)] {
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

pub(super) async fn seed_fixture(
    pool: &AnyPool,
    env: Env,
) -> std::result::Result<(), FixtureError> {
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
