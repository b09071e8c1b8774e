//! Repeated error lines, bounded: a store that fails every request (a full disk) would otherwise
//! write one ERROR line per request. A [`Throttle`] per call site lets one line a second through and
//! counts the rest, and the next line that passes says how many were left out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// At most one line per this many milliseconds from one call site.
const INTERVAL_MS: u64 = 1_000;

/// One call site's allowance, kept in a `static`.
#[derive(Debug)]
pub struct Throttle {
    /// When the last line was let through (ms since the epoch); `u64::MAX` = never.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    #[must_use]
    pub const fn new() -> Self {
        Self {
            last_ms: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines left out since the last one)` when a line may be written now, else `None` (and
    /// this one is counted as left out).
    pub fn admit(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX - 1));
        self.admit_at(now)
    }

    fn admit_at(&self, now_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_ms >= last.saturating_add(INTERVAL_MS);
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

/// `tracing::error!` at most once a second from this call site; each line that passes carries
/// `left_out`, the lines left out since the last one. The caller's crate must depend on `tracing`.
#[macro_export]
macro_rules! error_throttled {
    ($($field:tt)*) => {{
        static LINES: $crate::throttle::Throttle = $crate::throttle::Throttle::new();
        if let Some(left_out) = LINES.admit() {
            ::tracing::error!(left_out, $($field)*);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_passes_and_the_next_says_how_many_were_left_out() {
        let throttle = Throttle::new();
        assert_eq!(throttle.admit_at(10_000), Some(0), "the first line passes");
        let left_out = (0..8_736).filter(|i| throttle.admit_at(10_000 + i / 10).is_some());
        assert_eq!(left_out.count(), 0, "within the second, none pass");
        assert_eq!(throttle.admit_at(10_999), None);
        assert_eq!(throttle.admit_at(11_000), Some(8_737));
        assert_eq!(throttle.admit_at(12_500), Some(0));
    }
}
