//! The prod console reads the staging console's flag state (read-only) from
//! `staging_source_url` + `/api/v1/apps/{promote_from}/flags`, with `staging_source_key`
//! (a `read` key of the staging app) as a bearer token.

use std::collections::BTreeMap;
use std::time::Duration;

use raxx_core::config::Resolved;
use raxx_core::flags::{AppFlags, Flag};
use serde::Deserialize;

use crate::error::{Error, Kind};

/// How long the prod console waits for the staging console.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The staging app's state as the staging console reported it.
#[derive(Debug, Clone)]
pub struct StagingFlags {
    pub flags: AppFlags,
    pub versions: BTreeMap<String, i64>,
    pub revision: i64,
}

#[derive(Deserialize)]
struct Body {
    app: String,
    #[serde(default)]
    revision: i64,
    flags: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    key: String,
    version: i64,
    definition: Flag,
}

fn unavailable(message: String) -> Error {
    Error::Conflict {
        kind: Kind::Upstream,
        code: "staging_source",
        message,
    }
}

/// Fetch and validate the staging app's flags. Anything unexpected is a 502 that says
/// what went wrong; nothing is queued from state that does not validate.
pub async fn fetch_staging(cfg: &Resolved, staging_app: &str) -> Result<StagingFlags, Error> {
    let (Some(base), Some(key)) = (
        cfg.config.staging_source_url.as_deref(),
        cfg.config.staging_source_key.as_deref(),
    ) else {
        return Err(Error::Conflict {
            kind: Kind::Unavailable,
            code: "staging_source",
            message: "staging_source_url and staging_source_key are not configured on this console"
                .into(),
        });
    };
    let url = format!(
        "{}/api/v1/apps/{staging_app}/flags",
        base.trim_end_matches('/')
    );
    let client = raxx_providers::http_client_builder(TIMEOUT)
        .build()
        .map_err(|e| unavailable(format!("cannot build an HTTP client: {e}")))?;
    let resp = client
        .get(&url)
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| unavailable(format!("the staging console at {base} did not answer: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let detail = resp.text().await.unwrap_or_default();
        let detail: String = detail.chars().take(300).collect();
        return Err(unavailable(format!(
            "the staging console answered {status} for {staging_app}'s flags: {detail}"
        )));
    }
    let body: Body = resp.json().await.map_err(|e| {
        unavailable(format!(
            "the staging console's answer is not flag state: {e}"
        ))
    })?;
    if body.app != staging_app {
        return Err(unavailable(format!(
            "asked for {staging_app}'s flags, got {}'s",
            body.app
        )));
    }
    let mut flags = AppFlags::new(staging_app);
    let mut versions = BTreeMap::new();
    for item in body.flags {
        if item.definition.key != item.key {
            return Err(unavailable(format!(
                "staging flag `{}` carries the definition of `{}`",
                item.key, item.definition.key
            )));
        }
        versions.insert(item.key.clone(), item.version);
        flags.flags.insert(item.key, item.definition);
    }
    flags
        .validate()
        .map_err(|e| unavailable(format!("staging's flag state does not validate: {e}")))?;
    Ok(StagingFlags {
        flags,
        versions,
        revision: body.revision,
    })
}
