//! The write gate: one pure decision function for every route (SPEC §5).
//!
//! Checked in this order: a principal (session or key) → CSRF → env match → permission.
//! The HTTP layer gathers the facts into a [`GateInput`] and maps the [`Denial`] to a
//! status; nothing else decides.

use serde::Serialize;

use crate::env::Env;
use crate::rbac::{EffectiveRoles, Level, Resource, Role};

/// What a route does to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Never changes state; open to every signed-in operator unless a role is named.
    Read,
    /// Lands in the active env: `user` on staging, `admin` on prod.
    Write,
    /// Exists only for prod (promotions, the kill switch): always refused on staging.
    ProdWrite,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::ProdWrite => "prod-write",
        }
    }
    pub fn is_write(self) -> bool {
        !matches!(self, Class::Read)
    }
}

/// Kinds of app API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// OFREP evaluation.
    Client,
    /// Applying a staging flags file.
    Deploy,
    /// Reading an app's flag state (the prod console's staging source).
    Read,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Client, KeyKind::Deploy, KeyKind::Read];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Client => "client",
            KeyKind::Deploy => "deploy",
            KeyKind::Read => "read",
        }
    }
}

impl std::str::FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        KeyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown key kind `{s}`: expected client, deploy or read"))
    }
}

/// Who may call a route, as declared in the route manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Access {
    /// No principal needed (health, sign-in ceremonies, static assets).
    Public,
    /// Any signed-in operator.
    SignedIn,
    /// An operator holding the resource at the level the class and env require
    /// (`reader` for reads; `user`/`admin` for writes by env).
    Role(Resource),
    /// A read that needs a specific level (the audit log needs `console-audit-user`).
    RoleAt(Resource, Level),
    /// An operator may act on their own object (their session); otherwise the role.
    OwnOrRole(Resource),
    /// An app key of this kind only.
    Key(KeyKind),
    /// An operator with the role, or an app key of this kind.
    RoleOrKey(Resource, KeyKind),
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Operator {
        /// `console_sessions.selected_env` of the session.
        session_env: Env,
        roles: EffectiveRoles,
    },
    /// An app API key; `app_env` is the env of the app it belongs to.
    Key {
        kind: KeyKind,
        app: String,
        app_env: Env,
    },
    /// A scheduled job, acting as `system:<job>` with the roles the job declares.
    System {
        job: String,
        roles: EffectiveRoles,
    },
}

impl Principal {
    /// The roles this principal holds (an operator's or a job's; none for a key or nobody).
    pub fn roles(&self) -> EffectiveRoles {
        match self {
            Principal::Operator { roles, .. } | Principal::System { roles, .. } => roles.clone(),
            Principal::Anonymous | Principal::Key { .. } => EffectiveRoles::default(),
        }
    }
}

/// The CSRF facts of a request (ignored for reads and for key or system principals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csrf {
    Valid,
    /// The synchronizer token is missing or wrong.
    BadToken,
    /// `Sec-Fetch-Site` or `Origin` says the request came from another site.
    CrossSite,
}

/// Everything the gate needs to decide about one request.
#[derive(Debug, Clone)]
pub struct GateInput<'a> {
    pub active_env: Env,
    pub class: Class,
    pub access: Access,
    /// Set when a write route exists for one env only (the staging flags apply).
    pub only_env: Option<Env>,
    pub principal: &'a Principal,
    pub csrf: Csrf,
    /// `_target_env` / `X-Console-Env`: the env the operator believes they act on.
    pub claimed_env: Option<Env>,
    /// The env of the target object (its app's env), when the route has one.
    pub target_env: Option<Env>,
    /// The app the route acts on, when it has one (a key must belong to it).
    pub target_app: Option<&'a str>,
    /// The target object belongs to the principal (their own session).
    pub own_object: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum Denial {
    /// No principal, or one that is not valid here (a session of the other env).
    Unauthenticated {
        message: String,
    },
    Csrf {
        message: String,
    },
    EnvMismatch {
        message: String,
    },
    Forbidden {
        message: String,
        needed: Option<String>,
    },
}

impl Denial {
    pub fn code(&self) -> &'static str {
        match self {
            Denial::Unauthenticated { .. } => "unauthenticated",
            Denial::Csrf { .. } => "csrf",
            Denial::EnvMismatch { .. } => "env_mismatch",
            Denial::Forbidden { .. } => "forbidden",
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Denial::Unauthenticated { message }
            | Denial::Csrf { message }
            | Denial::EnvMismatch { message }
            | Denial::Forbidden { message, .. } => message,
        }
    }
    pub fn status(&self) -> u16 {
        match self {
            Denial::Unauthenticated { .. } => 401,
            _ => 403,
        }
    }
}

/// The level a write needs in an env.
pub fn write_level(env: Env) -> Level {
    match env {
        Env::Staging => Level::User,
        Env::Prod => Level::Admin,
    }
}

/// The role a route needs in `env`, if any (for `routes` and error messages).
pub fn required_role(class: Class, access: Access, env: Env) -> Option<Role> {
    let resource = match access {
        Access::Role(r) | Access::OwnOrRole(r) | Access::RoleOrKey(r, _) => r,
        // A write never needs less than the env's write level (a manifest slip such as a
        // write declared `RoleAt(_, Reader)` cannot open it to readers).
        Access::RoleAt(r, level) if class.is_write() => {
            return Some(Role::new(r, level.max(write_level(env))));
        }
        Access::RoleAt(r, level) => return Some(Role::new(r, level)),
        Access::Public | Access::SignedIn | Access::Key(_) => return None,
    };
    let level = match class {
        Class::Read => Level::Reader,
        Class::Write | Class::ProdWrite => write_level(env),
    };
    Some(Role::new(resource, level))
}

