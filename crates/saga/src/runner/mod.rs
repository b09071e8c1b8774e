//! The saga runtime: runs the reservation saga of `domain` against the event log.
//!
//! A coordinator reads the global log from its stored checkpoint and hands every event of a
//! `reservation-*`, `lodging-*` (about a reservation), `payment-*` or `payout-*` stream to the lane of its
//! reservation; lanes record the trigger on `saga-{reservation_id}` and send its actions.
//! Due timers and refund retries go the same way. See `coordinator` and `lane`.

mod actions;
mod agenda;
mod commands;
mod coordinator;
pub mod ids;
mod inbound;
mod lane;
mod payment;
mod payout;
mod retry;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use domain::saga::SagaPolicy;
use domain::ReservationId;
use eventlog::{ConsumerGroups, Partition, PartitionError, Repositories};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use retry::Backoff;

use crate::gateway::PaymentGateway;
use crate::status::SagaStatus;
use crate::store::{SagaProgress, TimerStore, TimerStoreError};
use actions::Actions;
use commands::Commands;
use coordinator::Coordinator;
use lane::Lane;
use payment::PaymentWorker;
use payout::PayoutWorker;

/// The slice of reservations one runner handles when several run side by side: reservation `r`
/// belongs to shard `u64::from_be_bytes(last 8 bytes of r) % count`. Each shard needs its own
/// [`TimerStore`]. Default: one shard handling everything.
pub type Shard = Partition;

/// A bad shard index or count.
pub type ShardError = PartitionError;

/// Whether `shard` handles `reservation_id`.
#[must_use]
pub fn owns(shard: Shard, reservation_id: ReservationId) -> bool {
    shard.holds(reservation_id.as_u64_pair().1)
}

/// The lane (of `lanes`) that handles `reservation_id` within a runner.
///
/// Taken from bits 32-63 of the id's low half: random in every id the platform makes (v4, v7 and
/// the v5-like ids of idempotency keys), unlike the high half of a v7 id (its first 48 bits are the
/// creation time, so every reservation of one millisecond would share a lane), and apart from the
/// bits [`owns`] reads (`low % shards`), so each shard's reservations still use every lane.
fn lane(reservation_id: ReservationId, lanes: usize) -> usize {
    let mixed = reservation_id.as_u64_pair().1 >> 32;
    usize::try_from(mixed % lanes.max(1) as u64).unwrap_or(0)
}

/// Where a runner takes its events from.
#[derive(Clone)]
pub enum Source {
    /// The whole global log, from the checkpoint in the runner's timer store; the runner keeps the
    /// reservations of its [`Shard`] and passes over the others.
    Log,
    /// A member of a consumer group (EventStoreDB: a persistent subscription pinned by correlation,
    /// i.e. by reservation): the store hands this runner its share of the reservations, and their
    /// events again if another member left them unfinished. The runner acknowledges an event once it
    /// is handled and the timers it armed are committed; the store keeps the group's position. A
    /// group is created to start after the checkpoint in the timer store (so a saga that ran on
    /// [`Source::Log`] before goes on where it was).
    Group {
        groups: Arc<dyn ConsumerGroups>,
        group: String,
        member: String,
    },
    /// No events: only the timers and refund retries in the timer store, each fired as it comes due;
    /// the runner ends by itself once none is left. For a group member leaving the group for good:
    /// the group gives its reservations to the others, but the timers it armed are in its store.
    Drain,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Log => f.write_str("Log"),
            Self::Drain => f.write_str("Drain"),
            Self::Group { group, member, .. } => f
                .debug_struct("Group")
                .field("group", group)
                .field("member", member)
                .finish_non_exhaustive(),
        }
    }
}

/// How the runner runs (the business durations are in [`SagaPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaConfig {
    pub shard: Shard,
    /// Reservations handled side by side (each reservation always in the same lane, in order).
    /// Default 256: each trigger waits for two fsynced appends in turn, so the saga keeps up with
    /// thousands of requests a second only with that many in flight (with 32 it fell 60,000 events
    /// behind in 10 s of B2 load; docs/benchmarks.md).
    pub lanes: usize,
    /// Events, timers and refund retries being handled at once, at most.
    pub max_in_flight: usize,
    /// Retry of infrastructure failures (store down, write conflicts).
    pub backoff: Backoff,
    /// Timers due within this span are kept in memory; later ones (a pending request's approval
    /// deadline, a stay's check-out) only as a fingerprint, taken in from the timer store as they
    /// come near. Default 10 minutes.
    pub near: Duration,
}

