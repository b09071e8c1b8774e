//! Backoff for infrastructure failures (store down, conflicts): retry, never skip.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// Exponential backoff with jitter between `initial` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(20),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// Delay before retry number `attempt` (1-based): `initial * 2^(attempt-1)`, capped, plus up
    /// to 25% jitter so retrying lanes do not move in lockstep.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1_u32 << attempt.saturating_sub(1).min(16);
        let base = self.initial.saturating_mul(factor).min(self.max);
        let jitter_ms = u64::try_from(base.as_millis() / 4).unwrap_or(0);
        base + Duration::from_millis(rand::thread_rng().gen_range(0..=jitter_ms))
    }
}

/// The runner is shutting down: stop what you are doing, leave the checkpoint where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Sleep `delay`, or return `Stopped` as soon as `shutdown` is cancelled.
pub async fn pause(delay: Duration, shutdown: &CancellationToken) -> Result<(), Stopped> {
    tokio::select! {
        () = shutdown.cancelled() => Err(Stopped),
        () = tokio::time::sleep(delay) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        };
        let first = backoff.delay(1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        let third = backoff.delay(3);
        assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(500));
        let late = backoff.delay(40);
        assert!(late >= Duration::from_millis(1_000) && late <= Duration::from_millis(1_250));
    }

    #[tokio::test]
    async fn a_pause_ends_at_shutdown() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert_eq!(
            pause(Duration::from_secs(60), &shutdown).await,
            Err(Stopped)
        );
    }
}
