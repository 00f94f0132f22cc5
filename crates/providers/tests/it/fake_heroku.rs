//! The fake itself: it checks requests the way Heroku does, fails on command, logs, and
//! stops on a signal. Driven with the raw shared HTTP client, not the provider.

use crate::common;

use std::time::Duration;

use raxx_providers::fake::{FailureMode, FakeHeroku, FakeOptions, Step};
use raxx_providers::http_client;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const ACCEPT_V3: &str = "application/vnd.heroku+json; version=3";

fn call(fake: &FakeHeroku, method: Method, path: &str) -> RequestBuilder {
    http_client(Duration::from_secs(5))
        .request(method, format!("{}{path}", fake.base_url()))
        .header("Accept", ACCEPT_V3)
        .bearer_auth(FakeHeroku::DEFAULT_API_KEY)
}

async fn answer(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the fake answers");
    let status = response.status();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

#[tokio::test]
async fn requests_without_the_version_3_accept_header_are_refused() {
    let fake = FakeHeroku::start().await.expect("starts");
    let client = http_client(Duration::from_secs(5));
    let url = format!("{}/oauth/authorizations", fake.base_url());
    let body = json!({"scope": ["global"]});

    for accept in [
        None,
        Some("application/json"),
        Some("application/vnd.heroku+json"),
    ] {
        let mut request = client
            .post(&url)
            .bearer_auth(FakeHeroku::DEFAULT_API_KEY)
            .json(&body);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        let (status, body) = answer(request).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{accept:?}");
        assert_eq!(body["id"], "not_acceptable", "{accept:?}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("version=3"))
        );
    }
    assert!(fake.authorizations().is_empty(), "nothing was created");

    let (status, _) = answer(call(&fake, Method::POST, "/oauth/authorizations").json(&body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(fake.authorizations().len(), 1);
}

#[tokio::test]
async fn requests_without_the_right_bearer_are_unauthorized() {
    let fake = FakeHeroku::start_with(FakeOptions::default().with_app("a"))
        .await
        .expect("starts");
    let client = http_client(Duration::from_secs(5));
    let url = format!("{}/apps/a/config-vars", fake.base_url());

    let no_auth = client.get(&url).header("Accept", ACCEPT_V3);
    let wrong = client
        .get(&url)
        .header("Accept", ACCEPT_V3)
        .bearer_auth("nope");
    let basic = client
        .get(&url)
        .header("Accept", ACCEPT_V3)
        .basic_auth("", Some(FakeHeroku::DEFAULT_API_KEY));
    for request in [no_auth, wrong, basic] {
        let (status, body) = answer(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"id": "unauthorized", "message": "Invalid credentials provided."})
        );
    }
    let (status, body) = answer(call(&fake, Method::GET, "/apps/a/config-vars")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({}));
}

#[tokio::test]
async fn bodies_of_the_wrong_shape_get_heroku_shaped_errors() {
    let fake = FakeHeroku::start_with(FakeOptions::default().with_app("a"))
        .await
        .expect("starts");

    let cases = [
        (
            Method::POST,
            "/oauth/authorizations",
            Some(json!({"description": "no scope"})),
            422,
            "invalid_params",
        ),
        (
            Method::POST,
            "/oauth/authorizations",
            Some(json!({"scope": ["root"]})),
            422,
            "invalid_params",
        ),
        (
            Method::PATCH,
            "/apps/a/config-vars",
            Some(json!({"X": 5})),
            422,
            "invalid_params",
        ),
        (
            Method::PATCH,
            "/apps/a/config-vars",
            Some(json!(["X"])),
            422,
            "invalid_params",
        ),
        (
            Method::PATCH,
            "/apps/missing/config-vars",
            Some(json!({"X": "1"})),
            404,
            "not_found",
        ),
        (
            Method::DELETE,
            "/oauth/authorizations/missing",
            None,
            404,
            "not_found",
        ),
        (Method::GET, "/no/such/endpoint", None, 404, "not_found"),
    ];
    for (method, path, body, want_status, want_id) in cases {
        let mut request = call(&fake, method.clone(), path);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let (status, answer) = answer(request).await;
        assert_eq!(status.as_u16(), want_status, "{method} {path} {body:?}");
        assert_eq!(answer["id"], want_id, "{method} {path} {body:?}");
        assert!(answer["message"].is_string(), "{answer}");
    }

    // Not JSON, or JSON without the JSON content type: 400.
    let not_json = call(&fake, Method::PATCH, "/apps/a/config-vars")
        .header("Content-Type", "application/json")
        .body("X=1");
    let untyped = call(&fake, Method::PATCH, "/apps/a/config-vars").body(r#"{"X":"1"}"#);
    for request in [not_json, untyped] {
        let (status, answer) = answer(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["id"], "bad_request");
    }
    assert_eq!(
        fake.config_vars("a").expect("exists").len(),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn config_vars_patch_sets_removes_and_answers_the_full_map() {
    let fake = FakeHeroku::start_with(FakeOptions::default().with_app("a"))
        .await
        .expect("starts");
    fake.set_config_var("a", "KEEP", "k");
    fake.set_config_var("a", "DROP", "d");

    let patch = json!({"NEW": "n", "DROP": null});
    let (status, body) =
        answer(call(&fake, Method::PATCH, "/apps/a/config-vars").json(&patch)).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"KEEP": "k", "NEW": "n"}));
    let logged = fake.requests().pop().expect("logged");
    assert_eq!(
        logged.body,
        Some(json!({"NEW": "<redacted>", "DROP": null}))
    );
}

#[tokio::test]
async fn failures_fire_in_order_and_only_for_their_step() {
    let fake = FakeHeroku::start_with(FakeOptions::default().with_app("a"))
        .await
        .expect("starts");
    fake.fail_on(Step::Publish, 1, FailureMode::Status(500));
    fake.fail_next(Step::Publish, FailureMode::GarbageBody);
    let patch = || call(&fake, Method::PATCH, "/apps/a/config-vars").json(&json!({"X": "1"}));

    // A read and a create are not the publish step; an invalid request does not count.
    assert_eq!(
        call(&fake, Method::GET, "/apps/a/config-vars")
            .send()
            .await
            .expect("ok")
            .status(),
        200
    );
    let invalid = call(&fake, Method::PATCH, "/apps/a/config-vars").json(&json!({"X": 1}));
    assert_eq!(invalid.send().await.expect("ok").status(), 422);

    let first = patch().send().await.expect("answers");
    assert_eq!(first.status(), 200);
    let second = patch().send().await.expect("answers");
    assert_eq!(second.status(), 500);
    let third = patch().send().await.expect("answers");
    assert_eq!(third.status(), 200);
    assert!(third.json::<Value>().await.is_err(), "garbage body");
    assert_eq!(fake.pending_failures(), 0);
    assert_eq!(patch().send().await.expect("answers").status(), 200);

    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 422, 200, 500, 200, 200]);
}

