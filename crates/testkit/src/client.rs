//! [`ConsoleClient`]: requests to a [`TestConsole`] as one principal (anonymous, an
//! operator with the session cookie, CSRF token and claimed env, or an API key), so a test
//! says what it asks and not how the request is built. Answers come back as a [`Reply`],
//! read like a `reqwest::Response` (`status()`, `json().await`, `text().await`).

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Operator, TestConsole};

/// Requests to one console as one principal.
pub struct ConsoleClient<'a> {
    console: &'a TestConsole,
    headers: HeaderMap,
    /// The operator's CSRF token, added to forms.
    csrf: Option<String>,
}

/// An answer, read.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: String) -> Reply {
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body as JSON (async, like `reqwest::Response::json`).
    pub async fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// The body as text (async, like `reqwest::Response::text`).
    pub async fn text(&self) -> Result<String, std::convert::Infallible> {
        Ok(self.body.clone())
    }
}

impl TestConsole {
    /// Requests with no credentials.
    pub fn anonymous(&self) -> ConsoleClient<'_> {
        ConsoleClient {
            console: self,
            headers: HeaderMap::new(),
            csrf: None,
        }
    }

    /// Requests as `op`: the session cookie, the CSRF token and the claimed env
    /// ([`TestConsole::write_headers`]).
    pub fn as_operator(&self, op: &Operator) -> ConsoleClient<'_> {
        ConsoleClient {
            console: self,
            headers: self.write_headers(op),
            csrf: Some(op.csrf.clone()),
        }
    }

    /// Reads as `op`: the session cookie only ([`TestConsole::read_headers`]).
    pub fn as_reader(&self, op: &Operator) -> ConsoleClient<'_> {
        ConsoleClient {
            console: self,
            headers: self.read_headers(op),
            csrf: None,
        }
    }

    /// Requests with an API key (`Authorization: Bearer`).
    pub fn with_key(&self, key: &str) -> ConsoleClient<'_> {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).expect("key header"),
        );
        ConsoleClient {
            console: self,
            headers,
            csrf: None,
        }
    }
}

impl ConsoleClient<'_> {
    /// A request to `path` as this principal.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.console
            .client()
            .request(method, self.console.url(path))
            .headers(self.headers.clone())
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(body);
        }
        read(req.send().await.expect("the console answers")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    /// A `POST` with no body.
    pub async fn post(&self, path: &str) -> Reply {
        self.send(Method::POST, path, None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// `GET` a JSON route: the status and the body parsed (`Value::Null` when it is not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        (
            r.status.as_u16(),
            serde_json::from_str(&r.body).unwrap_or(Value::Null),
        )
    }

    /// `GET` a page: the status and the HTML.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        (r.status.as_u16(), r.body)
    }

    /// `POST` a form as a page would: the fields, plus `_csrf` for an operator.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if let Some(csrf) = &self.csrf
            && !fields.iter().any(|(k, _)| *k == "_csrf")
        {
            form.push(("_csrf", csrf));
        }
        let req = self.request(Method::POST, path).form(&form);
        read(req.send().await.expect("the console answers")).await
    }
}

async fn read(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.text().await.expect("the answer's body");
    Reply {
        status,
        headers,
        body,
    }
}
