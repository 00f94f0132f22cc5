//! Flags and promotions in the store, on SQLite and PostgreSQL.

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::flags::{AppFlags, FileFormat, parse_flags_file};
use raxx_core::promotion::{NewPromotion, PromotedFlag, PromotionError, PromotionStatus};
use raxx_store::audit::AuditQuery;
use raxx_store::{Store, StoreError, now_ms, testing};

const STAGING_FILE: &str = r#"app = "raxx-api-staging"

[flags.new-checkout]
type = "boolean"
variants = { on = true, off = false }
default = "off"

[[flags.new-checkout.rules]]
when = [{ attr = "email", op = "ends_with", value = "@raxx.app" }]
serve = "on"

[flags.theme]
type = "string"
variants = { light = "light", dark = "dark" }
default = "light"
"#;

const PROD: &str = "raxx-api-prod";

fn file(text: &str) -> AppFlags {
    parse_flags_file(text, FileFormat::Toml).expect("fixture parses")
}

fn prod_file(default_checkout: &str) -> AppFlags {
    let text = STAGING_FILE.replace("raxx-api-staging", PROD).replace(
        "default = \"off\"",
        &format!("default = \"{default_checkout}\""),
    );
    file(&text)
}

fn apps() -> Vec<String> {
    vec![PROD.to_string()]
}

async fn stores(env: Env) -> Vec<(String, Store)> {
    let mut out = Vec::new();
    for url in testing::database_urls().await {
        let store = Store::connect(&url, env).await.expect("connect");
        store.migrate().await.expect("migrate");
        out.push((url, store));
    }
    out
}

fn event(actor: &str, action: &str) -> AuditEvent {
    AuditEvent::new(actor, action, Outcome::Allowed)
}

