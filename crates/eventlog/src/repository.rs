//! The generic repository: load -> decide -> append with optimistic concurrency, for any aggregate.
//!
//! Event ids are deterministic: `Uuid::new_v5(causation_id, "{stream}#{index}")`, so re-executing a command
//! with the same causation (a retried request, a replayed saga step) is deduplicated by the store. The
//! flip side: two *different* commands to the same stream must not share a causation id.
//!
//! Commands on one stream are executed by one worker at a time (per repository and its clones): the
//! commands that queue up while it waits for the store are then decided together, in arrival order, on
//! one load and written in one append. A busy stream (a lodging's approval desk takes every request
//! for the lodging) thus costs one load and one durable write per batch instead of a load, a write and
//! an optimistic-concurrency conflict for every racing command.
//!
//! So a process holds ONE repository per aggregate ([`crate::Repositories`]) and hands clones of it to
//! every part that writes: two repositories over one log would each run a worker for the same stream
//! and race each other's appends. A clone may set its own [`Repository::max_retries`]: its commands
//! are re-decided that many times, on the shared worker, whatever the other clones say.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};
use rand::Rng;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::state_cache::StateCache;
use crate::{
    AppendError, AppendOutcome, EventLog, EventMetadata, ExpectedVersion, LogError, NewEvent,
    RecordedEvent, Snapshots, StreamVersion,
};

/// Events read per page while loading a stream.
const LOAD_PAGE: usize = 1_000;
/// Commands decided together in one append, at most.
const MAX_BATCH: usize = 256;
/// Default state cache: at most this many streams...
const CACHE_STREAMS: usize = 128;
/// ...of at least this many events (shorter ones load fast enough from the log).
const CACHE_FROM_EVENTS: u64 = 64;

/// Who is executing a command, why, and when (time is passed in, never read inside decisions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub actor: String,
    pub now: DateTime<Utc>,
}

impl CommandContext {
    fn metadata(&self) -> EventMetadata {
        EventMetadata {
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            actor: self.actor.clone(),
        }
    }
}

/// An aggregate's current state and the stream version it reflects.
pub struct Loaded<A: Aggregate> {
    pub state: A::State,
    pub version: StreamVersion,
}

/// What `execute` did: the decided events, the append outcome (`None` when nothing was decided), the new state.
///
/// `state` is the state after the append that wrote the events: when other commands on the stream were
/// decided together with this one (see the module docs), after all of them. It is shared, not copied,
/// between those commands' answers and the repository's cache.
pub struct Executed<A: Aggregate> {
    pub events: Vec<A::Event>,
    pub outcome: Option<AppendOutcome>,
    pub state: Arc<A::State>,
}

impl<A: Aggregate> std::fmt::Debug for Loaded<A>
where
    A::State: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("state", &self.state)
            .field("version", &self.version)
            .finish()
    }
}

impl<A: Aggregate> std::fmt::Debug for Executed<A>
where
    A::State: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executed")
            .field("events", &self.events)
            .field("outcome", &self.outcome)
            .field("state", &self.state)
            .finish()
    }
}

/// The three kinds of failure, kept apart up to the edge: rejected by the domain (4xx), lost the race too
/// many times (409), could not decode what is stored, or the store failed (5xx).
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError<E> {
    #[error(transparent)]
    Domain(E),
    #[error("stream {stream} kept changing: gave up after retries")]
    Conflict { stream: String },
    #[error("cannot decode a stored event: {0}")]
    Decode(domain::DecodeError),
    #[error(transparent)]
    Log(LogError),
}

type Answer<A> = Result<Executed<A>, RepositoryError<<A as Aggregate>::Error>>;

/// A command waiting for its stream's worker.
struct Pending<A: Aggregate> {
    command: A::Command,
    ctx: CommandContext,
    /// The caller expects the stream not to exist yet (see [`Repository::execute_new`]).
    fresh: bool,
    /// Re-decisions after a conflict, as the submitting clone says.
    max_retries: u32,
    reply: oneshot::Sender<Answer<A>>,
}

