//! A circuit breaker in front of the payment gateway.
//!
//! closed --(N consecutive unavailable answers)--> open --(cool-down)--> half-open: one probe goes
//! through --(success)--> closed, --(failure)--> open again. While open, calls fail fast with
//! [`GatewayError::CircuitOpen`] without touching the gateway; the saga defers the payment.
//! Charges, refunds and payouts go through the one breaker: they reach the same gateway.
//! A decline is a healthy answer and never trips the breaker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::gateway::{
    ChargeReceipt, CircuitState, GatewayError, PaymentGateway, PayoutReceipt, RefundReceipt,
};

/// When the breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive unavailable answers that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before one probe is let through.
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// The breaker's state machine, shareable between the gateway decorator and metrics.
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    phase: Mutex<Phase>,
    opened: AtomicU64,
    rejected: AtomicU64,
}

impl CircuitBreaker {
    #[must_use]
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
            opened: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// The state as metrics should show it (an open circuit past its cool-down shows half-open).
    #[must_use]
    pub fn state(&self) -> CircuitState {
        match *self.phase() {
            Phase::Closed { .. } => CircuitState::Closed,
            Phase::Open { until } if Instant::now() < until => CircuitState::Open,
            Phase::Open { .. } | Phase::HalfOpen => CircuitState::HalfOpen,
        }
    }

    /// How many times the circuit has opened.
    #[must_use]
    pub fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// How many calls were refused without reaching the gateway.
    #[must_use]
    pub fn calls_refused(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        // The phase is a plain value: a panic elsewhere cannot leave it half-written.
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Let a call through (closed, or the single half-open probe) or refuse it.
    fn admit(&self) -> Result<Probe<'_>, GatewayError> {
        let mut phase = self.phase();
        match *phase {
            Phase::Closed { .. } => Ok(Probe::new(self)),
            Phase::Open { until } if Instant::now() >= until => {
                *phase = Phase::HalfOpen;
                Ok(Probe::new(self))
            }
            Phase::Open { .. } | Phase::HalfOpen => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Err(GatewayError::CircuitOpen)
            }
        }
    }

    fn record(&self, healthy: bool) {
        let mut phase = self.phase();
        let next = match (*phase, healthy) {
            (_, true) => Phase::Closed { failures: 0 },
            (Phase::Closed { failures }, false) if failures + 1 < self.policy.failure_threshold => {
                Phase::Closed {
                    failures: failures + 1,
                }
            }
            (Phase::Open { until }, false) => Phase::Open { until },
            (Phase::Closed { .. } | Phase::HalfOpen, false) => {
                self.opened.fetch_add(1, Ordering::Relaxed);
                Phase::Open {
                    until: Instant::now() + self.policy.cool_down,
                }
            }
        };
        *phase = next;
    }
}

/// One admitted call. Dropped without an outcome (the call was cancelled), it counts as a failure,
/// so a cancelled half-open probe can never wedge the breaker.
struct Probe<'a> {
    breaker: &'a CircuitBreaker,
    settled: bool,
}

impl<'a> Probe<'a> {
    fn new(breaker: &'a CircuitBreaker) -> Self {
        Self {
            breaker,
            settled: false,
        }
    }

    fn settle<T>(mut self, result: Result<T, GatewayError>) -> Result<T, GatewayError> {
        self.settled = true;
        let healthy = !matches!(result, Err(GatewayError::Unavailable(_)));
        self.breaker.record(healthy);
        result
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.record(false);
        }
    }
}

/// A payment gateway behind a circuit breaker.
pub struct BreakerGateway<G> {
    inner: G,
    breaker: Arc<CircuitBreaker>,
}

impl<G: PaymentGateway> BreakerGateway<G> {
    pub fn new(inner: G, policy: BreakerPolicy) -> Self {
        Self {
            inner,
            breaker: Arc::new(CircuitBreaker::new(policy)),
        }
    }

    /// The breaker, for metrics.
    #[must_use]
    pub fn breaker(&self) -> Arc<CircuitBreaker> {
        Arc::clone(&self.breaker)
    }
}

#[async_trait]
impl<G: PaymentGateway> PaymentGateway for BreakerGateway<G> {
    async fn charge(
        &self,
        idempotency_key: &str,
        amount: i64,
        currency: &str,
    ) -> Result<ChargeReceipt, GatewayError> {
        let probe = self.breaker.admit()?;
        probe.settle(self.inner.charge(idempotency_key, amount, currency).await)
    }

    async fn refund(&self, charge_ref: &str, amount: i64) -> Result<RefundReceipt, GatewayError> {
        let probe = self.breaker.admit()?;
        probe.settle(self.inner.refund(charge_ref, amount).await)
    }

    async fn payout(
        &self,
        idempotency_key: &str,
        payee: &str,
        amount: i64,
        currency: &str,
    ) -> Result<PayoutReceipt, GatewayError> {
        let probe = self.breaker.admit()?;
        probe.settle(
            self.inner
                .payout(idempotency_key, payee, amount, currency)
                .await,
        )
    }

    fn circuit_state(&self) -> Option<CircuitState> {
        Some(self.breaker.state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cool_down_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(BreakerPolicy {
            failure_threshold: threshold,
            cool_down: Duration::from_millis(cool_down_ms),
        })
    }

    fn fail(b: &CircuitBreaker) {
        let probe = b.admit().expect("admitted");
        let _ = probe.settle::<()>(Err(GatewayError::Unavailable("down".into())));
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, 60_000);
        fail(&b);
        fail(&b);
        let probe = b.admit().expect("still closed");
        let _ = probe.settle(Ok(()));
        fail(&b);
        fail(&b);
        assert_eq!(
            b.state(),
            CircuitState::Closed,
            "a success resets the count"
        );
        fail(&b);
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.admit().err(), Some(GatewayError::CircuitOpen));
        assert_eq!((b.times_opened(), b.calls_refused()), (1, 1));
    }

    #[test]
    fn a_decline_is_a_healthy_answer() {
        let b = breaker(1, 60_000);
        let probe = b.admit().expect("closed");
        let _ = probe.settle::<()>(Err(GatewayError::Declined("no".into())));
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let b = breaker(1, 20);
        fail(&b);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let probe = b.admit().expect("the probe");
        assert_eq!(
            b.admit().err(),
            Some(GatewayError::CircuitOpen),
            "only one probe"
        );
        let _ = probe.settle(Ok(()));
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn a_failed_or_cancelled_probe_opens_again() {
        let b = breaker(1, 20);
        fail(&b);
        std::thread::sleep(Duration::from_millis(30));
        fail(&b);
        assert_eq!(b.state(), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(30));
        drop(b.admit().expect("probe"));
        assert_eq!(
            b.state(),
            CircuitState::Open,
            "a dropped probe counts as a failure"
        );
        assert_eq!(b.times_opened(), 3);
    }
}
