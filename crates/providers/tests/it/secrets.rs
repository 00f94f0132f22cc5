//! No secret — API key, old token, new token — reaches a `Debug` or `Display` of any
//! result or error, even when the server echoes secrets back in its error bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{STAGING, provider_for, world, world_with_timeout};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use raxx_providers::fake::{FailureMode, Step};
use raxx_providers::{
    ConfigVarTarget, HerokuConfig, HerokuProvider, Secret, TokenProvider, TokenSpec,
};
use serde_json::{Value, json};

fn assert_hides(shown: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!shown.contains(secret), "a secret leaked into: {shown}");
    }
}

#[tokio::test]
async fn results_errors_and_handles_never_print_a_secret() {
    let w = world(&[STAGING]).await;
    let api_key = w.fake.api_key().expose().to_owned();
    let current = w.current.token.expose().to_owned();
    let mut shown = Vec::new();

    let created = TokenProvider::create(&w.provider, &w.spec)
        .await
        .expect("create works");
    let created_token = created.secret.expose().to_owned();
    shown.push(format!("{created:?}"));

    let rotated = w.provider.rotate(&w.spec).await.expect("rotation works");
    let rotated_token = w
        .fake
        .authorization(&rotated.new_authorization_id)
        .expect("exists")
        .token
        .expose()
        .to_owned();
    shown.push(format!("{rotated:?}"));

    for (step, mode) in [
        (Step::Create, FailureMode::Status(500)),
        (Step::Create, FailureMode::WrongShape),
        (Step::Publish, FailureMode::Status(422)),
        (Step::Publish, FailureMode::WrongShape),
    ] {
        w.fake.fail_next(step, mode);
        let failure = w.provider.rotate(&w.spec).await.expect_err("fails");
        shown.push(format!("{failure} {failure:?}"));
    }
    w.fake.fail_next(Step::Revoke, FailureMode::Status(503));
    let error = w
        .provider
        .revoke_previous(&w.current.id)
        .await
        .expect_err("fails");
    shown.push(format!("{error} {error:?}"));

    let wrong_key = provider_for(
        &w.fake,
        Secret::new("wrong-key-0123"),
        Duration::from_secs(5),
    );
    let failure = wrong_key.rotate(&w.spec).await.expect_err("fails");
    shown.push(format!("{failure} {failure:?} {wrong_key:?}"));

    shown.push(format!("{:?}", w.provider));
    shown.push(format!("{:?}", HerokuConfig::new(w.fake.api_key())));
    shown.push(format!("{:?} {:?}", w.fake, w.fake.authorizations()));
    shown.push(format!("{:?}", w.fake.requests()));
    shown.push(format!("{:?}", w.fake.config_vars(STAGING)));

    let all = shown.join("\n");
    assert_hides(
        &all,
        &[
            &api_key,
            &current,
            &created_token,
            &rotated_token,
            "wrong-key-0123",
        ],
    );
    assert!(all.contains("<redacted>"));
}

#[tokio::test]
async fn a_timed_out_publish_prints_no_secret() {
    let w = world_with_timeout(&[STAGING], Duration::from_millis(300)).await;
    w.fake
        .fail_next(Step::Publish, FailureMode::TimeoutAfterApplying);
    let failure = w.provider.rotate(&w.spec).await.expect_err("fails");
    let shown = format!("{failure} {failure:?} {:?}", w.fake.requests());
    assert_hides(
        &shown,
        &[w.fake.api_key().expose(), w.current.token.expose()],
    );
    assert!(
        shown.contains("\"<redacted>\""),
        "the PATCH body is logged redacted: {shown}"
    );
}

const API_KEY: &str = "echo-api-key-3";
const PREVIOUS: &str = "HRKU-previous-value-1";
const NEW: &str = "HRKU-new-token-2";

fn auth(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A careless server: its error messages repeat the request body and the caller's key.
async fn start_echoing_server() -> String {
    let patches = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/apps/{app}/config-vars",
            get(|| async { axum::Json(json!({ "DEPLOY_BOT_KEY": PREVIOUS })) }).patch(
                |State(patches): State<Arc<AtomicUsize>>, headers: HeaderMap, body: String| async move {
                    if patches.fetch_add(1, Ordering::SeqCst) == 0 {
                        let echoed: Value = serde_json::from_str(&body).unwrap_or_default();
                        return (StatusCode::OK, axum::Json(echoed));
                    }
                    let message = format!("could not store {body} for {}", auth(&headers));
                    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"id": "boom", "message": message})))
                },
            ),
        )
        .route(
            "/oauth/authorizations",
            post(|| async {
                (
                    StatusCode::CREATED,
                    axum::Json(json!({"id": "new-auth", "access_token": {"token": NEW}})),
                )
            }),
        )
        .route(
            "/oauth/authorizations/{id}",
            delete(|headers: HeaderMap| async move {
                (StatusCode::INTERNAL_SERVER_ERROR, format!("nope, {} and {NEW}", auth(&headers)))
            }),
        )
        .with_state(patches);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("has an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn secrets_echoed_in_error_bodies_are_scrubbed() {
    let base = start_echoing_server().await;
    let provider = HerokuProvider::new(
        HerokuConfig::new(Secret::new(API_KEY))
            .with_api_url(url::Url::parse(&base).expect("valid")),
    );
    let spec = TokenSpec {
        name: "deploy-bot".into(),
        current_authorization_id: None,
        scope: Some(vec!["global".into()]),
        config_vars: vec![
            ConfigVarTarget::new("a", "DEPLOY_BOT_KEY"),
            ConfigVarTarget::new("b", "DEPLOY_BOT_KEY"),
        ],
    };

    let failure = provider.rotate(&spec).await.expect_err("b's write fails");

    // b's write failed, putting a back failed, deleting the new authorization failed:
    // three messages built from bodies that repeat secrets.
    assert_eq!(failure.error.target, "b");
    assert_eq!(failure.error.left_behind.len(), 1, "{failure}");
    assert!(!failure.changed_nothing());
    let shown = format!("{failure} {failure:?}");
    assert_hides(&shown, &[API_KEY, PREVIOUS, NEW]);
    assert!(
        shown.contains("could not store {\"DEPLOY_BOT_KEY\":\"<redacted>\"} for Bearer <redacted>"),
        "{shown}"
    );
    assert!(
        shown.contains("nope, Bearer <redacted> and <redacted>"),
        "{shown}"
    );
}
