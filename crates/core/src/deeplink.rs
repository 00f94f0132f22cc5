//! Deep links through sign-in (issue 16): `/login?next=/promotions/4` lands on
//! `/promotions/4` after the passkey. Only a same-origin path is ever followed: never an
//! absolute URL, a scheme, a protocol-relative `//host`, a backslash (browsers read `/\host`
//! as `//host`), or control characters (browsers drop tabs and newlines, so `/\t/host`
//! would become `//host`).

/// The longest `next` followed; longer ones are dropped (the operator lands on `/`).
pub const MAX_NEXT_LEN: usize = 2048;

/// `next` if it is a safe same-origin path (with an optional query), else `None`.
/// Sign-in pages themselves are refused too, so a link cannot loop through `/login`.
pub fn safe_next(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    let ok = next.len() <= MAX_NEXT_LEN
        && bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        // Visible ASCII only: no spaces, controls, backslashes or non-ASCII look-alikes.
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b) && *b != b'\\')
        && !is_sign_in(next);
    ok.then_some(next)
}

fn is_sign_in(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path == "/login" || path.starts_with("/login/") || path.starts_with("/auth/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_origin_paths_are_followed() {
        for ok in [
            "/",
            "/promotions/4",
            "/audit?action=flag.kill&outcome=allowed",
            "/apps/raxx-api-prod/flags/new-checkout",
            "/promotions/4#review",
            "/x?u=https://elsewhere.example",
            "/logins",
        ] {
            assert_eq!(safe_next(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn open_redirects_are_refused() {
        for bad in [
            "",
            "https://evil.example/",
            "http:/evil.example",
            "//evil.example",
            "//evil.example/promotions/4",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n//evil.example",
            " /promotions/4",
            "javascript:alert(1)",
            "data:text/html,hi",
            "promotions/4",
            "/promotions/4\\..\\..",
            "/ promotions",
            "/prömotions",
            "/login",
            "/login?next=/x",
            "/auth/login/start",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_NEXT_LEN));
        assert_eq!(safe_next(&long), None);
    }

    proptest! {
        /// Whatever is accepted is a path on this origin: one leading slash, then no
        /// second slash or backslash, nothing a browser would strip or reinterpret.
        #[test]
        fn anything_accepted_stays_on_this_origin(s in "\\PC{0,40}") {
            if let Some(next) = safe_next(&s) {
                prop_assert!(next.starts_with('/'));
                prop_assert!(!next.starts_with("//"));
                prop_assert!(!next.contains('\\'));
                prop_assert!(next.bytes().all(|b| b.is_ascii_graphic()));
                let base = url::Url::parse("https://console.example/").map_err(|e| TestCaseError::fail(e.to_string()))?;
                let joined = base.join(next).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(joined.host_str(), Some("console.example"));
            }
        }

        #[test]
        fn prefixed_slashes_and_schemes_never_pass(host in "[a-z]{1,10}", sep in prop::sample::select(vec!["//", "/\\", "\\\\", "\\/", "https://", "/\t/"])) {
            let candidate = format!("{sep}{host}.example/x");
            prop_assert_eq!(safe_next(&candidate), None);
        }
    }
}
