//! The change signal's watcher (`raxx_store::changes`), on both backends: it goes live,
//! moves the generation when another connection (another instance, the CLI) changes a
//! table the caches read, and stops being live when it is stopped.
//!
//! The changes are made with plain SQL on a second `Store`, not through an `AuditTx`: an
//! `AuditTx` commit moves every signal of this process directly, which would hide whether
//! the watcher saw the change. (No test in this file commits an `AuditTx`.) For the same
//! reason this file is a test binary of its own, not a module of `tests/it`: a test of
//! another module committing at the same moment would move the generation too.

use std::time::{Duration, Instant};

use raxx_core::Env;
use raxx_store::Store;
use raxx_store::testing::{database_urls, exec};

async fn open(url: &str) -> Store {
    let store = Store::connect(url, Env::Staging).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// Waits up to `limit` for `cond`; true when it held.
async fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test]
async fn the_watcher_sees_changes_made_by_another_connection() {
    for url in database_urls().await {
        let store = open(&url).await;
        let other = Store::connect(&url, Env::Staging).await.expect("connect");
        assert!(!store.changes().is_live(), "not live before a watcher runs");

        let watch = store.watch_changes().expect("first watcher");
        assert!(store.watch_changes().is_none(), "one watcher per store");
        assert!(
            within(Duration::from_secs(5), || store.changes().is_live()).await,
            "{url}: the watcher goes live"
        );
        assert!(store.clone().changes().is_live(), "clones share the signal");

        // Quiet database: the generation stays put, entries stay fresh.
        let tag = store.changes().generation();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.changes().is_fresh(tag), "{url}: no change, no move");

        // A key created by "another instance".
        let started = Instant::now();
        exec(
            &other,
            "INSERT INTO console_app_keys (app, kind, name, secret_hash, created_at, created_by) VALUES ('raxx-api-staging', 'client', 'k', 'hash-1', 1, 'test')",
        )
        .await;
        assert!(
            within(Duration::from_secs(2), || !store.changes().is_fresh(tag)).await,
            "{url}: a key change moves the generation"
        );
        eprintln!("{url}: key change seen after {:?}", started.elapsed());

        // A revocation.
        let tag = store.changes().generation();
        exec(&other, "UPDATE console_app_keys SET revoked_at = 2").await;
        assert!(
            within(Duration::from_secs(2), || !store.changes().is_fresh(tag)).await,
            "{url}: a revocation moves the generation"
        );

        // A flags change.
        let tag = store.changes().generation();
        exec(
            &other,
            "INSERT INTO console_flag_apps (app, revision, updated_at) VALUES ('raxx-api-staging', 1, 1)",
        )
        .await;
        assert!(
            within(Duration::from_secs(2), || !store.changes().is_fresh(tag)).await,
            "{url}: a flags change moves the generation"
        );
        let tag = store.changes().generation();
        exec(
            &other,
            "INSERT INTO console_flags (app, flag_key, definition, version, enabled, updated_at, updated_by) VALUES ('raxx-api-staging', 'f', '{}', 1, 1, 1, 'test')",
        )
        .await;
        assert!(
            within(Duration::from_secs(2), || !store.changes().is_fresh(tag)).await,
            "{url}: a flag row change moves the generation"
        );

        // The test hook: not live until the watcher reconnects; nothing is fresh meanwhile.
        store.changes().set_live(false);
        let tag = store.changes().generation();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!store.changes().is_live(), "{url}: stays down");
        assert!(!store.changes().is_fresh(tag));

        drop(watch);
        assert!(!store.changes().is_live(), "a stopped watcher is not live");
        let again = store
            .watch_changes()
            .expect("a new watcher after the old one stopped");
        assert!(
            within(Duration::from_secs(5), || store.changes().is_live()).await,
            "{url}: live again"
        );
        drop(again);
        other.close().await;
        store.close().await;
    }
}

#[tokio::test]
async fn postgres_notifies_only_for_the_tables_the_caches_read() {
    let Some(url) = raxx_store::testing::postgres_url().await else {
        return;
    };
    let store = open(&url).await;
    let _watch = store.watch_changes().expect("watcher");
    assert!(within(Duration::from_secs(5), || store.changes().is_live()).await);
    let tag = store.changes().generation();
    // console_meta is not cached: no notification, entries stay fresh.
    store.set_meta("unrelated", "x").await.expect("meta");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(store.changes().is_fresh(tag));
    store.close().await;
}
