//! The Heroku provider against the local fake: the happy rotation, a failure at every
//! step, and what each failure leaves behind (SPEC §8: fail secure).

use std::time::{Duration, Instant};

use crate::common::{
    STAGING, VAR, WORKER, calls, provider_for, snapshot, world, world_with_timeout,
};
use raxx_providers::fake::{FailureMode, Step};
use raxx_providers::{Compensation, ErrorKind, Revocation, Secret, TokenProvider, TokenSpec};

#[tokio::test]
async fn happy_rotation_publishes_everywhere_and_keeps_the_previous_until_revoked() {
    let w = world(&[STAGING, WORKER]).await;

    let rotated = w.provider.rotate(&w.spec).await.expect("rotation succeeds");

    let new = w
        .fake
        .authorization(&rotated.new_authorization_id)
        .expect("the new authorization exists");
    assert_ne!(new.id, w.current.id);
    assert_eq!(
        new.scope,
        vec!["write-protected"],
        "same scope as the current one"
    );
    assert!(
        new.description
            .as_deref()
            .is_some_and(|d| d.contains("deploy-bot"))
    );
    for app in [STAGING, WORKER] {
        let value = w.fake.config_var(app, VAR).expect("var is set");
        assert_eq!(
            value.expose(),
            new.token.expose(),
            "{app} holds the new token"
        );
        assert_eq!(
            w.fake.config_var(app, "UNRELATED").expect("kept").expose(),
            "keep-me"
        );
    }
    assert_eq!(
        rotated.previous_authorization_id.as_deref(),
        Some(w.current.id.as_str())
    );
    assert_eq!(rotated.published_to, w.spec.config_vars);

    // Grace period: the previous authorization and its token still work.
    assert!(w.fake.authorization(&w.current.id).is_some());
    let old_key = provider_for(&w.fake, w.current.token.clone(), Duration::from_secs(5));
    assert!(
        old_key
            .revoke_previous("no-such-authorization")
            .await
            .is_ok(),
        "old token still authenticates"
    );

    let revoked = w
        .provider
        .revoke_previous(&w.current.id)
        .await
        .expect("revoke succeeds");
    assert_eq!(revoked, Revocation::Deleted);
    assert!(
        w.fake.authorization(&w.current.id).is_none(),
        "previous one is gone"
    );
    assert!(
        w.fake
            .authorization(&rotated.new_authorization_id)
            .is_some()
    );
    let after = old_key
        .revoke_previous("no-such-authorization")
        .await
        .expect_err("old token is dead");
    assert_eq!(after.status(), Some(401));

    let again = w
        .provider
        .revoke_previous(&w.current.id)
        .await
        .expect("retry is safe");
    assert_eq!(again, Revocation::AlreadyGone);
}

#[tokio::test]
async fn the_create_request_copies_the_scope_and_names_the_token() {
    let w = world(&[STAGING]).await;
    w.provider.rotate(&w.spec).await.expect("rotation succeeds");

    let requests = w.fake.requests();
    let info = format!("/oauth/authorizations/{}", w.current.id);
    assert!(
        requests.iter().any(|r| r.method == "GET" && r.path == info),
        "read the current scope"
    );
    let create = requests
        .iter()
        .find(|r| r.method == "POST" && r.path == "/oauth/authorizations")
        .expect("a create request");
    let body = create.body.as_ref().expect("a JSON body");
    assert_eq!(body["scope"], serde_json::json!(["write-protected"]));
    assert!(
        body["description"]
            .as_str()
            .is_some_and(|d| d.contains("deploy-bot")),
        "{body}"
    );
    assert_eq!(
        create.accept.as_deref(),
        Some("application/vnd.heroku+json; version=3")
    );
}

#[tokio::test]
async fn an_explicit_scope_is_used_without_reading_the_current_authorization() {
    let w = world(&[STAGING]).await;
    let spec = TokenSpec {
        scope: Some(vec!["read".into(), "write".into()]),
        ..w.spec.clone()
    };
    let rotated = w.provider.rotate(&spec).await.expect("rotation succeeds");
    let new = w
        .fake
        .authorization(&rotated.new_authorization_id)
        .expect("exists");
    assert_eq!(new.scope, vec!["read", "write"]);
    assert!(
        !w.fake
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.starts_with("/oauth"))
    );
}