/// The commands waiting, by stream; a stream has an entry exactly while its worker runs.
type Queues<A> = Mutex<HashMap<String, Vec<Pending<A>>>>;

/// What a repository and its clones have done since it was made (see [`Repository::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepositoryStats {
    /// Commands submitted (`execute`, `execute_new`).
    pub commands: u64,
    /// Stream workers started: one each time a stream with no queued command gets one.
    pub workers: u64,
    /// Appends that wrote (or found already written) a command's events.
    pub appends: u64,
    /// Appends refused because the stream had moved (another writer, or a stale cached state).
    pub conflicts: u64,
}

#[derive(Default)]
struct Counters {
    commands: AtomicU64,
    workers: AtomicU64,
    appends: AtomicU64,
    conflicts: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Loads and executes commands on aggregates of type `A` over an [`EventLog`], with snapshots in
/// [`Snapshots`] when given one ([`Repository::with_snapshots`]).
pub struct Repository<A: Aggregate> {
    log: Arc<dyn EventLog>,
    snapshots: Option<Arc<dyn Snapshots>>,
    snapshot_every: u64,
    /// This clone's: each command carries it to the shared worker.
    max_retries: u32,
    /// Shared by clones.
    cache: Arc<StateCache<A::State>>,
    /// Shared by clones.
    queues: Arc<Queues<A>>,
    /// Shared by clones.
    counters: Arc<Counters>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate> Clone for Repository<A> {
    fn clone(&self) -> Self {
        Self {
            log: Arc::clone(&self.log),
            snapshots: self.snapshots.clone(),
            snapshot_every: self.snapshot_every,
            max_retries: self.max_retries,
            cache: Arc::clone(&self.cache),
            queues: Arc::clone(&self.queues),
            counters: Arc::clone(&self.counters),
            aggregate: PhantomData,
        }
    }
}

/// Removes a stream's entry if its worker ends without doing so (a panic in a decision): the
/// commands still queued are then answered with an error instead of waiting forever.
struct WorkerGuard<A: Aggregate> {
    queues: Arc<Queues<A>>,
    stream: String,
    finished: bool,
}

impl<A: Aggregate> Drop for WorkerGuard<A> {
    fn drop(&mut self) {
        if !self.finished {
            lock(&self.queues).remove(&self.stream);
        }
    }
}

fn lock<A: Aggregate>(
    queues: &Queues<A>,
) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Pending<A>>>> {
    queues.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A batch decided together: each command's decision, the state after all of them, their events.
struct DecidedBatch<A: Aggregate> {
    decided: Vec<Decided<A>>,
    state: A::State,
    new_events: Vec<NewEvent>,
}

impl<A: Aggregate> DecidedBatch<A> {
    /// Whether every command of the batch decided events to append.
    fn all_append(&self) -> bool {
        self.decided
            .iter()
            .all(|d| matches!(d, Decided::Events(events) if !events.is_empty()))
    }
}

/// One command's result within a batch decided together.
enum Decided<A: Aggregate> {
    Events(Vec<A::Event>),
    Rejected(A::Error),
}

/// State as loaded, plus where its snapshot was (to decide when to take the next one).
struct Current<S> {
    state: S,
    version: StreamVersion,
    snapshot_version: Option<u64>,
    /// Whether the store was read up to its end (otherwise the state is this process's cached one,
    /// which another process may have moved past: only an append can tell, by its expected version).
    verified: bool,
}

impl<A: Aggregate> Repository<A> {
    /// Snapshots where the log keeps them (`log.snapshots()`; [`with_snapshots`](Self::with_snapshots)
    /// changes that), 5 retries on conflict, the states of up to 128 streams of 64 or more events cached.
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            snapshots: log.snapshots(),
            log,
            snapshot_every: 1_000,
            max_retries: 5,
            cache: Arc::new(StateCache::new(CACHE_STREAMS, CACHE_FROM_EVENTS)),
            queues: Arc::new(Mutex::new(HashMap::new())),
            counters: Arc::new(Counters::default()),
            aggregate: PhantomData,
        }
    }

