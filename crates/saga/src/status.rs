//! A cheap, cloneable view of the saga runner for `/metrics` and `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use eventlog::Position;
use serde::Serialize;

use crate::gateway::{CircuitState, PaymentGateway};

#[derive(Default)]
struct Counters {
    running: AtomicBool,
    checkpoint: AtomicU64,
    last_seen: AtomicU64,
    in_flight: AtomicU64,
    timers_armed: AtomicU64,
    refunds_pending: AtomicU64,
    triggers_handled: AtomicU64,
    timers_fired: AtomicU64,
    actions_parked: AtomicU64,
    charges_completed: AtomicU64,
    charges_deferred: AtomicU64,
    charges_failed: AtomicU64,
    refunds_completed: AtomicU64,
    payouts_sent: AtomicU64,
    payouts_deferred: AtomicU64,
    payouts_failed: AtomicU64,
}

/// Live figures of one saga runner. Clone it freely; every clone sees the same runner.
#[derive(Clone)]
pub struct SagaStatus {
    counters: Arc<Counters>,
    gateway: Option<Arc<dyn PaymentGateway>>,
}

/// A point-in-time copy of [`SagaStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SagaStatusSnapshot {
    pub running: bool,
    /// Last global position fully handled and committed.
    pub checkpoint: Position,
    /// Last global position read from the log.
    pub last_seen: Position,
    /// Events, timers and refund retries being handled right now.
    pub in_flight: u64,
    pub timers_armed: u64,
    pub refunds_pending: u64,
    pub triggers_handled: u64,
    pub timers_fired: u64,
    /// Actions rejected for good or poison events, kept for operators (see `TimerStore::parked`).
    pub actions_parked: u64,
    pub charges_completed: u64,
    pub charges_deferred: u64,
    pub charges_failed: u64,
    pub refunds_completed: u64,
    pub payouts_sent: u64,
    pub payouts_deferred: u64,
    pub payouts_failed: u64,
    pub circuit: Option<CircuitState>,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn set(counter: &AtomicU64, value: u64) {
    counter.store(value, Ordering::Relaxed);
}

impl SagaStatus {
    pub(crate) fn new(gateway: Option<Arc<dyn PaymentGateway>>) -> Self {
        Self {
            counters: Arc::default(),
            gateway,
        }
    }

    #[must_use]
    pub fn snapshot(&self) -> SagaStatusSnapshot {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SagaStatusSnapshot {
            running: c.running.load(Ordering::Relaxed),
            checkpoint: get(&c.checkpoint),
            last_seen: get(&c.last_seen),
            in_flight: get(&c.in_flight),
            timers_armed: get(&c.timers_armed),
            refunds_pending: get(&c.refunds_pending),
            triggers_handled: get(&c.triggers_handled),
            timers_fired: get(&c.timers_fired),
            actions_parked: get(&c.actions_parked),
            charges_completed: get(&c.charges_completed),
            charges_deferred: get(&c.charges_deferred),
            charges_failed: get(&c.charges_failed),
            refunds_completed: get(&c.refunds_completed),
            payouts_sent: get(&c.payouts_sent),
            payouts_deferred: get(&c.payouts_deferred),
            payouts_failed: get(&c.payouts_failed),
            circuit: self.gateway.as_ref().and_then(|g| g.circuit_state()),
        }
    }

    /// Last global position fully handled and committed.
    #[must_use]
    pub fn checkpoint(&self) -> Position {
        self.counters.checkpoint.load(Ordering::Relaxed)
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.counters.running.store(running, Ordering::Relaxed);
    }

    pub(crate) fn set_progress(&self, checkpoint: Position, last_seen: Position, in_flight: usize) {
        set(&self.counters.checkpoint, checkpoint);
        set(&self.counters.last_seen, last_seen);
        set(&self.counters.in_flight, in_flight as u64);
    }

    pub(crate) fn set_agenda(&self, timers_armed: usize, refunds_pending: usize) {
        set(&self.counters.timers_armed, timers_armed as u64);
        set(&self.counters.refunds_pending, refunds_pending as u64);
    }

    pub(crate) fn count_trigger(&self) {
        add(&self.counters.triggers_handled, 1);
    }

    pub(crate) fn count_timer_fired(&self) {
        add(&self.counters.timers_fired, 1);
    }

    pub(crate) fn count_parked(&self, n: usize) {
        add(&self.counters.actions_parked, n as u64);
    }

    pub(crate) fn count_charge_completed(&self) {
        add(&self.counters.charges_completed, 1);
    }

    pub(crate) fn count_charge_deferred(&self) {
        add(&self.counters.charges_deferred, 1);
    }

    pub(crate) fn count_charge_failed(&self) {
        add(&self.counters.charges_failed, 1);
    }

    pub(crate) fn count_refund(&self) {
        add(&self.counters.refunds_completed, 1);
    }

    pub(crate) fn count_payout_sent(&self) {
        add(&self.counters.payouts_sent, 1);
    }

    pub(crate) fn count_payout_deferred(&self) {
        add(&self.counters.payouts_deferred, 1);
    }

    pub(crate) fn count_payout_failed(&self) {
        add(&self.counters.payouts_failed, 1);
    }
}
