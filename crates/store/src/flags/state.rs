//! Each app's flag state: reading it, applying a file, the kill switch.

use raxx_core::audit::AuditEvent;
use raxx_core::flags::{AppFlags, Flag, FlagChange, diff_flags};
use serde_json::Value;
use sqlx::Row;

use crate::{AuditTx, Result, Store, StoreError, now_ms};

use super::*;

impl Store {
    /// The cheap "has anything changed?" read: the app's revision (0 before any change).
    pub async fn flag_revision(&self, app: &str) -> Result<i64> {
        let rev: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM console_flag_apps WHERE app = $1")
                .bind(app)
                .fetch_optional(&self.pool)
                .await?;
        Ok(rev.unwrap_or(0))
    }

    /// An app's flag state with versions. The revision is read first, so a change racing
    /// this read can only make the returned revision older than the flags, never newer.
    pub async fn flag_state(&self, app: &str) -> Result<FlagState> {
        let revision = self.flag_revision(app).await?;
        let rows = sqlx::query(
            "SELECT flag_key, definition, version, updated_at, updated_by FROM console_flags WHERE app = $1 ORDER BY flag_key",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await?;
        let flags = rows
            .iter()
            .map(|r| stored_flag(r, app))
            .collect::<Result<_>>()?;
        Ok(FlagState {
            app: app.to_owned(),
            revision,
            flags,
        })
    }

    /// The last flags file applied to `app`, if any.
    pub async fn last_applied_file(&self, app: &str) -> Result<Option<LastFile>> {
        let row = sqlx::query(
            "SELECT last_file, last_file_diff, last_file_at, last_file_by FROM console_flag_apps WHERE app = $1",
        )
        .bind(app)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let file: Option<String> = row.try_get("last_file")?;
        let Some(file) = file else { return Ok(None) };
        let diff: Option<String> = row.try_get("last_file_diff")?;
        let parse = |s: &str| serde_json::from_str(s).unwrap_or(Value::Null);
        Ok(Some(LastFile {
            file: parse(&file),
            diff: diff.as_deref().map(parse).unwrap_or(Value::Null),
            applied_at: row.try_get::<Option<i64>, _>("last_file_at")?.unwrap_or(0),
            applied_by: row
                .try_get::<Option<String>, _>("last_file_by")?
                .unwrap_or_default(),
        }))
    }

    /// Replace an app's whole flag state with a flags file, in one transaction, audited by
    /// `event` (its target, app and a `diff` are filled in here). Unchanged flags keep
    /// their versions. Returns the changes.
    pub async fn apply_flags(
        &self,
        flags: &AppFlags,
        by: &str,
        event: AuditEvent,
    ) -> Result<Vec<FlagChange>> {
        Ok(self.apply_flags_state(flags, by, event).await?.0)
    }

    /// [`Store::apply_flags`], also returning the app's state as this transaction committed
    /// it (no second read).
    pub async fn apply_flags_state(
        &self,
        flags: &AppFlags,
        by: &str,
        event: AuditEvent,
    ) -> Result<(Vec<FlagChange>, FlagState)> {
        flags
            .validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let now = now_ms();
        let (changes, mut state) = tx.replace_flags(flags, by, now).await?;
        let file = raxx_core::flags::to_file_json(flags);
        let diff = diff_json(&changes);
        // The revision bump and the last file in one statement.
        state.revision = sqlx::query_scalar(
            "INSERT INTO console_flag_apps (app, revision, updated_at, last_file, last_file_diff, last_file_at, last_file_by) VALUES ($1, 1, $2, $3, $4, $5, $6)
             ON CONFLICT (app) DO UPDATE SET revision = console_flag_apps.revision + 1, updated_at = excluded.updated_at, last_file = excluded.last_file, last_file_diff = excluded.last_file_diff, last_file_at = excluded.last_file_at, last_file_by = excluded.last_file_by
             RETURNING revision",
        )
        .bind(&flags.app)
        .bind(now)
        .bind(file.to_string())
        .bind(diff.to_string())
        .bind(now)
        .bind(by)
        .fetch_one(tx.conn())
        .await?;
        tx.record(
            event
                .target("flags", flags.app.clone())
                .app(flags.app.clone())
                .with("flags", flags.flags.len() as i64)
                .with("changed", changes.len() as i64)
                .with("diff", diff),
        )
        .await?;
        tx.commit().await?;
        Ok((changes, state))
    }

    /// The kill switch: disable a flag at once, audited by `event` with `bypass: true`.
    pub async fn kill_flag(
        &self,
        app: &str,
        key: &str,
        reason: &str,
        by: &str,
        event: AuditEvent,
    ) -> Result<Killed> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::Invalid(
                "a reason is required to disable a flag without review".into(),
            ));
        }
        let mut tx = self.begin_scoped(FLAGS_SCOPE).await?;
        let state = tx.flag_state(app).await?;
        let Some(current) = state.flags.get(key) else {
            tx.rollback().await?;
            return Err(StoreError::NotFound(format!("flag `{key}` of app `{app}`")));
        };
        let mut killed = Killed {
            app: app.to_owned(),
            key: key.to_owned(),
            version: current.version,
            changed: false,
        };
        if current.flag.enabled {
            let mut flag = current.flag.clone();
            flag.enabled = false;
            let change = FlagWrite {
                via: Via::Kill,
                promotion_id: None,
                reason: Some(reason),
            };
            killed.version = tx
                .write_flag(app, key, Some(&flag), by, &change, now_ms())
                .await?;
            tx.bump_revision(app).await?;
            killed.changed = true;
        }
        tx.record(
            event
                .target("flag", key)
                .app(app)
                .reason(reason)
                .with("bypass", true)
                .with("flag", key)
                .with("from_version", current.version)
                .with("version", killed.version)
                .with("already_disabled", !killed.changed),
        )
        .await?;
        tx.commit().await?;
        Ok(killed)
    }
}