    /// The log this repository writes to.
    #[must_use]
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// What this repository and its clones have done so far.
    #[must_use]
    pub fn stats(&self) -> RepositoryStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RepositoryStats {
            commands: read(&self.counters.commands),
            workers: read(&self.counters.workers),
            appends: read(&self.counters.appends),
            conflicts: read(&self.counters.conflicts),
        }
    }

    /// Keep the loaded states of up to `streams` streams of at least `min_events` events in memory, so
    /// a load reads only the events after them (0 streams: no cache). Clones share the cache.
    #[must_use]
    pub fn cache(mut self, streams: usize, min_events: u64) -> Self {
        self.cache = Arc::new(StateCache::new(streams, min_events));
        self
    }

    /// Keep snapshots in `snapshots` (every 1,000 events unless [`snapshot_every`](Self::snapshot_every)
    /// says otherwise); `None`: no snapshots. Usually `log.snapshots()`, where the log keeps them.
    #[must_use]
    pub fn with_snapshots(mut self, snapshots: Option<Arc<dyn Snapshots>>) -> Self {
        self.snapshots = snapshots;
        self
    }

    /// Save a snapshot once the stream has grown by `n` events past the last one (0 disables snapshots).
    /// Only with [`with_snapshots`](Self::with_snapshots).
    #[must_use]
    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n;
        self
    }

    /// Where snapshots are kept and how often, if they are: `(store, every n events)`.
    fn snapshotting(&self) -> Option<(&Arc<dyn Snapshots>, u64)> {
        let snapshots = self.snapshots.as_ref()?;
        (self.snapshot_every > 0).then_some((snapshots, self.snapshot_every))
    }

    /// How many times a conflicting append of a command submitted through this repository (or a
    /// clone made from it afterwards) is re-decided before giving up with `Conflict`. The other
    /// clones keep theirs; all of them still share workers and cache.
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Current state of aggregate `id`: latest snapshot, then the events after it, compacted as of now.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let current = self.load_at(&A::stream_name(id), Utc::now()).await?;
        Ok(Loaded {
            state: current.state,
            version: current.version,
        })
    }

    /// The state of aggregate `id` as this process last saw it, if it keeps one, without reading the
    /// log (so another process's appends since are not in it); otherwise [`load`](Self::load)'s.
    /// For facts that never change once written (a reservation's lodging, stay and customer) and for
    /// checks that the command decided afterwards makes again on the stream as it is.
    pub async fn load_recent(&self, id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        match self.cache.get(&A::stream_name(id)) {
            Some(hit) => Ok(Loaded {
                state: A::compact(hit.state, Utc::now()),
                version: Some(hit.version),
            }),
            None => self.load(id).await,
        }
    }

    /// Decide `command` on the current state and append the result; on a conflict, reload and decide
    /// again (bounded, with jittered backoff).
    ///
    /// The command is handed to its stream's worker (started if the stream has none), so it is
    /// carried out even if the caller stops waiting; see the module docs for the batching.
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.submit(id, command, ctx, false).await
    }

    /// As [`Repository::execute`], for a command that opens its stream (a new reservation, a saga's
    /// first trigger): it is decided on the empty state without reading the stream first, and the
    /// append's expected version (`NoStream`) checks that assumption. If the stream exists after all
    /// (a retried request, a trigger handled again after a restart), the append conflicts or is
    /// deduplicated, the stream is read, and the command is decided again on what it holds: the
    /// answer's state is the same as `execute`'s, one read cheaper when the stream is new. One thing
    /// it cannot tell: a repeat whose events are all the stream holds (deduplicated by their ids)
    /// is answered like a first write; a caller that must tell a repeat apart uses `execute`.
    pub async fn execute_new(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        self.submit(id, command, ctx, true).await
    }

    async fn submit(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
        fresh: bool,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let stream = A::stream_name(id);
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            command: command.clone(),
            ctx: ctx.clone(),
            fresh,
            max_retries: self.max_retries,
            reply,
        };
        Counters::add(&self.counters.commands);
        let start_worker = match lock(&self.queues).entry(stream.clone()) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push(pending);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![pending]);
                true
            }
        };
        if start_worker {
            Counters::add(&self.counters.workers);
            tokio::spawn(self.clone().work(stream));
        }
        answer.await.unwrap_or_else(|_| {
            Err(RepositoryError::Log(LogError::Unavailable(
                "the command's worker stopped before answering".into(),
            )))
        })
    }

    /// Execute the stream's queued commands, a batch at a time, until none is left.
    async fn work(self, stream: String) {
        let mut guard = WorkerGuard {
            queues: Arc::clone(&self.queues),
            stream,
            finished: false,
        };
        loop {
            let batch: Vec<Pending<A>> = {
                let mut queues = lock(&self.queues);
                let Some(queue) = queues.get_mut(&guard.stream) else {
                    guard.finished = true;
                    return;
                };
                if queue.is_empty() {
                    queues.remove(&guard.stream);
                    guard.finished = true;
                    return;
                }
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            self.run_batch(&guard.stream, batch).await;
        }
    }

    /// Decide a batch together; if that cannot be done (the store failed, a conflict persisted, or
    /// some of it was already recorded: a re-executed command), one command at a time.
    async fn run_batch(&self, stream: &str, batch: Vec<Pending<A>>) {
        if batch.len() > 1 {
            if let Some(answers) = self.execute_together(stream, &batch).await {
                for (pending, answer) in batch.into_iter().zip(answers) {
                    let _ = pending.reply.send(answer);
                }
                return;
            }
        }
        for pending in batch {
            let answer = self.execute_one(stream, &pending).await;
            let _ = pending.reply.send(answer);
        }
    }

    /// Decide every command of `batch` in order, each on the state the previous ones left, and append
    /// all their events at once. `None` if the batch must be executed one command at a time.
    async fn execute_together(&self, stream: &str, batch: &[Pending<A>]) -> Option<Vec<Answer<A>>> {
        let now = batch.first()?.ctx.now;
        let max_retries = batch.iter().map(|p| p.max_retries).min()?;
        let mut verify = false;
        let mut attempt = 0;
        while attempt <= max_retries {
            let Current {
                state,
                version,
                snapshot_version,
                verified,
            } = self
                .load_for_update(stream, now, verify, false)
                .await
                .ok()?;
            let mut batch = decide_in_turn::<A>(stream, state, batch);
            if !verified && !batch.all_append() {
                // Answers that append nothing must come from the stream as it is.
                verify = true;
                continue;
            }
            if batch.new_events.is_empty() {
                return Some(nothing_appended(batch.decided, batch.state));
            }
            let new_events = std::mem::take(&mut batch.new_events);
            let count = new_events.len() as u64;
            let expected = ExpectedVersion::from_current(version);
            let appended = self.append(stream, expected, new_events).await;
            match appended {
                Ok(outcome) => {
                    let first_version = version.map_or(0, |v| v + 1);
                    if outcome.last_version + 1 != first_version + count {
                        return None; // deduplicated: already recorded, the states above are not the stream's
                    }
                    let settled = self
                        .settle_batch(stream, snapshot_version, batch, outcome, first_version)
                        .await;
                    return Some(settled);
                }
                // The stream did not move: some of the events are already there, the rest not.
                Err(AppendError::Conflict { actual, .. }) if actual == version => return None,
                Err(AppendError::Conflict { .. }) if !verified => verify = true,
                Err(AppendError::Conflict { .. }) => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AppendError::Log(_)) => return None,
            }
        }
        None
    }

    /// The answers of a batch written in one append: each command gets its events, the state after
    /// the batch and its own last version; the position is the append's (at or after the command's own).
    async fn settle_batch(
        &self,
        stream: &str,
        snapshot_version: Option<u64>,
        DecidedBatch { decided, state, .. }: DecidedBatch<A>,
        outcome: AppendOutcome,
        first_version: u64,
    ) -> Vec<Answer<A>> {
        let snapshot_version = self
            .snapshot_if_due(stream, snapshot_version, outcome.last_version, &state)
            .await;
        let state = Arc::new(state);
        self.cache.put(
            stream,
            Arc::clone(&state),
            outcome.last_version,
            snapshot_version,
        );
        let mut next_version = first_version;
        decided
            .into_iter()
            .map(|d| match d {
                Decided::Rejected(error) => Err(RepositoryError::Domain(error)),
                Decided::Events(events) => {
                    next_version += events.len() as u64;
                    let outcome = (!events.is_empty()).then_some(AppendOutcome {
                        last_version: next_version.saturating_sub(1),
                        position: outcome.position,
                    });
                    Ok(Executed {
                        events,
                        outcome,
                        state: Arc::clone(&state),
                    })
                }
            })
            .collect()
    }

    /// The log's append, counted.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        let appended = self.log.append(stream, expected, events).await;
        match &appended {
            Ok(_) => Counters::add(&self.counters.appends),
            Err(AppendError::Conflict { .. }) => Counters::add(&self.counters.conflicts),
            Err(AppendError::Log(_)) => {}
        }
        appended
    }

    /// One command alone: decide, append, and on a conflict reload and decide again (as many
    /// times as the clone that submitted it allows).
    async fn execute_one(&self, stream: &str, pending: &Pending<A>) -> Answer<A> {
        let Pending {
            command,
            ctx,
            fresh,
            max_retries,
            ..
        } = pending;
        let (fresh, max_retries) = (*fresh, *max_retries);
        let stream = stream.to_owned();
        let mut attempt = 0;
        let mut verify = false;
        loop {
            let current = self
                .load_for_update(&stream, ctx.now, verify, fresh)
                .await?;
            let decided = A::decide(&current.state, command, ctx.now);
            if !current.verified && decided.as_ref().map_or(true, Vec::is_empty) {
                // An answer that appends nothing must come from the stream as it is.
                verify = true;
                continue;
            }
            let events = decided.map_err(RepositoryError::Domain)?;
            if events.is_empty() {
                return Ok(Executed {
                    events,
                    outcome: None,
                    state: Arc::new(current.state),
                });
            }
            let new_events = events
                .iter()
                .enumerate()
                .map(|(index, event)| encode(event, event_id(ctx, &stream, index), ctx.metadata()))
                .collect();
            let expected = ExpectedVersion::from_current(current.version);
            match self.append(&stream, expected, new_events).await {
                Ok(outcome) => {
                    return self
                        .applied(&stream, current, events, outcome, ctx.now)
                        .await
                }
                Err(AppendError::Conflict { .. }) if !current.verified => verify = true,
                Err(AppendError::Conflict { .. }) if attempt < max_retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(AppendError::Conflict { .. }) => {
                    return Err(RepositoryError::Conflict { stream })
                }
                Err(AppendError::Log(e)) => return Err(RepositoryError::Log(e)),
            }
        }
    }

    /// The state after a successful append, and a snapshot if one is due.
    async fn applied(
        &self,
        stream: &str,
        current: Current<A::State>,
        events: Vec<A::Event>,
        outcome: AppendOutcome,
        now: DateTime<Utc>,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let appended_at = current.version.map_or(0, |v| v + 1);
        let appended = outcome.last_version + 1 == appended_at + events.len() as u64;
        let state = if appended {
            A::compact(A::fold(current.state, &events), now)
        } else {
            // Deduplicated: these events were already recorded (a re-executed command), so the stream is
            // not what `current + events` says. Read it back.
            self.load_at(stream, now).await?.state
        };
        let snapshot_version = self
            .snapshot_if_due(
                stream,
                current.snapshot_version,
                outcome.last_version,
                &state,
            )
            .await;
        let state = Arc::new(state);
        if appended {
            let cached = Arc::clone(&state);
            self.cache
                .put(stream, cached, outcome.last_version, snapshot_version);
        }
        Ok(Executed {
            events,
            outcome: Some(outcome),
            state,
        })
    }

    /// Save a snapshot at `version` if the stream has grown by `snapshot_every` (or the state's
    /// [`Aggregate::snapshot_weight`], if more) since the last one; the version of the stream's
    /// latest snapshot afterwards.
    async fn snapshot_if_due(
        &self,
        stream: &str,
        snapshot_version: Option<u64>,
        version: u64,
        state: &A::State,
    ) -> Option<u64> {
        let every = self
            .snapshotting()
            .map_or(0, |(_, every)| every.max(A::snapshot_weight(state)));
        let since = snapshot_version.map_or(version + 1, |v| version.saturating_sub(v));
        if every > 0 && since >= every {
            self.save_snapshot(stream, version, state).await;
            return Some(version);
        }
        snapshot_version
    }

    async fn save_snapshot(&self, stream: &str, version: u64, state: &A::State) {
        let Some((snapshots, _)) = self.snapshotting() else {
            return;
        };
        // A missing snapshot only costs a longer load, so failing to save one is logged, not returned.
        let saved = match serde_json::to_value(state) {
            Ok(json) => snapshots.save(stream, version, json).await,
            Err(e) => Err(LogError::Corrupt(e.to_string())),
        };
        if let Err(e) = saved {
            tracing::warn!(stream, version, error = %e, "could not save a snapshot");
        }
    }

    /// The state to decide a command on. Unless `verify`, a cached state is taken as it is, without
    /// reading the store for events after it: the append's expected version checks it, and a
    /// conflict sends the command back here with `verify`. Only this process's appends through this
    /// repository keep a cached state current, so on a busy stream written by one process (a
    /// lodging's desk) that saves a read per command; elsewhere it costs a conflict now and then.
    /// `fresh` (and not `verify`): the empty state, unread, for a command that opens its stream.
    async fn load_for_update(
        &self,
        stream: &str,
        now: DateTime<Utc>,
        verify: bool,
        fresh: bool,
    ) -> Result<Current<A::State>, RepositoryError<A::Error>> {
        if fresh && !verify {
            // Assumed, not read: the append's expected version `NoStream` checks it.
            return Ok(Current {
                state: A::State::default(),
                version: None,
                snapshot_version: None,
                verified: false,
            });
        }
        if !verify {
            if let Some(hit) = self.cache.get(stream) {
                return Ok(Current {
                    state: A::compact(hit.state, now),
                    version: Some(hit.version),
                    snapshot_version: hit.snapshot_version,
                    verified: false,
                });
            }
        }
        self.load_at(stream, now).await
    }

    async fn load_at(
        &self,
        stream: &str,
        now: DateTime<Utc>,
    ) -> Result<Current<A::State>, RepositoryError<A::Error>> {
        let hit = self.cache.get(stream);
        let cached_version = hit.as_ref().map(|hit| hit.version);
        let (mut state, mut version, snapshot_version, mut complete) = match hit {
            Some(hit) => (hit.state, Some(hit.version), hit.snapshot_version, false),
            None => self.load_uncached_start(stream).await?,
        };
        while !complete {
            let from = version.map_or(0, |v| v + 1);
            let page = self.read_page(stream, from, LOAD_PAGE).await?;
            (state, version) = fold_page::<A>(state, version, &page)?;
            complete = page.len() < LOAD_PAGE;
        }
        let state = A::compact(state, now);
        if let Some(version) = version.filter(|v| Some(*v) != cached_version) {
            let cached = Arc::new(state.clone());
            self.cache.put(stream, cached, version, snapshot_version);
        }
        Ok(Current {
            state,
            version,
            snapshot_version,
            verified: true,
        })
    }

    /// Where loading a stream that is not cached starts: a stream shorter than `snapshot_every` has
    /// no snapshot of this repository's making, so its first page is all of it (one read instead of
    /// a snapshot query and a read). A longer one starts from its latest snapshot.
    /// Returns (state, version, snapshot version, whether the stream is fully read).
    async fn load_uncached_start(
        &self,
        stream: &str,
    ) -> Result<(A::State, Option<u64>, Option<u64>, bool), RepositoryError<A::Error>> {
        let probe = self.snapshotting().map_or(LOAD_PAGE, |(_, every)| {
            usize::try_from(every).map_or(LOAD_PAGE, |n| n.min(LOAD_PAGE))
        });
        let page = self.read_page(stream, 0, probe).await?;
        if page.len() < probe {
            let (state, version) = fold_page::<A>(A::State::default(), None, &page)?;
            return Ok((state, version, None, true));
        }
        let (state, snapshot_version) = self.snapshot(stream).await?;
        Ok((state, snapshot_version, snapshot_version, false))
    }

    async fn read_page(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, RepositoryError<A::Error>> {
        self.log
            .read_stream(stream, from, limit)
            .await
            .map_err(RepositoryError::Log)
    }

    /// The latest usable snapshot; one that no longer deserializes (the state shape changed) is ignored.
    async fn snapshot(
        &self,
        stream: &str,
    ) -> Result<(A::State, Option<u64>), RepositoryError<A::Error>> {
        let Some((snapshots, _)) = self.snapshotting() else {
            return Ok((A::State::default(), None));
        };
        let Some((version, json)) = snapshots.load(stream).await.map_err(RepositoryError::Log)?
        else {
            return Ok((A::State::default(), None));
        };
        match serde_json::from_value(json) {
            Ok(state) => Ok((state, Some(version))),
            Err(e) => {
                tracing::warn!(stream, version, error = %e, "ignoring an unreadable snapshot");
                Ok((A::State::default(), None))
            }
        }
    }
}

