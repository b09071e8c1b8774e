//! The saga runner's durable progress: its checkpoint in the global log, the timers its sagas have
//! armed, the refunds waiting for the gateway to come back, and the actions it had to park.
//!
//! Timers are an index of what the saga streams say (`SagaState::timers`), kept per reservation and
//! replaced whole after every handled trigger, in the same transaction that advances the checkpoint.
//! A restart loads them and fires what is due; a lost index could be rebuilt from the saga streams.
//! The runner keeps in memory only the timers due soon; later ones stay here until they come near
//! ([`TimerStore::armed_before`]).

mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::saga::TimerKind;
use domain::{ReservationId, Timestamp};
use eventlog::Position;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use sqlite::SqliteTimerStore;

/// A timer a saga armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArmedTimer {
    pub reservation_id: ReservationId,
    pub kind: TimerKind,
    pub due_at: Timestamp,
}

/// A refund the gateway could not take yet; retried with backoff until it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRetry {
    /// The saga action that asked for the refund (also the causation id of its outcome).
    pub action_id: Uuid,
    pub reservation_id: ReservationId,
    pub correlation_id: Uuid,
    pub charge_ref: String,
    pub amount: i64,
    /// Refund attempts made so far.
    pub attempt: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: String,
}

/// Something the runner could not do and will not retry: a rejected saga action or a poison event.
/// Kept for operators (a dead-letter place), never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedAction {
    pub reservation_id: Option<ReservationId>,
    /// The trigger (event id or timer id) being handled.
    pub trigger_id: Uuid,
    /// What was attempted, e.g. the saga action as JSON or the event type.
    pub attempted: String,
    pub error: String,
    pub parked_at: Timestamp,
}

/// Everything the runner needs to resume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SagaProgress {
    /// Last global position fully handled (0: nothing yet).
    pub checkpoint: Position,
    pub timers: Vec<ArmedTimer>,
    pub refunds: Vec<RefundRetry>,
}

/// One batch of progress, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgressUpdate {
    /// Advance the checkpoint to this position (never moves it back).
    pub checkpoint: Option<Position>,
    /// Replace a reservation's armed timers with these (empty: none left).
    pub timers: Vec<(ReservationId, BTreeMap<TimerKind, Timestamp>)>,
    /// Refunds to (re)schedule, keyed by `action_id`.
    pub refunds_due: Vec<RefundRetry>,
    /// Refunds done, by `action_id`.
    pub refunds_settled: Vec<Uuid>,
    pub parked: Vec<ParkedAction>,
}

impl ProgressUpdate {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.checkpoint.is_none()
            && self.timers.is_empty()
            && self.refunds_due.is_empty()
            && self.refunds_settled.is_empty()
            && self.parked.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TimerStoreError {
    #[error("timer store unavailable: {0}")]
    Unavailable(String),
    #[error("timer store corrupt: {0}")]
    Corrupt(String),
}

/// Durable saga progress. One store per runner (per shard when scaled out).
#[async_trait]
pub trait TimerStore: Send + Sync + 'static {
    /// The checkpoint, armed timers and pending refunds, as last committed.
    async fn load(&self) -> Result<SagaProgress, TimerStoreError>;

    /// Every armed timer of the reservations that have one due before `before`, as last
    /// committed: how the runner takes in the timers it keeps only here until they come near.
    async fn armed_before(&self, before: Timestamp) -> Result<Vec<ArmedTimer>, TimerStoreError>;

    /// Apply `update` atomically: all of it or nothing.
    async fn commit(&self, update: ProgressUpdate) -> Result<(), TimerStoreError>;

    /// The most recently parked actions, newest first, at most `limit`.
    async fn parked(&self, limit: usize) -> Result<Vec<ParkedAction>, TimerStoreError>;
}
