//! `decide` and `authorize` over their whole finite input space (issue 19 item 13): every
//! class × access × only-env × active env × principal kind × CSRF fact × claimed env ×
//! target env × target app × owner relation, with SPEC §5's rules asserted as properties.
//! Role sets are, per route, every level of the route's own resource, none, every role, and
//! an admin role of another resource only (the only roles a decision can look at are the
//! route's resource's). Above all: nothing on a staging console is allowed to land in prod.

use raxx_core::Env;
use raxx_core::gate::{
    Access, Class, Csrf, Denial, GateInput, KeyKind, Owner, Principal, Target, authorize, decide,
    write_level,
};
use raxx_core::rbac::{EffectiveRoles, Level, Resource, Role};

fn accesses() -> Vec<Access> {
    let mut out = vec![Access::Public, Access::SignedIn];
    for r in Resource::ALL {
        out.push(Access::Role(r));
        out.push(Access::OwnOrRole(r));
        for l in Level::ALL {
            out.push(Access::RoleAt(r, l));
        }
        for k in KeyKind::ALL {
            out.push(Access::RoleOrKey(r, k));
        }
    }
    for k in KeyKind::ALL {
        out.push(Access::Key(k));
    }
    out
}

fn resource_of(a: Access) -> Option<Resource> {
    match a {
        Access::Role(r) | Access::OwnOrRole(r) | Access::RoleAt(r, _) | Access::RoleOrKey(r, _) => {
            Some(r)
        }
        _ => None,
    }
}

fn role_sets(a: Access) -> Vec<EffectiveRoles> {
    let r = resource_of(a).unwrap_or(Resource::Flag);
    let other = Resource::ALL.into_iter().find(|x| *x != r).unwrap();
    let mut out = vec![
        EffectiveRoles::default(),
        EffectiveRoles::from_roles(
            Resource::ALL
                .into_iter()
                .flat_map(|r| Level::ALL.map(|l| Role::new(r, l))),
        ),
        EffectiveRoles::from_roles([Role::new(other, Level::Admin)]),
    ];
    for l in Level::ALL {
        out.push(EffectiveRoles::from_roles([Role::new(r, l)]));
    }
    out
}

const APP: &str = "raxx-api";
const OTHER_APP: &str = "other-api";

fn principals(a: Access) -> Vec<Principal> {
    let mut out = vec![Principal::Anonymous];
    for roles in role_sets(a) {
        for session_env in Env::ALL {
            out.push(Principal::Operator {
                session_env,
                roles: roles.clone(),
            });
        }
        out.push(Principal::System {
            job: "job".into(),
            roles,
        });
    }
    for kind in KeyKind::ALL {
        for app_env in Env::ALL {
            out.push(Principal::Key {
                kind,
                app: APP.into(),
                app_env,
            });
        }
    }
    out
}

fn opt_envs() -> [Option<Env>; 3] {
    [None, Some(Env::Staging), Some(Env::Prod)]
}

/// The properties one (input, target, verdict) must satisfy.
fn check(i: &GateInput<'_>, t: &Target<'_>, verdict: &Result<(), Denial>, n: &mut u64) {
    *n += 1;
    let env = i.active_env;
    let allowed = verdict.is_ok();
    let ctx = || format!("{i:?} {t:?} -> {verdict:?}");
    // The object decision is the route decision with the object's facts: one rule.
    let same = decide(&GateInput {
        target_env: t.env,
        target_app: t.app,
        own_object: t.owner == Owner::Principal,
        ..i.clone()
    });
    let other_env_object = t.env.is_some_and(|e| e != env) && i.access != Access::Public;
    if same.is_ok() && other_env_object {
        assert_eq!(
            verdict.as_ref().unwrap_err().code(),
            "env_mismatch",
            "{}",
            ctx()
        );
    } else {
        assert_eq!(&same, verdict, "{}", ctx());
    }
    if i.access == Access::Public {
        assert!(
            allowed,
            "public routes are the handler's to judge: {}",
            ctx()
        );
        return;
    }
    if !allowed {
        let d = verdict.as_ref().unwrap_err();
        assert!(matches!(d.status(), 401 | 403), "{}", ctx());
        return;
    }
    // No object of the other env, whatever the class.
    assert!(t.env.is_none_or(|e| e == env), "{}", ctx());
    // Nobody gets past a non-public route.
    assert!(!matches!(i.principal, Principal::Anonymous), "{}", ctx());
    match i.principal {
        Principal::Operator { session_env, roles } => {
            assert_eq!(*session_env, env, "a session of the other env: {}", ctx());
            assert!(!matches!(i.access, Access::Key(_)), "{}", ctx());
            if i.class.is_write() {
                assert_eq!(
                    i.csrf,
                    Csrf::Valid,
                    "operator write without CSRF: {}",
                    ctx()
                );
                assert_eq!(i.claimed_env, Some(env), "claimed env: {}", ctx());
            }
            let own = t.owner == Owner::Principal && matches!(i.access, Access::OwnOrRole(_));
            if let Some(r) = resource_of(i.access)
                && !own
            {
                let need = match (i.access, i.class) {
                    (Access::RoleAt(_, l), Class::Read) => l,
                    (Access::RoleAt(_, l), _) => l.max(write_level(env)),
                    (_, Class::Read) => Level::Reader,
                    _ => write_level(env),
                };
                assert!(roles.has(r, need), "role below {need:?}: {}", ctx());
            }
        }
        Principal::System { roles, .. } => {
            if let Some(r) = resource_of(i.access)
                && i.class.is_write()
            {
                assert!(roles.has(r, write_level(env)), "{}", ctx());
            }
        }
        Principal::Key { kind, app, app_env } => {
            let want = match i.access {
                Access::Key(k) | Access::RoleOrKey(_, k) => k,
                _ => panic!("a key allowed on a route that takes none: {}", ctx()),
            };
            assert_eq!(*kind, want, "{}", ctx());
            assert!(
                t.app.is_none_or(|a| a == app),
                "another app's object: {}",
                ctx()
            );
            if i.class.is_write() {
                assert_eq!(*app_env, env, "{}", ctx());
            }
        }
        Principal::Anonymous => unreachable!(),
    }
    if i.class.is_write() {
        // Env match: the object, the route's env, and in prod every write is prod's.
        assert!(
            t.env.is_none_or(|e| e == env),
            "another env's object: {}",
            ctx()
        );
        assert!(i.only_env.is_none_or(|e| e == env), "{}", ctx());
        if env == Env::Prod
            && let Some(r) = resource_of(i.access)
            && let Principal::Operator { roles, .. } = i.principal
            && !(t.owner == Owner::Principal && matches!(i.access, Access::OwnOrRole(_)))
        {
            assert!(
                roles.has(r, Level::Admin),
                "a prod write below admin: {}",
                ctx()
            );
        }
        // Nothing on a staging console lands in prod.
        if env == Env::Staging {
            assert_ne!(i.class, Class::ProdWrite, "{}", ctx());
            assert_ne!(t.env, Some(Env::Prod), "{}", ctx());
            assert_ne!(i.claimed_env, Some(Env::Prod), "{}", ctx());
            if let Principal::Key { app_env, .. } = i.principal {
                assert_eq!(*app_env, Env::Staging, "{}", ctx());
            }
        }
    }
}

