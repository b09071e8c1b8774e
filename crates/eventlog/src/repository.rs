//! The generic repository: load -> decide -> append with optimistic concurrency, for any aggregate.
//!
//! Event ids are deterministic: `Uuid::new_v5(causation_id, "{stream}#{index}")`, so re-executing a command
//! with the same causation (a retried request, a replayed saga step) is deduplicated by the store. The
//! flip side: two *different* commands to the same stream must not share a causation id.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::{Aggregate, DomainEvent};
use rand::Rng;
use uuid::Uuid;

use crate::state_cache::StateCache;
use crate::{
    AppendError, AppendOutcome, EventLog, EventMetadata, ExpectedVersion, LogError, NewEvent,
    StreamVersion,
};

/// Events read per page while loading a stream.
const LOAD_PAGE: usize = 1_000;
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
pub struct Executed<A: Aggregate> {
    pub events: Vec<A::Event>,
    pub outcome: Option<AppendOutcome>,
    pub state: A::State,
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

/// Loads and executes commands on aggregates of type `A` over an [`EventLog`].
pub struct Repository<A: Aggregate> {
    log: Arc<dyn EventLog>,
    snapshot_every: u64,
    max_retries: u32,
    /// Shared by clones.
    cache: Arc<StateCache<A::State>>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate> Clone for Repository<A> {
    fn clone(&self) -> Self {
        Self {
            log: Arc::clone(&self.log),
            snapshot_every: self.snapshot_every,
            max_retries: self.max_retries,
            cache: Arc::clone(&self.cache),
            aggregate: PhantomData,
        }
    }
}

/// State as loaded, plus where its snapshot was (to decide when to take the next one).
struct Current<S> {
    state: S,
    version: StreamVersion,
    snapshot_version: Option<u64>,
}

impl<A: Aggregate> Repository<A> {
    /// Snapshots every 200 events, 5 retries on conflict, the states of up to 128 streams of 64 or
    /// more events cached.
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            log,
            snapshot_every: 200,
            max_retries: 5,
            cache: Arc::new(StateCache::new(CACHE_STREAMS, CACHE_FROM_EVENTS)),
            aggregate: PhantomData,
        }
    }

    /// Keep the loaded states of up to `streams` streams of at least `min_events` events in memory, so
    /// a load reads only the events after them (0 streams: no cache). Clones share the cache.
    #[must_use]
    pub fn cache(mut self, streams: usize, min_events: u64) -> Self {
        self.cache = Arc::new(StateCache::new(streams, min_events));
        self
    }

    /// Save a snapshot once the stream has grown by `n` events past the last one (0 disables snapshots).
    #[must_use]
    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n;
        self
    }

    /// How many times a conflicting append is re-decided before giving up with `Conflict`.
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

    /// Decide `command` on the current state and append the result; on a conflict, reload and decide
    /// again (bounded, with jittered backoff).
    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let stream = A::stream_name(id);
        let mut attempt = 0;
        loop {
            let current = self.load_at(&stream, ctx.now).await?;
            let events =
                A::decide(&current.state, command, ctx.now).map_err(RepositoryError::Domain)?;
            if events.is_empty() {
                return Ok(Executed {
                    events,
                    outcome: None,
                    state: current.state,
                });
            }
            let new_events = events
                .iter()
                .enumerate()
                .map(|(index, event)| encode(event, event_id(ctx, &stream, index), ctx.metadata()))
                .collect();
            let expected = ExpectedVersion::from_current(current.version);
            match self.log.append(&stream, expected, new_events).await {
                Ok(outcome) => {
                    return self
                        .applied(&stream, current, events, outcome, ctx.now)
                        .await
                }
                Err(AppendError::Conflict { .. }) if attempt < self.max_retries => {
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
        let since = current
            .snapshot_version
            .map_or(outcome.last_version + 1, |v| {
                outcome.last_version.saturating_sub(v)
            });
        let mut snapshot_version = current.snapshot_version;
        if self.snapshot_every > 0 && since >= self.snapshot_every {
            self.save_snapshot(stream, outcome.last_version, &state)
                .await;
            snapshot_version = Some(outcome.last_version);
        }
        if appended {
            self.cache
                .put(stream, &state, outcome.last_version, snapshot_version);
        }
        Ok(Executed {
            events,
            outcome: Some(outcome),
            state,
        })
    }

    async fn save_snapshot(&self, stream: &str, version: u64, state: &A::State) {
        // A missing snapshot only costs a longer load, so failing to save one is logged, not returned.
        let saved = match serde_json::to_value(state) {
            Ok(json) => self.log.save_snapshot(stream, version, json).await,
            Err(e) => Err(LogError::Corrupt(e.to_string())),
        };
        if let Err(e) = saved {
            tracing::warn!(stream, version, error = %e, "could not save a snapshot");
        }
    }

    async fn load_at(
        &self,
        stream: &str,
        now: DateTime<Utc>,
    ) -> Result<Current<A::State>, RepositoryError<A::Error>> {
        let hit = self.cache.get(stream);
        let cached_version = hit.as_ref().map(|hit| hit.version);
        let (mut state, mut version, snapshot_version) = match hit {
            Some(hit) => (hit.state, Some(hit.version), hit.snapshot_version),
            None => {
                let (state, snapshot_version) = self.snapshot(stream).await?;
                (state, snapshot_version, snapshot_version)
            }
        };
        loop {
            let from = version.map_or(0, |v| v + 1);
            let page = self
                .log
                .read_stream(stream, from, LOAD_PAGE)
                .await
                .map_err(RepositoryError::Log)?;
            for recorded in &page {
                let event = A::Event::decode(
                    &recorded.event_type,
                    recorded.schema_version,
                    &recorded.data,
                )
                .map_err(RepositoryError::Decode)?;
                state = A::evolve(state, &event);
                version = Some(recorded.version);
            }
            if page.len() < LOAD_PAGE {
                break;
            }
        }
        let state = A::compact(state, now);
        if let Some(version) = version.filter(|v| Some(*v) != cached_version) {
            self.cache.put(stream, &state, version, snapshot_version);
        }
        Ok(Current {
            state,
            version,
            snapshot_version,
        })
    }

    /// The latest usable snapshot; one that no longer deserializes (the state shape changed) is ignored.
    async fn snapshot(
        &self,
        stream: &str,
    ) -> Result<(A::State, Option<u64>), RepositoryError<A::Error>> {
        let Some((version, json)) = self
            .log
            .load_snapshot(stream)
            .await
            .map_err(RepositoryError::Log)?
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

/// The deterministic id of the `index`-th event a command decided on `stream`.
#[must_use]
pub fn event_id(ctx: &CommandContext, stream: &str, index: usize) -> Uuid {
    Uuid::new_v5(&ctx.causation_id, format!("{stream}#{index}").as_bytes())
}

/// A domain event as the log stores it: type name, payload, current schema version, metadata.
pub fn encode<E: DomainEvent>(event: &E, event_id: Uuid, metadata: EventMetadata) -> NewEvent {
    NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: domain::SCHEMA_VERSION,
        data: event.payload(),
        metadata,
    }
}

/// 2^attempt ms, up to 64 ms, with random jitter of the same size.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(6);
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base))
}
