//! Token storage on SQLite and PostgreSQL: dual-phase app key rotation, the provider
//! token table's sync, guarded rotation records and the lease.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::KeyKind;
use raxx_store::tokens::{ConfiguredToken, SyncStep, plan_sync};
use raxx_store::{Store, StoreError, now_ms};

async fn store(url: &str) -> Store {
    let store = Store::connect(url, Env::Staging).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn event(action: &str) -> AuditEvent {
    AuditEvent::new("test", action, Outcome::Allowed)
}

async fn new_key(store: &Store) -> (String, i64) {
    let mut tx = store.begin().await.expect("begin");
    let made = tx
        .create_app_key("raxx-api-staging", KeyKind::Client, "client", "test")
        .await
        .expect("create");
    tx.record(event("key.create")).await.expect("audit");
    tx.commit().await.expect("commit");
    made
}

async fn live(store: &Store, secret: &str) -> bool {
    store
        .api_key_by_secret(secret)
        .await
        .expect("lookup")
        .is_some()
}

#[tokio::test]
async fn rotated_key_works_at_once_and_the_previous_until_revoked() {
    for url in raxx_store::testing::database_urls().await {
        let store = store(&url).await;
        let (old_secret, old_id) = new_key(&store).await;
        let now = now_ms();

        let mut tx = store.begin().await.expect("begin");
        let (new_secret, new) = tx
            .rotate_app_key(old_id, now + 3_600_000, "7", now)
            .await
            .expect("rotate");
        tx.record(event("token.rotate")).await.expect("audit");
        tx.commit().await.expect("commit");

        assert_eq!(new.rotated_from, Some(old_id), "{url}");
        assert_eq!(
            (new.app.as_str(), new.kind, new.name.as_str()),
            ("raxx-api-staging", KeyKind::Client, "client")
        );
        assert_ne!(new_secret, old_secret);
        assert!(live(&store, &new_secret).await, "new key works at once");
        assert!(live(&store, &old_secret).await, "old key works in grace");

        // One previous at a time; the rotated key cannot be rotated again.
        let mut tx = store.begin().await.expect("begin");
        let again = tx.rotate_app_key(new.id, now + 1, "7", now).await;
        assert!(
            matches!(&again, Err(StoreError::Conflict(m)) if m.contains("still in its grace period")),
            "{again:?}"
        );
        let old_again = tx.rotate_app_key(old_id, now + 1, "7", now).await;
        assert!(
            matches!(&old_again, Err(StoreError::Conflict(m)) if m.contains("already rotated")),
            "{old_again:?}"
        );
        tx.rollback().await.expect("rollback");

        let mut tx = store.begin().await.expect("begin");
        let previous = tx
            .revoke_previous_app_key(new.id, now_ms())
            .await
            .expect("revoke previous");
        tx.record(event("token.revoke_previous"))
            .await
            .expect("audit");
        tx.commit().await.expect("commit");
        assert_eq!(previous.id, old_id);
        assert!(
            !live(&store, &old_secret).await,
            "old key refused after revoke"
        );
        assert!(live(&store, &new_secret).await);

        let mut tx = store.begin().await.expect("begin");
        let none = tx.revoke_previous_app_key(new.id, now_ms()).await;
        assert!(matches!(none, Err(StoreError::Conflict(_))), "{none:?}");
        tx.rollback().await.expect("rollback");
    }
}

#[tokio::test]
async fn zero_grace_ends_the_old_key_now_and_the_sweep_marks_ended_graces() {
    for url in raxx_store::testing::database_urls().await {
        let store = store(&url).await;
        let (old_secret, old_id) = new_key(&store).await;
        let now = now_ms();
        let mut tx = store.begin().await.expect("begin");
        let (new_secret, _) = tx
            .rotate_app_key(old_id, now, "7", now)
            .await
            .expect("rotate");
        tx.record(event("token.rotate")).await.expect("audit");
        tx.commit().await.expect("commit");
        assert!(!live(&store, &old_secret).await, "{url}: no grace");
        assert!(live(&store, &new_secret).await);
        let old = store.app_key(old_id).await.expect("read").expect("exists");
        assert_eq!(old.revoked_at, Some(now));

        // A key whose grace ran out but is not marked yet.
        // A grace long enough that a loaded machine cannot end it before the first check.
        let (other_secret, other_id) = new_key(&store).await;
        let now = now_ms();
        let mut tx = store.begin().await.expect("begin");
        tx.rotate_app_key(other_id, now + 1_000, "7", now)
            .await
            .expect("rotate");
        tx.record(event("token.rotate")).await.expect("audit");
        tx.commit().await.expect("commit");
        assert!(live(&store, &other_secret).await);
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        assert!(!live(&store, &other_secret).await, "grace over");
        let due = store.app_keys_past_grace(now_ms()).await.expect("due");
        assert_eq!(due.iter().map(|k| k.id).collect::<Vec<_>>(), vec![other_id]);
        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.finish_app_key_grace(other_id, now_ms())
                .await
                .expect("finish")
        );
        assert!(
            !tx.finish_app_key_grace(other_id, now_ms())
                .await
                .expect("again")
        );
        tx.record(event("token.grace_end")).await.expect("audit");
        tx.commit().await.expect("commit");
        assert!(
            store
                .app_keys_past_grace(now_ms())
                .await
                .expect("due")
                .is_empty()
        );
    }
}

