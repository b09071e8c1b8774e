//! A real event log with faults injected on demand, for the tests of the log's consumers (a real
//! outage or a dropping connection cannot be produced on demand): the calls pass through to the
//! wrapped log, except that
//! - while [`FaultyLog::set_down`] is on, every read and write (not the head, not subscriptions,
//!   not snapshots) answers `LogError::Unavailable` with the given cause;
//! - with [`FaultyLog::dropping_subscriptions`], every subscription delivers that many events,
//!   then a read error, then ends.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;

use crate::{
    AppendError, AppendOutcome, EventLog, ExpectedVersion, LogError, NewEvent, Position,
    RawEventSubscription, RawRecordedEvent, RecordedEvent, Snapshots, StreamVersion,
};

pub struct FaultyLog {
    inner: Arc<dyn EventLog>,
    cause: String,
    down: AtomicBool,
    drop_after: Option<usize>,
    subscriptions: AtomicU32,
}

impl FaultyLog {
    /// `inner`, failing with `cause` while down.
    pub fn new(inner: Arc<dyn EventLog>, cause: impl Into<String>) -> Self {
        Self {
            inner,
            cause: cause.into(),
            down: AtomicBool::new(false),
            drop_after: None,
            subscriptions: AtomicU32::new(0),
        }
    }

    /// End every subscription with an error after `events` events.
    #[must_use]
    pub fn dropping_subscriptions(mut self, events: usize) -> Self {
        self.drop_after = Some(events);
        self
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Subscriptions opened so far.
    pub fn subscriptions(&self) -> u32 {
        self.subscriptions.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), LogError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(LogError::Unavailable(self.cause.clone()));
        }
        Ok(())
    }
}

#[async_trait]
impl EventLog for FaultyLog {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        self.check()?;
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.check()?;
        self.inner.read_stream(stream, from, limit).await
    }

    async fn stream_version(&self, stream: &str) -> Result<StreamVersion, LogError> {
        self.check()?;
        self.inner.stream_version(stream).await
    }

    async fn read_all(
        &self,
        from: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError> {
        self.check()?;
        self.inner.read_all(from, limit).await
    }

    async fn head_position(&self) -> Result<Position, LogError> {
        self.inner.head_position().await
    }

    fn subscribe(&self, from: Position) -> RawEventSubscription {
        self.subscriptions.fetch_add(1, Ordering::SeqCst);
        let subscription = self.inner.subscribe(from);
        let Some(events) = self.drop_after else {
            return subscription;
        };
        let dropped = LogError::Unavailable("connection dropped".into());
        subscription
            .take(events)
            .chain(futures::stream::iter([Err(dropped)]))
            .boxed()
    }

    fn snapshots(&self) -> Option<Arc<dyn Snapshots>> {
        self.inner.snapshots()
    }
}
