//! The conformance suite: one set of checks every [`EventLog`] adapter must pass, its [`Snapshots`](crate::Snapshots)
//! included.
//!
//! Each case takes a log that may be shared with other users (an EventStoreDB server): it writes only to
//! streams with a fresh uuid suffix and reasons about positions relative to what it wrote, never assuming
//! the log is empty. A failed check is returned as a [`Failure`] naming what went wrong.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::{
    AppendError, AppendOutcome, EventLog, EventMetadata, ExpectedVersion, LogError, NewEvent,
};

/// A check that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl From<LogError> for Failure {
    fn from(e: LogError) -> Self {
        Self(format!("store error: {e}"))
    }
}

impl From<AppendError> for Failure {
    fn from(e: AppendError) -> Self {
        Self(format!("append failed: {e}"))
    }
}

pub type Outcome = Result<(), Failure>;

/// How long a case waits for a subscription to deliver what it expects.
const DEADLINE: Duration = Duration::from_secs(30);

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Failure(format!($($msg)+)));
        }
    };
}

mod appends;
mod faulty;
mod groups;
mod subscriptions;

pub use appends::{
    concurrent_appends_distinct_streams, concurrent_appends_one_stream, dedup_window,
    duplicate_event_ids, expected_version_conflicts, hash_chain, read_after_write,
    snapshots_round_trip,
};
pub use faulty::FaultyLog;
pub use groups::consumer_group;
pub use subscriptions::{
    subscribe_from_middle, subscribe_from_start, subscribe_live, subscribe_parsed_matches_subscribe,
};

type Case = fn(Arc<dyn EventLog>) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// Every case, by name.
pub const CASES: &[(&str, Case)] = &[
    ("expected_version_conflicts", |l| {
        Box::pin(expected_version_conflicts(l))
    }),
    ("read_after_write", |l| Box::pin(read_after_write(l))),
    ("concurrent_appends_one_stream", |l| {
        Box::pin(concurrent_appends_one_stream(l))
    }),
    ("concurrent_appends_distinct_streams", |l| {
        Box::pin(concurrent_appends_distinct_streams(l))
    }),
    ("subscribe_from_start", |l| {
        Box::pin(subscribe_from_start(l))
    }),
    ("subscribe_from_middle", |l| {
        Box::pin(subscribe_from_middle(l))
    }),
    ("subscribe_live", |l| Box::pin(subscribe_live(l))),
    ("subscribe_parsed_matches_subscribe", |l| {
        Box::pin(subscribe_parsed_matches_subscribe(l))
    }),
    ("duplicate_event_ids", |l| Box::pin(duplicate_event_ids(l))),
    ("dedup_window", |l| Box::pin(dedup_window(l))),
    ("snapshots_round_trip", |l| Box::pin(snapshots_of(l))),
    ("hash_chain", |l| Box::pin(hash_chain(l))),
];

/// [`snapshots_round_trip`] on where `log` keeps its snapshots: every adapter keeps them.
async fn snapshots_of(log: Arc<dyn EventLog>) -> Outcome {
    let snapshots = log
        .snapshots()
        .ok_or_else(|| Failure("the log keeps no snapshots".into()))?;
    snapshots_round_trip(snapshots).await
}

/// Run every case on `log`, stopping at the first failure (prefixed with the case name).
pub async fn run_all(log: Arc<dyn EventLog>) -> Outcome {
    for (name, case) in CASES {
        case(Arc::clone(&log))
            .await
            .map_err(|f| Failure(format!("{name}: {f}")))?;
    }
    Ok(())
}

/// The URL of a server to run a suite against, from `var`; `None` after saying (past the test
/// harness's capture, so every run, CI included, shows it) that `what` was skipped.
#[must_use]
pub fn server_url(var: &str, what: &str) -> Option<String> {
    let url = std::env::var(var).ok();
    if url.is_none() {
        let line = format!("SKIPPED: {what} ({var} not set)\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
    url
}

/// A stream name no one else uses.
#[must_use]
pub fn unique_stream(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

/// A test event with a fresh id.
#[must_use]
pub fn new_event(event_type: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        data: data.into(),
        metadata: EventMetadata {
            correlation_id: Uuid::new_v4(),
            causation_id: Uuid::new_v4(),
            actor: "conformance".to_owned(),
        },
    }
}

/// `result` is a [`AppendError::Conflict`] between `expected` and `actual`.
pub fn expect_conflict(
    result: Result<AppendOutcome, AppendError>,
    expected: ExpectedVersion,
    actual: Option<u64>,
) -> Outcome {
    match result {
        Err(AppendError::Conflict {
            expected: e,
            actual: a,
            ..
        }) if e == expected && a == actual => Ok(()),
        other => Err(Failure(format!(
            "expected Conflict {{ expected: {expected:?}, actual: {actual:?} }}, got {other:?}"
        ))),
    }
}

async fn append_numbered(
    log: &dyn EventLog,
    stream: &str,
    count: u64,
) -> Result<Vec<AppendOutcome>, Failure> {
    let mut outcomes = Vec::new();
    for n in 0..count {
        let expected = ExpectedVersion::from_current(n.checked_sub(1));
        outcomes.push(
            log.append(
                stream,
                expected,
                vec![new_event("Counted", json!({ "n": n }))],
            )
            .await?,
        );
    }
    Ok(outcomes)
}
