//! Issue 19 item 9: anonymous traffic cannot flood the audit chain. Anonymous denials are
//! counted per (interval, source, route template, code) outside the chain and flushed as
//! one chained summary row each; every stored client-supplied string is capped. Signed-in
//! denials stay one chained row each. Over real HTTP, SQLite and PostgreSQL.
//!
//! The benchmark figure (bench/README.md): ≤ 1 chained row per 100 anonymous requests,
//! and audit storage growth from 100,000 anonymous requests under 1 MB. The test sends
//! `RAXX_FLOOD_REQUESTS` (default 1,200) and asserts the same rates.

use raxx_core::Env;
use raxx_store::anon_denials::INTERVAL_MS;
use raxx_testkit::TestConsole;

/// Chained rows and the bytes they take (their canonical form plus their hash columns).
async fn chain_size(c: &TestConsole) -> (u64, u64, usize) {
    let (mut rows, mut bytes, mut largest) = (0u64, 0u64, 0usize);
    c.store()
        .audit_scan(|r| {
            let len = raxx_core::audit::canonical(r.id, r.at, &r.event).len()
                + r.hash.len()
                + r.prev_hash.len();
            rows += 1;
            bytes += len as u64;
            largest = largest.max(len);
            Ok(())
        })
        .await
        .expect("scan");
    (rows, bytes, largest)
}

fn requests() -> usize {
    std::env::var("RAXX_FLOOD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        // Six kinds of request (six keys); a run that spans an interval boundary writes
        // each key twice, which 1,200 requests still keep at 1 row per 100.
        .unwrap_or(1_200)
}

#[tokio::test]
async fn anonymous_denials_cost_at_most_one_chained_row_per_hundred_requests() {
    let n = requests();
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(
            Env::Staging,
            &url,
            "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
        )
        .await;
        let client = c.client();
        let long = "x".repeat(60_000);
        let (rows_before, bytes_before, _) = chain_size(&c).await;
        let started = std::time::Instant::now();
        let first_interval = raxx_store::anon_denials::interval_of(raxx_store::now_ms());
        for i in 0..n {
            let req = match i % 6 {
                // A 60 KB path on a page route.
                0 => client.get(c.url(&format!("/tokens/{long}/rotate"))),
                // A write with no session and a huge user agent.
                1 => client
                    .post(c.url("/api/v1/tokens/key:1/rotate"))
                    .header("user-agent", &long[..8_000])
                    .json(&serde_json::json!({"grace_seconds": 0})),
                // A forged session cookie.
                2 => client
                    .get(c.url("/api/v1/me"))
                    .header("cookie", format!("{}=forged{i}", c.state.cfg.cookie_name())),
                // A garbage API key on OFREP.
                3 => client
                    .post(c.url("/ofrep/v1/evaluate/flags"))
                    .header("authorization", format!("Bearer rxk_garbage_{i}"))
                    .json(&serde_json::json!({})),
                // Login links tried cross-site, each with another token.
                4 => client
                    .post(c.url("/auth/link"))
                    .header("sec-fetch-site", "cross-site")
                    .form(&[("token", format!("rxl_guess_{i}_{}", &long[..2_000]))]),
                _ => client.get(c.url(&format!("/customers/{i}"))),
            };
            let status = req.send().await.expect("request").status().as_u16();
            assert!(
                matches!(status, 303 | 401 | 403),
                "request {i} was not refused: {status}"
            );
        }
        let elapsed = started.elapsed();
        let pending = c.store().anon_denials_pending().await.expect("pending");
        let (rows_mid, _, _) = chain_size(&c).await;
        if raxx_store::anon_denials::interval_of(raxx_store::now_ms()) == first_interval {
            assert_eq!(pending as usize, n, "every anonymous denial is counted");
            assert_eq!(
                rows_mid, rows_before,
                "no chained row while the interval runs"
            );
        }
        // The interval ends: one summary row per (source, route, code).
        let flushed = c
            .store()
            .flush_anon_denials(raxx_store::now_ms() + INTERVAL_MS)
            .await
            .expect("flush");
        assert_eq!(c.store().anon_denials_pending().await.unwrap(), 0);
        let (rows_after, bytes_after, largest) = chain_size(&c).await;
        let added = rows_after - rows_before;
        assert!(added >= flushed);
        assert!(
            added as usize * 100 <= n,
            "{added} chained rows for {n} anonymous requests (want ≤ 1 per 100)"
        );
        let growth = bytes_after - bytes_before;
        let per_100k = growth as f64 * 100_000.0 / n as f64;
        assert!(
            per_100k < 1_048_576.0,
            "{growth} bytes for {n} requests: {per_100k:.0} bytes per 100,000 (want < 1 MB)"
        );
        assert!(largest < 4_096, "a stored row is {largest} bytes");
        // The summary says how many, of what, from where — never the attacker's path.
        let page = c
            .store()
            .audit_page(&raxx_store::audit::AuditQuery {
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        let total: i64 = page
            .iter()
            .filter(|r| r.event.context["aggregated"] == true)
            .map(|r| r.event.context["count"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(total as usize, n, "the summaries add up to every request");
        assert!(page.iter().all(|r| {
            let row = serde_json::to_string(r).unwrap();
            !row.contains("xxxxxxxxxx") && !row.contains("rxl_guess")
        }));
        eprintln!(
            "{url}: {n} anonymous requests in {elapsed:?} -> {added} chained rows, {growth} bytes ({per_100k:.0} bytes per 100,000)"
        );
    });
}

#[tokio::test]
async fn signed_in_denials_stay_one_chained_row_each() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(Env::Staging, &url, "").await;
        let op = c.operator("nobody@raxx.test", &[]).await;
        let (before, _, _) = chain_size(&c).await;
        for _ in 0..10 {
            let status = c
                .client()
                .post(c.url("/api/v1/tokens/key:1/rotate"))
                .headers(c.write_headers(&op))
                .json(&serde_json::json!({}))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 403);
        }
        let (after, _, _) = chain_size(&c).await;
        assert_eq!(after - before, 10, "one row per signed-in denial");
        assert_eq!(c.store().anon_denials_pending().await.unwrap(), 0);
    });
}
