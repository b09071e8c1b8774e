//! The coordinator: reads the global log from the checkpoint, hands each saga trigger to the lane of
//! its reservation, fires due timers and refund retries, and commits progress.
//!
//! The checkpoint only passes a position once that event is fully handled (recorded and acted on),
//! together with the timers it left armed, in one store transaction. Events after a crash are
//! handled again; every step is idempotent, so that is harmless.
//!
//! As a member of a consumer group ([`Source::Group`]) there is no checkpoint to move: an event is
//! acknowledged to the store once it is handled and the transaction holding its timers committed,
//! and the store hands out again whatever was not acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use domain::{ReservationId, Timestamp};
use eventlog::{EventLog, GroupAcks, LogError, Position, RawEventSubscription, RawRecordedEvent};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::inbound::{classify, Classified, Inbound};
use super::lane::{Completion, Finished, Job};
use super::retry::{pause, Backoff};
use super::{agenda::Agenda, Shard, Source};
use crate::status::SagaStatus;
use crate::store::{ParkedAction, ProgressUpdate, SagaProgress, TimerStore};

/// Events read from the log in one go before progress is committed.
const READ_BATCH: usize = 1024;

/// How often the log head is compared with what was read while a due timer waits for it.
const HELD_BACK_RECHECK: Duration = Duration::from_millis(50);

/// Progress is committed (one fsynced transaction) at most this often while work keeps coming, and
/// this long after the last change at the latest. Committing after every step cost an fsync per
/// handful of events (~9% of the CPU under `stayledger bench` B2); a crash loses at most this much
/// progress, whose events are handled again (idempotently), as after any crash.
const COMMIT_EVERY: Duration = Duration::from_millis(25);

/// As a group member, due timers fire for instants this long ago, once nothing is waiting to be
/// read: the events recorded before then have been handed out (a member cannot compare its share
/// with the log's head).
const GROUP_DELIVERY_GRACE: Duration = Duration::from_secs(1);

pub struct Coordinator {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn TimerStore>,
    pub shard: Shard,
    pub source: Source,
    /// Settles the current group membership's deliveries.
    pub acks: Option<GroupAcks>,
    pub lanes: Vec<mpsc::UnboundedSender<Job>>,
    pub completions: mpsc::UnboundedReceiver<Completion>,
    pub status: SagaStatus,
    pub max_in_flight: usize,
    pub backoff: Backoff,
    /// How far ahead the agenda keeps timers whole ([`super::SagaConfig::near`]).
    pub near: TimeDelta,
    pub shutdown: CancellationToken,
    pub lane_lost: AtomicBool,
}

/// What the coordinator tracks while it runs.
struct Progress {
    agenda: Agenda,
    events_in_flight: BTreeSet<Position>,
    other_in_flight: usize,
    last_seen: Position,
    committed: Position,
    pending: ProgressUpdate,
    commit_failures: u32,
    subscription_failures: u32,
    /// `recorded_at` of the latest event read: what happened before it is known.
    read_through: Timestamp,
    /// Whether every event in the log (as of `head_checked`) has been read.
    caught_up: bool,
    head_checked: Option<tokio::time::Instant>,
    last_commit: tokio::time::Instant,
    /// As a group member: the ids of the events in flight, by position, and the events to
    /// acknowledge once the pending progress is committed.
    group_ids: HashMap<Position, uuid::Uuid>,
    acks_due: Vec<uuid::Uuid>,
    /// The last read found nothing waiting.
    drained: bool,
    /// Failed attempts in a row to take in the timers that came near, and when to try again.
    extend_failures: u32,
    extend_retry: Option<tokio::time::Instant>,
    /// As a group member: events that came before their reservation's request was handled, by
    /// reservation; sent to the lane again once another event of the reservation is handled.
    early: HashMap<ReservationId, BTreeMap<Position, Inbound>>,
}

impl Progress {
    fn in_flight(&self) -> usize {
        self.events_in_flight.len() + self.other_in_flight
    }

