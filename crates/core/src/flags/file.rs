//! The flags file (SPEC §7): one app's whole flag state as TOML, YAML or JSON with one
//! schema. A file is accepted whole or refused whole, with a line number where we have one.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::locate::{line_of_offset, locate};
use super::model::{self, AppFlags, Flag, FlagType, Rule};
use super::validate::{self, PathSeg, is_valid_name};

/// Largest flags file accepted, in bytes (1 MiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Most flags one app may have.
pub const MAX_FLAGS: usize = 1000;

/// The syntax a flags file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Toml,
    Yaml,
    Json,
}

impl FileFormat {
    /// By extension: `.toml`, `.yaml`/`.yml`, `.json` (case-insensitive).
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Option<Self> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(FileFormat::Toml),
            "yaml" | "yml" => Some(FileFormat::Yaml),
            "json" => Some(FileFormat::Json),
            _ => None,
        }
    }

    /// By media type, ignoring parameters: `application/toml`, `application/yaml`
    /// (`application/x-yaml`, `text/yaml`), `application/json` (and `+json` types).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/toml" | "text/toml" | "text/x-toml" => Some(FileFormat::Toml),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                Some(FileFormat::Yaml)
            }
            "application/json" | "text/json" => Some(FileFormat::Json),
            s if s.starts_with("application/") && s.ends_with("+json") => Some(FileFormat::Json),
            _ => None,
        }
    }
}

/// Why a flags file (or a flag state) was refused.
/// Displays as `line 12: flag `new-checkout`: default variant `of` is not one of …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagsFileError {
    /// 1-based line in the file, when the format and the problem give one.
    pub line: Option<usize>,
    /// The flag the problem is in, when it is in one.
    pub flag: Option<String>,
    pub reason: String,
}

impl FlagsFileError {
    pub fn new(line: Option<usize>, flag: Option<String>, reason: String) -> Self {
        FlagsFileError { line, flag, reason }
    }
}

