//! The EventStoreDB adapter (`eventstore` crate, gRPC).
//!
//! - Our metadata (correlation, causation, actor, schema version, hash, recorded_at) travels in each
//!   event's custom metadata JSON; the payload is the event's JSON data; the event id is ours.
//! - Positions are commit positions of `$all`. A position handed back to `read_all`/`subscribe` is turned
//!   into a server position again; `p + 1` (the usual "after the last one I saw") is read from `p` and
//!   `p` itself dropped.
//! - The hash chain needs the previous hash, so an append reads the stream's tail first and then appends
//!   with the *exact* revision it chained onto; with `ExpectedVersion::Any` a lost race is retried.
//! - Duplicate ids are looked for in the last [`DEDUP_WINDOW`] events of the stream (a retried command
//!   lands right after its own events); the server's own idempotency covers retries at the same revision.
//! - The correlation id is also written as `$correlationId`, the server's own name for it, which its
//!   `PinnedByCorrelation` consumer strategy reads: consumer groups ([`ConsumerGroups`], `group.rs`)
//!   hand every event of one correlation (one reservation) to the same member.
//! - Snapshots are events in `snapshot-{stream}`, read back with one backwards read. Those streams and
//!   `$`-system streams are left out of `read_all` and subscriptions (server-side filter when live).

mod group;
mod subscription;

use std::sync::Arc;

use async_trait::async_trait;
use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ExpectedRevision,
    ReadAllOptions, ReadStreamOptions, ResolvedEvent, StreamPosition,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::group::{ConsumerGroups, GroupMember};
use crate::hash::{self, CanonicalEvent};
use crate::json_syntax;
use crate::{
    AppendError, AppendOutcome, EventLog, EventMetadata, ExpectedVersion, LogError, NewEvent,
    Position, RawEventSubscription, RawRecordedEvent, Recorded, RecordedEvent, Snapshots,
    StreamVersion, DEDUP_WINDOW,
};

/// Lost races retried by an append with `ExpectedVersion::Any` before it reports a conflict.
const ANY_RETRIES: usize = 16;
/// Prefix of the streams holding snapshots.
const SNAPSHOT_PREFIX: &str = "snapshot-";
/// Server-side filter of live subscriptions: leaves out `$`-system and snapshot streams.
const LIVE_FILTER: &str = r"^(?!\$|snapshot-)";

/// Event log on an EventStoreDB server.
#[derive(Clone)]
pub struct EsdbEventLog {
    client: Client,
}

impl std::fmt::Debug for EsdbEventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsdbEventLog").finish_non_exhaustive()
    }
}

/// What we keep in an event's custom metadata.
#[derive(Serialize, Deserialize)]
struct StoredMetadata {
    correlation_id: Uuid,
    /// The same id under the name the server reads (consumer strategy `PinnedByCorrelation`).
    /// Absent in events written before it was added.
    #[serde(
        rename = "$correlationId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    server_correlation_id: Option<String>,
    causation_id: Uuid,
    actor: String,
    schema_version: u32,
    hash: String,
    recorded_at: String,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    version: u64,
    state: serde_json::Value,
}

impl EsdbEventLog {
    /// Connect with a connection string, e.g. `esdb://localhost:2113?tls=false`.
    pub async fn connect(url: &str) -> Result<Self, LogError> {
        let settings: ClientSettings = url
            .parse()
            .map_err(|e| LogError::Unavailable(format!("bad EventStoreDB url: {e}")))?;
        let client = Client::new(settings).map_err(unavailable)?;
        client.server_info().await.map_err(unavailable)?;
        Ok(Self { client })
    }

    /// The last `count` events of `stream`, newest first (empty if it does not exist).
    async fn tail(&self, stream: &str, count: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(count);
        self.collect_stream(stream, &options, count).await
    }

    async fn collect_stream(
        &self,
        stream: &str,
        options: &ReadStreamOptions,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let mut read = match self.client.read_stream(stream, options).await {
            Ok(read) => read,
            Err(eventstore::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e)),
        };
        let mut events = Vec::new();
        while events.len() < limit {
            match read.next().await {
                Ok(Some(resolved)) => events.extend(to_recorded(&resolved, true)?),
                Ok(None) | Err(eventstore::Error::ResourceNotFound) => break,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(events)
    }

    /// One attempt at an append; `Ok(None)` means a lost race under `ExpectedVersion::Any`: try again.
    async fn try_append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Option<AppendOutcome>, AppendError> {
        let tail = self.tail(stream, DEDUP_WINDOW.max(events.len())).await?;
        let head = tail.first();
        let actual = head.map(|e| e.version);
        let present = events
            .iter()
            .filter(|e| tail.iter().any(|t| t.event_id == e.event_id))
            .count();
        if let Some(head) = head.filter(|_| present > 0) {
            if present == events.len() {
                return Ok(Some(AppendOutcome {
                    last_version: head.version,
                    position: head.position,
                }));
            }
            return Err(conflict(stream, expected, actual));
        }
        let matches = match expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        };
        if !matches {
            return Err(conflict(stream, expected, actual));
        }
        if events.is_empty() {
            return Ok(Some(AppendOutcome {
                last_version: actual.unwrap_or(0),
                position: head.map_or(0, |e| e.position),
            }));
        }
        let data = chain(stream, head, events)?;
        let revision = actual.map_or(ExpectedRevision::NoStream, ExpectedRevision::Exact);
        let options = AppendToStreamOptions::default().expected_revision(revision);
        match self.client.append_to_stream(stream, &options, data).await {
            Ok(written) => Ok(Some(AppendOutcome {
                last_version: written.next_expected_version,
                position: written.position.commit,
            })),
            Err(eventstore::Error::WrongExpectedVersion { current, .. }) => match expected {
                ExpectedVersion::Any => Ok(None),
                _ => Err(conflict(stream, expected, current_version(current))),
            },
            Err(e) => Err(AppendError::Log(unavailable(e))),
        }
    }

