use super::*;
use crate::rbac::{EnvScope, Grant, seeded_grants};
use proptest::prelude::*;

fn operator(env: Env, group: &str) -> Principal {
    let grants: Vec<Grant> = seeded_grants()
        .into_iter()
        .filter(|g| g.group == group)
        .collect();
    Principal::Operator {
        session_env: env,
        roles: EffectiveRoles::from_grants(env, &grants),
    }
}

fn input<'a>(env: Env, class: Class, access: Access, p: &'a Principal) -> GateInput<'a> {
    GateInput {
        active_env: env,
        class,
        access,
        only_env: None,
        principal: p,
        csrf: Csrf::Valid,
        claimed_env: Some(env),
        target_env: Some(env),
        target_app: None,
        own_object: false,
    }
}

fn code(r: Result<(), Denial>) -> &'static str {
    match r {
        Ok(()) => "allowed",
        Err(d) => d.code(),
    }
}

#[test]
fn seeded_groups_against_write_classes_by_env() {
    use Class::*;
    // (env, group, class, resource, expected)
    let table: &[(Env, &str, Class, Resource, &str)] = &[
        (
            Env::Staging,
            "staging-admins",
            Write,
            Resource::Token,
            "allowed",
        ),
        (
            Env::Staging,
            "staging-admins",
            Write,
            Resource::Job,
            "allowed",
        ),
        (
            Env::Staging,
            "staging-admins",
            Write,
            Resource::Flag,
            "forbidden",
        ),
        (
            Env::Staging,
            "staging-admins",
            Write,
            Resource::Customer,
            "forbidden",
        ),
        (
            Env::Staging,
            "staging-admins",
            ProdWrite,
            Resource::Flag,
            "env_mismatch",
        ),
        (
            Env::Staging,
            "production-admins",
            Write,
            Resource::Token,
            "forbidden",
        ),
        (
            Env::Staging,
            "production-admins",
            ProdWrite,
            Resource::Flag,
            "env_mismatch",
        ),
        (
            Env::Prod,
            "production-admins",
            ProdWrite,
            Resource::Flag,
            "allowed",
        ),
        (
            Env::Prod,
            "production-admins",
            Write,
            Resource::Customer,
            "allowed",
        ),
        (
            Env::Prod,
            "production-admins",
            Write,
            Resource::Audit,
            "forbidden",
        ),
        (
            Env::Prod,
            "staging-admins",
            Write,
            Resource::Token,
            "forbidden",
        ),
        (
            Env::Prod,
            "staging-admins",
            ProdWrite,
            Resource::Flag,
            "forbidden",
        ),
    ];
    for &(env, group, class, resource, want) in table {
        let p = operator(env, group);
        let got = code(decide(&input(env, class, Access::Role(resource), &p)));
        assert_eq!(got, want, "{env} {group} {class:?} {resource:?}");
    }
}

#[test]
fn order_is_session_then_csrf_then_env_then_permission() {
    let env = Env::Staging;
    let nobody = Principal::Operator {
        session_env: env,
        roles: EffectiveRoles::default(),
    };
    let mut i = input(env, Class::ProdWrite, Access::Role(Resource::Flag), &nobody);
    i.csrf = Csrf::BadToken;
    i.claimed_env = Some(Env::Prod);
    assert_eq!(code(decide(&i)), "csrf", "csrf is checked before env");
    i.csrf = Csrf::Valid;
    assert_eq!(code(decide(&i)), "env_mismatch", "env before permission");
    let anon = Principal::Anonymous;
    let mut j = input(env, Class::Write, Access::Role(Resource::Flag), &anon);
    j.csrf = Csrf::BadToken;
    assert_eq!(code(decide(&j)), "unauthenticated");
}

#[test]
fn a_session_of_the_other_env_is_not_a_session() {
    let p = operator(Env::Prod, "production-admins");
    for class in [Class::Read, Class::Write] {
        let i = input(Env::Staging, class, Access::SignedIn, &p);
        assert_eq!(code(decide(&i)), "unauthenticated");
    }
}

#[test]
fn claimed_and_target_env_must_equal_the_active_env() {
    let p = operator(Env::Prod, "production-admins");
    let mut i = input(Env::Prod, Class::Write, Access::Role(Resource::Token), &p);
    i.claimed_env = Some(Env::Staging);
    assert_eq!(code(decide(&i)), "env_mismatch");
    i.claimed_env = None;
    assert_eq!(code(decide(&i)), "env_mismatch");
    i.claimed_env = Some(Env::Prod);
    i.target_env = Some(Env::Staging);
    assert_eq!(code(decide(&i)), "env_mismatch");
    i.target_env = None;
    assert_eq!(code(decide(&i)), "allowed");
}

#[test]
fn reads_need_no_csrf_or_env_claim_but_may_need_a_role() {
    let p = operator(Env::Staging, "staging-admins");
    let mut i = input(
        Env::Staging,
        Class::Read,
        Access::RoleAt(Resource::Audit, Level::User),
        &p,
    );
    i.csrf = Csrf::BadToken;
    i.claimed_env = None;
    assert_eq!(code(decide(&i)), "allowed");
    i.access = Access::Role(Resource::Session);
    assert_eq!(code(decide(&i)), "forbidden");
    i.access = Access::SignedIn;
    assert_eq!(code(decide(&i)), "allowed");
}