    /// Every event up to here is fully handled.
    fn done_through(&self) -> Position {
        self.events_in_flight
            .first()
            .map_or(self.last_seen, |first| first.saturating_sub(1))
    }

    /// When the next commit is due, if there is anything to commit.
    fn commit_due(&self, grouped: bool) -> Option<tokio::time::Instant> {
        let moved = match grouped {
            true => !self.acks_due.is_empty(),
            false => self.done_through() > self.committed,
        };
        let changed = !self.pending.is_empty() || moved;
        changed.then_some(self.last_commit + COMMIT_EVERY)
    }
}

impl Coordinator {
    /// Run until shutdown; `false` if it stopped because a lane was lost.
    pub async fn run(mut self, start: SagaProgress) -> bool {
        let mut progress = Progress {
            agenda: Agenda::new(self.horizon(Utc::now()), &start.timers, start.refunds),
            events_in_flight: BTreeSet::new(),
            other_in_flight: 0,
            last_seen: start.checkpoint,
            committed: start.checkpoint,
            pending: ProgressUpdate::default(),
            commit_failures: 0,
            subscription_failures: 0,
            read_through: Timestamp::MIN_UTC,
            caught_up: false,
            head_checked: None,
            last_commit: tokio::time::Instant::now(),
            group_ids: HashMap::new(),
            acks_due: Vec::new(),
            drained: false,
            extend_failures: 0,
            extend_retry: None,
            early: HashMap::new(),
        };
        // What was loaded shows at once: a restarted saga with armed timers and no new event would
        // otherwise report 0 timers and checkpoint 0 until its first event.
        self.publish(&progress);
        let mut subscription = self.open(&mut progress, start.checkpoint).await;
        while !self.shutdown.is_cancelled() && !self.drained(&progress) {
            self.step(&mut progress, &mut subscription).await;
            self.check_caught_up(&mut progress).await;
            self.dispatch_due(&mut progress);
            if progress
                .commit_due(self.grouped())
                .is_some_and(|due| due <= tokio::time::Instant::now())
            {
                self.commit(&mut progress).await;
            }
            // Right after a commit, when nothing waits to be written: under a steady load that is
            // the only moment the store holds what the agenda holds.
            self.extend_agenda(&mut progress).await;
            self.publish(&progress);
        }
        while let Ok(completion) = self.completions.try_recv() {
            self.complete(&mut progress, completion);
        }
        self.commit(&mut progress).await;
        self.publish(&progress);
        !self.lane_lost.load(Ordering::Relaxed)
    }