#[test]
fn decide_and_authorize_hold_spec_5_over_the_whole_input_space() {
    let mut n = 0u64;
    let mut allowed_staging_writes = 0u64;
    for access in accesses() {
        let principals = principals(access);
        for class in [Class::Read, Class::Write, Class::ProdWrite] {
            for only_env in opt_envs() {
                for active_env in Env::ALL {
                    for principal in &principals {
                        for csrf in [Csrf::Valid, Csrf::BadToken, Csrf::CrossSite] {
                            for claimed_env in opt_envs() {
                                let input = GateInput {
                                    active_env,
                                    class,
                                    access,
                                    only_env,
                                    principal,
                                    csrf,
                                    claimed_env,
                                    target_env: None,
                                    target_app: None,
                                    own_object: false,
                                };
                                for target_env in opt_envs() {
                                    for app in [None, Some(APP), Some(OTHER_APP)] {
                                        for owner in Owner::ALL {
                                            let t = Target {
                                                env: target_env,
                                                app,
                                                owner,
                                            };
                                            let v = authorize(&input, &t);
                                            if v.is_ok()
                                                && class.is_write()
                                                && active_env == Env::Staging
                                                && access != Access::Public
                                            {
                                                allowed_staging_writes += 1;
                                            }
                                            check(&input, &t, &v, &mut n);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(n > 1_000_000, "the space was walked: {n} inputs");
    assert!(
        allowed_staging_writes > 0,
        "staging writes do exist (the test can fail)"
    );
}

#[test]
fn the_order_is_principal_then_csrf_then_env_then_permission_for_objects_too() {
    let nobody = Principal::Operator {
        session_env: Env::Staging,
        roles: EffectiveRoles::default(),
    };
    let mut i = GateInput {
        active_env: Env::Staging,
        class: Class::Write,
        access: Access::Role(Resource::Token),
        only_env: None,
        principal: &nobody,
        csrf: Csrf::BadToken,
        claimed_env: Some(Env::Staging),
        target_env: None,
        target_app: None,
        own_object: false,
    };
    let prod_object = Target::app(Env::Prod, APP);
    assert_eq!(authorize(&i, &prod_object).unwrap_err().code(), "csrf");
    i.csrf = Csrf::Valid;
    assert_eq!(
        authorize(&i, &prod_object).unwrap_err().code(),
        "env_mismatch"
    );
    let own = Target::app(Env::Staging, APP);
    assert_eq!(authorize(&i, &own).unwrap_err().code(), "forbidden");
    // Another operator's session vs. one's own, without the session role.
    i.access = Access::OwnOrRole(Resource::Session);
    let theirs = Target {
        env: Some(Env::Staging),
        app: None,
        owner: Owner::Other,
    };
    assert_eq!(authorize(&i, &theirs).unwrap_err().code(), "forbidden");
    let mine = Target {
        owner: Owner::Principal,
        ..theirs
    };
    assert!(authorize(&i, &mine).is_ok());
}