async fn audit_rows(
    store: &Store,
    action: &str,
    outcome: Outcome,
) -> Vec<raxx_core::audit::AuditEntry> {
    store
        .audit_page(&AuditQuery {
            action: Some(action.into()),
            outcome: Some(outcome),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit page")
}

/// Queue a promotion of prod's `new-checkout` to a definition whose default is `on`.
async fn queue_checkout(store: &Store, requester: i64) -> i64 {
    let state = store.flag_state(PROD).await.expect("state");
    let mut new = state.flags["new-checkout"].flag.clone();
    new.default_variant = "on".into();
    let flags = vec![PromotedFlag {
        key: "new-checkout".into(),
        new: Some(new),
        base_version: Some(state.flags["new-checkout"].version),
    }];
    let p = NewPromotion::queue(PROD, requester, "ship it", flags, now_ms()).expect("queue");
    store
        .queue_promotion(
            p,
            &[],
            event(&requester.to_string(), "flag.promotion.queue"),
        )
        .await
        .expect("queued")
        .id
}

#[tokio::test]
async fn applying_a_file_replaces_the_whole_state_and_keeps_unchanged_versions() {
    for (_, store) in stores(Env::Staging).await {
        let first = file(STAGING_FILE);
        let changes = store
            .apply_flags(&first, "cli", event("cli", "flag.apply"))
            .await
            .unwrap();
        assert_eq!(changes.len(), 2);
        let state = store.flag_state("raxx-api-staging").await.unwrap();
        assert_eq!(state.flags.len(), 2);
        assert_eq!(state.flags["theme"].version, 1);
        let rev1 = store.flag_revision("raxx-api-staging").await.unwrap();
        assert!(rev1 > 0);

        // Drop `theme`, change `new-checkout`: only that flag gets a new version.
        let replaced = STAGING_FILE.replace("default = \"off\"", "default = \"on\"");
        let second = file(replaced.split("[flags.theme]").next().unwrap());
        let changes = store
            .apply_flags(&second, "cli", event("cli", "flag.apply"))
            .await
            .unwrap();
        let kinds: Vec<_> = changes
            .iter()
            .map(|c| (c.key.as_str(), format!("{:?}", c.kind)))
            .collect();
        assert_eq!(
            kinds,
            [
                ("new-checkout", "Changed".into()),
                ("theme", "Removed".into())
            ]
        );
        let state = store.flag_state("raxx-api-staging").await.unwrap();
        assert_eq!(state.flags.keys().collect::<Vec<_>>(), ["new-checkout"]);
        assert_eq!(state.flags["new-checkout"].version, 2);
        assert!(store.flag_revision("raxx-api-staging").await.unwrap() > rev1);

        // Re-adding `theme` continues after its removal's version: versions never repeat.
        store
            .apply_flags(&first, "cli", event("cli", "flag.apply"))
            .await
            .unwrap();
        let state = store.flag_state("raxx-api-staging").await.unwrap();
        assert_eq!(state.flags["theme"].version, 3);
        let history = store
            .flag_history("raxx-api-staging", "theme", 10)
            .await
            .unwrap();
        let summary: Vec<_> = history
            .iter()
            .map(|h| (h.version, h.definition.is_some(), h.via.as_str()))
            .collect();
        assert_eq!(
            summary,
            [(3, true, "apply"), (2, false, "apply"), (1, true, "apply")]
        );

        // Applying the same file again changes nothing but is still recorded.
        let changes = store
            .apply_flags(&first, "cli", event("cli", "flag.apply"))
            .await
            .unwrap();
        assert!(changes.is_empty());
        assert_eq!(
            store.flag_state("raxx-api-staging").await.unwrap().flags["theme"].version,
            3
        );

        let last = store
            .last_applied_file("raxx-api-staging")
            .await
            .unwrap()
            .expect("a last file");
        assert_eq!(last.applied_by, "cli");
        assert_eq!(last.file["app"], "raxx-api-staging");

        let rows = audit_rows(&store, "flag.apply", Outcome::Allowed).await;
        assert_eq!(rows.len(), 4);
        // Newest first: the third apply changed `new-checkout` back and re-added `theme`;
        // the diff names flags under `flag`, which survives the log's redaction.
        let diff = &rows[1].event.context["diff"];
        assert_eq!(diff[0]["flag"], "new-checkout");
        assert_eq!(diff[1]["flag"], "theme");
        assert_eq!(diff[1]["kind"], "added");
        assert_eq!(rows[0].event.context["changed"], 0);
        assert!(store.audit_verify().await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn an_invalid_state_is_refused_and_nothing_changes() {
    for (_, store) in stores(Env::Staging).await {
        store
            .apply_flags(&file(STAGING_FILE), "cli", event("cli", "flag.apply"))
            .await
            .unwrap();
        let mut bad = file(STAGING_FILE);
        if let Some(flag) = bad.flags.get_mut("theme") {
            flag.default_variant = "missing".into();
        }
        let err = store
            .apply_flags(&bad, "cli", event("cli", "flag.apply"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        let state = store.flag_state("raxx-api-staging").await.unwrap();
        assert_eq!(state.flags["theme"].flag.default_variant, "light");
        assert_eq!(
            audit_rows(&store, "flag.apply", Outcome::Allowed)
                .await
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn the_kill_switch_disables_at_once_and_is_audited_as_a_bypass() {
    for (_, store) in stores(Env::Prod).await {
        store
            .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
            .await
            .unwrap();
        let empty = store
            .kill_flag(PROD, "new-checkout", "  ", "bob", event("2", "flag.kill"))
            .await
            .unwrap_err();
        assert!(matches!(empty, StoreError::Invalid(_)), "{empty}");
        let missing = store
            .kill_flag(PROD, "nope", "incident", "bob", event("2", "flag.kill"))
            .await
            .unwrap_err();
        assert!(matches!(missing, StoreError::NotFound(_)), "{missing}");

        let killed = store
            .kill_flag(
                PROD,
                "new-checkout",
                "incident 42",
                "bob",
                event("2", "flag.kill"),
            )
            .await
            .unwrap();
        assert!(killed.changed);
        assert_eq!(killed.version, 2);
        let state = store.flag_state(PROD).await.unwrap();
        assert!(!state.flags["new-checkout"].flag.enabled);
        let again = store
            .kill_flag(
                PROD,
                "new-checkout",
                "still",
                "bob",
                event("2", "flag.kill"),
            )
            .await
            .unwrap();
        assert!(!again.changed);
        assert_eq!(again.version, 2);

        let rows = audit_rows(&store, "flag.kill", Outcome::Allowed).await;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].event.context["bypass"], true);
        assert_eq!(rows[1].event.reason.as_deref(), Some("incident 42"));
        let history = store.flag_history(PROD, "new-checkout", 5).await.unwrap();
        assert_eq!(history[0].via, "kill");
        assert_eq!(history[0].reason.as_deref(), Some("incident 42"));
    }
}

#[tokio::test]
async fn a_promotion_needs_a_second_person_and_applies_on_approval() {
    for (_, store) in stores(Env::Prod).await {
        store
            .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
            .await
            .unwrap();
        let id = queue_checkout(&store, 1).await;
        let listed = store
            .promotions(&apps(), Some(PromotionStatus::Pending), 50)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        // The queue is filtered to this env's apps at query time.
        assert!(
            store
                .promotions(&["raxx-api-staging".to_string()], None, 50)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.promotion(id, &[]).await.unwrap().is_none());

        let own = store
            .approve_promotion(
                id,
                1,
                "alice",
                None,
                &apps(),
                event("1", "flag.promotion.approve"),
            )
            .await
            .unwrap();
        assert_eq!(own, Err(PromotionError::SelfApproval));
        let denied = audit_rows(&store, "flag.promotion.approve", Outcome::Denied).await;
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].event.context["denial"], "self_approval");

        let wrong_hash = store
            .approve_promotion(
                id,
                2,
                "bob",
                Some("abc"),
                &apps(),
                event("2", "flag.promotion.approve"),
            )
            .await
            .unwrap();
        assert_eq!(wrong_hash, Err(PromotionError::ContentChanged));

        let hash = store
            .promotion(id, &apps())
            .await
            .unwrap()
            .unwrap()
            .promotion
            .content_hash;
        let applied = store
            .approve_promotion(
                id,
                2,
                "bob",
                Some(&hash),
                &apps(),
                event("2", "flag.promotion.approve"),
            )
            .await
            .unwrap()
            .expect("applied");
        assert_eq!(applied.versions["new-checkout"], Some(2));
        let state = store.flag_state(PROD).await.unwrap();
        assert_eq!(state.flags["new-checkout"].flag.default_variant, "on");
        assert_eq!(state.flags["new-checkout"].updated_by, "bob");
        assert_eq!(state.flags["theme"].version, 1, "other flags are untouched");
        let record = store.promotion(id, &apps()).await.unwrap().unwrap();
        assert_eq!(record.promotion.status, PromotionStatus::Applied);
        assert_eq!(record.decided_by, Some(2));
        assert!(record.applied_at.is_some());
        let history = store.flag_history(PROD, "new-checkout", 5).await.unwrap();
        assert_eq!(
            (history[0].via.as_str(), history[0].promotion_id),
            ("promotion", Some(id))
        );

        let again = store
            .approve_promotion(
                id,
                3,
                "carol",
                None,
                &apps(),
                event("3", "flag.promotion.approve"),
            )
            .await
            .unwrap();
        assert_eq!(
            again,
            Err(PromotionError::NotPending(PromotionStatus::Applied))
        );
        assert_eq!(
            audit_rows(&store, "flag.promotion.apply", Outcome::Allowed)
                .await
                .len(),
            1
        );
        assert_eq!(
            audit_rows(&store, "flag.promotion.approve", Outcome::Allowed)
                .await
                .len(),
            1
        );
        assert!(store.audit_verify().await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn a_promotion_based_on_old_prod_versions_becomes_stale() {
    for (_, store) in stores(Env::Prod).await {
        store
            .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
            .await
            .unwrap();
        let id = queue_checkout(&store, 1).await;
        store
            .kill_flag(
                PROD,
                "new-checkout",
                "incident",
                "bob",
                event("2", "flag.kill"),
            )
            .await
            .unwrap();
        let result = store
            .approve_promotion(
                id,
                2,
                "bob",
                None,
                &apps(),
                event("2", "flag.promotion.approve"),
            )
            .await
            .unwrap();
        assert!(
            matches!(result, Err(PromotionError::Stale { ref flag }) if flag == "new-checkout"),
            "{result:?}"
        );
        let record = store.promotion(id, &apps()).await.unwrap().unwrap();
        assert_eq!(record.promotion.status, PromotionStatus::Stale);
        let state = store.flag_state(PROD).await.unwrap();
        assert_eq!(state.flags["new-checkout"].flag.default_variant, "off");
        assert!(!state.flags["new-checkout"].flag.enabled);
        let rows = audit_rows(&store, "flag.promotion.approve", Outcome::Error).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event.context["error"], "stale");
    }
}

#[tokio::test]
async fn two_approvals_at_the_same_moment_apply_once() {
    for (url, store) in stores(Env::Prod).await {
        store
            .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
            .await
            .unwrap();
        for round in 0..3 {
            let id = queue_checkout(&store, 1).await;
            // A second pool: another connection, as a second instance would have.
            let other = Store::connect(&url, Env::Prod).await.unwrap();
            let apps = apps();
            let (a, b) = tokio::join!(
                store.approve_promotion(
                    id,
                    2,
                    "bob",
                    None,
                    &apps,
                    event("2", "flag.promotion.approve")
                ),
                other.approve_promotion(
                    id,
                    3,
                    "carol",
                    None,
                    &apps,
                    event("3", "flag.promotion.approve")
                ),
            );
            let outcomes = [a.unwrap(), b.unwrap()];
            let applied = outcomes.iter().filter(|o| o.is_ok()).count();
            assert_eq!(applied, 1, "round {round}: {outcomes:?}");
            assert!(
                outcomes
                    .iter()
                    .any(|o| matches!(o, Err(PromotionError::NotPending(_)))),
                "round {round}: {outcomes:?}"
            );
            // Reset prod so the next round's promotion changes something again.
            store
                .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
                .await
                .unwrap();
            other.close().await;
        }
        assert_eq!(
            audit_rows(&store, "flag.promotion.apply", Outcome::Allowed)
                .await
                .len(),
            3
        );
        let history = store.flag_history(PROD, "new-checkout", 50).await.unwrap();
        assert_eq!(history.iter().filter(|h| h.via == "promotion").count(), 3);
        assert!(store.audit_verify().await.unwrap().is_ok());
    }
}

#[tokio::test]
async fn pending_promotions_expire_after_seven_days() {
    for (_, store) in stores(Env::Prod).await {
        store
            .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
            .await
            .unwrap();
        let old = queue_checkout(&store, 1).await;
        let day = 24 * 60 * 60 * 1000;
        // Nothing is due yet.
        assert!(
            store
                .expire_promotions(&apps(), "system:promotion-expiry", now_ms() + 6 * day)
                .await
                .unwrap()
                .is_empty()
        );
        // Other envs' apps are never touched.
        assert!(
            store
                .expire_promotions(
                    &["raxx-api-staging".into()],
                    "system:promotion-expiry",
                    now_ms() + 8 * day
                )
                .await
                .unwrap()
                .is_empty()
        );
        let expired = store
            .expire_promotions(&apps(), "system:promotion-expiry", now_ms() + 8 * day)
            .await
            .unwrap();
        assert_eq!(expired, [old]);
        let record = store.promotion(old, &apps()).await.unwrap().unwrap();
        assert_eq!(record.promotion.status, PromotionStatus::Expired);
        let rows = audit_rows(&store, "flag.promotion.expire", Outcome::Allowed).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event.actor, "system:promotion-expiry");
        let late = store
            .approve_promotion(
                old,
                2,
                "bob",
                None,
                &apps(),
                event("2", "flag.promotion.approve"),
            )
            .await
            .unwrap();
        assert_eq!(
            late,
            Err(PromotionError::NotPending(PromotionStatus::Expired))
        );
        assert_eq!(
            store.flag_state(PROD).await.unwrap().flags["new-checkout"]
                .flag
                .default_variant,
            "off"
        );
    }
}

#[tokio::test]
async fn rejecting_needs_a_reason_and_ends_the_promotion() {
    for (_, store) in stores(Env::Prod).await {
        store
            .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
            .await
            .unwrap();
        let id = queue_checkout(&store, 1).await;
        let no_reason = store
            .reject_promotion(id, 2, " ", &apps(), event("2", "flag.promotion.reject"))
            .await
            .unwrap();
        assert_eq!(no_reason.unwrap_err(), PromotionError::ReasonRequired);
        let rejected = store
            .reject_promotion(
                id,
                1,
                "withdrawn",
                &apps(),
                event("1", "flag.promotion.reject"),
            )
            .await
            .unwrap()
            .expect("rejected");
        assert_eq!(rejected.promotion.status, PromotionStatus::Rejected);
        assert_eq!(rejected.decision_reason.as_deref(), Some("withdrawn"));
        let approve = store
            .approve_promotion(
                id,
                2,
                "bob",
                None,
                &apps(),
                event("2", "flag.promotion.approve"),
            )
            .await
            .unwrap();
        assert_eq!(
            approve,
            Err(PromotionError::NotPending(PromotionStatus::Rejected))
        );
    }
}

/// Flags writers take the `flags` scope and lock the chain head only at commit; everything
/// else locks the head at `begin()`. Mixed at once — applies, kill switches and unrelated
/// audited writes from many connections — nothing deadlocks, every change has its audit row,
/// versions stay gap-free and the chain verifies.
#[tokio::test]
async fn concurrent_flags_writers_and_other_audited_writers_keep_one_consistent_chain() {
    for (_, store) in stores(Env::Prod).await {
        store
            .apply_flags(&prod_file("off"), "seed", event("cli", "flag.apply"))
            .await
            .expect("seed");
        let mut tasks = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..6 {
                    let default = if (w + i) % 2 == 0 { "on" } else { "off" };
                    store
                        .apply_flags(&prod_file(default), "cli", event("cli", "flag.apply"))
                        .await
                        .expect("apply");
                }
            }));
        }
        for _ in 0..2 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..4 {
                    store
                        .kill_flag(PROD, "theme", "incident", "oncall", event("o", "flag.kill"))
                        .await
                        .expect("kill");
                }
            }));
        }
        for _ in 0..3 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    store
                        .audit(event("viewer", "audit.view"))
                        .await
                        .expect("audit");
                }
            }));
        }
        let all = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            for t in tasks {
                t.await.expect("task");
            }
        })
        .await;
        assert!(
            all.is_ok(),
            "writers did not finish within 60 s (deadlock?)"
        );

        // 1 seed + 24 applies, 8 kills, 30 views: each its own row, one chain.
        assert_eq!(store.audit_verify().await.expect("verify"), Ok(63));
        assert_eq!(
            audit_rows(&store, "flag.apply", Outcome::Allowed)
                .await
                .len(),
            25
        );
        assert_eq!(
            audit_rows(&store, "flag.kill", Outcome::Allowed)
                .await
                .len(),
            8
        );
        // Every flag's versions are 1..=n with no gap and no duplicate, and the row holds n.
        let state = store.flag_state(PROD).await.expect("state");
        for (key, stored) in &state.flags {
            let history = store.flag_history(PROD, key, 1000).await.expect("history");
            let mut versions: Vec<i64> = history.iter().map(|h| h.version).collect();
            versions.sort_unstable();
            let expected: Vec<i64> = (1..=stored.version).collect();
            assert_eq!(versions, expected, "history of {key}");
        }
    }
}