#[tokio::test]
async fn failure_at_create_changes_nothing() {
    let w = world(&[STAGING, WORKER]).await;
    let before = snapshot(&w.fake, &[STAGING, WORKER]);
    w.fake.fail_next(Step::Create, FailureMode::Status(500));

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    assert_eq!(failure.step(), Step::Create);
    assert!(matches!(failure.compensation, Compensation::NothingToUndo));
    assert!(failure.changed_nothing());
    assert_eq!(snapshot(&w.fake, &[STAGING, WORKER]), before);
    let shown = failure.to_string();
    assert!(
        shown.contains("step 1 (create a new authorization for deploy-bot): Heroku answered 500"),
        "{shown}"
    );
    assert!(shown.contains("Nothing was changed"), "{shown}");
}

#[tokio::test]
async fn failure_at_publish_deletes_the_new_authorization_and_leaves_the_rest() {
    let w = world(&[STAGING]).await;
    let before = snapshot(&w.fake, &[STAGING]);
    w.fake.fail_next(Step::Publish, FailureMode::Status(422));

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    assert_eq!(failure.step(), Step::Publish);
    let Compensation::NewAuthorizationDeleted { authorization_id } = &failure.compensation else {
        panic!(
            "expected the new authorization deleted, got {:?}",
            failure.compensation
        );
    };
    assert!(w.fake.authorization(authorization_id).is_none());
    assert!(
        w.fake.authorization(&w.current.id).is_some(),
        "old authorization untouched"
    );
    assert_eq!(
        snapshot(&w.fake, &[STAGING]),
        before,
        "config vars unchanged"
    );
    assert!(failure.changed_nothing());
    let shown = failure.to_string();
    assert!(
        shown.contains("step 2 (write config vars to raxx-api-staging): Heroku answered 422"),
        "{shown}"
    );
    assert!(shown.contains("(invalid_params)"), "{shown}");
}

#[tokio::test]
async fn failure_on_the_second_app_puts_the_first_app_back() {
    let w = world(&[STAGING, WORKER]).await;
    let before = snapshot(&w.fake, &[STAGING, WORKER]);
    w.fake.fail_on(Step::Publish, 1, FailureMode::Status(503));

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    assert_eq!(failure.error.target, WORKER);
    assert_eq!(failure.error.status(), Some(503));
    assert_eq!(
        snapshot(&w.fake, &[STAGING, WORKER]),
        before,
        "first app restored"
    );
    assert!(failure.changed_nothing(), "{failure}");
    let patches: Vec<_> = calls(&w.fake)
        .into_iter()
        .filter(|(method, ..)| method == "PATCH")
        .collect();
    let staging = format!("/apps/{STAGING}/config-vars");
    let worker = format!("/apps/{WORKER}/config-vars");
    assert_eq!(
        patches,
        vec![
            ("PATCH".into(), staging.clone(), 200),
            ("PATCH".into(), worker, 503),
            ("PATCH".into(), staging, 200),
        ]
    );
}

#[tokio::test]
async fn a_publish_that_timed_out_after_applying_is_undone() {
    let w = world_with_timeout(&[STAGING], Duration::from_millis(400)).await;
    let before = snapshot(&w.fake, &[STAGING]);
    w.fake
        .fail_next(Step::Publish, FailureMode::TimeoutAfterApplying);

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    assert_eq!(failure.step(), Step::Publish);
    assert_eq!(failure.error.kind, ErrorKind::Timeout);
    assert_eq!(
        snapshot(&w.fake, &[STAGING]),
        before,
        "written value put back, new one deleted"
    );
    assert!(
        failure.to_string().contains("no answer from Heroku"),
        "{failure}"
    );
}

#[tokio::test]
async fn a_wrong_shaped_publish_answer_is_undone() {
    let w = world(&[STAGING]).await;
    let before = snapshot(&w.fake, &[STAGING]);
    w.fake.fail_next(Step::Publish, FailureMode::WrongShape);

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    assert!(
        matches!(failure.error.kind, ErrorKind::BadResponse(_)),
        "{failure:?}"
    );
    assert_eq!(snapshot(&w.fake, &[STAGING]), before);
}

