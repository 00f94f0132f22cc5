//! What a JSON route documents, carried by its manifest entry (`route!(…, doc = …)`): its
//! request body, query and path parameters, success status and reply, each derived by
//! utoipa from the same Rust types the handler parses and serializes. `crate::openapi`
//! assembles the served document from these, so a route and its documentation are one
//! declaration; the test kit then checks every answer of the test suite against it.

use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

/// Named schemas collected while documenting (`components/schemas`).
pub type Components = Vec<(String, RefOr<Schema>)>;

/// Produces a schema (usually a `$ref`) and adds what it names to the components.
pub type SchemaFn = fn(&mut Components) -> RefOr<Schema>;

pub type ParamsFn = fn() -> Vec<Parameter>;

/// A `$ref` to `T`, with `T` and everything it names added to the components.
pub fn schema_of<T: ToSchema>(c: &mut Components) -> RefOr<Schema> {
    T::schemas(c);
    c.push((T::name().into_owned(), T::schema()));
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
}

/// An array of `T`.
pub fn list_of<T: ToSchema>(c: &mut Components) -> RefOr<Schema> {
    let item = schema_of::<T>(c);
    RefOr::T(Schema::Array(utoipa::openapi::schema::Array::new(item)))
}

fn query_of<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

fn path_of<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Path))
}

/// How the request body is sent.
#[derive(Clone, Copy)]
pub struct BodyDoc {
    pub schema: SchemaFn,
    pub required: bool,
    /// Media types accepted besides `application/json` (the flags file's TOML and YAML).
    pub also: &'static [&'static str],
}

/// One JSON operation's documentation.
#[derive(Clone, Copy)]
pub struct ApiDoc {
    /// The success status (200, 201, 202).
    pub ok: u16,
    pub reply: SchemaFn,
    pub body: Option<BodyDoc>,
    pub query: Option<ParamsFn>,
    /// Path parameters as parsed; unnamed ones are documented as plain strings.
    pub path: Option<ParamsFn>,
    /// A `304 Not Modified` is possible (`If-None-Match`).
    pub not_modified: bool,
}

impl ApiDoc {
    /// `200` with a `T`.
    pub fn reply<T: ToSchema>() -> Self {
        ApiDoc {
            ok: 200,
            reply: schema_of::<T>,
            body: None,
            query: None,
            path: None,
            not_modified: false,
        }
    }

    /// `200` with a list of `T`.
    pub fn list<T: ToSchema>() -> Self {
        ApiDoc {
            reply: list_of::<T>,
            ..ApiDoc::reply::<T>()
        }
    }

    pub fn status(mut self, ok: u16) -> Self {
        self.ok = ok;
        self
    }

    /// A required JSON body `B`.
    pub fn body<B: ToSchema>(mut self) -> Self {
        self.body = Some(BodyDoc {
            schema: schema_of::<B>,
            required: true,
            also: &[],
        });
        self
    }

    /// A JSON body `B` that may be left out (every field then takes its default).
    pub fn optional_body<B: ToSchema>(mut self) -> Self {
        self.body = Some(BodyDoc {
            schema: schema_of::<B>,
            required: false,
            also: &[],
        });
        self
    }

    pub fn body_also(mut self, also: &'static [&'static str]) -> Self {
        if let Some(b) = &mut self.body {
            b.also = also;
        }
        self
    }

    pub fn query<Q: IntoParams>(mut self) -> Self {
        self.query = Some(query_of::<Q>);
        self
    }

    pub fn path<P: IntoParams>(mut self) -> Self {
        self.path = Some(path_of::<P>);
        self
    }

    pub fn not_modified(mut self) -> Self {
        self.not_modified = true;
        self
    }
}

// ---- path parameters shared by several routes ----

/// `{id}`: a numeric id, parsed as a 64-bit integer.
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct IntId {
    /// the object's numeric id
    pub id: i64,
}

/// `{id}`: an opaque string id (a session's UUID, a customer id, a passkey id).
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct StrId {
    /// the object's id
    pub id: String,
}

/// `{id}` of a token: `key:N` for an app key, `PROVIDER:N` (e.g. `heroku:3`) for a
/// provider token.
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct TokenIdPath {
    /// `key:12`, `heroku:3`
    #[param(pattern = r"^[a-z]+:[0-9]+$", example = "key:1")]
    pub id: String,
}

/// `{id}` and `{group}` of a membership.
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct Membership {
    /// the operator's numeric id
    pub id: i64,
    /// the group's name
    pub group: String,
}

/// `{app}` and `{key}` of a flag.
#[derive(IntoParams)]
#[allow(dead_code)]
pub struct AppFlag {
    /// the app's name
    pub app: String,
    /// the flag's key
    pub key: String,
}

/// Replies whose shape the console does not promise beyond "a JSON object" (WebAuthn
/// challenges, whose fields follow the WebAuthn specification).
pub struct WebAuthnJson;

impl utoipa::PartialSchema for WebAuthnJson {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .description(Some(
                "a WebAuthn options or result object (WebAuthn Level 2)",
            ))
            .into()
    }
}

impl ToSchema for WebAuthnJson {
    fn name() -> std::borrow::Cow<'static, str> {
        "WebAuthnJson".into()
    }
}

/// `{"error","message"}`: every error the console answers on a JSON route.
#[derive(ToSchema, serde::Serialize)]
pub struct Error {
    /// a stable code: `invalid`, `unauthenticated`, `forbidden`, `csrf`, `not_found`, …
    pub error: String,
    /// for a person
    pub message: String,
}

/// Any JSON value: parts whose shape is another document's (a flag definition, a review
/// frozen at queue time, a diff), shown as the console's own types serialize them.
pub struct AnyJson;

impl utoipa::PartialSchema for AnyJson {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .into()
    }
}

impl ToSchema for AnyJson {
    fn name() -> std::borrow::Cow<'static, str> {
        "AnyJson".into()
    }
}

/// `staging` or `prod`.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum EnvName {
    Staging,
    Prod,
}

/// A promotion's state.
#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum PromotionState {
    Pending,
    Approved,
    Applied,
    Rejected,
    Stale,
    Expired,
}
