//! The write gate as a matrix: every route in the manifest × every kind of caller × both
//! envs, over real HTTP, on SQLite and PostgreSQL. The expected cell comes from the rules
//! written out below (SPEC §4–§5), not from the gate's own code. Every denied cell of a
//! signed-in caller (an operator's session, an accepted app key) must leave exactly one
//! `denied` audit row; every denied cell of an anonymous caller must leave no chained row
//! and add exactly one to the aggregated anonymous count (SPEC §6, issue 19 item 9).

use std::collections::BTreeMap;

use proptest::prelude::*;
use raxx_core::Env;
use raxx_core::audit::{AuditEvent, Outcome};
use raxx_core::gate::{Access, Class, Csrf, GateInput, KeyKind, Principal, decide};
use raxx_core::rbac::{EffectiveRoles, EnvScope, Grant, Level, Resource, Role};
use raxx_testkit::TestConsole;
use raxx_web::kernel::route::Route;
use raxx_web::kernel::route::Surface;
use raxx_web::manifest::route_manifest;
use reqwest::header::{HeaderMap, HeaderValue};

/// SPEC §4's seeded grants, written out independently of the migration.
fn seeded(group: &str, env: Env) -> Vec<(Resource, Level)> {
    use Level::*;
    use Resource::*;
    match (group, env) {
        ("staging-admins", Env::Staging) => vec![
            (Flag, Reader),
            (Token, User),
            (Audit, User),
            (Customer, Reader),
            (Job, User),
        ],
        ("production-admins", Env::Prod) => vec![
            (Flag, Admin),
            (Token, Admin),
            (Audit, User),
            (Invite, Admin),
            (Customer, Admin),
            (Session, Admin),
            (Job, Admin),
        ],
        _ => vec![],
    }
}

#[derive(Clone, Debug)]
enum Caller {
    Nobody,
    Group(&'static str),
    NoGroup,
    OtherEnvSession,
    Key(KeyKind),
}

const CALLERS: [Caller; 8] = [
    Caller::Nobody,
    Caller::Group("staging-admins"),
    Caller::Group("production-admins"),
    Caller::NoGroup,
    Caller::OtherEnvSession,
    Caller::Key(KeyKind::Client),
    Caller::Key(KeyKind::Deploy),
    Caller::Key(KeyKind::Read),
];

/// What the rules say a cell must be: `allowed`, `unauthenticated`, `env_mismatch`,
/// `forbidden`, or `own_or_forbidden` (the handler decides by ownership; a stranger's
/// object is refused or not found).
fn expected(route: &Route, caller: &Caller, env: Env) -> &'static str {
    // A confirmation page (`GET /tokens/{id}/rotate`) is as open as the write it confirms.
    let route = route.decided_as();
    if route.access == Access::Public {
        // The gate lets everyone through; the handler judges its own token or body.
        return "public";
    }
    let key_kind = match route.access {
        Access::Key(k) | Access::RoleOrKey(_, k) => Some(k),
        _ => None,
    };
    let roles = match caller {
        Caller::Nobody | Caller::OtherEnvSession => return "unauthenticated",
        Caller::Key(kind) => {
            return match key_kind {
                None => "unauthenticated",
                Some(k) if k != *kind => "forbidden",
                Some(_) if route.class.is_write() && !env_allows(route, env) => "env_mismatch",
                Some(_) => "allowed",
            };
        }
        Caller::Group(g) => seeded(g, env),
        Caller::NoGroup => vec![],
    };
    if matches!(route.access, Access::Key(_)) {
        return "unauthenticated";
    }
    if route.class.is_write() && !env_allows(route, env) {
        return "env_mismatch";
    }
    let has = |r: Resource, l: Level| roles.iter().any(|&(rr, ll)| rr == r && ll >= l);
    let (resource, level) = match (route.access, route.class) {
        (Access::SignedIn, _) => return "allowed",
        (Access::RoleAt(r, l), _) => (r, l),
        (Access::Role(r) | Access::RoleOrKey(r, _) | Access::OwnOrRole(r), Class::Read) => {
            (r, Level::Reader)
        }
        (Access::Role(r) | Access::RoleOrKey(r, _) | Access::OwnOrRole(r), _) => (
            r,
            if env == Env::Prod {
                Level::Admin
            } else {
                Level::User
            },
        ),
        _ => unreachable!("covered above"),
    };
    match (has(resource, level), route.access) {
        (true, _) => "allowed",
        (false, Access::OwnOrRole(_)) => "own_or_forbidden",
        (false, _) => "forbidden",
    }
}

