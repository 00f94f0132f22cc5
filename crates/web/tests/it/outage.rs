//! The database goes away while the console serves: OFREP keeps answering from the cached
//! flag state with keys verified before the outage, `/readyz` turns 503, and writes fail
//! with a clear error and change nothing. (The pool is closed under the running server —
//! the same "unavailable" path a dead server produces; see docs/reliability.md.)

use raxx_core::Env;
use raxx_testkit::TestConsole;
use serde_json::{Value, json};

#[tokio::test]
async fn ofrep_rides_out_a_database_outage_and_writes_fail_cleanly() {
    raxx_testkit::each_backend!(|url| {
        let c = TestConsole::start(
            Env::Staging,
            &url,
            "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
        )
        .await;
        let keys = c.app_keys("raxx-api-staging").await;
        let (client_key, deploy_key) = (keys.client, keys.deploy);
        let http = c.client();
        let flags = json!({"app": "raxx-api-staging", "flags": {"checkout": {"type": "boolean", "variants": {"on": true, "off": false}, "default": "on"}}});
        let put = http
            .put(c.url("/api/v1/apps/raxx-api-staging/flags"))
            .bearer_auth(&deploy_key)
            .json(&flags)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
        let eval = || {
            http.post(c.url("/ofrep/v1/evaluate/flags/checkout"))
                .bearer_auth(&client_key)
                .json(&json!({"context": {"targetingKey": "u1"}}))
                .send()
        };
        let before: Value = eval().await.unwrap().json().await.unwrap();
        assert_eq!(before["value"], true);
        assert_eq!(
            http.get(c.url("/readyz")).send().await.unwrap().status(),
            200
        );

        c.store().close().await;

        let during = eval().await.unwrap();
        assert_eq!(during.status(), 200, "OFREP answers from the cache");
        let during: Value = during.json().await.unwrap();
        assert_eq!(during["value"], true);
        assert_eq!(
            http.get(c.url("/readyz")).send().await.unwrap().status(),
            503
        );
        let write = http
            .put(c.url("/api/v1/apps/raxx-api-staging/flags"))
            .bearer_auth(&deploy_key)
            .json(&flags)
            .send()
            .await
            .unwrap();
        assert_eq!(write.status(), 503);
        let body: Value = write.json().await.unwrap();
        assert_eq!(body["error"], "unavailable", "{body}");
        // A key never seen before the outage is not accepted on trust.
        let unknown = http
            .post(c.url("/ofrep/v1/evaluate/flags/checkout"))
            .bearer_auth("rxc_never_verified")
            .json(&json!({"context": {"targetingKey": "u1"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 503);
    });
}
