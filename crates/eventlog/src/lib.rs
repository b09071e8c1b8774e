//! The event-log port and its adapters.
//!
//! Owns: how events are stored and read back: the [`EventLog`] port (append with an expected version,
//! read a stream, read and subscribe to the global log), event metadata and the per-stream hash chain
//! ([`hash`], with [`verify_log`] / [`SqliteEventLog::verify`] as the tamper check), the embedded SQLite
//! adapter ([`SqliteEventLog`], default: one file, single group-committing writer), the EventStoreDB
//! adapter ([`EsdbEventLog`]), the generic [`Repository`] (load -> decide -> append with optimistic
//! concurrency and deterministic event ids, snapshots for long streams), [`ConsumerGroups`] (competing
//! consumers pinned by correlation; EventStoreDB persistent subscriptions), the [`conformance`] suite
//! every adapter passes, and the B1 append benchmark ([`bench`]).
//! Must not: know about HTTP, read models or any particular aggregate; serde of domain events stays in
//! `domain` (adapters only move serialized envelopes).

pub mod bench;
pub mod conformance;
mod envelope;
mod error;
mod esdb;
mod group;
pub mod hash;
mod partition;
mod repository;
mod sqlite;
mod state_cache;
mod subscription;

pub use envelope::{
    AppendOutcome, EventMetadata, ExpectedVersion, NewEvent, RawRecordedEvent, Recorded,
    RecordedEvent, StreamVersion,
};
pub use error::{AppendError, LogError};
pub use esdb::{EsdbEventLog, DEDUP_WINDOW as ESDB_DEDUP_WINDOW};
pub use group::{ConsumerGroups, GroupAcks, GroupDelivery, GroupMember, LocalGroups, Settlement};
pub use hash::{verify_log, BadEvent, VerifyReport};
pub use partition::{Partition, PartitionError};
pub use repository::{
    encode, event_id, CommandContext, Executed, Loaded, Repository, RepositoryError,
};
pub use sqlite::{import_into, ImportReport, SqliteEventLog, WriterStats};

use async_trait::async_trait;
use futures::stream::BoxStream;

/// Global log position. The first event ever appended has position 1 on the embedded store;
/// on EventStoreDB it is the commit position. `0` means "before everything".
pub type Position = u64;

/// A live, ordered stream of recorded events from a subscription.
pub type EventSubscription = BoxStream<'static, Result<RecordedEvent, LogError>>;

/// A subscription whose events keep their payloads as the JSON text the log holds
/// ([`EventLog::subscribe_raw`]).
pub type RawEventSubscription = BoxStream<'static, Result<RawRecordedEvent, LogError>>;

/// The event-store port. Every adapter passes the same conformance suite (`conformance` module).
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Append `events` to `stream` if its current version matches `expected`. Durable before it
    /// returns `Ok`. Idempotent by event id: if every event is already in the stream, the append is
    /// a no-op and the outcome reports the stream as it is (whatever `expected` says); if only some
    /// are, it is refused as a `Conflict` (an append is atomic, so that cannot be a retry). Repeated
    /// ids within one append are collapsed to the first.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError>;

    /// Events of `stream` with version >= `from_version`, in order, at most `limit`.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// The current version of `stream` (version of its last event), `None` if it does not exist.
    async fn stream_version(&self, stream: &str) -> Result<StreamVersion, LogError>;

    /// Events of the global log with position >= `from_position`, in order, at most `limit`.
    async fn read_all(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// [`read_all`](Self::read_all) with each payload left as the JSON text the log holds, for a
    /// reader that decodes payloads straight into its own types (rebuilding the views). Fails
    /// wherever `read_all` would. The default serializes what `read_all` parsed; an adapter that
    /// stores text overrides it to skip the parse.
    async fn read_all_raw(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError> {
        let events = self.read_all(from_position, limit).await?;
        Ok(events.into_iter().map(RawRecordedEvent::from).collect())
    }

    /// Position of the last event in the global log (0 if empty).
    async fn head_position(&self) -> Result<Position, LogError>;

    /// Catch up from `from_position` (inclusive), then follow live appends; never skips, never reorders.
    fn subscribe(&self, from_position: Position) -> EventSubscription;

    /// [`subscribe`](Self::subscribe) with each payload left as the JSON text the log holds, for a
    /// consumer that decodes payloads straight into its own types (the projector, the saga). The
    /// default serializes what `subscribe` parsed; an adapter that stores text overrides it.
    fn subscribe_raw(&self, from_position: Position) -> RawEventSubscription {
        use futures::StreamExt;
        self.subscribe(from_position)
            .map(|item| item.map(RawRecordedEvent::from))
            .boxed()
    }

    /// Load the latest snapshot of `stream`: (version it reflects, state JSON).
    async fn load_snapshot(
        &self,
        stream: &str,
    ) -> Result<Option<(u64, serde_json::Value)>, LogError>;

    /// Store a snapshot of `stream` at `version`.
    async fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<(), LogError>;
}

/// A shared log is a log.
#[async_trait]
impl<L: EventLog + ?Sized> EventLog for std::sync::Arc<L> {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        (**self).append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        (**self).read_stream(stream, from_version, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<StreamVersion, LogError> {
        (**self).stream_version(stream).await
    }

    async fn read_all(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        (**self).read_all(from_position, limit).await
    }

    async fn read_all_raw(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError> {
        (**self).read_all_raw(from_position, limit).await
    }

    async fn head_position(&self) -> Result<Position, LogError> {
        (**self).head_position().await
    }

    fn subscribe(&self, from_position: Position) -> EventSubscription {
        (**self).subscribe(from_position)
    }

    fn subscribe_raw(&self, from_position: Position) -> RawEventSubscription {
        (**self).subscribe_raw(from_position)
    }

    async fn load_snapshot(
        &self,
        stream: &str,
    ) -> Result<Option<(u64, serde_json::Value)>, LogError> {
        (**self).load_snapshot(stream).await
    }

    async fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<(), LogError> {
        (**self).save_snapshot(stream, version, state).await
    }
}