fn env_allows(route: &Route, env: Env) -> bool {
    match route.class {
        Class::ProdWrite => env == Env::Prod,
        _ => route.only_env.is_none_or(|e| e == env),
    }
}

fn concrete_path(route: &Route, app: &str) -> String {
    route
        .path
        .split('/')
        .map(|seg| match seg {
            "{app}" => app.to_string(),
            "{file}" => "app.css".to_string(),
            "{token}" => "rxl_not_a_real_token".to_string(),
            s if s.starts_with('{') => "999999".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn observed(status: u16, location: Option<&str>, body: &str, route: &Route) -> String {
    match status {
        401 => "unauthenticated".into(),
        // The gate sends a signed-out browser from a page to the sign-in page.
        303 | 302
            if location.is_some_and(|l| l == "/login" || l.starts_with("/login?next="))
                && route.surface() == Surface::Page
                && route.method == reqwest::Method::GET =>
        {
            "unauthenticated".into()
        }
        403 => {
            for code in ["env_mismatch", "forbidden", "csrf", "unauthenticated"] {
                let json = format!("\"error\":\"{code}\"");
                let html = format!("<code>{code}</code>");
                if body.contains(&json) || body.contains(&html) {
                    return code.into();
                }
            }
            // A 403 the handler chose for its own reason (e.g. self_approval): the gate let it through.
            "allowed".into()
        }
        _ => "allowed".into(),
    }
}

async fn console_for(env: Env, url: &str) -> TestConsole {
    let extra = match env {
        Env::Staging => "[[apps]]\nname = \"raxx-api-staging\"\nenv = \"staging\"\n",
        Env::Prod => {
            "[[apps]]\nname = \"raxx-api-prod\"\nenv = \"prod\"\npromote_from = \"raxx-api-staging\"\n"
        }
    };
    TestConsole::start(env, url, extra).await
}

/// Denied chained rows of single requests, and the anonymous denials counted (pending
/// or already flushed into summary rows when an interval ended mid-test).
async fn denials(c: &TestConsole) -> (usize, i64) {
    let q = raxx_store::audit::AuditQuery {
        outcome: Some(Outcome::Denied),
        limit: 500,
        ..Default::default()
    };
    let (mut single, mut anon) = (0, c.store().anon_denials_pending().await.expect("anon"));
    let mut q = q;
    loop {
        let page = c.store().audit_page(&q).await.expect("audit page");
        for r in &page {
            if r.event.context["aggregated"] == true {
                anon += r.event.context["count"].as_i64().unwrap_or(0);
            } else {
                single += 1;
            }
        }
        match page.last() {
            Some(last) if page.len() == 500 => q.before = Some(last.id),
            _ => return (single, anon),
        }
    }
}

/// Whether the gate sees no principal at all for this caller on this route: no session
/// valid on this console, and no key the route accepts.
fn anonymous_at_the_gate(route: &Route, caller: &Caller) -> bool {
    match caller {
        Caller::Nobody | Caller::OtherEnvSession => true,
        Caller::Key(_) => !matches!(route.access, Access::Key(_) | Access::RoleOrKey(..)),
        Caller::Group(_) | Caller::NoGroup => false,
    }
}

#[tokio::test]
async fn every_route_by_every_caller_on_both_envs() {
    let mut cells = 0;
    raxx_testkit::each_backend!(|url| {
        for env in Env::ALL {
            let db = if env == Env::Staging {
                url.clone()
            } else {
                other_db(&url).await
            };
            let c = console_for(env, &db).await;
            let app = if env == Env::Staging {
                "raxx-api-staging"
            } else {
                "raxx-api-prod"
            };
            let mut keys = BTreeMap::new();
            let mut tx = c.store().begin().await.unwrap();
            for kind in KeyKind::ALL {
                let (secret, _) = tx
                    .create_app_key(app, kind, "matrix", "test")
                    .await
                    .unwrap();
                keys.insert(kind.as_str(), secret);
            }
            tx.record(AuditEvent::new("test", "key.create", Outcome::Allowed))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let mut failures = Vec::new();
            for route in route_manifest() {
                for caller in CALLERS {
                    let want = expected(route, &caller, env);
                    let mut headers = HeaderMap::new();
                    let mut csrf = String::new();
                    match &caller {
                        Caller::Nobody => {}
                        Caller::Group(g) => {
                            let op = c.operator(&format!("{g}-{cells}@raxx.test"), &[g]).await;
                            headers = c.write_headers(&op);
                            csrf = op.csrf;
                        }
                        Caller::NoGroup => {
                            let op = c.operator(&format!("nogroup-{cells}@raxx.test"), &[]).await;
                            headers = c.write_headers(&op);
                            csrf = op.csrf;
                        }
                        Caller::OtherEnvSession => {
                            let mut tx = c.store().begin().await.unwrap();
                            let a = tx
                                .create_admin(&format!("other-{cells}@raxx.test"), "o")
                                .await
                                .unwrap();
                            let (token, s) = tx
                                .create_session(a.id, env.other(), c.state.policy, None, None)
                                .await
                                .unwrap();
                            tx.add_member(env.other().admin_group(), &a.email, "test")
                                .await
                                .unwrap();
                            tx.record(AuditEvent::new("test", "auth.login", Outcome::Allowed))
                                .await
                                .unwrap();
                            tx.commit().await.unwrap();
                            headers.insert(
                                "cookie",
                                HeaderValue::from_str(&format!(
                                    "{}={token}",
                                    c.state.cfg.cookie_name()
                                ))
                                .unwrap(),
                            );
                            headers.insert(
                                "x-csrf-token",
                                HeaderValue::from_str(&s.csrf_token).unwrap(),
                            );
                            headers.insert(
                                "x-console-env",
                                HeaderValue::from_static(env.other().as_str()),
                            );
                        }
                        Caller::Key(kind) => {
                            headers.insert(
                                "authorization",
                                HeaderValue::from_str(&format!("Bearer {}", keys[kind.as_str()]))
                                    .unwrap(),
                            );
                        }
                    }
                    cells += 1;
                    let (before, anon_before) = denials(&c).await;
                    let path = concrete_path(route, app);
                    let mut req = c
                        .client()
                        .request(route.method.clone(), c.url(&path))
                        .headers(headers);
                    if route.class.is_write() {
                        req = if route.surface() == Surface::Page {
                            req.header("content-type", "application/x-www-form-urlencoded")
                                .body(format!("_csrf={csrf}&_target_env={env}&reason=matrix"))
                        } else {
                            req.header("content-type", "application/json").body("{}")
                        };
                    }
                    let resp = req.send().await.unwrap();
                    let status = resp.status().as_u16();
                    let location = resp
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let body = resp.text().await.unwrap_or_default();
                    let got = observed(status, location.as_deref(), &body, route);
                    let ok = match want {
                        "own_or_forbidden" => got == "forbidden" || status == 404,
                        "public" => got != "csrf" && got != "env_mismatch",
                        w => got == w,
                    };
                    let (after, anon_after) = denials(&c).await;
                    let anonymous = anonymous_at_the_gate(route, &caller);
                    let audited = match got.as_str() {
                        "allowed" => true,
                        _ if want == "public" => true,
                        _ if want == "own_or_forbidden" && status == 404 => true,
                        // Anonymous: aggregated, never a chained row of its own.
                        _ if anonymous => after == before && anon_after == anon_before + 1,
                        _ => after == before + 1 && anon_after == anon_before,
                    };
                    if !ok || !audited {
                        failures.push(format!(
                            "{env} {caller:?} {} {path}: want {want}, got {got} (status {status}), denied rows {before}->{after}, anonymous count {anon_before}->{anon_after}",
                            route.method
                        ));
                    }
                }
            }
            assert!(
                failures.is_empty(),
                "{} cells wrong:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
    });
    assert!(cells > 0);
}

async fn other_db(url: &str) -> String {
    if url.starts_with("sqlite") {
        raxx_testkit::sqlite_url()
    } else {
        raxx_testkit::postgres_url().await.expect("postgres")
    }
}

#[tokio::test]
async fn a_tampered_target_env_is_refused_and_audited() {
    raxx_testkit::each_backend!(|url| {
        let c = console_for(Env::Prod, &url).await;
        let op = c.operator("lead@raxx.test", &["production-admins"]).await;
        let form = format!(
            "_csrf={}&_target_env=staging&email=x%40raxx.test&group=production-admins",
            op.csrf
        );
        let resp = c
            .client()
            .post(c.url("/invites"))
            .header("cookie", &op.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        let html = resp.text().await.unwrap();
        assert!(html.contains("Wrong environment"), "a readable page");
        assert!(html.contains("prepared for staging"), "{html}");
        assert_eq!(c.audit_count("invite.create", "denied").await, 1);
        assert_eq!(c.audit_count("invite.create", "allowed").await, 0);
        // A missing CSRF token and a cross-site origin are refused too.
        for (headers, why) in [
            (vec![("x-console-env", "prod")], "missing token"),
            (
                vec![
                    ("x-console-env", "prod"),
                    ("x-csrf-token", op.csrf.as_str()),
                    ("origin", "http://evil.test"),
                ],
                "cross-site",
            ),
            (
                vec![
                    ("x-console-env", "prod"),
                    ("x-csrf-token", op.csrf.as_str()),
                    ("sec-fetch-site", "same-site"),
                ],
                "sibling console",
            ),
        ] {
            let mut req = c
                .client()
                .post(c.url("/api/v1/invites"))
                .header("cookie", &op.cookie)
                .json(&serde_json::json!({"email": "y@raxx.test", "group": "production-admins"}));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 403, "{why}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "csrf", "{why}");
        }
    });
}

#[tokio::test]
async fn a_form_rendered_before_a_grant_was_removed_is_refused() {
    raxx_testkit::each_backend!(|url| {
        let c = console_for(Env::Prod, &url).await;
        let op = c.operator("lead@raxx.test", &["production-admins"]).await;
        let page = c
            .client()
            .get(c.url("/invites"))
            .headers(c.read_headers(&op))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("action=\"/invites\""),
            "the form renders while the grant holds"
        );
        let mut tx = c.store().begin().await.unwrap();
        tx.remove_member("production-admins", "lead@raxx.test")
            .await
            .unwrap();
        tx.record(AuditEvent::new(
            "test",
            "rbac.member.remove",
            Outcome::Allowed,
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let form = format!(
            "_csrf={}&_target_env=prod&email=x%40raxx.test&group=production-admins",
            op.csrf
        );
        let resp = c
            .client()
            .post(c.url("/invites"))
            .header("cookie", &op.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("console-invite-admin"),
            "names the missing role"
        );
    });
}

fn any_role() -> impl Strategy<Value = Role> {
    (0..Resource::ALL.len(), 0..Level::ALL.len())
        .prop_map(|(r, l)| Role::new(Resource::ALL[r], Level::ALL[l]))
}

proptest! {
    /// Random grants × random manifest routes: the gate never allows a write on a console
    /// whose env the grant does not cover, nor below the level the env requires.
    #[test]
    fn no_manifest_write_is_allowed_with_the_wrong_env_or_level(
        route_ix in 0..route_manifest().len(),
        active in prop_oneof![Just(Env::Staging), Just(Env::Prod)],
        claimed in prop_oneof![Just(Env::Staging), Just(Env::Prod)],
        grants in proptest::collection::vec((any_role(), prop_oneof![Just(EnvScope::Staging), Just(EnvScope::Prod), Just(EnvScope::Any)]), 0..10),
    ) {
        let route = &route_manifest()[route_ix];
        let grants: Vec<Grant> = grants.into_iter().map(|(role, env_scope)| Grant { group: "g".into(), role, env_scope }).collect();
        let p = Principal::Operator { session_env: active, roles: EffectiveRoles::from_grants(active, &grants) };
        let input = GateInput {
            active_env: active, class: route.class, access: route.access, only_env: route.only_env,
            principal: &p, csrf: Csrf::Valid, claimed_env: Some(claimed), target_env: None, target_app: None, own_object: false,
        };
        if route.class.is_write() && route.access != Access::Public && decide(&input).is_ok() {
            prop_assert_eq!(claimed, active);
            prop_assert!(env_allows(route, active));
            if let Some(r) = route.resource() {
                let need = if active == Env::Prod { Level::Admin } else { Level::User };
                prop_assert!(grants.iter().any(|g| g.env_scope.covers(active) && g.role.resource == r && g.role.level >= need), "{:?}", route);
            }
        }
    }
}

/// The denied chained rows (not aggregated) of `action`, newest first.
async fn denied_rows(c: &TestConsole, action: &str) -> Vec<raxx_core::audit::AuditEntry> {
    c.store()
        .audit_page(&raxx_store::audit::AuditQuery {
            action: Some(action.into()),
            outcome: Some(Outcome::Denied),
            limit: 500,
            ..Default::default()
        })
        .await
        .expect("audit page")
        .into_iter()
        .filter(|r| r.event.context["aggregated"] != true)
        .collect()
}

/// One object cell: who asks, what, and what the rules say (SPEC §5; issue 19 item 13).
struct ObjectCell {
    what: &'static str,
    method: reqwest::Method,
    path: String,
    /// The manifest template the denial row must name.
    route: &'static str,
    action: &'static str,
    headers: HeaderMap,
    body: Option<serde_json::Value>,
    /// `allowed`, or the denial code.
    want: &'static str,
}

/// The object half of the gate over real HTTP: the other env's object, another app's key,
/// another operator's session and passkey (the job's system actor is in
/// `crates/jobs/tests/it/jobs.rs`, `a_job_run_over_http_against_the_other_env_is_denied_in_the_one_layout`).
/// Each denied cell writes exactly one chained `denied` row in the one layout: `denial` =
/// the code, `route` = the manifest template, the object named under `target`, and none
/// of the older keys (`code`, `error`).
#[tokio::test]
async fn object_targets_are_decided_once_and_denied_in_one_layout() {
    let mut cells_run = 0;
    raxx_testkit::each_backend!(|url| {
        for env in Env::ALL {
            let db = if env == Env::Staging {
                url.clone()
            } else {
                other_db(&url).await
            };
            let (app, other_app) = match env {
                Env::Staging => ("raxx-api-staging", "billing-staging"),
                Env::Prod => ("raxx-api-prod", "billing-prod"),
            };
            let extra = format!(
                "[[apps]]\nname = \"{app}\"\nenv = \"{env}\"\n[[apps]]\nname = \"{other_app}\"\nenv = \"{env}\"\n"
            );
            let c = TestConsole::start(env, &db, &extra).await;
            let admins = env.admin_group();
            let admin = c
                .operator(&format!("admin-{env}@raxx.test"), &[admins])
                .await;
            let nobody = c.operator(&format!("nobody-{env}@raxx.test"), &[]).await;
            let victim = c.operator(&format!("victim-{env}@raxx.test"), &[]).await;
            // The victim's passkey, a session of theirs on the other console, app keys of
            // `app`.
            let mut tx = c.store().begin().await.unwrap();
            tx.add_passkey(victim.admin_id, "victim-cred", "laptop", "{}")
                .await
                .unwrap();
            let (_, other_env_session) = tx
                .create_session(victim.admin_id, env.other(), c.state.policy, None, None)
                .await
                .unwrap();
            let (read_key, _) = tx
                .create_app_key(app, KeyKind::Read, "matrix", "test")
                .await
                .unwrap();
            let (deploy_key, _) = tx
                .create_app_key(app, KeyKind::Deploy, "matrix", "test")
                .await
                .unwrap();
            tx.record(AuditEvent::new("test", "setup", Outcome::Allowed))
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let victim_passkey = c.store().passkeys_of(victim.admin_id).await.unwrap()[0].id;
            let bearer = |k: &str| {
                let mut h = HeaderMap::new();
                h.insert(
                    "authorization",
                    HeaderValue::from_str(&format!("Bearer {k}")).unwrap(),
                );
                h
            };
            let flags_file = serde_json::json!({"app": other_app, "flags": {}});
            let cells = vec![
                ObjectCell {
                    what: "the other env's object: a session of the other console",
                    method: reqwest::Method::DELETE,
                    path: format!("/api/v1/sessions/{}", other_env_session.id),
                    route: "DELETE /api/v1/sessions/{id}",
                    action: "session.revoke",
                    headers: c.write_headers(&admin),
                    body: None,
                    want: "env_mismatch",
                },
                ObjectCell {
                    what: "another operator's session, without the session role",
                    method: reqwest::Method::DELETE,
                    path: format!("/api/v1/sessions/{}", victim.session_id),
                    route: "DELETE /api/v1/sessions/{id}",
                    action: "session.revoke",
                    headers: c.write_headers(&nobody),
                    body: None,
                    want: "forbidden",
                },
                ObjectCell {
                    what: "another operator's passkey, without the session role",
                    method: reqwest::Method::DELETE,
                    path: format!("/api/v1/passkeys/{victim_passkey}"),
                    route: "DELETE /api/v1/passkeys/{id}",
                    action: "passkey.remove",
                    headers: c.write_headers(&nobody),
                    body: None,
                    want: "forbidden",
                },
                ObjectCell {
                    what: "a read key of app A reading app B",
                    method: reqwest::Method::GET,
                    path: format!("/api/v1/apps/{other_app}/flags"),
                    route: "GET /api/v1/apps/{app}/flags",
                    action: "flag.read",
                    headers: bearer(&read_key),
                    body: None,
                    want: "forbidden",
                },
                ObjectCell {
                    what: "a deploy key of app A writing app B",
                    method: reqwest::Method::PUT,
                    path: format!("/api/v1/apps/{other_app}/flags"),
                    route: "PUT /api/v1/apps/{app}/flags",
                    action: "flag.apply",
                    headers: bearer(&deploy_key),
                    body: Some(flags_file.clone()),
                    // On prod the route itself does not exist (staging only): refused
                    // before any object is looked at.
                    want: if env == Env::Staging {
                        "forbidden"
                    } else {
                        "env_mismatch"
                    },
                },
                ObjectCell {
                    what: "an operator ending their own session",
                    method: reqwest::Method::DELETE,
                    path: format!("/api/v1/sessions/{}", nobody.session_id),
                    route: "DELETE /api/v1/sessions/{id}",
                    action: "session.revoke",
                    headers: c.write_headers(&nobody),
                    body: None,
                    want: "allowed",
                },
            ];
            let mut failures = Vec::new();
            for cell in cells {
                cells_run += 1;
                let before = denied_rows(&c, cell.action).await.len();
                let mut req = c
                    .client()
                    .request(cell.method.clone(), c.url(&cell.path))
                    .headers(cell.headers.clone());
                if let Some(b) = &cell.body {
                    req = req.json(b);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let rows = denied_rows(&c, cell.action).await;
                let label = format!("{env} {}: {} {}", cell.what, cell.method, cell.path);
                if cell.want == "allowed" {
                    if !(200..300).contains(&status) || rows.len() != before {
                        failures.push(format!("{label}: want allowed, got {status} {body}"));
                    }
                    continue;
                }
                if status != 403 || body["error"] != cell.want {
                    failures.push(format!(
                        "{label}: want 403 {}, got {status} {body}",
                        cell.want
                    ));
                    continue;
                }
                if rows.len() != before + 1 {
                    failures.push(format!(
                        "{label}: {} denial rows written, want 1",
                        rows.len() - before
                    ));
                    continue;
                }
                let ctx = &rows[0].event.context;
                let layout_ok = ctx["denial"] == cell.want
                    && ctx["route"] == cell.route
                    && ctx.get("code").is_none()
                    && ctx.get("error").is_none();
                if !layout_ok {
                    failures.push(format!("{label}: denial row layout {ctx}"));
                }
                // Object denials name the object; the route-level refusal (prod's PUT) has none.
                let object = !(cell.action == "flag.apply" && env == Env::Prod);
                if object && ctx["target"].as_str().is_none_or(str::is_empty) {
                    failures.push(format!("{label}: the denial row names no object: {ctx}"));
                }
            }
            // The victim's passkey and sessions are untouched.
            assert_eq!(
                c.store().passkeys_of(victim.admin_id).await.unwrap().len(),
                1
            );
            assert!(
                failures.is_empty(),
                "{} object cells wrong:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
    });
    assert_eq!(cells_run % 6, 0);
    assert!(cells_run >= 12);
}

/// Every denial row of the whole route matrix has the one layout too.
#[tokio::test]
async fn route_denials_use_the_one_layout() {
    raxx_testkit::each_backend!(|url| {
        let c = console_for(Env::Prod, &url).await;
        let nobody = c.operator("nobody@raxx.test", &[]).await;
        let r = c
            .as_operator(&nobody)
            .post_json(
                "/api/v1/invites",
                &serde_json::json!({"email": "x@raxx.test", "group": "production-admins"}),
            )
            .await;
        assert_eq!(r.status(), 403);
        let rows = denied_rows(&c, "invite.create").await;
        assert_eq!(rows.len(), 1);
        let ctx = &rows[0].event.context;
        assert_eq!(ctx["denial"], "forbidden", "{ctx}");
        assert_eq!(ctx["route"], "POST /api/v1/invites", "{ctx}");
        assert!(ctx.get("code").is_none(), "{ctx}");
    });
}