#[tokio::test]
async fn a_config_var_that_cannot_be_put_back_is_reported_as_left_behind() {
    let w = world(&[STAGING, WORKER]).await;
    w.fake.fail_on(Step::Publish, 1, FailureMode::Status(500)); // the worker's write
    w.fake.fail_next(Step::Publish, FailureMode::Status(500)); // putting staging back

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    assert!(!failure.changed_nothing());
    assert_eq!(failure.error.left_behind.len(), 1, "{failure}");
    let shown = failure.to_string();
    assert!(
        shown.contains("left behind: raxx-api-staging DEPLOY_BOT_KEY may still hold the new token"),
        "{shown}"
    );
    assert!(!shown.contains("Nothing was changed"), "{shown}");
    assert_eq!(w.fake.pending_failures(), 0);
}

#[tokio::test]
async fn a_new_authorization_that_cannot_be_deleted_is_reported() {
    let w = world(&[STAGING]).await;
    w.fake.fail_next(Step::Publish, FailureMode::Status(500));
    w.fake.fail_next(Step::Revoke, FailureMode::Status(503));

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    let Compensation::NewAuthorizationKept {
        authorization_id,
        error,
    } = &failure.compensation
    else {
        panic!(
            "expected the new authorization kept, got {:?}",
            failure.compensation
        );
    };
    assert_eq!(error.step, Step::Revoke);
    assert!(w.fake.authorization(authorization_id).is_some());
    assert!(!failure.changed_nothing());
    let shown = failure.to_string();
    assert!(shown.contains("could NOT be deleted again"), "{shown}");
    assert!(shown.contains("delete it by hand"), "{shown}");
}

#[tokio::test]
async fn failure_at_revoke_previous_is_step_3_and_can_be_retried() {
    let w = world(&[STAGING]).await;
    w.provider.rotate(&w.spec).await.expect("rotation succeeds");
    w.fake.fail_next(Step::Revoke, FailureMode::Status(503));

    let error = w
        .provider
        .revoke_previous(&w.current.id)
        .await
        .expect_err("revoke fails");

    assert_eq!(error.step, Step::Revoke);
    assert_eq!(error.step.number(), 3);
    assert_eq!(error.status(), Some(503));
    let want = format!(
        "step 3 (delete authorization {}): Heroku answered 503",
        w.current.id
    );
    assert!(error.to_string().starts_with(&want), "{error}");
    assert!(w.fake.authorization(&w.current.id).is_some(), "still there");

    assert_eq!(
        w.provider
            .revoke_previous(&w.current.id)
            .await
            .expect("retry"),
        Revocation::Deleted
    );
}

#[tokio::test]
async fn a_create_that_times_out_is_a_timeout_that_says_what_to_check() {
    let w = world_with_timeout(&[STAGING], Duration::from_millis(300)).await;
    let before = snapshot(&w.fake, &[STAGING]);
    w.fake.fail_next(Step::Create, FailureMode::Timeout);

    let started = Instant::now();
    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up at the timeout"
    );
    assert_eq!(failure.step(), Step::Create);
    assert_eq!(failure.error.kind, ErrorKind::Timeout);
    assert_eq!(snapshot(&w.fake, &[STAGING]), before);
    let shown = failure.to_string();
    assert!(
        shown.contains("no answer from Heroku before the request timeout"),
        "{shown}"
    );
    assert!(
        shown.contains("may have created an authorization described"),
        "{shown}"
    );
}

#[tokio::test]
async fn error_statuses_keep_herokus_message_and_id() {
    for (status, id) in [
        (400, "bad_request"),
        (403, "forbidden"),
        (404, "not_found"),
        (429, "rate_limit"),
        (500, "internal_server_error"),
        (503, "service_unavailable"),
    ] {
        let w = world(&[STAGING]).await;
        w.fake.fail_next(Step::Create, FailureMode::Status(status));
        let failure = w
            .provider
            .rotate(&w.spec)
            .await
            .expect_err("rotation fails");
        let ErrorKind::Http {
            status: got,
            message,
        } = &failure.error.kind
        else {
            panic!(
                "{status}: expected an HTTP error, got {:?}",
                failure.error.kind
            );
        };
        assert_eq!(*got, status);
        assert!(message.ends_with(&format!("({id})")), "{status}: {message}");
        assert!(failure.changed_nothing());
    }
}

