//! What `/readyz` remembers between probes, beyond what the stores answer at the moment: whether the
//! process's writes are failing ([`WriteHealth`]: a full disk answers every write 503 while the stores
//! still read fine), and whether the views have caught up once since the start ([`CatchUp`]: views
//! rebuilt after a start are within the lag bound long before they hold everything).
//!
//! Must not: probe the stores (ops does), nor decide the HTTP answer.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A write failure this recent, with no write succeeding since, makes the process not ready.
pub const WRITE_FAILURE_WINDOW_MS: u64 = 30_000;

/// The outcomes of this process's writes (POST, PUT, PATCH, DELETE) as their answers said. Which
/// came last is told by the order they were noted in, not by their clocks: a write that fails at
/// once (a full disk) lands in the same millisecond as the success before it.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// Notes so far: each note takes the next number.
    notes: AtomicU64,
    /// The number of the last 2xx write's note, 0 = none yet.
    last_ok: AtomicU64,
    /// ... and of the last 5xx write's, with its status and when (milliseconds since the epoch).
    last_failed: AtomicU64,
    last_failed_ms: AtomicU64,
    last_failed_status: AtomicU16,
}

impl WriteHealth {
    /// Note a write's answer (4xx answers say nothing about the stores and are not noted).
    pub fn note(&self, status: u16, now_ms: u64) {
        let failed = match status {
            200..=299 => false,
            500..=599 => true,
            _ => return,
        };
        let n = self.notes.fetch_add(1, Ordering::Relaxed) + 1;
        if failed {
            self.last_failed_status.store(status, Ordering::Relaxed);
            self.last_failed_ms.store(now_ms, Ordering::Relaxed);
            self.last_failed.fetch_max(n, Ordering::Relaxed);
        } else {
            self.last_ok.fetch_max(n, Ordering::Relaxed);
        }
    }

    /// Why the process is not ready for writes, if it is not: the last write failed within the
    /// window and none has succeeded since.
    #[must_use]
    pub fn failing(&self, now_ms: u64) -> Option<String> {
        let failed = self.last_failed.load(Ordering::Relaxed);
        let ok = self.last_ok.load(Ordering::Relaxed);
        let age = now_ms.saturating_sub(self.last_failed_ms.load(Ordering::Relaxed));
        (failed > ok && age <= WRITE_FAILURE_WINDOW_MS).then(|| {
            format!(
                "writes are failing: the last one answered {} {:.1} s ago and none has succeeded \
                 since (a full disk or an unreachable store)",
                self.last_failed_status.load(Ordering::Relaxed),
                age as f64 / 1000.0
            )
        })
    }
}

/// Views that must reach the log's head as it was when the process started before the process
/// calls itself ready; after that only the lag bound applies. The default asks nothing.
#[derive(Debug, Default)]
pub struct CatchUp {
    target: Option<u64>,
    done: AtomicBool,
}

impl CatchUp {
    /// Views must reach `head`, the log's head at the start.
    #[must_use]
    pub fn to(head: u64) -> Self {
        Self {
            target: Some(head),
            done: AtomicBool::new(false),
        }
    }

    /// `Err(target)` while views at `applied` are still short of the head at the start.
    pub fn check(&self, applied: u64) -> Result<(), u64> {
        let Some(target) = self.target else {
            return Ok(());
        };
        if self.done.load(Ordering::Relaxed) || applied >= target {
            self.done.store(true, Ordering::Relaxed);
            return Ok(());
        }
        Err(target)
    }
}

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_write_makes_the_process_not_ready_until_a_write_succeeds() {
        let writes = WriteHealth::default();
        assert_eq!(writes.failing(1_000), None, "nothing written yet");
        writes.note(201, 1_000);
        writes.note(409, 1_500);
        assert_eq!(writes.failing(2_000), None, "a refusal is not a failure");
        writes.note(503, 2_000);
        let reason = writes.failing(2_500).expect("failing");
        assert!(reason.contains("503"), "{reason}");
        writes.note(503, 3_000);
        assert!(writes.failing(3_000 + WRITE_FAILURE_WINDOW_MS).is_some());
        assert_eq!(
            writes.failing(3_001 + WRITE_FAILURE_WINDOW_MS),
            None,
            "an old failure with no write since does not hold readiness for ever"
        );
        writes.note(202, 4_000);
        assert_eq!(writes.failing(4_001), None, "a write succeeded since");
    }

    #[test]
    fn a_write_failing_in_the_millisecond_of_the_last_success_is_the_later_one() {
        let writes = WriteHealth::default();
        writes.note(202, 5_000);
        writes.note(503, 5_000);
        assert!(writes.failing(5_000).is_some(), "failed after the success");
        writes.note(202, 5_000);
        assert_eq!(writes.failing(5_000), None, "succeeded after the failure");
    }

    #[test]
    fn views_rebuilt_after_a_start_are_not_ready_until_they_reach_the_head_at_the_start() {
        let catch_up = CatchUp::to(9_090);
        assert_eq!(catch_up.check(2_000), Err(9_090));
        assert_eq!(catch_up.check(9_000), Err(9_090));
        assert_eq!(catch_up.check(9_090), Ok(()));
        assert_eq!(
            catch_up.check(10),
            Ok(()),
            "once caught up, the lag bound rules"
        );
        assert_eq!(CatchUp::to(1_000_000).check(1_000_000), Ok(()));
        assert_eq!(
            CatchUp::default().check(0),
            Ok(()),
            "asks nothing by default"
        );
    }
}
