//! Flag usage (issue 16 item 4): how many OFREP evaluations each flag had and when the
//! last was. Counted in memory by the web layer and added here in batches — bookkeeping
//! like a key's "last used": no audit row, never a write per evaluation.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use crate::{Result, Store};

/// Most flags one usage statement writes.
pub const USAGE_BATCH: usize = 200;

/// One flag's stored usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlagUsage {
    pub evaluations: i64,
    pub first_evaluated_at: i64,
    pub last_evaluated_at: i64,
}

/// Counted evaluations of one flag since the last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    pub app: String,
    pub flag_key: String,
    pub evaluations: i64,
    pub at: i64,
}

impl Store {
    /// Add counted evaluations: one `INSERT … ON CONFLICT DO UPDATE` per [`USAGE_BATCH`]
    /// flags, adding to the stored count (so instances add up); the last time never goes
    /// backwards.
    pub async fn add_flag_usage(&self, deltas: &[UsageDelta]) -> Result<()> {
        for chunk in deltas.chunks(USAGE_BATCH) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = 5 * i;
                    format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO console_flag_usage \
                 (app, flag_key, evaluations, first_evaluated_at, last_evaluated_at) VALUES {} \
                 ON CONFLICT (app, flag_key) DO UPDATE SET \
                 evaluations = console_flag_usage.evaluations + excluded.evaluations, \
                 last_evaluated_at = CASE \
                 WHEN excluded.last_evaluated_at > console_flag_usage.last_evaluated_at \
                 THEN excluded.last_evaluated_at ELSE console_flag_usage.last_evaluated_at END",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                q = q
                    .bind(d.app.clone())
                    .bind(d.flag_key.clone())
                    .bind(d.evaluations)
                    .bind(d.at)
                    .bind(d.at);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Each flag's stored usage for one app, by flag key.
    pub async fn flag_usage(&self, app: &str) -> Result<HashMap<String, FlagUsage>> {
        let rows = sqlx::query(
            "SELECT flag_key, evaluations, first_evaluated_at, last_evaluated_at \
             FROM console_flag_usage WHERE app = $1",
        )
        .bind(app.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("flag_key")?,
                    FlagUsage {
                        evaluations: r.try_get("evaluations")?,
                        first_evaluated_at: r.try_get("first_evaluated_at")?,
                        last_evaluated_at: r.try_get("last_evaluated_at")?,
                    },
                ))
            })
            .collect()
    }
}
