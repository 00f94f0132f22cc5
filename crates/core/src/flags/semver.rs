//! Semantic versions for the `semver_*` condition operators: parse and compare by SemVer
//! 2.0.0 precedence, without allocating (evaluation calls this per condition).

use std::cmp::Ordering;

/// `MAJOR.MINOR.PATCH[-prerelease][+build]`, an optional leading `v`; build is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version<'a> {
    major: u64,
    minor: u64,
    patch: u64,
    pre: &'a str,
}

impl<'a> Version<'a> {
    pub(crate) fn parse(text: &'a str) -> Option<Self> {
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let text = match text.split_once('+') {
            Some((core, build)) if valid_identifiers(build) => core,
            Some(_) => return None,
            None => text,
        };
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) if valid_identifiers(pre) => (core, pre),
            Some(_) => return None,
            None => (text, ""),
        };
        let mut parts = core.split('.');
        let major = number(parts.next()?)?;
        let minor = number(parts.next()?)?;
        let patch = number(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }
}

fn number(part: &str) -> Option<u64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn valid_identifiers(s: &str) -> bool {
    s.split('.')
        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(self.pre, other.pre))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A release outranks its pre-releases; identifiers compare numerically when both are
/// numeric, numeric ranks below alphanumeric, and a longer list wins a tie.
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let (mut xs, mut ys) = (a.split('.'), b.split('.'));
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = compare_identifier(x, y);
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

fn compare_identifier(x: &str, y: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match (numeric(x), numeric(y)) {
        // Compare digit strings by length, then lexically: no overflow on huge numbers.
        (true, true) => {
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.cmp(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_full_versions() {
        let cases = [
            ("1.2.3", true),
            ("v1.2.3", true),
            ("1.2.3-beta.1+build.5", true),
            ("0.0.0", true),
            ("1.2", false),
            ("1.2.3.4", false),
            ("1.x.3", false),
            ("1.2.3-", false),
            ("1.2.3-be@ta", false),
            ("1.2.3+", false),
            ("", false),
            ("-1.2.3", false),
        ];
        for (text, ok) in cases {
            assert_eq!(Version::parse(text).is_some(), ok, "{text:?}");
        }
    }

    #[test]
    fn follows_semver_precedence() {
        // Each entry is lower than the next (SemVer 2.0.0 §11 example chain, and more).
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in chain.windows(2) {
            let (a, b) = (Version::parse(pair[0]), Version::parse(pair[1]));
            assert!(a.is_some() && b.is_some());
            assert_eq!(a.cmp(&b), Ordering::Less, "{} < {}", pair[0], pair[1]);
            assert_eq!(b.cmp(&a), Ordering::Greater, "{} > {}", pair[1], pair[0]);
        }
    }

    #[test]
    fn build_metadata_and_v_prefix_do_not_change_precedence() {
        let a = Version::parse("v1.2.3+build.9");
        let b = Version::parse("1.2.3");
        assert!(a.is_some());
        assert_eq!(a.cmp(&b), Ordering::Equal);
    }

    #[test]
    fn huge_numeric_prerelease_identifiers_compare_without_overflow() {
        let a = Version::parse("1.0.0-99999999999999999999999");
        let b = Version::parse("1.0.0-100000000000000000000000");
        assert!(a.is_some() && b.is_some());
        assert_eq!(a.cmp(&b), Ordering::Less);
    }
}
