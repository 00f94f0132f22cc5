//! What changed, flag by flag: the history of each app's flags.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Result, Store};

use super::*;

pub(super) fn history_entry(row: &AnyRow) -> Result<HistoryEntry> {
    let app: String = row.try_get("app")?;
    let key: String = row.try_get("flag_key")?;
    let definition: Option<String> = row.try_get("definition")?;
    Ok(HistoryEntry {
        id: row.try_get("id")?,
        definition: definition.map(|d| parse_flag(&d, &app, &key)).transpose()?,
        version: row.try_get("version")?,
        changed_by: row.try_get("changed_by")?,
        changed_at: row.try_get("changed_at")?,
        via: row.try_get("via")?,
        promotion_id: row.try_get("promotion_id")?,
        reason: row.try_get("reason")?,
        app,
        key,
    })
}

impl Store {
    /// A flag's changes, newest first.
    pub async fn flag_history(
        &self,
        app: &str,
        key: &str,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, app, flag_key, version, definition, changed_by, changed_at, via, promotion_id, reason FROM console_flag_history WHERE app = $1 AND flag_key = $2 ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        )))
        .bind(app)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(history_entry).collect()
    }
}
