//! Tracing as a decorator on the port: wrap any [`EventLog`] to get one span per call.

use async_trait::async_trait;
use tracing::Instrument;

use crate::{
    AppendError, AppendOutcome, EventLog, EventSubscription, ExpectedVersion, LogError, NewEvent,
    Position, RawEventSubscription, RawRecordedEvent, RecordedEvent, StreamVersion,
};

/// An [`EventLog`] that records a `tracing` span (and the error, if any) around every call of `L`.
#[derive(Debug, Clone)]
pub struct TracedEventLog<L> {
    inner: L,
}

impl<L: EventLog> TracedEventLog<L> {
    pub fn new(inner: L) -> Self {
        Self { inner }
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }
}

fn traced<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, E> {
    if let Err(e) = &result {
        tracing::warn!(error = %e, "event log call failed");
    }
    result
}

#[async_trait]
impl<L: EventLog> EventLog for TracedEventLog<L> {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        let span = tracing::info_span!("eventlog.append", stream, ?expected, events = events.len());
        let result = self
            .inner
            .append(stream, expected, events)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match &result {
            Ok(outcome) => tracing::debug!(
                last_version = outcome.last_version,
                position = outcome.position,
                "appended"
            ),
            Err(AppendError::Conflict { actual, .. }) => {
                tracing::debug!(?actual, "append conflict")
            }
            Err(AppendError::Log(e)) => tracing::warn!(error = %e, "append failed"),
        }
        result
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let span = tracing::debug_span!("eventlog.read_stream", stream, from_version, limit);
        async { traced(self.inner.read_stream(stream, from_version, limit).await) }
            .instrument(span)
            .await
    }

    async fn stream_version(&self, stream: &str) -> Result<StreamVersion, LogError> {
        let span = tracing::debug_span!("eventlog.stream_version", stream);
        async { traced(self.inner.stream_version(stream).await) }
            .instrument(span)
            .await
    }

    async fn read_all(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let span = tracing::debug_span!("eventlog.read_all", from_position, limit);
        async { traced(self.inner.read_all(from_position, limit).await) }
            .instrument(span)
            .await
    }

    async fn read_all_raw(
        &self,
        from_position: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError> {
        let span = tracing::debug_span!("eventlog.read_all_raw", from_position, limit);
        async { traced(self.inner.read_all_raw(from_position, limit).await) }
            .instrument(span)
            .await
    }

    async fn head_position(&self) -> Result<Position, LogError> {
        let span = tracing::debug_span!("eventlog.head_position");
        async { traced(self.inner.head_position().await) }
            .instrument(span)
            .await
    }

    fn subscribe(&self, from_position: Position) -> EventSubscription {
        tracing::info!(from_position, "eventlog.subscribe");
        self.inner.subscribe(from_position)
    }

    fn subscribe_raw(&self, from_position: Position) -> RawEventSubscription {
        tracing::info!(from_position, "eventlog.subscribe_raw");
        self.inner.subscribe_raw(from_position)
    }

    async fn load_snapshot(
        &self,
        stream: &str,
    ) -> Result<Option<(u64, serde_json::Value)>, LogError> {
        let span = tracing::debug_span!("eventlog.load_snapshot", stream);
        async { traced(self.inner.load_snapshot(stream).await) }
            .instrument(span)
            .await
    }

    async fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<(), LogError> {
        let span = tracing::debug_span!("eventlog.save_snapshot", stream, version);
        async { traced(self.inner.save_snapshot(stream, version, state).await) }
            .instrument(span)
            .await
    }
}
