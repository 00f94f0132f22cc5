//! The router called in process (`raxx_testkit::InProcess`, no socket): the same manifest,
//! gate and host binding as a served console, for tests of one answer.

use axum::body::Body;
use axum::http::Request;
use raxx_core::Env;
use raxx_testkit::InProcess;
use serde_json::Value;

#[tokio::test]
async fn an_in_process_console_answers_as_a_served_one() {
    raxx_testkit::each_backend!(|url| {
        let c = InProcess::start(Env::Staging, &url, "").await;
        let health = c.get("/healthz").await;
        assert_eq!(health.status(), 200, "{url}");
        assert_eq!(health.text().await.unwrap(), "ok\n");

        // Signed out: a page sends to the sign-in, the JSON twin says why.
        let home = c.get("/").await;
        assert!(home.status().is_redirection(), "{url}: {}", home.status());
        let to = home.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login"), "{to}");
        let me = c.get("/api/v1/me").await;
        assert_eq!(me.status(), 401, "{url}");
        let body: Value = me.json().await.unwrap();
        assert_eq!(body["error"], "unauthenticated");

        // Another console's host is misdirected, whatever the path.
        let req = Request::get("/login")
            .header("host", "prod.localhost")
            .body(Body::empty())
            .unwrap();
        let other = c.oneshot(req).await;
        assert_eq!(other.status(), 421, "{url}");
        let body: Value = other.json().await.unwrap();
        assert_eq!(body["error"], "misdirected");
    });
}
