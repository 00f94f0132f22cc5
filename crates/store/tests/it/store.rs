//! The store suite: every test runs against SQLite and PostgreSQL.

use std::collections::BTreeMap;

use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::config::{GrantConfig, GroupConfig};
use raxx_core::rbac::{EffectiveRoles, EnvScope, Level, Resource, seeded_grants};
use raxx_store::sessions::{SessionPolicy, SessionRejection};
use raxx_store::{Store, StoreError, testing};

async fn stores(env: Env) -> Vec<Store> {
    let mut out = Vec::new();
    for url in testing::database_urls().await {
        let store = Store::connect(&url, env).await.expect("connect");
        store.migrate().await.expect("migrate");
        out.push(store);
    }
    out
}

const POLICY: SessionPolicy = SessionPolicy {
    idle_ms: 30 * 60_000,
    absolute_ms: 12 * 3_600_000,
};

#[tokio::test]
async fn a_database_of_the_other_env_is_refused() {
    for url in testing::database_urls().await {
        let staging = Store::connect(&url, Env::Staging).await.unwrap();
        staging.migrate().await.unwrap();
        staging.migrate().await.expect("migrating twice is fine");
        let prod = Store::connect(&url, Env::Prod).await.unwrap();
        let err = prod.migrate().await.unwrap_err();
        assert!(matches!(err, StoreError::EnvMismatch { .. }), "{err}");
        assert!(
            err.to_string().contains("belongs to the staging console"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn seeded_grants_match_the_domain_list() {
    for store in stores(Env::Prod).await {
        let groups = store.groups().await.unwrap();
        let mut in_db: Vec<(String, String, String)> = groups
            .iter()
            .flat_map(|g| {
                g.grants
                    .iter()
                    .map(move |(r, s)| (g.name.clone(), r.clone(), s.clone()))
            })
            .collect();
        in_db.sort();
        let mut want: Vec<(String, String, String)> = seeded_grants()
            .into_iter()
            .map(|g| {
                (
                    g.group,
                    g.role.to_string(),
                    g.env_scope.as_str().to_string(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(in_db, want);
    }
}

#[tokio::test]
async fn effective_roles_come_from_groups_scoped_to_the_env() {
    for store in stores(Env::Prod).await {
        let mut tx = store.begin().await.unwrap();
        tx.add_member("production-admins", "Alice@Raxx.test", "bootstrap")
            .await
            .unwrap();
        tx.add_member("staging-admins", "bob@raxx.test", "invite")
            .await
            .unwrap();
        tx.record(AuditEvent::new("test", "rbac.member.add", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let alice = EffectiveRoles::from_grants(
            Env::Prod,
            &store.grants_for("alice@raxx.test").await.unwrap(),
        );
        assert!(alice.has(Resource::Flag, Level::Admin));
        let bob = EffectiveRoles::from_grants(
            Env::Prod,
            &store.grants_for("bob@raxx.test").await.unwrap(),
        );
        assert!(
            bob.is_empty(),
            "staging-scoped grants give nothing on prod: {bob:?}"
        );
    }
}

#[tokio::test]
async fn config_membership_is_reconciled_and_leaves_invites_alone() {
    for store in stores(Env::Staging).await {
        let mut tx = store.begin().await.unwrap();
        tx.add_member("staging-admins", "invited@raxx.test", "invite")
            .await
            .unwrap();
        tx.record(AuditEvent::new("test", "invite.accept", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut groups = BTreeMap::new();
        groups.insert(
            "staging-admins".to_string(),
            GroupConfig {
                members: vec!["a@raxx.test".into(), "b@raxx.test".into()],
                grants: vec![],
            },
        );
        groups.insert(
            "qa".to_string(),
            GroupConfig {
                members: vec!["q@raxx.test".into()],
                grants: vec![GrantConfig {
                    role: "console-invite-user".into(),
                    env_scope: EnvScope::Staging,
                }],
            },
        );
        assert!(store.reconcile_config_groups(&groups).await.unwrap() > 0);
        assert_eq!(
            store.reconcile_config_groups(&groups).await.unwrap(),
            0,
            "idempotent"
        );
        let q = EffectiveRoles::from_grants(
            Env::Staging,
            &store.grants_for("q@raxx.test").await.unwrap(),
        );
        assert!(q.has(Resource::Invite, Level::User));

        groups.get_mut("staging-admins").unwrap().members = vec!["a@raxx.test".into()];
        groups.get_mut("qa").unwrap().grants.clear();
        store.reconcile_config_groups(&groups).await.unwrap();
        assert!(
            store.grants_for("b@raxx.test").await.unwrap().is_empty(),
            "removed from config"
        );
        assert!(
            store.grants_for("q@raxx.test").await.unwrap().is_empty(),
            "grant removed from config"
        );
        assert!(
            !store
                .grants_for("invited@raxx.test")
                .await
                .unwrap()
                .is_empty(),
            "invite membership kept"
        );
        assert!(!store.grants_for("a@raxx.test").await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn sessions_are_hashed_env_bound_and_expire() {
    for store in stores(Env::Staging).await {
        let mut tx = store.begin().await.unwrap();
        let admin = tx.create_admin("ops@raxx.test", "Ops").await.unwrap();
        let (token, session) = tx
            .create_session(admin.id, Env::Staging, POLICY, Some("ua"), None)
            .await
            .unwrap();
        let (token2, _) = tx
            .create_session(admin.id, Env::Staging, POLICY, None, None)
            .await
            .unwrap();
        tx.record(AuditEvent::new(
            admin.id.to_string(),
            "auth.login",
            Outcome::Allowed,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_ne!(token, token2, "a new token at every login");

        let stored: String =
            sqlx::query_scalar("SELECT token_hash FROM console_sessions WHERE id = $1")
                .bind(&session.id)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_ne!(stored, token, "only the hash is stored");
        assert_eq!(stored, raxx_core::opaque::hash_token(&token));

        let (s, a) = store
            .session_by_token(&token, POLICY)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((s.id.as_str(), a.id), (session.id.as_str(), admin.id));
        assert_eq!(
            store
                .session_by_token("rxs_forged", POLICY)
                .await
                .unwrap()
                .unwrap_err(),
            SessionRejection::Unknown
        );

        // Idle: last seen 31 minutes ago.
        sqlx::query(
            "UPDATE console_sessions SET last_seen_at = last_seen_at - 1860000 WHERE id = $1",
        )
        .bind(&session.id)
        .execute(store.pool())
        .await
        .unwrap();
        assert_eq!(
            store
                .session_by_token(&token, POLICY)
                .await
                .unwrap()
                .unwrap_err(),
            SessionRejection::Idle
        );
        // Absolute: created 12 h ago, even if active.
        sqlx::query(
            "UPDATE console_sessions SET last_seen_at = $1, expires_at = $1 - 1 WHERE id = $2",
        )
        .bind(raxx_store::now_ms())
        .bind(&session.id)
        .execute(store.pool())
        .await
        .unwrap();
        assert_eq!(
            store
                .session_by_token(&token, POLICY)
                .await
                .unwrap()
                .unwrap_err(),
            SessionRejection::Expired
        );
        // A row of the other env is not a session here.
        sqlx::query("UPDATE console_sessions SET selected_env = 'prod' WHERE token_hash = $1")
            .bind(raxx_core::opaque::hash_token(&token2))
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            store
                .session_by_token(&token2, POLICY)
                .await
                .unwrap()
                .unwrap_err(),
            SessionRejection::OtherEnv
        );
    }
}

#[tokio::test]
async fn disabling_an_operator_ends_their_sessions() {
    for store in stores(Env::Prod).await {
        let mut tx = store.begin().await.unwrap();
        let admin = tx.create_admin("gone@raxx.test", "Gone").await.unwrap();
        let (token, _) = tx
            .create_session(admin.id, Env::Prod, POLICY, None, None)
            .await
            .unwrap();
        tx.record(AuditEvent::new("t", "auth.login", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.set_admin_disabled(admin.id, true).await.unwrap(), 1);
        tx.record(AuditEvent::new("t", "admin.disable", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store
                .session_by_token(&token, POLICY)
                .await
                .unwrap()
                .unwrap_err(),
            SessionRejection::Revoked
        );
    }
}

#[tokio::test]
async fn login_links_and_ceremonies_are_single_use() {
    for store in stores(Env::Staging).await {
        let mut tx = store.begin().await.unwrap();
        let link = tx.create_login_link("x@raxx.test").await.unwrap();
        tx.record(AuditEvent::new(
            "cli",
            "auth.login_link.create",
            Outcome::Allowed,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.consume_login_link(&link).await.unwrap().as_deref(),
            Some("x@raxx.test")
        );
        assert_eq!(
            tx.consume_login_link(&link).await.unwrap(),
            None,
            "replayed"
        );
        tx.record(AuditEvent::new("x", "auth.login_link", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let id = store
            .put_ceremony(
                "register",
                Some("x@raxx.test"),
                "{}",
                &serde_json::json!({}),
            )
            .await
            .unwrap();
        assert!(
            store.take_ceremony(&id, "login").await.unwrap().is_none(),
            "kind must match"
        );
        assert!(
            store
                .take_ceremony(&id, "register")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .take_ceremony(&id, "register")
                .await
                .unwrap()
                .is_none(),
            "replayed"
        );
    }
}

#[tokio::test]
async fn a_change_without_an_audit_row_cannot_commit() {
    for store in stores(Env::Staging).await {
        let mut tx = store.begin().await.unwrap();
        tx.create_admin("sneaky@raxx.test", "S").await.unwrap();
        assert!(tx.commit().await.is_err());
        assert!(
            store
                .admin_by_email("sneaky@raxx.test")
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_failed_audit_insert_rolls_the_change_back() {
    for store in stores(Env::Staging).await {
        // Break the audit table so the insert fails, as a full disk or a lost grant would.
        sqlx::query("ALTER TABLE console_audit_log ADD COLUMN must_fail BIGINT NOT NULL DEFAULT 0 CHECK (must_fail = 1)")
            .execute(store.pool())
            .await
            .unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.create_admin("lost@raxx.test", "L").await.unwrap();
        tx.record(AuditEvent::new("t", "admin.create", Outcome::Allowed))
            .await
            .unwrap();
        assert!(tx.commit().await.is_err());
        assert!(
            store
                .admin_by_email("lost@raxx.test")
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn audit_chain_verifies_and_catches_each_tamper_kind() {
    for url in testing::database_urls().await {
        let store = Store::connect(&url, Env::Staging).await.unwrap();
        store.migrate().await.unwrap();
        for i in 0..6 {
            store
                .audit(
                    AuditEvent::new("1", "token.rotate", Outcome::Allowed)
                        .with("secret", "s3cr3t")
                        .with("i", i),
                )
                .await
                .unwrap();
        }
        assert_eq!(store.audit_verify().await.unwrap(), Ok(6));
        let page = store
            .audit_page(&raxx_store::audit::AuditQuery {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![6, 5]);
        assert_eq!(page[0].event.context["selected_env"], "staging");
        assert_eq!(
            page[0].event.context["secret"], "[redacted]",
            "secrets never enter the log"
        );

        let tampers: &[(&str, i64)] = &[
            ("UPDATE console_audit_log SET actor = '2' WHERE id = 3", 3),
            ("DELETE FROM console_audit_log WHERE id = 2", 3),
            ("UPDATE console_audit_log SET id = id + 100 WHERE id = 4", 5),
            (
                "UPDATE console_audit_log SET id = -3 WHERE id = 3; UPDATE console_audit_log SET id = 3 WHERE id = 4; UPDATE console_audit_log SET id = 4 WHERE id = -3",
                3,
            ),
            (
                "INSERT INTO console_audit_log SELECT 7, at, actor, session_id, action, target_type, target_id, target_app, outcome, reason, context, request_id, ip, prev_hash, hash FROM console_audit_log WHERE id = 6",
                7,
            ),
            ("DELETE FROM console_audit_log WHERE id = 6", 6),
        ];
        for (sql, bad_row) in tampers {
            let backup = format!("raxx_backup_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TABLE {backup} AS SELECT * FROM console_audit_log"
            )))
            .execute(store.pool())
            .await
            .unwrap();
            for stmt in sql.split("; ") {
                sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
            let broken = store.audit_verify().await.unwrap().unwrap_err();
            assert_eq!(broken.id, *bad_row, "{sql}: {broken}");
            sqlx::query("DELETE FROM console_audit_log")
                .execute(store.pool())
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO console_audit_log SELECT * FROM {backup}"
            )))
            .execute(store.pool())
            .await
            .unwrap();
            assert_eq!(
                store.audit_verify().await.unwrap(),
                Ok(6),
                "restored after {sql}"
            );
        }
    }
}

#[tokio::test]
async fn concurrent_writers_never_fork_the_chain() {
    for url in testing::database_urls().await {
        // Two pools stand in for two instances.
        let a = Store::connect(&url, Env::Staging).await.unwrap();
        a.migrate().await.unwrap();
        let b = Store::connect(&url, Env::Staging).await.unwrap();
        let mut tasks = Vec::new();
        for (n, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
        {
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .audit(AuditEvent::new(n.to_string(), "x", Outcome::Allowed).with("i", i))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(a.audit_verify().await.unwrap(), Ok(100));
    }
}

/// The gate's one-query sign-in lookup answers exactly what `session_by_token` and
/// `grants_for` answer together: no grants, one group, several groups, and rejections.
#[tokio::test]
async fn signed_in_matches_the_session_and_grants_lookups() {
    for store in stores(Env::Prod).await {
        let mut tx = store.begin().await.unwrap();
        let mut tokens = Vec::new();
        for (email, groups) in [
            ("none@raxx.test", vec![]),
            ("one@raxx.test", vec!["production-admins"]),
            (
                "many@raxx.test",
                vec!["production-admins", "staging-admins"],
            ),
        ] {
            let admin = tx.create_admin(email, "Op").await.unwrap();
            for g in groups {
                tx.add_member(g, email, "test").await.unwrap();
            }
            let (token, _) = tx
                .create_session(admin.id, Env::Prod, POLICY, None, None)
                .await
                .unwrap();
            tokens.push((email, token));
        }
        tx.record(AuditEvent::new("t", "auth.login", Outcome::Allowed))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        for (email, token) in &tokens {
            let signed = store.signed_in(token, POLICY).await.unwrap().unwrap();
            let (s, a) = store
                .session_by_token(token, POLICY)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((signed.session.id, signed.admin.id), (s.id, a.id));
            let key = |g: &raxx_core::rbac::Grant| {
                (g.group.clone(), g.role.to_string(), g.env_scope.as_str())
            };
            let mut got: Vec<_> = signed.grants.iter().map(key).collect();
            let mut want: Vec<_> = store
                .grants_for(email)
                .await
                .unwrap()
                .iter()
                .map(key)
                .collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "grants of {email}");
            if *email == "none@raxx.test" {
                assert!(got.is_empty());
            } else {
                assert!(!got.is_empty(), "{email} has grants");
            }
        }
        assert_eq!(
            store
                .signed_in("rxs_forged", POLICY)
                .await
                .unwrap()
                .unwrap_err(),
            SessionRejection::Unknown
        );
        sqlx::query("UPDATE console_sessions SET revoked_at = 1")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(
            store
                .signed_in(&tokens[1].1, POLICY)
                .await
                .unwrap()
                .unwrap_err(),
            SessionRejection::Revoked
        );
    }
}