impl Default for SagaConfig {
    fn default() -> Self {
        Self {
            shard: Shard::ALL,
            lanes: 256,
            max_in_flight: 1024,
            backoff: Backoff::default(),
            near: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SagaRunError {
    #[error("saga timer store: {0}")]
    Store(#[from] TimerStoreError),
    #[error("a saga lane stopped unexpectedly")]
    LaneLost,
}

/// What the payment and payout workers both work with: the gateway they call, the commands that
/// record its outcomes, the policy their retry delays come from and the status they count on.
#[derive(Clone)]
struct WorkerParts {
    gateway: Arc<dyn PaymentGateway>,
    commands: Arc<Commands>,
    policy: SagaPolicy,
    status: SagaStatus,
}

/// The reservation process manager, its durable timers and the payment worker.
pub struct SagaRunner {
    /// The process's write model (its log is the one the runner reads).
    repositories: Repositories,
    gateway: Arc<dyn PaymentGateway>,
    timers: Arc<dyn TimerStore>,
    policy: SagaPolicy,
    config: SagaConfig,
    status: SagaStatus,
    source: Source,
}

impl SagaRunner {
    /// A runner over the process's `repositories` (built once where the process is wired and
    /// shared with the command API there), reading their log.
    pub fn new(
        repositories: Repositories,
        gateway: Arc<dyn PaymentGateway>,
        timers: Arc<dyn TimerStore>,
        policy: SagaPolicy,
        config: SagaConfig,
    ) -> Self {
        let status = SagaStatus::new(Some(Arc::clone(&gateway)));
        Self {
            repositories,
            gateway,
            timers,
            policy,
            config,
            status,
            source: Source::Log,
        }
    }

    /// Take events from `source` instead of the whole log. With a group (or draining), the store
    /// decides which reservations this runner handles, so `config.shard` is ignored.
    #[must_use]
    pub fn with_source(mut self, source: Source) -> Self {
        if !matches!(source, Source::Log) {
            self.config.shard = Shard::ALL;
        }
        self.source = source;
        self
    }

    /// A live view of this runner, for metrics; valid before, during and after `run`.
    #[must_use]
    pub fn status(&self) -> SagaStatus {
        self.status.clone()
    }

    /// Run until `shutdown` is cancelled. Resumes from the stored checkpoint and timers.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SagaRunError> {
        let stop = shutdown.child_token();
        let Some(start) = self.load_progress(&stop).await? else {
            return Ok(());
        };
        self.status.set_running(true);
        tracing::info!(
            checkpoint = start.checkpoint,
            timers = start.timers.len(),
            "saga runner started"
        );
        let commands = Arc::new(Commands::new(
            self.repositories.clone(),
            self.config.backoff,
            stop.clone(),
        ));
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (senders, mut lanes) = self.spawn_lanes(&commands, &done_tx);
        drop(done_tx);
        let coordinator = Coordinator {
            log: Arc::clone(self.repositories.log()),
            store: Arc::clone(&self.timers),
            shard: self.config.shard,
            source: self.source.clone(),
            acks: None,
            lanes: senders,
            completions: done_rx,
            status: self.status.clone(),
            max_in_flight: self.config.max_in_flight.max(1),
            backoff: self.config.backoff,
            near: chrono::TimeDelta::from_std(self.config.near).unwrap_or(chrono::TimeDelta::MAX),
            shutdown: stop.clone(),
            lane_lost: AtomicBool::new(false),
        };
        let healthy = coordinator.run(start).await;
        stop.cancel();
        while let Some(joined) = lanes.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "saga lane ended abnormally");
            }
        }
        self.status.set_running(false);
        tracing::info!("saga runner stopped");
        if healthy {
            Ok(())
        } else {
            Err(SagaRunError::LaneLost)
        }
    }

    fn spawn_lanes(
        &self,
        commands: &Arc<Commands>,
        done: &mpsc::UnboundedSender<lane::Completion>,
    ) -> (Vec<mpsc::UnboundedSender<lane::Job>>, JoinSet<()>) {
        let mut lanes = JoinSet::new();
        let mut senders = Vec::with_capacity(self.config.lanes.max(1));
        for _ in 0..self.config.lanes.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            lanes.spawn(Arc::new(self.lane(commands)).run(rx, done.clone()));
        }
        (senders, lanes)
    }

    fn lane(&self, commands: &Arc<Commands>) -> Lane {
        let parts = WorkerParts {
            gateway: Arc::clone(&self.gateway),
            commands: Arc::clone(commands),
            policy: self.policy,
            status: self.status.clone(),
        };
        let payments = PaymentWorker::new(parts.clone());
        let payouts = PayoutWorker::new(parts);
        Lane {
            commands: Arc::clone(commands),
            actions: Actions::new(Arc::clone(commands), payments, payouts),
            policy: self.policy,
            status: self.status.clone(),
            hold_early: matches!(self.source, Source::Group { .. }),
        }
    }

    /// The stored progress; a store that is down is waited for, a corrupt one is an error.
    async fn load_progress(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<SagaProgress>, SagaRunError> {
        let mut attempt = 0;
        loop {
            match self.timers.load().await {
                Ok(progress) => return Ok(Some(progress)),
                Err(error @ TimerStoreError::Corrupt(_)) => return Err(error.into()),
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "saga timer store unavailable, retrying");
                    if retry::pause(self.config.backoff.delay(attempt), stop)
                        .await
                        .is_err()
                    {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn shards_split_reservations_between_them() {
        assert!(Shard::new(2, 2).is_err());
        assert!(Shard::new(0, 0).is_err());
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).expect("valid")).collect();
        for _ in 0..200 {
            let rid = Uuid::new_v4();
            assert_eq!(shards.iter().filter(|s| owns(**s, rid)).count(), 1, "{rid}");
            assert!(owns(Shard::ALL, rid));
            assert!(lane(rid, 4) < 4);
        }
    }

    /// Reservation ids are v7 (time-ordered); ids made within one millisecond, and the ids one
    /// shard of two owns, must still spread over all the lanes.
    #[test]
    fn ids_made_together_spread_over_every_lane_of_every_shard() {
        const LANES: usize = 16;
        let ids: Vec<Uuid> = (0..2_000).map(|_| Uuid::now_v7()).collect();
        for index in 0..2 {
            let shard = Shard::new(index, 2).expect("valid");
            let mut used = [0_usize; LANES];
            for rid in ids.iter().filter(|rid| owns(shard, **rid)) {
                used[lane(*rid, LANES)] += 1;
            }
            assert!(used.iter().all(|n| *n > 0), "shard {index}: {used:?}");
        }
    }
}