fn configured(auth: &str) -> ConfiguredToken {
    ConfiguredToken {
        app: "raxx-api-staging".into(),
        name: "deploy-bot".into(),
        provider: "heroku".into(),
        authorization_id: Some(auth.into()),
        max_age_days: Some(90),
    }
}

#[tokio::test]
async fn provider_tokens_sync_rotate_and_forget_the_previous() {
    for url in raxx_store::testing::database_urls().await {
        let store = store(&url).await;
        let config = vec![configured("auth-1")];
        let steps = plan_sync(&store.provider_tokens().await.expect("read"), &config);
        assert!(matches!(steps.as_slice(), [SyncStep::Add(_)]), "{steps:?}");
        let mut tx = store.begin().await.expect("begin");
        let id = tx.apply_sync(&steps[0], now_ms()).await.expect("add");
        tx.record(event("token.sync")).await.expect("audit");
        tx.commit().await.expect("commit");
        let stored = store.provider_tokens().await.expect("read");
        assert!(plan_sync(&stored, &config).is_empty(), "{url}: in line");
        assert_eq!(stored[0].authorization_id.as_deref(), Some("auth-1"));

        // A stale caller cannot record over the current authorization.
        let now = now_ms();
        let mut tx = store.begin().await.expect("begin");
        let stale = tx
            .record_rotation(id, Some("not-current"), "auth-2", now + 10, "7", now)
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
        tx.record_rotation(id, Some("auth-1"), "auth-2", now + 10, "7", now)
            .await
            .expect("record");
        tx.record(event("token.rotate")).await.expect("audit");
        tx.commit().await.expect("commit");
        let t = store.provider_token(id).await.expect("read").expect("row");
        assert_eq!(t.authorization_id.as_deref(), Some("auth-2"));
        assert_eq!(t.previous_authorization_id.as_deref(), Some("auth-1"));
        assert_eq!(t.previous_grace_until, Some(now + 10));
        assert_eq!(
            (t.rotated_at, t.rotated_by.as_deref()),
            (Some(now), Some("7"))
        );
        // The config still names auth-1: the console's rotation is kept, not undone.
        assert!(plan_sync(std::slice::from_ref(&t), &config).is_empty());

        let mut tx = store.begin().await.expect("begin");
        let wrong = tx.clear_previous(id, "auth-2").await;
        assert!(matches!(wrong, Err(StoreError::Conflict(_))), "{wrong:?}");
        tx.clear_previous(id, "auth-1").await.expect("clear");
        tx.record(event("token.revoke_previous"))
            .await
            .expect("audit");
        tx.commit().await.expect("commit");
        let t = store.provider_token(id).await.expect("read").expect("row");
        assert_eq!(
            (
                t.previous_authorization_id.as_deref(),
                t.previous_grace_until
            ),
            (None, None)
        );

        // The config names a new authorization by hand: it is adopted.
        let steps = plan_sync(&[t], &[configured("auth-9")]);
        assert!(
            matches!(steps.as_slice(), [SyncStep::AdoptAuthorization { to: Some(to), .. }] if to == "auth-9"),
            "{steps:?}"
        );
    }
}