    /// Wait for the next thing to do (an event, a finished job, a due timer) and do it.
    async fn step(&mut self, progress: &mut Progress, subscription: &mut RawEventSubscription) {
        let can_read = progress.in_flight() < self.max_in_flight;
        // With no room for more work, wait for a job to finish rather than for a due timer.
        // A due timer held back until the log is read up to it is looked at again shortly.
        let grace = self.grace();
        let held_back = |due: Timestamp| !progress.caught_up && due + grace <= Utc::now();
        let wake =
            progress
                .agenda
                .next_due()
                .filter(|_| can_read)
                .map(|due| match held_back(due) {
                    true => HELD_BACK_RECHECK,
                    false => (due + grace - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO),
                });
        let commit_due = progress.commit_due(self.grouped());
        let extend = self.extend_due(progress);
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => {}
            Some(completion) = self.completions.recv() => self.complete(progress, completion),
            item = subscription.next(), if can_read => {
                if !self.read(progress, item) {
                    self.resubscribe(progress, subscription).await;
                    return;
                }
            }
            () = tokio::time::sleep(wake.unwrap_or(Duration::ZERO)), if wake.is_some() => {}
            () = tokio::time::sleep_until(commit_due.unwrap_or_else(tokio::time::Instant::now)), if commit_due.is_some() => {}
            () = tokio::time::sleep_until(extend.unwrap_or_else(tokio::time::Instant::now)), if extend.is_some() => {}
        }
        while let Ok(completion) = self.completions.try_recv() {
            self.complete(progress, completion);
        }
        for _ in 0..READ_BATCH {
            if progress.in_flight() >= self.max_in_flight {
                break;
            }
            let Some(item) = subscription.next().now_or_never() else {
                progress.drained = true;
                break;
            };
            if !self.read(progress, item) {
                self.resubscribe(progress, subscription).await;
                break;
            }
        }
    }

    /// Take one item of the subscription; `false` if the subscription failed or ended.
    fn read(
        &self,
        progress: &mut Progress,
        item: Option<Result<RawRecordedEvent, eventlog::LogError>>,
    ) -> bool {
        match item {
            Some(Ok(event)) => {
                progress.subscription_failures = 0;
                progress.drained = false;
                self.admit(progress, &event);
                true
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "saga subscription failed, resubscribing");
                false
            }
            None => false,
        }
    }

    async fn resubscribe(
        &mut self,
        progress: &mut Progress,
        subscription: &mut RawEventSubscription,
    ) {
        // Never skip: start again right after the last event taken.
        progress.subscription_failures += 1;
        let delay = self.backoff.delay(progress.subscription_failures);
        let _ = pause(delay, &self.shutdown).await;
        let after = progress.last_seen;
        *subscription = self.open(progress, after).await;
    }

    /// Whether the runner's position is kept elsewhere (a group's store), or nowhere (draining),
    /// rather than as the checkpoint in its timer store.
    fn grouped(&self) -> bool {
        !matches!(self.source, Source::Log)
    }

    /// Draining, with nothing left to fire, send or commit.
    fn drained(&self, progress: &Progress) -> bool {
        matches!(self.source, Source::Drain)
            && progress.in_flight() == 0
            && progress.agenda.timers_armed() == 0
            && progress.agenda.refunds_pending() == 0
            && progress.pending.is_empty()
    }

    /// How long after its due time a timer fires at the earliest.
    fn grace(&self) -> Duration {
        match self.grouped() {
            true => GROUP_DELIVERY_GRACE,
            false => Duration::ZERO,
        }
    }

    /// The events after `after` from the log, or (as a group member) a new membership: the store
    /// goes on from what was acknowledged; a group it does not know yet starts after the stored
    /// checkpoint. A group that cannot be joined is a failed subscription (retried with backoff).
    async fn open(&mut self, progress: &mut Progress, after: Position) -> RawEventSubscription {
        let (groups, group, member) = match &self.source {
            Source::Log => return self.log.subscribe(after + 1),
            Source::Drain => {
                progress.drained = true;
                return futures::stream::pending().boxed();
            }
            Source::Group {
                groups,
                group,
                member,
            } => (groups, group, member),
        };
        match groups.join(group, member, progress.committed).await {
            Ok(membership) => {
                self.acks = Some(membership.acks);
                membership
                    .deliveries
                    .map(|item| item.map(|delivery| delivery.event))
                    .boxed()
            }
            Err(error) => {
                futures::stream::once(async move { Err::<RawRecordedEvent, LogError>(error) })
                    .boxed()
            }
        }
    }

    /// Settle a group delivery now (nothing of it needs to be made durable first).
    fn ack(&self, event: &RawRecordedEvent) {
        if let Some(acks) = self.acks.as_ref().filter(|_| self.grouped()) {
            acks.ack(event.event_id);
        }
    }

    fn admit(&self, progress: &mut Progress, event: &RawRecordedEvent) {
        let grouped = self.grouped();
        let seen = match grouped {
            // A redelivery of an event being handled: its acknowledgement follows the handling.
            true => progress.events_in_flight.contains(&event.position),
            false => event.position <= progress.last_seen,
        };
        if seen {
            return;
        }
        progress.last_seen = progress.last_seen.max(event.position);
        progress.read_through = progress.read_through.max(event.recorded_at);
        match classify(event) {
            Classified::Ignore => self.ack(event),
            Classified::Trigger(inbound) if !super::owns(self.shard, inbound.reservation_id) => {}
            Classified::Trigger(inbound) => self.dispatch(progress, event.position, inbound),
            Classified::Poison {
                reservation_id,
                error,
            } => {
                if reservation_id.is_none_or(|rid| super::owns(self.shard, rid)) {
                    tracing::warn!(event_id = %event.event_id, stream = %event.stream, %error, "poison event parked");
                    self.status.count_parked(1);
                    progress.pending.parked.push(ParkedAction {
                        reservation_id,
                        trigger_id: event.event_id,
                        attempted: format!("{} at position {}", event.event_type, event.position),
                        error,
                        parked_at: Utc::now(),
                    });
                    if grouped {
                        progress.acks_due.push(event.event_id);
                    }
                }
            }
        }
    }

    /// Hand the event at `position` to its reservation's lane.
    fn dispatch(&self, progress: &mut Progress, position: Position, inbound: Inbound) {
        progress.events_in_flight.insert(position);
        if self.grouped() {
            progress.group_ids.insert(position, inbound.trigger_id);
        }
        self.send(Job::Event { position, inbound });
    }

    fn send(&self, job: Job) {
        let lane = super::lane(job.reservation_id(), self.lanes.len());
        let sent = self.lanes.get(lane).is_some_and(|s| s.send(job).is_ok());
        if !sent && !self.shutdown.is_cancelled() {
            // A lane only ends at shutdown; if one is gone, stop, and let a restart handle its jobs.
            tracing::error!(
                lane,
                "a saga lane stopped unexpectedly; stopping the runner"
            );
            self.lane_lost.store(true, Ordering::Relaxed);
            self.shutdown.cancel();
        }
    }

    /// The agenda's horizon set at `now`: timers due before it are kept whole.
    fn horizon(&self, now: Timestamp) -> Timestamp {
        now.checked_add_signed(self.near)
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
    }

    /// When the agenda's horizon is to move on next, if it keeps any reservation beyond it. Not
    /// while timer changes wait to be committed: the store is behind the agenda until then.
    fn extend_due(&self, progress: &Progress) -> Option<tokio::time::Instant> {
        if !progress.pending.timers.is_empty() {
            return None;
        }
        let at = progress.agenda.extend_at(self.near)?;
        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let due = tokio::time::Instant::now() + wait;
        Some(progress.extend_retry.map_or(due, |retry| retry.max(due)))
    }

    /// Move the agenda's horizon on once due, taking in from the store the timers that came near.
    async fn extend_agenda(&self, progress: &mut Progress) {
        if self
            .extend_due(progress)
            .is_none_or(|due| due > tokio::time::Instant::now())
        {
            return;
        }
        let horizon = self.horizon(Utc::now());
        match self.store.armed_before(horizon).await {
            Ok(armed) => {
                progress.agenda.extend(horizon, &armed);
                progress.extend_failures = 0;
                progress.extend_retry = None;
            }
            Err(error) => {
                progress.extend_failures += 1;
                let delay = self.backoff.delay(progress.extend_failures);
                tracing::warn!(%error, attempt = progress.extend_failures, "saga timers due soon not read, retrying");
                progress.extend_retry = Some(tokio::time::Instant::now() + delay);
            }
        }
    }

    /// Timers fire only for instants the saga has read the log up to: after a restart behind the
    /// log, a deadline must not fire before the approval recorded ahead of it has been read.
    async fn check_caught_up(&self, progress: &mut Progress) {
        let due = progress
            .agenda
            .next_due()
            .is_some_and(|due| due <= Utc::now());
        let fresh = progress
            .head_checked
            .is_some_and(|at| at.elapsed() < HELD_BACK_RECHECK);
        if !due || fresh {
            return;
        }
        progress.head_checked = Some(tokio::time::Instant::now());
        if self.grouped() {
            progress.caught_up = progress.drained;
            return;
        }
        progress.caught_up = match self.log.head_position().await {
            Ok(head) => progress.last_seen >= head,
            Err(_) => false,
        };
    }

    fn dispatch_due(&self, progress: &mut Progress) {
        let room = self.max_in_flight.saturating_sub(progress.in_flight());
        let now = Utc::now();
        let horizon = if progress.caught_up {
            now - self.grace()
        } else {
            progress.read_through.min(now)
        };
        let jobs = progress.agenda.take_due(horizon, room);
        progress.other_in_flight += jobs.len();
        for job in jobs {
            self.send(job);
        }
    }

    fn complete(&self, progress: &mut Progress, completion: Completion) {
        let rid = completion.reservation_id;
        // The agenda mirrors the store (plus what is pending): write timers only when they change.
        let mut changed = None;
        if let Some(timers) = completion.timers {
            if !progress.agenda.holds(rid, &timers) {
                progress.agenda.set_timers(rid, timers.clone());
                changed = Some(timers);
            }
        }
        match completion.finished {
            Finished::Event(position) if completion.early.is_some() => {
                // Not acknowledged: it stays the group's until it is handled.
                progress.events_in_flight.remove(&position);
                progress.group_ids.remove(&position);
                if let Some(inbound) = completion.early {
                    tracing::info!(reservation_id = %rid, position, "event before its reservation's request: held back");
                    progress
                        .early
                        .entry(rid)
                        .or_default()
                        .insert(position, *inbound);
                }
                return;
            }
            Finished::Event(position) => {
                progress.events_in_flight.remove(&position);
                if let Some(event_id) = progress.group_ids.remove(&position) {
                    progress.acks_due.push(event_id);
                }
                // What came too early for this reservation may go now (in log order).
                for (position, inbound) in progress.early.remove(&rid).unwrap_or_default() {
                    self.dispatch(progress, position, inbound);
                }
            }
            Finished::Timer(timer) => {
                progress.other_in_flight = progress.other_in_flight.saturating_sub(1);
                if let Some(left) = progress.agenda.spend(timer) {
                    changed = Some(left);
                }
            }
            Finished::Refund(action_id) => {
                progress.other_in_flight = progress.other_in_flight.saturating_sub(1);
                progress.agenda.refund_tried(action_id);
            }
        }
        if let Some(armed) = changed {
            progress.pending.timers.push((rid, armed));
        }
        for retry in completion.refunds_due {
            progress.agenda.upsert_refund(retry.clone());
            progress.pending.refunds_due.push(retry);
        }
        for action_id in completion.refunds_settled {
            progress.agenda.settle_refund(action_id);
            progress.pending.refunds_settled.push(action_id);
        }
        self.status.count_parked(completion.parked.len());
        progress.pending.parked.extend(completion.parked);
    }

    /// Write pending progress and the checkpoint in one transaction; on failure keep it for the
    /// next round (never skip), backing off.
    async fn commit(&self, progress: &mut Progress) {
        let through = progress.done_through();
        if through > progress.committed && !self.grouped() {
            progress.pending.checkpoint = Some(through);
        }
        if progress.pending.is_empty() {
            self.settle(progress);
            return;
        }
        progress.last_commit = tokio::time::Instant::now();
        match self.store.commit(progress.pending.clone()).await {
            Ok(()) => {
                progress.committed = progress.pending.checkpoint.unwrap_or(progress.committed);
                progress.pending = ProgressUpdate::default();
                progress.commit_failures = 0;
                self.settle(progress);
            }
            Err(error) => {
                progress.commit_failures += 1;
                tracing::warn!(%error, attempt = progress.commit_failures, "saga progress not committed, retrying");
                let delay = self.backoff.delay(progress.commit_failures);
                let _ = pause(delay, &self.shutdown).await;
            }
        }
    }

    /// Acknowledge the group deliveries whose handling is now durable.
    fn settle(&self, progress: &mut Progress) {
        let due = std::mem::take(&mut progress.acks_due);
        if let Some(acks) = &self.acks {
            for event_id in due {
                acks.ack(event_id);
            }
        }
    }

    fn publish(&self, progress: &Progress) {
        self.status
            .set_progress(progress.committed, progress.last_seen, progress.in_flight());
        self.status.set_agenda(
            progress.agenda.timers_armed(),
            progress.agenda.refunds_pending(),
        );
    }
}