    /// Events of `$all` from a server position, ours only, at most `limit`, payloads as stored.
    async fn read_all_from(
        &self,
        start: StreamPosition<eventstore::Position>,
        min: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, eventstore::Error> {
        let options = ReadAllOptions::default()
            .position(start)
            .forwards()
            .max_count(usize::MAX);
        let mut read = self.client.read_all(&options).await?;
        let mut events = Vec::new();
        while events.len() < limit {
            let Some(resolved) = read.next().await? else {
                break;
            };
            match to_recorded_raw(&resolved, false) {
                Ok(Some(event)) if event.position >= min => events.push(event),
                Ok(_) => {}
                Err(e) => return Err(eventstore::Error::InternalParsingError(e.to_string())),
            }
        }
        Ok(events)
    }
}

#[async_trait]
impl EventLog for EsdbEventLog {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        let mut seen = std::collections::HashSet::new();
        events.retain(|e| seen.insert(e.event_id));
        for _ in 0..ANY_RETRIES {
            if let Some(outcome) = self.try_append(stream, expected, &events).await? {
                return Ok(outcome);
            }
        }
        let actual = self.stream_version(stream).await?;
        Err(conflict(stream, expected, actual))
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(from_version))
            .forwards()
            .max_count(limit);
        self.collect_stream(stream, &options, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<StreamVersion, LogError> {
        Ok(self.tail(stream, 1).await?.first().map(|e| e.version))
    }

    async fn read_all(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError> {
        if from_position == 0 {
            return self
                .read_all_from(StreamPosition::Start, 0, limit)
                .await
                .map_err(unavailable);
        }
        // `from - 1` is a record boundary when `from` is "one after an event we returned"; `from` is one
        // when it is an event's own position. Anything else is served by a scan from the start.
        for boundary in [from_position - 1, from_position] {
            let start = StreamPosition::Position(server_position(boundary));
            if let Ok(events) = self.read_all_from(start, from_position, limit).await {
                return Ok(events);
            }
        }
        self.read_all_from(StreamPosition::Start, from_position, limit)
            .await
            .map_err(unavailable)
    }

    async fn head_position(&self) -> Result<Position, LogError> {
        let options = ReadAllOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(1);
        let mut read = self.client.read_all(&options).await.map_err(unavailable)?;
        let last = read.next().await.map_err(unavailable)?;
        Ok(last
            .and_then(|r| r.event.map(|e| e.position.commit))
            .unwrap_or(0))
    }

    fn subscribe(&self, from_position: Position) -> RawEventSubscription {
        subscription::subscribe(self.clone(), from_position)
    }

    fn snapshots(&self) -> Option<Arc<dyn Snapshots>> {
        Some(Arc::new(self.clone()))
    }
}

/// Snapshots are events of `snapshot-{stream}`, read back with one backwards read.
#[async_trait]
impl Snapshots for EsdbEventLog {
    async fn load(&self, stream: &str) -> Result<Option<(u64, serde_json::Value)>, LogError> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(1);
        let name = format!("{SNAPSHOT_PREFIX}{stream}");
        let mut read = match self.client.read_stream(name.as_str(), &options).await {
            Ok(read) => read,
            Err(eventstore::Error::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let last = match read.next().await {
            Ok(last) => last,
            Err(eventstore::Error::ResourceNotFound) => None,
            Err(e) => return Err(unavailable(e)),
        };
        let Some(event) = last.and_then(|r| r.event) else {
            return Ok(None);
        };
        let snapshot: StoredSnapshot = serde_json::from_slice(&event.data)
            .map_err(|e| LogError::Corrupt(format!("snapshot of {stream}: {e}")))?;
        Ok(Some((snapshot.version, snapshot.state)))
    }

    async fn save(
        &self,
        stream: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<(), LogError> {
        let data = EventData::json("Snapshot", &StoredSnapshot { version, state })
            .map_err(|e| LogError::Corrupt(format!("snapshot of {stream}: {e}")))?;
        let name = format!("{SNAPSHOT_PREFIX}{stream}");
        self.client
            .append_to_stream(name.as_str(), &AppendToStreamOptions::default(), data)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The events to write, each carrying our metadata and its link in the hash chain.
fn chain(
    stream: &str,
    head: Option<&RecordedEvent>,
    events: &[NewEvent],
) -> Result<Vec<EventData>, LogError> {
    let recorded_at = hash::format_recorded_at(&hash::recording_instant(chrono::Utc::now()));
    let mut prev_hash = head.map_or(String::new(), |e| e.hash.clone());
    let first_version = head.map_or(0, |e| e.version + 1);
    let mut data = Vec::with_capacity(events.len());
    for (version, event) in (first_version..).zip(events) {
        let data_json =
            serde_json::to_string(&event.data).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let metadata_json = hash::metadata_json(&event.metadata)?;
        let hash = hash::chain_hash(
            &prev_hash,
            &CanonicalEvent {
                stream,
                version,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                data_json: &data_json,
                metadata_json: &metadata_json,
                recorded_at: &recorded_at,
            },
        );
        let metadata = StoredMetadata {
            correlation_id: event.metadata.correlation_id,
            server_correlation_id: Some(event.metadata.correlation_id.to_string()),
            causation_id: event.metadata.causation_id,
            actor: event.metadata.actor.clone(),
            schema_version: event.schema_version,
            hash: hash.clone(),
            recorded_at: recorded_at.clone(),
        };
        let encoded = EventData::json(&event.event_type, &event.data)
            .and_then(|d| d.id(event.event_id).metadata_as_json(&metadata))
            .map_err(|e| LogError::Corrupt(e.to_string()))?;
        data.push(encoded);
        prev_hash = hash;
    }
    Ok(data)
}

/// One of our events, payload parsed, or `None` for system events, snapshots and (when `strict` is
/// off) foreign events.
fn to_recorded(resolved: &ResolvedEvent, strict: bool) -> Result<Option<RecordedEvent>, LogError> {
    to_recorded_as(resolved, strict, |data| {
        serde_json::from_slice(data).map_err(|e| e.to_string())
    })
}

/// As [`to_recorded`], the payload left as the JSON text stored (checked to parse as a `Value`).
fn to_recorded_raw(
    resolved: &ResolvedEvent,
    strict: bool,
) -> Result<Option<RawRecordedEvent>, LogError> {
    to_recorded_as(resolved, strict, |data| {
        let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
        json_syntax::check(text).map_err(|e| e.to_string())?;
        Ok(text.to_owned())
    })
}

/// One of our events, its payload read by `payload`.
fn to_recorded_as<D>(
    resolved: &ResolvedEvent,
    strict: bool,
    payload: impl FnOnce(&[u8]) -> Result<D, String>,
) -> Result<Option<Recorded<D>>, LogError> {
    let Some(event) = resolved.event.as_ref() else {
        return Ok(None);
    };
    if event.stream_id.starts_with('$')
        || event.event_type.starts_with('$')
        || event.stream_id.starts_with(SNAPSHOT_PREFIX)
    {
        return Ok(None);
    }
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        LogError::Corrupt(format!(
            "{what} of {}@{}: {e}",
            event.stream_id, event.revision
        ))
    };
    let metadata: StoredMetadata = match serde_json::from_slice(&event.custom_metadata) {
        Ok(metadata) => metadata,
        Err(_) if !strict => return Ok(None),
        Err(e) => return Err(corrupt("metadata", &e)),
    };
    Ok(Some(Recorded {
        event_id: event.id,
        stream: event.stream_id.clone(),
        version: event.revision,
        position: event.position.commit,
        event_type: event.event_type.clone(),
        schema_version: metadata.schema_version,
        data: payload(&event.data).map_err(|e| corrupt("data", &e))?,
        recorded_at: hash::parse_recorded_at(&metadata.recorded_at)?,
        hash: metadata.hash,
        metadata: EventMetadata {
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            actor: metadata.actor,
        },
    }))
}

#[async_trait]
impl ConsumerGroups for EsdbEventLog {
    async fn join(
        &self,
        group: &str,
        member: &str,
        after: Position,
    ) -> Result<GroupMember, LogError> {
        group::join(self, group, member, after).await
    }
}

fn server_position(position: Position) -> eventstore::Position {
    eventstore::Position {
        commit: position,
        prepare: position,
    }
}

fn current_version(current: CurrentRevision) -> StreamVersion {
    match current {
        CurrentRevision::Current(v) => Some(v),
        CurrentRevision::NoStream => None,
    }
}

fn conflict(stream: &str, expected: ExpectedVersion, actual: StreamVersion) -> AppendError {
    AppendError::Conflict {
        stream: stream.to_owned(),
        expected,
        actual,
    }
}

fn unavailable(e: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(format!("EventStoreDB: {e}"))
}
