//! Where a token stands (SPEC §8): in grace while a previous credential still works, then
//! by age against its max age. The rule only; the words and colours are the pages'.

pub const DAY_MS: i64 = 86_400_000;
/// "Expiring soon" starts this long before a token's max age (or a quarter of the max
/// age, when that is shorter).
pub const EXPIRING_SOON_MS: i64 = 14 * DAY_MS;

/// Where a token stands. Precedence: a previous credential still working, then age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    /// The previous credential keeps working until `until`.
    InGrace {
        until: i64,
    },
    /// Reaches its max age at `at`.
    ExpiringSoon {
        at: i64,
    },
    /// Passed its max age at `since`.
    Overdue {
        since: i64,
    },
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::InGrace { .. } => "in_grace",
            TokenState::ExpiringSoon { .. } => "expiring_soon",
            TokenState::Overdue { .. } => "overdue",
        }
    }
}

/// The state of a token whose current credential started at `since`, given its max age
/// and the end of its previous credential's grace period, at `now`.
pub fn token_state(
    now: i64,
    since: i64,
    max_age_days: Option<i64>,
    grace_until: Option<i64>,
) -> TokenState {
    if let Some(until) = grace_until.filter(|g| *g > now) {
        return TokenState::InGrace { until };
    }
    match expires_at(since, max_age_days) {
        None => TokenState::Active,
        Some(at) if at <= now => TokenState::Overdue { since: at },
        Some(at) if at - now <= soon_window(max_age_days) => TokenState::ExpiringSoon { at },
        Some(_) => TokenState::Active,
    }
}

pub fn expires_at(since: i64, max_age_days: Option<i64>) -> Option<i64> {
    max_age_days
        .filter(|d| *d > 0)
        .map(|d| since.saturating_add(d.saturating_mul(DAY_MS)))
}

fn soon_window(max_age_days: Option<i64>) -> i64 {
    max_age_days.map_or(EXPIRING_SOON_MS, |d| {
        (d.saturating_mul(DAY_MS) / 4).min(EXPIRING_SOON_MS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * DAY_MS;

    #[test]
    fn state_follows_grace_then_age() {
        // (what, current since, max age days, grace until, state)
        type Case = (&'static str, i64, Option<i64>, Option<i64>, TokenState);
        let cases: [Case; 8] = [
            (
                "no max age",
                NOW - 900 * DAY_MS,
                None,
                None,
                TokenState::Active,
            ),
            ("young", NOW - DAY_MS, Some(90), None, TokenState::Active),
            (
                "within 14 days of 90",
                NOW - 80 * DAY_MS,
                Some(90),
                None,
                TokenState::ExpiringSoon {
                    at: NOW + 10 * DAY_MS,
                },
            ),
            (
                "a quarter of a short max age",
                NOW - 3 * DAY_MS,
                Some(4),
                None,
                TokenState::ExpiringSoon { at: NOW + DAY_MS },
            ),
            (
                "short max age, early",
                NOW - DAY_MS,
                Some(8),
                None,
                TokenState::Active,
            ),
            (
                "past max age",
                NOW - 91 * DAY_MS,
                Some(90),
                None,
                TokenState::Overdue {
                    since: NOW - DAY_MS,
                },
            ),
            (
                "grace wins over age",
                NOW - 91 * DAY_MS,
                Some(90),
                Some(NOW + 1),
                TokenState::InGrace { until: NOW + 1 },
            ),
            (
                "an ended grace does not count",
                NOW - DAY_MS,
                Some(90),
                Some(NOW),
                TokenState::Active,
            ),
        ];
        for (what, since, max_age, grace, want) in cases {
            assert_eq!(token_state(NOW, since, max_age, grace), want, "{what}");
        }
    }
}
