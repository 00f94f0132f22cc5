//! A secret value (an API key, an OAuth access token) that never prints itself.

use std::fmt;

/// A secret string. `Debug` prints `Secret(<redacted>)`; there is no `Display` and no
/// `Serialize`, so the only way to the value is the explicit [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the one place that must send it (a header, a request body).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replace every occurrence of this secret in `text` with `<redacted>`, so a message
    /// that echoes a value back (an error body, a URL) cannot leak it.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-very-secret");
        let shown = format!("{s:?} {:#?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn scrub_replaces_every_occurrence() {
        let s = Secret::new("tok123");
        assert_eq!(s.scrub("a tok123 b tok123"), "a <redacted> b <redacted>");
        assert_eq!(Secret::new("").scrub("unchanged"), "unchanged");
    }
}