#[test]
fn own_object_is_enough_for_own_or_role() {
    let nobody = Principal::Operator {
        session_env: Env::Prod,
        roles: EffectiveRoles::default(),
    };
    let mut i = input(
        Env::Prod,
        Class::Write,
        Access::OwnOrRole(Resource::Session),
        &nobody,
    );
    assert_eq!(code(decide(&i)), "forbidden");
    i.own_object = true;
    assert_eq!(code(decide(&i)), "allowed");
}

#[test]
fn keys_work_only_where_named_and_for_their_own_app() {
    let key = |kind| Principal::Key {
        kind,
        app: "raxx-api-staging".into(),
        app_env: Env::Staging,
    };
    let deploy = key(KeyKind::Deploy);
    let mut i = input(
        Env::Staging,
        Class::Write,
        Access::Key(KeyKind::Deploy),
        &deploy,
    );
    i.only_env = Some(Env::Staging);
    i.claimed_env = None;
    i.csrf = Csrf::BadToken; // keys carry no cookie; CSRF does not apply
    i.target_app = Some("raxx-api-staging");
    assert_eq!(code(decide(&i)), "allowed");
    i.target_app = Some("raxx-web-staging");
    assert_eq!(code(decide(&i)), "forbidden");
    i.target_app = Some("raxx-api-staging");
    let client = key(KeyKind::Client);
    i.principal = &client;
    assert_eq!(code(decide(&i)), "forbidden");
    // The same deploy key presented to a prod console: the route exists only on staging.
    let prod_deploy = Principal::Key {
        kind: KeyKind::Deploy,
        app: "raxx-api-prod".into(),
        app_env: Env::Prod,
    };
    let mut p = input(
        Env::Prod,
        Class::Write,
        Access::Key(KeyKind::Deploy),
        &prod_deploy,
    );
    p.only_env = Some(Env::Staging);
    p.claimed_env = None;
    assert_eq!(code(decide(&p)), "env_mismatch");
    // Keys are refused where only operators are accepted.
    let q = input(
        Env::Staging,
        Class::Read,
        Access::Role(Resource::Flag),
        &deploy,
    );
    assert_eq!(code(decide(&q)), "unauthenticated");
}

#[test]
fn public_routes_allow_anyone() {
    let anon = Principal::Anonymous;
    assert_eq!(
        code(decide(&input(
            Env::Prod,
            Class::Read,
            Access::Public,
            &anon
        ))),
        "allowed"
    );
}

fn any_env() -> impl Strategy<Value = Env> {
    prop_oneof![Just(Env::Staging), Just(Env::Prod)]
}
fn any_scope() -> impl Strategy<Value = EnvScope> {
    prop_oneof![
        Just(EnvScope::Staging),
        Just(EnvScope::Prod),
        Just(EnvScope::Any)
    ]
}
fn any_class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Read),
        Just(Class::Write),
        Just(Class::ProdWrite)
    ]
}
fn any_role() -> impl Strategy<Value = Role> {
    (0..Resource::ALL.len(), 0..Level::ALL.len())
        .prop_map(|(r, l)| Role::new(Resource::ALL[r], Level::ALL[l]))
}

proptest! {
    /// Whatever the grants, the gate never allows a write whose env or level is wrong.
    #[test]
    fn never_allows_a_write_with_the_wrong_env_or_level(
        active in any_env(),
        session_env in any_env(),
        claimed in proptest::option::of(any_env()),
        target in proptest::option::of(any_env()),
        class in any_class(),
        resource_ix in 0..Resource::ALL.len(),
        grants in proptest::collection::vec((any_role(), any_scope()), 0..8),
    ) {
        let resource = Resource::ALL[resource_ix];
        let grants: Vec<Grant> = grants.into_iter().map(|(role, env_scope)| Grant { group: "g".into(), role, env_scope }).collect();
        let roles = EffectiveRoles::from_grants(session_env, &grants);
        let p = Principal::Operator { session_env, roles };
        let i = GateInput {
            active_env: active, class, access: Access::Role(resource), only_env: None,
            principal: &p, csrf: Csrf::Valid, claimed_env: claimed, target_env: target,
            target_app: None, own_object: false,
        };
        if decide(&i).is_ok() {
            prop_assert_eq!(session_env, active);
            // Any grant that made this allowed must have been scoped to the active env.
            let needed = required_role(class, Access::Role(resource), active);
            if let Some(role) = needed {
                prop_assert!(grants.iter().any(|g| g.env_scope.covers(active) && g.role.resource == role.resource && g.role.level >= role.level));
            }
            if class.is_write() {
                prop_assert_eq!(claimed, Some(active));
                prop_assert!(target.is_none_or(|t| t == active));
                prop_assert!(grants.iter().any(|g| g.env_scope.covers(active) && g.role.resource == resource && g.role.level >= write_level(active)));
            }
            if class == Class::ProdWrite {
                prop_assert_eq!(active, Env::Prod);
                prop_assert!(grants.iter().any(|g| g.env_scope.covers(Env::Prod) && g.role.resource == resource && g.role.level == Level::Admin));
            }
        }
    }
}
