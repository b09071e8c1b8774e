//! What callers send to the writer thread: appends (already serialized) and snapshots.

use std::collections::HashSet;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::hash;
use crate::{AppendError, AppendOutcome, ExpectedVersion, LogError, NewEvent};

pub(crate) type Reply<T> = oneshot::Sender<Result<T, AppendError>>;

/// An event serialized by the caller, so the writer thread only hashes and inserts.
pub(crate) struct EncodedEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: String,
    pub metadata: String,
}

impl EncodedEvent {
    /// Serialize the events of one append, collapsing repeated event ids (the first occurrence wins).
    pub(crate) fn encode_all(events: Vec<NewEvent>) -> Result<Vec<Self>, LogError> {
        let mut seen = HashSet::with_capacity(events.len());
        events
            .into_iter()
            .filter(|e| seen.insert(e.event_id))
            .map(Self::encode)
            .collect()
    }

    fn encode(event: NewEvent) -> Result<Self, LogError> {
        Ok(Self {
            metadata: hash::metadata_json(&event.metadata)?,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            data: event.data.into_text(),
        })
    }
}

pub(crate) enum Command {
    Append {
        stream: String,
        expected: ExpectedVersion,
        events: Vec<EncodedEvent>,
        reply: Reply<AppendOutcome>,
    },
    Snapshot {
        stream: String,
        version: u64,
        state: String,
        reply: Reply<()>,
    },
}

impl Command {
    pub(crate) fn event_count(&self) -> usize {
        match self {
            Self::Append { events, .. } => events.len().max(1),
            Self::Snapshot { .. } => 1,
        }
    }
}