#[tokio::test]
async fn a_timeout_failure_holds_the_answer_until_the_client_gives_up() {
    let fake = FakeHeroku::start_with(FakeOptions::default().with_hang(Duration::from_secs(10)))
        .await
        .expect("starts");
    fake.fail_next(Step::Create, FailureMode::Timeout);
    let request = http_client(Duration::from_millis(300))
        .post(format!("{}/oauth/authorizations", fake.base_url()))
        .header("Accept", ACCEPT_V3)
        .bearer_auth(FakeHeroku::DEFAULT_API_KEY)
        .json(&json!({"scope": ["global"]}));

    let error = request.send().await.expect_err("no answer in time");

    assert!(error.is_timeout(), "{error}");
    assert!(fake.authorizations().is_empty(), "nothing was created");
    assert_eq!(fake.requests()[0].status, 504);
    // Shutting down does not wait for the held answer.
    tokio::time::timeout(Duration::from_secs(5), fake.shutdown())
        .await
        .expect("shutdown does not hang")
        .expect("clean stop");
}

#[tokio::test]
async fn the_fake_runs_until_its_shutdown_signal() {
    let fake = FakeHeroku::start().await.expect("starts");
    let base = fake.base_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fake.run_until(async move {
        let _ = stopped.await;
    }));

    let client = http_client(Duration::from_secs(5));
    let list = || {
        client
            .get(format!("{base}/oauth/authorizations"))
            .header("Accept", ACCEPT_V3)
            .bearer_auth(FakeHeroku::DEFAULT_API_KEY)
            .send()
    };
    assert_eq!(list().await.expect("serving").status(), 200);

    stop.send(()).expect("server waits for the signal");
    server.await.expect("task joins").expect("clean stop");
    let fresh = http_client(Duration::from_secs(2));
    let after = fresh
        .get(format!("{base}/oauth/authorizations"))
        .header("Accept", ACCEPT_V3)
        .send()
        .await;
    assert!(after.is_err(), "nothing listens any more");
}

#[tokio::test]
async fn the_shared_client_resolves_localhost_names_to_loopback() {
    let fake = FakeHeroku::start().await.expect("starts");
    let port = fake.addr().port();
    let client = http_client(Duration::from_secs(5));

    for host in ["heroku.localhost", "api.heroku.localhost", "localhost"] {
        let response = client
            .get(format!("http://{host}:{port}/oauth/authorizations"))
            .header("Accept", ACCEPT_V3)
            .bearer_auth(FakeHeroku::DEFAULT_API_KEY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{host} resolves: {e}"));
        assert_eq!(response.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn the_provider_reaches_a_fake_named_under_localhost() {
    let w = common::world(&[common::STAGING]).await;
    let url = url::Url::parse(&format!(
        "http://api.heroku.localhost:{}/",
        w.fake.addr().port()
    ))
    .expect("valid URL");
    let provider = raxx_providers::HerokuProvider::new(
        raxx_providers::HerokuConfig::new(w.fake.api_key()).with_api_url(url),
    );
    let rotated = provider.rotate(&w.spec).await.expect("rotation succeeds");
    assert!(
        w.fake
            .authorization(&rotated.new_authorization_id)
            .is_some()
    );
}
