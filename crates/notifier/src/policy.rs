//! When a delivery is tried again, and when it is given up on. Timeouts, connection errors, 5xx,
//! 408 and 429 are retried with exponential backoff and jitter (`backon`), from `base` doubling up
//! to `max_delay`; once the next attempt would fall later than `park_after` from the first one
//! (default 24 h), the delivery is parked. Any other answer (a 3xx - redirects are not followed -,
//! a 4xx, a target refused by the guard) parks it at once: sending it again would not change it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};

/// The retry and parking policy of the webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_delay: Duration,
    pub park_after: Duration,
    /// The whole of one attempt (connect, send, answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            park_after: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered with this status.
    Answered(u16),
    /// No answer in time.
    TimedOut,
    /// No connection (refused, reset, DNS failure).
    Unreachable(String),
    /// The guard refused the target's addresses.
    Refused(String),
}

/// What happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    RetryAt(DateTime<Utc>),
    Park,
}

impl Outcome {
    fn retryable(&self) -> bool {
        match self {
            Self::Answered(code) => *code >= 500 || *code == 408 || *code == 429,
            Self::TimedOut | Self::Unreachable(_) => true,
            Self::Refused(_) => false,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`, after `attempts` (>= 1) failed ones: jittered.
    #[must_use]
    pub fn delay(&self, attempts: u32) -> Duration {
        let skip = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(skip)
            .unwrap_or(self.max_delay)
    }

    /// The verdict on attempt number `attempts` (counting it), the first made at `first`.
    #[must_use]
    pub fn verdict(
        &self,
        outcome: &Outcome,
        attempts: u32,
        first: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Verdict {
        if matches!(outcome, Outcome::Answered(code) if (200..300).contains(code)) {
            return Verdict::Delivered;
        }
        if !outcome.retryable() {
            return Verdict::Park;
        }
        let wait =
            chrono::Duration::from_std(self.delay(attempts)).unwrap_or(chrono::Duration::MAX);
        let next = now + wait;
        let limit = chrono::Duration::from_std(self.park_after).unwrap_or(chrono::Duration::MAX);
        if next - first > limit {
            Verdict::Park
        } else {
            Verdict::RetryAt(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            park_after: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn delays_double_with_jitter_up_to_the_cap() {
        let p = policy();
        for attempts in 1..=12u32 {
            let nominal = Duration::from_secs(1u64 << (attempts - 1).min(10)).min(p.max_delay);
            let d = p.delay(attempts);
            assert!(d >= nominal, "attempt {attempts}: {d:?} < {nominal:?}");
            assert!(
                d <= nominal * 2,
                "attempt {attempts}: {d:?} > 2 x {nominal:?}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| p.delay(3)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }

    #[test]
    fn what_is_retried_and_what_parks_at_once() {
        let p = policy();
        let t0 = Utc::now();
        assert_eq!(
            p.verdict(&Outcome::Answered(204), 1, t0, t0),
            Verdict::Delivered
        );
        for retried in [
            Outcome::Answered(500),
            Outcome::Answered(503),
            Outcome::Answered(429),
            Outcome::Answered(408),
            Outcome::TimedOut,
            Outcome::Unreachable("refused".into()),
        ] {
            assert!(
                matches!(p.verdict(&retried, 1, t0, t0), Verdict::RetryAt(at) if at > t0),
                "{retried:?}"
            );
        }
        for parked in [
            Outcome::Answered(400),
            Outcome::Answered(410),
            Outcome::Answered(301),
            Outcome::Refused("127.0.0.1".into()),
        ] {
            assert_eq!(p.verdict(&parked, 1, t0, t0), Verdict::Park, "{parked:?}");
        }
    }

    #[test]
    fn a_delivery_parks_once_its_next_try_would_pass_the_policy() {
        let p = policy();
        let first = Utc::now();
        let late = first + chrono::Duration::seconds(3590);
        assert_eq!(
            p.verdict(&Outcome::TimedOut, 40, first, late),
            Verdict::Park
        );
        let early = first + chrono::Duration::seconds(10);
        assert!(matches!(
            p.verdict(&Outcome::TimedOut, 3, first, early),
            Verdict::RetryAt(_)
        ));
    }
}
