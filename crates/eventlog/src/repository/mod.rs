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
//!
//! Here: the types, the builder and the queue in front of each stream's worker; `batch.rs`: how a
//! worker decides and appends what queued up; `load.rs`: loading a stream's state (cache, snapshot,
//! pages) and saving snapshots.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::state_cache::StateCache;
use crate::{
    AppendOutcome, EventLog, EventMetadata, LogError, NewEvent, Payload, Snapshots, StreamVersion,
};

mod batch;
mod load;

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
        data: Payload::written(event.payload_json()),
        metadata,
    }
}
