//! The global log with parsed payloads, for the readers that want `serde_json::Value`s (the audit
//! routes, `export`, `verify_log`, tests): [`EventLogExt`], provided for every [`EventLog`], so no
//! adapter writes it.
//!
//! Costs, per event: the port's text form (`EventLog::read_all`, `subscribe`) checks the stored
//! payload is JSON without building it; the parsed form here then builds a `serde_json::Value` (an
//! `IndexMap` per object, as `preserve_order` is on in the whole build), which costs more than
//! decoding the text straight into a typed struct. Readers with their own types (the projector, the
//! saga) therefore read the text; only readers that need a `Value` pay for one.

use async_trait::async_trait;
use futures::StreamExt;

use crate::{EventLog, EventSubscription, LogError, Position, RawRecordedEvent, RecordedEvent};

/// [`EventLog::read_all`] and [`EventLog::subscribe`] with each payload parsed into a
/// `serde_json::Value` ([`RawRecordedEvent::parse`]). Fails wherever the text form fails.
#[async_trait]
pub trait EventLogExt: EventLog {
    /// [`EventLog::read_all`], payloads parsed.
    async fn read_all_parsed(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let events = self.read_all(from_position, limit).await?;
        events.into_iter().map(RawRecordedEvent::parse).collect()
    }

    /// [`EventLog::subscribe`], payloads parsed.
    fn subscribe_parsed(&self, from_position: Position) -> EventSubscription {
        self.subscribe(from_position)
            .map(|item| item.and_then(RawRecordedEvent::parse))
            .boxed()
    }
}

impl<L: EventLog + ?Sized> EventLogExt for L {}