#[tokio::test]
async fn one_lease_per_provider_token() {
    for url in raxx_store::testing::database_urls().await {
        let store = store(&url).await;
        let mut tx = store.begin().await.expect("begin");
        let id = tx
            .apply_sync(&SyncStep::Add(configured("a")), now_ms())
            .await
            .expect("add");
        tx.record(event("token.sync")).await.expect("audit");
        tx.commit().await.expect("commit");

        let now = now_ms();
        assert!(
            store
                .claim_provider_token(id, now, now + 1000)
                .await
                .expect("claim")
        );
        assert!(
            !store
                .claim_provider_token(id, now, now + 1000)
                .await
                .expect("claim"),
            "{url}: held"
        );
        assert!(
            store
                .claim_provider_token(id, now + 1000, now + 2000)
                .await
                .expect("claim"),
            "an expired lease is taken over"
        );
        store
            .release_provider_token(id, Some("step 2 (write config vars to x): boom"))
            .await
            .expect("release");
        assert!(
            store
                .claim_provider_token(id, now, now + 1000)
                .await
                .expect("claim")
        );
        let t = store.provider_token(id).await.expect("read").expect("row");
        assert_eq!(
            t.last_error.as_deref(),
            Some("step 2 (write config vars to x): boom")
        );
    }
}

/// Issue 17: rotate and revoke-previous act on a token, which keeps its id; every
/// version carries the token's id.
#[tokio::test]
async fn a_key_token_keeps_its_id_across_rotations() {
    for url in raxx_store::testing::database_urls().await {
        let store = store(&url).await;
        let (first_secret, token) = new_key(&store).await;
        let now = now_ms();
        let mut tx = store.begin().await.expect("begin");
        let (second_secret, v2, n) = tx
            .rotate_app_key_token(token, now + 3_600_000, "7", now)
            .await
            .expect("rotate");
        tx.record(event("token.rotate")).await.expect("audit");
        tx.commit().await.expect("commit");
        assert_eq!((v2.token_id, n), (token, 2), "{url}");
        assert_ne!(v2.id, token, "a new version row");

        // One previous version at a time, on the token's id.
        let mut tx = store.begin().await.expect("begin");
        let again = tx.rotate_app_key_token(token, now + 1, "7", now).await;
        assert!(
            matches!(&again, Err(StoreError::Conflict(m)) if m.contains("grace period")),
            "{again:?}"
        );
        // A later version's row id is not a token.
        let not_token = tx.rotate_app_key_token(v2.id, now + 1, "7", now).await;
        assert!(
            matches!(not_token, Err(StoreError::NotFound(_))),
            "{not_token:?}"
        );
        tx.rollback().await.expect("rollback");

        let mut tx = store.begin().await.expect("begin");
        let previous = tx
            .revoke_previous_app_key_token(token, now_ms())
            .await
            .expect("revoke previous");
        tx.record(event("token.revoke_previous"))
            .await
            .expect("audit");
        tx.commit().await.expect("commit");
        assert_eq!(previous.id, token, "the first version was the previous one");
        assert!(!live(&store, &first_secret).await);
        assert!(live(&store, &second_secret).await);

        let mut tx = store.begin().await.expect("begin");
        let (_, v3, n) = tx
            .rotate_app_key_token(token, now_ms(), "7", now_ms())
            .await
            .expect("rotate again");
        tx.record(event("token.rotate")).await.expect("audit");
        tx.commit().await.expect("commit");
        assert_eq!((v3.token_id, n), (token, 3));
        let versions = store.app_key_versions(token).await.expect("versions");
        assert_eq!(
            versions.iter().map(|v| v.token_id).collect::<Vec<_>>(),
            vec![token; 3]
        );
        assert!(
            store
                .app_key_versions(v3.id)
                .await
                .expect("none")
                .is_empty()
        );

        // "Last used" is bookkeeping: batched upserts, never backwards.
        store
            .record_key_uses(&[(v2.id, 50), (v3.id, 70)])
            .await
            .expect("uses");
        store
            .record_key_uses(&[(v2.id, 40), (v3.id, 90)])
            .await
            .expect("uses");
        let used = store.app_key_last_used().await.expect("read");
        assert_eq!((used.get(&v2.id), used.get(&v3.id)), (Some(&50), Some(&90)));
        let many: Vec<(i64, i64)> = (1..=450).map(|i| (1_000_000 + i, i)).collect();
        store.record_key_uses(&many).await.expect("several batches");
        assert_eq!(store.app_key_last_used().await.expect("read").len(), 452);
    }
}