#[tokio::test]
async fn a_create_answer_that_is_not_json_is_a_bad_response() {
    let w = world(&[STAGING]).await;
    let before = snapshot(&w.fake, &[STAGING]);
    w.fake.fail_next(Step::Create, FailureMode::GarbageBody);

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    let ErrorKind::BadResponse(why) = &failure.error.kind else {
        panic!("expected BadResponse, got {:?}", failure.error.kind);
    };
    assert!(why.contains("not JSON"), "{why}");
    assert_eq!(snapshot(&w.fake, &[STAGING]), before);
}

#[tokio::test]
async fn a_create_answer_without_a_token_is_a_bad_response_and_is_deleted() {
    let w = world(&[STAGING]).await;
    let before = snapshot(&w.fake, &[STAGING]);
    w.fake.fail_next(Step::Create, FailureMode::WrongShape);

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    let ErrorKind::BadResponse(why) = &failure.error.kind else {
        panic!("expected BadResponse, got {:?}", failure.error.kind);
    };
    assert!(why.contains("access_token.token"), "{why}");
    assert_eq!(
        snapshot(&w.fake, &[STAGING]),
        before,
        "the tokenless authorization was deleted"
    );
    assert!(
        calls(&w.fake)
            .iter()
            .any(|(method, _, status)| method == "DELETE" && *status == 200)
    );
}

#[tokio::test]
async fn a_wrong_api_key_is_a_clear_401() {
    let w = world(&[STAGING]).await;
    let provider = provider_for(
        &w.fake,
        Secret::new("wrong-key-0123"),
        Duration::from_secs(5),
    );

    let failure = provider.rotate(&w.spec).await.expect_err("rotation fails");

    assert_eq!(failure.step(), Step::Create);
    assert_eq!(failure.error.status(), Some(401));
    let shown = failure.to_string();
    assert!(
        shown.contains("Heroku answered 401: the API key was rejected"),
        "{shown}"
    );
    assert!(
        shown.contains("Invalid credentials provided. (unauthorized)"),
        "{shown}"
    );
    assert!(!format!("{shown} {failure:?}").contains("wrong-key-0123"));
}

#[tokio::test]
async fn an_unknown_app_is_a_step_2_not_found() {
    let w = world(&[STAGING]).await;
    let before = snapshot(&w.fake, &[STAGING]);
    let mut spec = w.spec.clone();
    spec.config_vars
        .push(raxx_providers::ConfigVarTarget::new("raxx-api-typo", VAR));

    let failure = w.provider.rotate(&spec).await.expect_err("rotation fails");

    assert_eq!(failure.step(), Step::Publish);
    assert_eq!(failure.error.target, "raxx-api-typo");
    assert!(
        failure
            .to_string()
            .contains("Couldn't find that app. (not_found)"),
        "{failure}"
    );
    assert_eq!(
        snapshot(&w.fake, &[STAGING]),
        before,
        "checked before anything was written"
    );
}

#[tokio::test]
async fn a_token_without_config_vars_is_refused_before_anything_is_created() {
    let w = world(&[STAGING]).await;
    let spec = TokenSpec {
        config_vars: Vec::new(),
        ..w.spec.clone()
    };
    let failure = w.provider.rotate(&spec).await.expect_err("rotation fails");
    assert_eq!(failure.step(), Step::Create);
    assert!(
        matches!(failure.error.kind, ErrorKind::Config(_)),
        "{failure:?}"
    );
    assert!(w.fake.requests().is_empty(), "no request was made");
}

#[tokio::test]
async fn an_unreachable_api_is_a_network_error() {
    let w = world(&[STAGING]).await;
    let addr = w.fake.addr();
    w.fake.shutdown().await.expect("fake stops");

    let failure = w
        .provider
        .rotate(&w.spec)
        .await
        .expect_err("rotation fails");

    let ErrorKind::Network(why) = &failure.error.kind else {
        panic!("expected Network, got {:?}", failure.error.kind);
    };
    assert!(
        why.contains(&addr.to_string()) || why.contains("onnect"),
        "{why}"
    );
    assert!(
        failure.to_string().contains("could not reach Heroku"),
        "{failure}"
    );
}

#[tokio::test]
async fn the_provider_works_as_a_dyn_token_provider() {
    let w = world(&[STAGING]).await;
    let provider: &dyn TokenProvider = &w.provider;
    assert_eq!(provider.name(), "Heroku");
    let rotated = raxx_providers::rotate(provider, &w.spec)
        .await
        .expect("rotation succeeds");
    assert!(
        w.fake
            .authorization(&rotated.new_authorization_id)
            .is_some()
    );
}