/// Decide each command of `batch` on the state the ones before it left: each command's decision, the
/// state after all of them, and all their events, encoded with each command's own ids and metadata.
fn decide_in_turn<A: Aggregate>(
    stream: &str,
    mut state: A::State,
    batch: &[Pending<A>],
) -> DecidedBatch<A> {
    let mut new_events = Vec::new();
    let decided = batch
        .iter()
        .map(|pending| {
            let ctx = &pending.ctx;
            match A::decide(&state, &pending.command, ctx.now) {
                Err(error) => Decided::Rejected(error),
                Ok(events) => {
                    new_events.extend(events.iter().enumerate().map(|(index, event)| {
                        encode(event, event_id(ctx, stream, index), ctx.metadata())
                    }));
                    if !events.is_empty() {
                        state = A::fold(std::mem::take(&mut state), &events);
                    }
                    Decided::Events(events)
                }
            }
        })
        .collect();
    // Compacted once for the batch (its commands are decided within moments of each other, on a
    // state compacted when loaded): compaction walks the whole state, e.g. every request of a desk.
    if let Some(last) = batch.last() {
        state = A::compact(state, last.ctx.now);
    }
    DecidedBatch {
        decided,
        state,
        new_events,
    }
}

/// A state and the version it reflects.
type Folded<S> = (S, Option<u64>);

