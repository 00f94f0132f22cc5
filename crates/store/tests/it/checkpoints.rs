//! Audit checkpoints in the store: due by rows or by age, written under the head lock so
//! that racing instances keep one gap-free series, and checked by the verify walk. Both
//! databases. (The attacks, over the real CLI: crates/cli/tests/it/audit_checkpoints.rs.)

use std::sync::Arc;
use std::time::Duration;

use raxx_core::Env;
use raxx_core::audit::checkpoint::{CheckpointKey, CheckpointVerifier};
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_store::audit::checkpoint::CheckpointPolicy;
use raxx_store::{Store, now_ms, testing};

fn row(n: usize) -> AuditEvent {
    AuditEvent::new("cli", "test.write", Outcome::Allowed).with("n", n)
}

#[tokio::test]
async fn a_checkpoint_is_due_after_n_rows_or_once_the_oldest_uncovered_row_is_m_seconds_old() {
    for url in testing::database_urls().await {
        let store = Store::connect(&url, Env::Staging).await.unwrap();
        store.migrate().await.unwrap();
        let key = CheckpointKey::generate();
        let by_rows = CheckpointPolicy {
            rows: 3,
            seconds: 3600,
        };
        assert!(
            !store.audit_checkpoint_due(by_rows).await.unwrap(),
            "empty chain"
        );
        assert_eq!(store.audit_checkpoint(&key, None).await.unwrap(), None);
        for n in 0..2 {
            store.audit(row(n)).await.unwrap();
        }
        assert!(!store.audit_checkpoint_due(by_rows).await.unwrap());
        assert_eq!(
            store.audit_checkpoint(&key, Some(by_rows)).await.unwrap(),
            None
        );
        store.audit(row(2)).await.unwrap();
        assert!(store.audit_checkpoint_due(by_rows).await.unwrap());
        let cp = store
            .audit_checkpoint(&key, Some(by_rows))
            .await
            .unwrap()
            .expect("due by rows");
        assert_eq!((cp.seq, cp.last_id, cp.rows), (1, 3, 3));
        assert!(key.public().verifies(&cp));
        assert_eq!(cp.env, "staging");

        let by_age = CheckpointPolicy {
            rows: 1000,
            seconds: 1,
        };
        store.audit(row(3)).await.unwrap();
        assert!(
            !store.audit_checkpoint_due(by_age).await.unwrap(),
            "fresh row"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(store.audit_checkpoint_due(by_age).await.unwrap(), "old row");
        let cp = store
            .audit_checkpoint(&key, Some(by_age))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((cp.seq, cp.last_id), (2, 4));

        let status = store.audit_checkpoint_status().await.unwrap();
        assert_eq!(status.chain_length, 4);
        assert_eq!(status.rows_uncovered(), 0);
        assert_eq!(
            status.last_checkpoint.map(|(s, id, _)| (s, id)),
            Some((2, 4))
        );
        let age = status.age_seconds(now_ms()).unwrap();
        assert!((0.0..60.0).contains(&age), "{age}");
        assert_eq!(store.audit_chain_length().await.unwrap(), 4);
        assert!(
            store
                .audit_checkpoint_age_seconds()
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn racing_checkpointers_on_two_pools_keep_one_gap_free_series() {
    for url in testing::database_urls().await {
        // Two pools stand in for two instances.
        let a = Store::connect(&url, Env::Staging).await.unwrap();
        a.migrate().await.unwrap();
        let b = Store::connect(&url, Env::Staging).await.unwrap();
        let key = Arc::new(CheckpointKey::generate());
        let policy = CheckpointPolicy {
            rows: 3,
            seconds: 3600,
        };
        let mut tasks = Vec::new();
        for store in [a.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                for n in 0..30 {
                    store.audit(row(n)).await.unwrap();
                    // At a pace: SQLite's busy handler would otherwise let two writers
                    // keep the write lock between them until they are done.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }));
        }
        // The checkpointers race the writers for as long as they write (however slow a
        // loaded machine makes them), and at least 60 rounds.
        let writing = Arc::new(std::sync::atomic::AtomicUsize::new(tasks.len()));
        let writers: Vec<_> = tasks
            .drain(..)
            .map(|t| {
                let writing = writing.clone();
                tokio::spawn(async move {
                    t.await.unwrap();
                    writing.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for store in [a.clone(), b.clone()] {
            let key = key.clone();
            let writing = writing.clone();
            tasks.push(tokio::spawn(async move {
                let mut round = 0;
                while round < 60 || writing.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    store.audit_checkpoint(&key, Some(policy)).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(3)).await;
                    round += 1;
                }
            }));
        }
        for t in writers.into_iter().chain(tasks) {
            t.await.unwrap();
        }
        a.audit_checkpoint(&key, None).await.unwrap();
        let cps = a.audit_checkpoints().await.unwrap();
        assert!(cps.len() >= 2, "{cps:?}");
        let seqs: Vec<i64> = cps.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=cps.len() as i64).collect::<Vec<_>>());
        for w in cps.windows(2) {
            assert!(w[1].last_id > w[0].last_id, "{cps:?}");
        }
        for w in cps[..cps.len() - 1].windows(2) {
            assert!(w[1].last_id - w[0].last_id >= 3, "only when due: {cps:?}");
        }
        assert_eq!(cps.last().unwrap().last_id, 60);
        let verifier = CheckpointVerifier::new("staging", &[key.public()], cps.clone(), None);
        let (chain, report) = b.audit_verify_checkpoints(verifier).await.unwrap();
        assert_eq!(chain, Ok(60));
        assert!(report.failures.is_empty(), "{report:?}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n == &format!("rows 1..60 match signed checkpoint {}", cps.len())),
            "{report:?}"
        );
    }
}
