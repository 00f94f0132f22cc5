//! What the flag list page derives from an app's flag state, computed once per state.
//!
//! The rows (formatted times, default values), the rendered table in each sort order
//! and, on staging, the last applied file with its drift only change when the app's
//! revision moves. Each entry is tied to the [`CachedFlags`] it was built from, so it is
//! exactly as fresh as the [`FlagCache`](super::FlagCache): a new state there (a new
//! revision) means a new entry here. One entry per app.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use askama::Template;
use raxx_core::flags::{FileFormat, diff_flags, parse_flags_file};
use raxx_store::flags::LastFile;
use raxx_store::{Store, StoreError};

use super::CachedFlags;
use super::view::{ChangeRow, FlagRow, change_rows};
use raxx_actions::fmt_time;

/// The orders of the flags table (`?sort=`); the first is the default.
const SORTS: [&str; 4] = ["key", "type", "state", "updated"];

/// The index of `sort` in [`SORTS`]: an unknown order is the default (by key).
pub fn sort_index(sort: &str) -> usize {
    SORTS.iter().position(|s| *s == sort).unwrap_or(0)
}

/// Sort the flags table: by key, type, state (disabled first) or last update (newest
/// first). `rows` come in key order.
fn sort_flag_rows(rows: &mut [&FlagRow], sort: usize) {
    match SORTS[sort] {
        "type" => rows.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.key.cmp(&b.key))),
        "state" => rows.sort_by(|a, b| a.enabled.cmp(&b.enabled).then_with(|| a.key.cmp(&b.key))),
        "updated" => rows.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.key.cmp(&b.key))),
        _ => rows.sort_by(|a, b| a.key.cmp(&b.key)),
    }
}

/// The last flags file applied to an app, as the staging page shows it.
pub struct LastFileView {
    pub applied_at: String,
    pub applied_by: String,
    pub changes: Vec<ChangeRow>,
    /// Differences between the file and the live state (none when nothing else wrote).
    pub drift: Vec<ChangeRow>,
}

/// The flags table of `flags_app.html`, rendered once per state and sort order.
#[derive(Template)]
#[template(path = "flags_app_table.html")]
struct FlagsTable<'a> {
    app: &'a str,
    rows: Vec<&'a FlagRow>,
    sort: &'static str,
}

impl FlagsTable<'_> {
    /// `aria-sort` for a column header.
    fn aria_sort(&self, col: &str) -> &'static str {
        match (col == self.sort, self.sort) {
            (false, _) => "none",
            (true, "updated") => "descending",
            (true, _) => "ascending",
        }
    }
}

/// One app's page material, for one flag state.
pub struct AppPage {
    /// The state this was derived from: the entry is valid while the flag cache serves it.
    source: Arc<CachedFlags>,
    /// In key order.
    rows: Vec<FlagRow>,
    tables: [OnceLock<String>; 4],
    /// `None` on prod, and on staging before any file was applied.
    pub last_file: Option<LastFileView>,
}

impl AppPage {
    pub fn revision(&self) -> i64 {
        self.source.revision
    }

    /// The flags table sorted by `SORTS[sort]`, as HTML (rendered on first use).
    pub fn table(&self, sort: usize) -> &str {
        self.tables[sort].get_or_init(|| {
            let mut rows: Vec<&FlagRow> = self.rows.iter().collect();
            sort_flag_rows(&mut rows, sort);
            let table = FlagsTable {
                app: &self.source.state.app,
                rows,
                sort: SORTS[sort],
            };
            table.render().unwrap_or_else(|e| {
                tracing::error!(error = %e, "flags table failed to render");
                String::new()
            })
        })
    }
}

/// Each app's [`AppPage`] for its current state.
#[derive(Default)]
pub struct FlagPages {
    apps: RwLock<HashMap<String, Arc<AppPage>>>,
}

impl std::fmt::Debug for FlagPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagPages").finish_non_exhaustive()
    }
}

impl FlagPages {
    /// The page material for `flags` (just returned by the flag cache). With
    /// `last_file` (staging), the last applied file is read and diffed against the
    /// state when the state is new.
    pub async fn get(
        &self,
        store: &Store,
        flags: &Arc<CachedFlags>,
        last_file: bool,
    ) -> Result<Arc<AppPage>, StoreError> {
        let app = flags.state.app.as_str();
        let hit = self.apps.read().ok().and_then(|apps| {
            apps.get(app)
                .filter(|p| Arc::ptr_eq(&p.source, flags))
                .cloned()
        });
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let (last, consistent) = if last_file {
            let last = store.last_applied_file(app).await?;
            // The last file is written in the transaction that bumps the revision. If the
            // revision is still the one of `flags`, the file read belongs to that state;
            // otherwise render it once but do not keep it (the next request sees the
            // new state).
            let now = store.flag_revision(app).await?;
            (last, now == flags.revision)
        } else {
            (None, true)
        };
        let page = Arc::new(AppPage {
            rows: flags.state.flags.values().map(FlagRow::new).collect(),
            tables: Default::default(),
            last_file: last.map(|l| last_file_view(l, flags)),
            source: flags.clone(),
        });
        if consistent && let Ok(mut apps) = self.apps.write() {
            let newer = apps
                .get(app)
                .is_none_or(|old| old.source.revision <= flags.revision);
            if newer {
                apps.insert(app.to_owned(), page.clone());
            }
        }
        Ok(page)
    }
}

/// The stored last file, with what it changed and how the live flags differ from it.
fn last_file_view(last: LastFile, flags: &CachedFlags) -> LastFileView {
    let changes = last
        .diff
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|c| ChangeRow {
                    key: c["flag"].as_str().unwrap_or_default().to_owned(),
                    kind: match c["kind"].as_str() {
                        Some("added") => "added",
                        Some("removed") => "removed",
                        _ => "changed",
                    },
                    summary: c["summary"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let drift = parse_flags_file(&last.file.to_string(), FileFormat::Json)
        .map(|file| change_rows(&diff_flags(&file, &flags.flags)))
        .unwrap_or_default();
    LastFileView {
        applied_at: fmt_time(last.applied_at),
        applied_by: last.applied_by,
        changes,
        drift,
    }
}