/// Apply a page of a stream's events to `state` (at `version`).
fn fold_page<A: Aggregate>(
    mut state: A::State,
    mut version: Option<u64>,
    page: &[RecordedEvent],
) -> Result<Folded<A::State>, RepositoryError<A::Error>> {
    for recorded in page {
        let event = A::Event::decode(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.data,
        )
        .map_err(RepositoryError::Decode)?;
        state = A::evolve(state, &event);
        version = Some(recorded.version);
    }
    Ok((state, version))
}

/// The answers of a batch that appended nothing at all.
fn nothing_appended<A: Aggregate>(decided: Vec<Decided<A>>, state: A::State) -> Vec<Answer<A>> {
    let state = Arc::new(state);
    decided
        .into_iter()
        .map(|d| match d {
            Decided::Rejected(error) => Err(RepositoryError::Domain(error)),
            Decided::Events(events) => Ok(Executed {
                events,
                outcome: None,
                state: Arc::clone(&state),
            }),
        })
        .collect()
}

/// The deterministic id of the `index`-th event a command decided on `stream`.
#[must_use]
pub fn event_id(ctx: &CommandContext, stream: &str, index: usize) -> Uuid {
    Uuid::new_v5(&ctx.causation_id, format!("{stream}#{index}").as_bytes())
}

/// A domain event as the log stores it: type name, payload, its type's current schema version,
/// metadata.
pub fn encode<E: DomainEvent>(event: &E, event_id: Uuid, metadata: EventMetadata) -> NewEvent {
    NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        data: event.payload(),
        metadata,
    }
}

/// 2^attempt ms, up to 64 ms, with random jitter of the same size.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(6);
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base))
}
