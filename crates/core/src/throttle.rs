//! Sign-in and enrolment throttling (issue 19, ASVS 2.2.1: anti-automation without a
//! denial of service). Pure: the store counts recent failures, this decides.
//!
//! - **Per (account, source)**: a source that failed [`MAX_PER_ACCOUNT_SOURCE`] times for
//!   one account in the window is refused for that account only. Failures from one
//!   address never lock the owner out from another.
//! - **Per source**: a source that failed [`MAX_PER_SOURCE`] times in the window, over any
//!   accounts, is refused.
//! - **Per account**: no lockout. Failures for the account from *other* sources (a
//!   distributed guess, which no per-source cap stops) slow every further failure's
//!   answer down with an exponential back-off ([`failure_delay_ms`]). A successful
//!   attempt is never delayed, so the owner signs in at full speed during an attack.

/// How far back failures count.
pub const WINDOW_MS: i64 = 3_600_000;
/// Failures allowed per (account, source) in the window.
pub const MAX_PER_ACCOUNT_SOURCE: i64 = 100;
/// Failures allowed per source over all accounts in the window.
pub const MAX_PER_SOURCE: i64 = 300;
/// Failures from other sources an account takes before its failures are slowed down.
pub const BACKOFF_FREE: i64 = 10;
/// The first back-off step, doubled every [`BACKOFF_STEP`] further failures.
pub const BACKOFF_BASE_MS: u64 = 50;
pub const BACKOFF_STEP: i64 = 10;
/// The longest a failure's answer is held back.
pub const BACKOFF_MAX_MS: u64 = 2_000;

/// Recent failures, as the store counted them over [`WINDOW_MS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    /// This account from this source.
    pub account_source: i64,
    /// This source, any account.
    pub source: i64,
    /// This account from every other source.
    pub account_elsewhere: i64,
}

/// Which cap refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This source failed too often for this account.
    AccountSource,
    /// This source failed too often overall.
    Source,
}

impl Refusal {
    /// The `reason` recorded in the audit row.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::AccountSource => "account from this address",
            Refusal::Source => "address",
        }
    }
}

/// May this attempt go ahead? Only the per-source caps refuse; the account as a whole
/// is never locked.
pub fn decide_attempt(f: &Failures) -> Result<(), Refusal> {
    if f.account_source >= MAX_PER_ACCOUNT_SOURCE {
        return Err(Refusal::AccountSource);
    }
    if f.source >= MAX_PER_SOURCE {
        return Err(Refusal::Source);
    }
    Ok(())
}

/// How long to hold back the answer to a *failed* attempt: nothing until the account has
/// [`BACKOFF_FREE`] failures from other sources, then [`BACKOFF_BASE_MS`] doubling every
/// [`BACKOFF_STEP`] failures, at most [`BACKOFF_MAX_MS`].
pub fn failure_delay_ms(f: &Failures) -> u64 {
    let over = f.account_elsewhere - BACKOFF_FREE;
    if over < 0 {
        return 0;
    }
    let doublings = (over / BACKOFF_STEP).min(16) as u32;
    BACKOFF_BASE_MS
        .saturating_mul(1u64 << doublings)
        .min(BACKOFF_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(account_source: i64, source: i64, account_elsewhere: i64) -> Failures {
        Failures {
            account_source,
            source,
            account_elsewhere,
        }
    }

    #[test]
    fn only_the_failing_source_is_refused() {
        assert_eq!(decide_attempt(&f(0, 0, 0)), Ok(()));
        assert_eq!(decide_attempt(&f(99, 99, 0)), Ok(()));
        assert_eq!(decide_attempt(&f(100, 100, 0)), Err(Refusal::AccountSource));
        assert_eq!(decide_attempt(&f(0, 300, 0)), Err(Refusal::Source));
        assert_eq!(decide_attempt(&f(100, 300, 0)), Err(Refusal::AccountSource));
        // The owner from a clean address, whatever the account took from elsewhere.
        for elsewhere in [0, 100, 10_000, i64::MAX] {
            assert_eq!(decide_attempt(&f(0, 0, elsewhere)), Ok(()), "{elsewhere}");
        }
    }

    #[test]
    fn the_account_backs_off_instead_of_locking() {
        let cases = [
            (0, 0),
            (9, 0),
            (10, 50),
            (19, 50),
            (20, 100),
            (30, 200),
            (40, 400),
            (50, 800),
            (60, 1_600),
            (70, 2_000),
            (10_000, 2_000),
            (i64::MAX, 2_000),
        ];
        for (elsewhere, want) in cases {
            assert_eq!(failure_delay_ms(&f(0, 0, elsewhere)), want, "{elsewhere}");
        }
        // Failures from the same source are the per-source cap's business, not the back-off's.
        assert_eq!(failure_delay_ms(&f(99, 299, 0)), 0);
    }

    #[test]
    fn the_delay_never_decreases_as_failures_grow() {
        let mut last = 0;
        for n in 0..500 {
            let d = failure_delay_ms(&f(0, 0, n));
            assert!(d >= last && d <= BACKOFF_MAX_MS, "{n}: {d}");
            last = d;
        }
    }
}