impl AuditTx {
    /// An app's flag state, read inside this transaction.
    pub async fn flag_state(&mut self, app: &str) -> Result<FlagState> {
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM console_flag_apps WHERE app = $1")
                .bind(app)
                .fetch_optional(self.conn())
                .await?;
        let rows = sqlx::query(
            "SELECT flag_key, definition, version, updated_at, updated_by FROM console_flags WHERE app = $1 ORDER BY flag_key",
        )
        .bind(app)
        .fetch_all(self.conn())
        .await?;
        let flags = rows
            .iter()
            .map(|r| stored_flag(r, app))
            .collect::<Result<_>>()?;
        Ok(FlagState {
            app: app.to_owned(),
            revision: revision.unwrap_or(0),
            flags,
        })
    }

    /// Replace `new.app`'s whole flag state: flags absent from `new` are removed, changed
    /// ones get a new version, equal ones are left alone. Returns the changes (in key order)
    /// and the flags as they now stand; the caller bumps the revision (the returned state
    /// carries the old one).
    pub(super) async fn replace_flags(
        &mut self,
        new: &AppFlags,
        by: &str,
        now: i64,
    ) -> Result<(Vec<FlagChange>, FlagState)> {
        let mut state = self.flag_state(&new.app).await?;
        let changes = diff_flags(&state.app_flags(), new);
        let write = FlagWrite {
            via: Via::Apply,
            promotion_id: None,
            reason: None,
        };
        for change in &changes {
            let flag = new.flags.get(&change.key);
            let version = self
                .write_flag(&new.app, &change.key, flag, by, &write, now)
                .await?;
            match flag {
                Some(flag) => {
                    state.flags.insert(
                        change.key.clone(),
                        StoredFlag {
                            flag: flag.clone(),
                            version,
                            updated_at: now,
                            updated_by: by.to_owned(),
                        },
                    );
                }
                None => {
                    state.flags.remove(&change.key);
                }
            }
        }
        Ok((changes, state))
    }

    /// Write one flag (or remove it with `None`) at the next version, with a history row.
    pub(super) async fn write_flag(
        &mut self,
        app: &str,
        key: &str,
        flag: Option<&Flag>,
        by: &str,
        why: &FlagWrite<'_>,
        now: i64,
    ) -> Result<i64> {
        // The highest version this key ever had, in its history or its row: one read.
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(v) FROM (SELECT MAX(version) AS v FROM console_flag_history WHERE app = $1 AND flag_key = $2
             UNION ALL SELECT version AS v FROM console_flags WHERE app = $3 AND flag_key = $4) AS known",
        )
        .bind(app)
        .bind(key)
        .bind(app)
        .bind(key)
        .fetch_one(self.conn())
        .await?;
        let version = last.unwrap_or(0) + 1;
        let definition = flag.map(to_json).transpose()?;
        match (flag, &definition) {
            (Some(flag), Some(definition)) => {
                sqlx::query(
                    "INSERT INTO console_flags (app, flag_key, definition, version, enabled, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (app, flag_key) DO UPDATE SET definition = excluded.definition, version = excluded.version, enabled = excluded.enabled, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )
                .bind(app)
                .bind(key)
                .bind(definition)
                .bind(version)
                .bind(i64::from(flag.enabled))
                .bind(now)
                .bind(by)
                .execute(self.conn())
                .await?;
            }
            _ => {
                sqlx::query("DELETE FROM console_flags WHERE app = $1 AND flag_key = $2")
                    .bind(app)
                    .bind(key)
                    .execute(self.conn())
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO console_flag_history (app, flag_key, version, definition, changed_by, changed_at, via, promotion_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(app)
        .bind(key)
        .bind(version)
        .bind(definition)
        .bind(by)
        .bind(now)
        .bind(why.via.as_str())
        .bind(why.promotion_id)
        .bind(why.reason)
        .execute(self.conn())
        .await?;
        Ok(version)
    }

    pub(super) async fn bump_revision(&mut self, app: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_flag_apps (app, revision, updated_at) VALUES ($1, 1, $2)
             ON CONFLICT (app) DO UPDATE SET revision = console_flag_apps.revision + 1, updated_at = excluded.updated_at",
        )
        .bind(app)
        .bind(now_ms())
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