/// Whether a route can be allowed at all on a console of `env`.
pub fn route_exists_in(class: Class, only_env: Option<Env>, env: Env) -> bool {
    match class {
        // Both must hold (a prod-write declared for staging only exists nowhere).
        Class::ProdWrite => env == Env::Prod && only_env.is_none_or(|e| e == env),
        _ => only_env.is_none_or(|e| e == env),
    }
}

/// The decision. `Ok(())` allows the request.
pub fn decide(input: &GateInput<'_>) -> Result<(), Denial> {
    let env = input.active_env;
    // 1. A principal that this route accepts and that is valid in this env.
    match (input.access, input.principal) {
        (Access::Public, _) => return Ok(()),
        (_, Principal::Anonymous) => {
            return Err(Denial::Unauthenticated {
                message: "sign in first".into(),
            });
        }
        (_, Principal::Operator { session_env, .. }) if *session_env != env => {
            return Err(Denial::Unauthenticated {
                message: format!(
                    "this session was created on the {session_env} console and is not valid on {env}"
                ),
            });
        }
        (Access::Key(_), Principal::Operator { .. }) => {
            return Err(Denial::Unauthenticated {
                message: "this endpoint takes an app API key".into(),
            });
        }
        (Access::Key(want) | Access::RoleOrKey(_, want), Principal::Key { kind, app, .. }) => {
            if *kind != want {
                return Err(Denial::Forbidden {
                    message: format!(
                        "a `{}` key is needed, not a `{}` key",
                        want.as_str(),
                        kind.as_str()
                    ),
                    needed: None,
                });
            }
            if let Some(t) = input.target_app.filter(|t| *t != app) {
                return Err(Denial::Forbidden {
                    message: format!("this key belongs to the app `{app}`, not `{t}`"),
                    needed: None,
                });
            }
        }
        (_, Principal::Key { .. }) => {
            return Err(Denial::Unauthenticated {
                message: "app API keys are not accepted here; sign in as an operator".into(),
            });
        }
        _ => {}
    }

    if !input.class.is_write() {
        return permission(input);
    }

    // 2. CSRF, for operators (keys and jobs carry no cookie to ride on).
    if matches!(input.principal, Principal::Operator { .. }) {
        match input.csrf {
            Csrf::Valid => {}
            Csrf::BadToken => {
                return Err(Denial::Csrf {
                    message: "the form's security token is missing or expired; reload the page and try again".into(),
                });
            }
            Csrf::CrossSite => {
                return Err(Denial::Csrf {
                    message: "cross-site request refused".into(),
                });
            }
        }
    }

    // 3. Env match: what the operator believes, the target object, the route's env.
    let principal_env = match input.principal {
        Principal::Key { app_env, .. } => Some(*app_env),
        _ => None,
    };
    // Operators must name the env; anyone who names one (a job, a key's caller) must name
    // this one (found by the exhaustive check: a job claiming prod passed on staging).
    let wrong_claim = input.claimed_env.is_some_and(|c| c != env);
    if wrong_claim
        || (matches!(input.principal, Principal::Operator { .. }) && input.claimed_env != Some(env))
    {
        let message = match input.claimed_env {
            Some(claimed) => format!(
                "this action was prepared for {claimed}, but this is the {env} console; nothing was changed"
            ),
            None => {
                "the request does not name its target env (_target_env or X-Console-Env)".into()
            }
        };
        return Err(Denial::EnvMismatch { message });
    }
    // Both the object's env and the key's app's env (not the first of them that is set).
    if let Some(target) = [input.target_env, principal_env]
        .into_iter()
        .flatten()
        .find(|t| *t != env)
    {
        return Err(Denial::EnvMismatch {
            message: format!("the target belongs to {target}; this console acts on {env} only"),
        });
    }
    if !route_exists_in(input.class, input.only_env, env) {
        let where_ = match input.class {
            Class::ProdWrite => Env::Prod,
            _ => input.only_env.unwrap_or(env),
        };
        return Err(Denial::EnvMismatch {
            message: format!("this action exists only on the {where_} console"),
        });
    }

    // 4. Permission at the level the env requires.
    permission(input)
}

fn permission(input: &GateInput<'_>) -> Result<(), Denial> {
    let roles = match input.principal {
        Principal::Operator { roles, .. } | Principal::System { roles, .. } => roles,
        // A key of the right kind was checked above.
        Principal::Key { .. } => return Ok(()),
        Principal::Anonymous => unreachable_denial()?,
    };
    // Only an operator owns objects (their sessions); a job's system actor never does.
    if matches!(input.access, Access::OwnOrRole(_))
        && input.own_object
        && matches!(input.principal, Principal::Operator { .. })
    {
        return Ok(());
    }
    match required_role(input.class, input.access, input.active_env) {
        None => Ok(()),
        Some(role) if roles.has(role.resource, role.level) => Ok(()),
        Some(role) => Err(Denial::Forbidden {
            message: format!(
                "this needs the role {role} on the {} console",
                input.active_env
            ),
            needed: Some(role.to_string()),
        }),
    }
}

fn unreachable_denial() -> Result<&'static EffectiveRoles, Denial> {
    Err(Denial::Unauthenticated {
        message: "sign in first".into(),
    })
}

mod target;
pub use target::{Owner, Target, authorize};

#[cfg(test)]
mod tests;
