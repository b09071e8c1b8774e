use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Position;

/// Expected version of a stream when appending. Versions are 0-based: the first event of a stream
/// has version 0, so `Exact(n)` means "the last event in the stream has version n".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    Any,
    NoStream,
    Exact(u64),
}

impl ExpectedVersion {
    /// The expectation matching a stream whose last version is `current`.
    #[must_use]
    pub fn from_current(current: StreamVersion) -> Self {
        current.map_or(Self::NoStream, Self::Exact)
    }
}

/// Version of a stream's last event; `None` for a stream that does not exist.
pub type StreamVersion = Option<u64>;

/// Who caused an event and why: carried from the command to every event it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    /// Who or what caused it: `customer:c-1`, `admin:a-1`, `saga`, `payment-worker`...
    pub actor: String,
}

/// An event to append: type + JSON payload + metadata. The store adds version, position,
/// `recorded_at` and the hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
}

/// An event as recorded in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream: String,
    pub version: u64,
    pub position: Position,
    pub event_type: String,
    pub schema_version: u32,
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
    /// hex SHA-256 of (previous event's hash in this stream, or empty) + this event's canonical bytes.
    pub hash: String,
}

/// A [`RecordedEvent`] whose payload is still the JSON text the log holds (see
/// [`EventLog::read_all_raw`](crate::EventLog::read_all_raw)): a reader that decodes payloads into
/// its own types skips building a `serde_json::Value` per event, which costs more than the typed
/// decoding (every object is an `IndexMap` here, as `preserve_order` is on in the whole build).
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecordedEvent {
    pub event_id: Uuid,
    pub stream: String,
    pub version: u64,
    pub position: Position,
    pub event_type: String,
    pub schema_version: u32,
    /// The payload as JSON text; always text `serde_json::Value` parses.
    pub data_json: String,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
    pub hash: String,
}

impl RawRecordedEvent {
    /// The event with `data`, the parsed `data_json`, as its payload.
    pub(crate) fn with_data(self, data: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            event_id: self.event_id,
            stream: self.stream,
            version: self.version,
            position: self.position,
            event_type: self.event_type,
            schema_version: self.schema_version,
            data,
            metadata: self.metadata,
            recorded_at: self.recorded_at,
            hash: self.hash,
        }
    }
}

impl From<RecordedEvent> for RawRecordedEvent {
    fn from(event: RecordedEvent) -> Self {
        Self {
            event_id: event.event_id,
            stream: event.stream,
            version: event.version,
            position: event.position,
            event_type: event.event_type,
            schema_version: event.schema_version,
            data_json: event.data.to_string(),
            metadata: event.metadata,
            recorded_at: event.recorded_at,
            hash: event.hash,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Version of the stream's last event after the append.
    pub last_version: u64,
    /// Global position of the last event written (or of the stream's last event if all were duplicates).
    pub position: Position,
}
