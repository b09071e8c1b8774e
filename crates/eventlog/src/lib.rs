//! The event-log port and its adapters.
//!
//! Owns: how events are stored and read back: the [`EventLog`] port (append with an expected version,
//! read a stream, read and subscribe to the global log, payloads as the JSON text the log holds), the
//! [`Snapshots`] port (an aggregate's latest state, kept beside the log), [`EventLogExt`] (the global
//! log with parsed payloads, for readers that want `serde_json::Value`s), event metadata and the per-stream hash chain
//! ([`hash`], with [`verify_log`] / [`SqliteEventLog::verify`] as the tamper check), the keyed MAC chain
//! and its signed head ([`seal`]: [`LogKey`], [`Anchor`], the [`Integrity`] port), the embedded SQLite
//! adapter ([`SqliteEventLog`], default: one file, single group-committing writer), the EventStoreDB
//! adapter ([`EsdbEventLog`]), the generic [`Repository`] (load -> decide -> append with optimistic
//! concurrency and deterministic event ids, snapshots for long streams), a process's one write model
//! ([`Repositories`]: a repository per aggregate, shared by every part that writes), what a caller can
//! do about a failed command ([`Failure`]: rejected, poison, retry), [`ConsumerGroups`] (competing
//! consumers pinned by correlation; EventStoreDB persistent subscriptions),
//! the [`conformance`] suite every adapter passes, and what the B1 benchmark's bare-SQLite
//! baseline needs to write the same table as the adapter ([`sqlite_baseline`]).
//! Must not: know about HTTP or read models, or any aggregate's rules (it names the platform's
//! aggregates only to hold their repositories in [`Repositories`]); serde of domain events stays in
//! `domain` (adapters only move serialized envelopes).

pub mod conformance;
mod envelope;
mod error;
mod esdb;
mod failure;
mod group;
pub mod hash;
mod json_syntax;
mod parsed;
mod partition;
mod repositories;
mod repository;
pub mod seal;
mod sqlite;
mod state_cache;
mod subscription;

pub use envelope::{
    AppendOutcome, EventMetadata, ExpectedVersion, NewEvent, Payload, RawRecordedEvent, Recorded,
    RecordedEvent, StreamVersion,
};
pub use error::{AppendError, LogError};
pub use esdb::EsdbEventLog;
pub use failure::{Failure, Poison, Retry};
pub use group::{ConsumerGroups, GroupAcks, GroupDelivery, GroupMember, LocalGroups, Settlement};
pub use hash::{verify_log, BadEvent, VerifyReport};
pub use parsed::EventLogExt;
pub use partition::{Partition, PartitionError};
pub use repositories::Repositories;
pub use repository::{
    encode, event_id, CommandContext, Executed, Loaded, Repository, RepositoryError,
    RepositoryStats,
};
pub use seal::{Anchor, Integrity, LogKey};
pub use sqlite::{
    baseline as sqlite_baseline, import_into, ImportReport, SqliteEventLog, WriterStats,
};

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;

/// Global log position. The first event ever appended has position 1 on the embedded store;
/// on EventStoreDB it is the commit position. `0` means "before everything".
pub type Position = u64;

/// A live, ordered stream of recorded events from a subscription, payloads as the JSON text the
/// log holds ([`EventLog::subscribe`]).
pub type RawEventSubscription = BoxStream<'static, Result<RawRecordedEvent, LogError>>;

/// [`RawEventSubscription`] with parsed payloads ([`EventLogExt::subscribe_parsed`]).
pub type EventSubscription = BoxStream<'static, Result<RecordedEvent, LogError>>;

/// How many of a stream's last events an append looks through for its event ids (the retry of an
/// append lands right after its own events; [`EventLog::append`]).
pub const DEDUP_WINDOW: usize = 64;

/// The event-store port. Every adapter passes the same conformance suite (`conformance` module).
///
/// The global log (`read_all`, `subscribe`) is read with payloads as the JSON text the log holds:
/// its readers (the projector, the saga) decode them straight into their own types. A reader that
/// wants `serde_json::Value` payloads parses them through [`EventLogExt`], the one place that does.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Append `events` to `stream` if its current version matches `expected`. Durable before it
    /// returns `Ok`. Idempotent by event id: if every event is already among the stream's last
    /// [`DEDUP_WINDOW`] events (or its last `events.len()`, if more), the append is a no-op and the
    /// outcome reports the stream as it is (whatever `expected` says); if only some are, it is
    /// refused as a `Conflict` (an append is atomic, so that cannot be a retry). Repeated ids within
    /// one append are collapsed to the first. A repeat from further back is not looked for: with
    /// `Exact` or `NoStream` it conflicts (the stream has moved past the version its first attempt
    /// expected), and its command is decided again on the stream as it is (docs/decisions/0038);
    /// with `Any` it is appended again.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError>;

    /// Events of `stream` with version >= `from_version`, in order, at most `limit`, payloads parsed
    /// (the repository decodes domain events from `Value`s, upcasting older schema versions).
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// The current version of `stream` (version of its last event), `None` if it does not exist.
    async fn stream_version(&self, stream: &str) -> Result<StreamVersion, LogError>;

    /// Events of the global log with position >= `from_position`, in order, at most `limit`, each
    /// payload the JSON text the log holds (always text a `serde_json::Value` parses: a payload that
    /// would not parse fails the read as `Corrupt`).
    async fn read_all(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError>;

    /// Position of the last event in the global log (0 if empty).
    async fn head_position(&self) -> Result<Position, LogError>;

    /// Catch up from `from_position` (inclusive), then follow live appends; never skips, never
    /// reorders. Payloads as in [`read_all`](Self::read_all).
    fn subscribe(&self, from_position: Position) -> RawEventSubscription;

    /// Where this log keeps snapshots, if it does (both adapters keep them in the same store as the
    /// events): what a [`Repository`] is given with [`Repository::with_snapshots`]. `None` by default.
    fn snapshots(&self) -> Option<Arc<dyn Snapshots>> {
        None
    }

    /// The keyed tamper check of this log, if it keeps one (the embedded log does; EventStoreDB does
    /// not: [`verify_log`] checks its per-stream chains). `None` by default.
    fn integrity(&self) -> Option<Arc<dyn Integrity>> {
        None
    }
}

/// The snapshot port: the latest state of a stream's aggregate, saved now and then so a load reads
/// only the events after it. A cache: losing one costs a longer load, never a wrong state.
#[async_trait]
pub trait Snapshots: Send + Sync + 'static {
    /// The latest snapshot of `stream`: (version it reflects, state JSON).
    async fn load(&self, stream: &str) -> Result<Option<(u64, serde_json::Value)>, LogError>;

    /// Store a snapshot of `stream` at `version`.
    async fn save(
        &self,
        stream: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<(), LogError>;
}
