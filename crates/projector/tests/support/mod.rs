//! Shared test setup: a real SQLite event log and SQLite view stores in a temporary directory, and
//! appending the readmodel conformance histories to the log as the services would.

#![allow(dead_code)]

pub mod recording;

use std::sync::Arc;
use std::time::Duration;

use domain::DomainEvent;
use eventlog::{EventLog, EventMetadata, ExpectedVersion, NewEvent, SqliteEventLog};
use projector::{Projector, ProjectorStatus, RetryPolicy};
use readmodel::{AnyEvent, SqliteViewStore, ViewEvent, ViewStore};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Env {
    pub dir: tempfile::TempDir,
    pub log: Arc<SqliteEventLog>,
    pub views: Arc<SqliteViewStore>,
}

/// A projector task and how to stop it.
pub struct Running {
    pub status: ProjectorStatus,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), projector::ProjectorError>>,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let outcome = self.task.await.expect("projector task joins");
        outcome.expect("projector stops cleanly");
    }
}

/// A retry policy fast enough for tests.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 2,
        base: Duration::from_millis(5),
        max: Duration::from_millis(20),
        unavailable_attempts: None,
    }
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = SqliteEventLog::open(dir.path().join("events.db")).expect("open event log");
        let views = SqliteViewStore::open(dir.path().join("views.db")).expect("open view store");
        Self {
            dir,
            log: Arc::new(log),
            views: Arc::new(views),
        }
    }

    pub fn fresh_views(&self, name: &str) -> Arc<SqliteViewStore> {
        Arc::new(SqliteViewStore::open(self.dir.path().join(name)).expect("open view store"))
    }

    pub fn start(&self, store: Arc<dyn ViewStore>) -> Running {
        let log: Arc<dyn EventLog> = self.log.clone();
        let projector = Projector::new(log, store).with_retry(quick_retry());
        let status = projector.status();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(projector.run(shutdown.clone()));
        Running {
            status,
            shutdown,
            task,
        }
    }

    /// Append `data` as version 1 of `event_type`.
    pub async fn append_raw(&self, stream: &str, event_type: &str, data: Value) -> u64 {
        self.append_versioned(stream, event_type, 1, data).await
    }

    pub async fn append_versioned(
        &self,
        stream: &str,
        event_type: &str,
        schema_version: u32,
        data: Value,
    ) -> u64 {
        let event = NewEvent {
            event_id: Uuid::new_v4(),
            event_type: event_type.to_string(),
            schema_version,
            data: data.into(),
            metadata: EventMetadata {
                correlation_id: Uuid::new_v4(),
                causation_id: Uuid::new_v4(),
                actor: "test".to_string(),
            },
        };
        let outcome = self
            .log
            .append(stream, ExpectedVersion::Any, vec![event])
            .await;
        outcome.expect("append").position
    }

    pub async fn append<E: DomainEvent>(&self, stream: &str, event: &E) -> u64 {
        self.append_versioned(
            stream,
            event.event_type(),
            event.schema_version(),
            event.payload(),
        )
        .await
    }

    /// Append one event of a conformance history, as the service owning its stream would.
    pub async fn append_view_event(&self, event: &ViewEvent) -> u64 {
        match &event.event {
            AnyEvent::Reservation { event: inner, .. } => self.append(&event.stream, inner).await,
            AnyEvent::Lodging { event: inner, .. } => self.append(&event.stream, inner).await,
            AnyEvent::Payment { event: inner, .. } => self.append(&event.stream, inner).await,
            AnyEvent::Payout { event: inner, .. } => self.append(&event.stream, inner).await,
            AnyEvent::Customer { event: inner, .. } => self.append(&event.stream, inner).await,
            AnyEvent::Saga | AnyEvent::Other => {
                self.append_raw(
                    &event.stream,
                    "SagaTimerCancelled",
                    json!({"timer": "approval_deadline"}),
                )
                .await
            }
        }
    }

    pub async fn append_all(&self, events: &[ViewEvent]) -> u64 {
        let mut head = 0;
        for event in events {
            head = self.append_view_event(event).await;
        }
        head
    }
}