impl fmt::Display for FlagsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(flag) = &self.flag {
            write!(f, "flag `{flag}`: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for FlagsFileError {}

/// Parses and validates a flags file. The whole file is refused on the first problem.
pub fn parse_flags_file(text: &str, format: FileFormat) -> Result<AppFlags, FlagsFileError> {
    if text.len() > MAX_FILE_BYTES {
        let reason = format!(
            "the file is {} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)",
            text.len()
        );
        return Err(FlagsFileError::new(None, None, reason));
    }
    let file = deserialize(text, format)?;
    if !is_valid_name(&file.app) {
        let reason = format!(
            "app name `{}` must be 1 to 128 characters of A-Z, a-z, 0-9, `.`, `_`, `-`",
            file.app
        );
        let line = locate(text, format, &[PathSeg::Key("app".into())]);
        return Err(FlagsFileError::new(line, None, reason));
    }
    let mut flags = BTreeMap::new();
    for (key, entry) in file.flags {
        let flag = entry.into_flag(key.clone());
        if let Err(problem) = flag.problem() {
            let mut path = vec![PathSeg::Key("flags".into()), PathSeg::Key(key.clone())];
            path.extend(problem.path);
            return Err(FlagsFileError::new(
                locate(text, format, &path),
                Some(key),
                problem.reason,
            ));
        }
        flags.insert(key, flag);
    }
    Ok(AppFlags {
        app: file.app,
        flags,
    })
}

/// The flags-file shape of a flag state, as JSON: what `parse_flags_file(.., Json)` reads
/// back into the same [`AppFlags`]. Also the body shape of `PUT /api/v1/apps/{app}/flags`.
pub fn to_file_json(app_flags: &AppFlags) -> Value {
    let flags: serde_json::Map<String, Value> = app_flags
        .flags
        .iter()
        .map(|(key, flag)| {
            (
                key.clone(),
                serde_json::to_value(FlagEntry::from(flag)).unwrap_or(Value::Null),
            )
        })
        .collect();
    serde_json::json!({ "app": app_flags.app, "flags": flags })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagsFile {
    app: String,
    #[serde(default, deserialize_with = "unique_flags")]
    flags: BTreeMap<String, FlagEntry>,
}

/// One `[flags.<key>]` table: a [`Flag`] without its key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagEntry {
    #[serde(rename = "type")]
    flag_type: FlagType,
    #[serde(deserialize_with = "unique_variants")]
    variants: BTreeMap<String, Value>,
    default: String,
    #[serde(default = "model::enabled_by_default")]
    enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rules: Vec<Rule>,
}

impl FlagEntry {
    fn into_flag(self, key: String) -> Flag {
        Flag {
            key,
            flag_type: self.flag_type,
            variants: self.variants,
            default_variant: self.default,
            enabled: self.enabled,
            description: self.description,
            rules: self.rules,
        }
    }
}

impl From<&Flag> for FlagEntry {
    fn from(flag: &Flag) -> Self {
        FlagEntry {
            flag_type: flag.flag_type,
            variants: flag.variants.clone(),
            default: flag.default_variant.clone(),
            enabled: flag.enabled,
            description: flag.description.clone(),
            rules: flag.rules.clone(),
        }
    }
}

fn deserialize(text: &str, format: FileFormat) -> Result<FlagsFile, FlagsFileError> {
    match format {
        FileFormat::Json => serde_json::from_str(text).map_err(|e| {
            let line = (e.line() > 0).then_some(e.line());
            let reason = strip_position(&e.to_string(), e.line(), e.column());
            FlagsFileError::new(line, None, reason)
        }),
        FileFormat::Yaml => serde_yaml::from_str(text).map_err(|e| {
            let location = e.location();
            // serde_yaml places "end of stream" one line past the last: name the last line.
            let last = text.matches(['\n', '\r']).count() + 1;
            let line = location.as_ref().map(|l| l.line().min(last));
            let mut reason = e.to_string();
            if let Some(l) = location {
                reason = strip_position(&reason, l.line(), l.column());
            }
            FlagsFileError::new(line, None, reason)
        }),
        FileFormat::Toml => toml::from_str(text).map_err(|e| {
            let span = e.span();
            let line = span.as_ref().map(|s| line_of_offset(text, s.start));
            let mut reason = e.message().trim_end().to_owned();
            if let (Some(span), "duplicate key") = (span, reason.as_str()) {
                let key = text.get(span).unwrap_or_default();
                reason = format!("duplicate key `{}`", key.trim_matches(['"', '\'']));
            }
            FlagsFileError::new(line, None, reason)
        }),
    }
}

/// Drops the parser's own " at line L column C" (we print the line in front).
fn strip_position(message: &str, line: usize, column: usize) -> String {
    message.replacen(&format!(" at line {line} column {column}"), "", 1)
}

/// Maps that refuse a repeated key (serde's `BTreeMap` keeps the last one silently).
struct UniqueMap<V> {
    what: &'static str,
    limit: usize,
    marker: PhantomData<V>,
}

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
    type Value = BTreeMap<String, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a table of {}s", self.what)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate {} `{key}`", self.what)));
            }
            if out.len() == self.limit {
                return Err(A::Error::custom(format!(
                    "more than {} {}s",
                    self.limit, self.what
                )));
            }
            let value = map.next_value()?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

fn unique_map<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
    what: &'static str,
    limit: usize,
) -> Result<BTreeMap<String, V>, D::Error> {
    d.deserialize_map(UniqueMap {
        what,
        limit,
        marker: PhantomData,
    })
}

fn unique_flags<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, FlagEntry>, D::Error> {
    unique_map(d, "flag key", MAX_FLAGS)
}

fn unique_variants<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
    unique_map(d, "variant", validate::MAX_VARIANTS)
}

pub(crate) fn unique_rollout<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, u32>>, D::Error> {
    unique_map(d, "rollout variant", validate::MAX_VARIANTS).map(Some)
}

#[cfg(test)]
mod tests;
