//! Store outages: while the event log fails, commands answer 503 problem+json without the cause,
//! write nothing, and work again once the log is back. The outage is injected by a thin wrapper
//! over the real SQLite log (a real outage cannot be produced on demand).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::{day, TestApp};
use eventlog::{
    AppendError, AppendOutcome, EventLog, EventSubscription, ExpectedVersion, LogError, NewEvent,
    Position, RecordedEvent, SqliteEventLog, StreamVersion,
};
use reqwest::StatusCode;
use serde_json::json;

struct DetachableLog {
    inner: SqliteEventLog,
    down: AtomicBool,
}

impl DetachableLog {
    fn check(&self) -> Result<(), LogError> {
        if self.down.load(Ordering::SeqCst) {
            Err(LogError::Unavailable(
                "disk /srv/secret-volume detached".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventLog for DetachableLog {
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

    async fn read_all(&self, from: Position, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.check()?;
        self.inner.read_all(from, limit).await
    }

    async fn head_position(&self) -> Result<Position, LogError> {
        self.inner.head_position().await
    }

    fn subscribe(&self, from: Position) -> EventSubscription {
        self.inner.subscribe(from)
    }

    async fn load_snapshot(
        &self,
        stream: &str,
    ) -> Result<Option<(u64, serde_json::Value)>, LogError> {
        self.check()?;
        self.inner.load_snapshot(stream).await
    }

    async fn save_snapshot(
        &self,
        stream: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<(), LogError> {
        self.check()?;
        self.inner.save_snapshot(stream, version, state).await
    }
}

#[tokio::test]
async fn a_failing_log_answers_503_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = SqliteEventLog::open(dir.path().join("events.db")).expect("open");
    let log = Arc::new(DetachableLog {
        inner,
        down: AtomicBool::new(false),
    });
    let app = TestApp::on_log(Arc::clone(&log) as Arc<dyn EventLog>, dir).await;
    app.lodging("l-1", 1).await;
    let customer = app.customer("c-1");
    let body = json!({"lodging_id": "l-1", "check_in": day(3), "check_out": day(4), "guests": 1});
    let head = app.head().await;

    log.down.store(true, Ordering::SeqCst);
    let answer = app.post("/reservations", &customer, body.clone()).await;
    let problem = answer.problem(503);
    assert!(
        !problem.to_string().contains("secret-volume"),
        "the cause is logged, never sent: {problem}"
    );
    let register = json!({"name": "Inn", "nightly_rate": 1, "rooms": 1});
    app.post("/lodgings", &app.platform_admin(), register)
        .await
        .problem(503);
    assert_eq!(app.head().await, head, "nothing was written");

    log.down.store(false, Ordering::SeqCst);
    let answer = app.post("/reservations", &customer, body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
}
