//! The conformance suite: one set of checks every [`EventLog`] adapter must pass.
//!
//! Each case takes a log that may be shared with other users (an EventStoreDB server): it writes only to
//! streams with a fresh uuid suffix and reasons about positions relative to what it wrote, never assuming
//! the log is empty. A failed check is returned as a [`Failure`] naming what went wrong.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

use crate::hash::recompute_hash;
use crate::{
    AppendError, AppendOutcome, EventLog, EventMetadata, EventSubscription, ExpectedVersion,
    LogError, NewEvent, Position, RecordedEvent,
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
    ("duplicate_event_ids", |l| Box::pin(duplicate_event_ids(l))),
    ("snapshots_round_trip", |l| {
        Box::pin(snapshots_round_trip(l))
    }),
    ("hash_chain", |l| Box::pin(hash_chain(l))),
];

/// Run every case on `log`, stopping at the first failure (prefixed with the case name).
pub async fn run_all(log: Arc<dyn EventLog>) -> Outcome {
    for (name, case) in CASES {
        case(Arc::clone(&log))
            .await
            .map_err(|f| Failure(format!("{name}: {f}")))?;
    }
    Ok(())
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
        data,
        metadata: EventMetadata {
            correlation_id: Uuid::new_v4(),
            causation_id: Uuid::new_v4(),
            actor: "conformance".to_owned(),
        },
    }
}

fn expect_conflict(
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

/// any / no_stream / exact, each accepted or refused with a typed conflict naming the actual version.
pub async fn expected_version_conflicts(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-versions");
    let e = |n: u64| vec![new_event("Counted", json!({ "n": n }))];
    expect_conflict(
        log.append(&s, ExpectedVersion::Exact(0), e(0)).await,
        ExpectedVersion::Exact(0),
        None,
    )?;
    let first = log.append(&s, ExpectedVersion::NoStream, e(0)).await?;
    ensure!(
        first.last_version == 0,
        "first append should be version 0, got {first:?}"
    );
    expect_conflict(
        log.append(&s, ExpectedVersion::NoStream, e(1)).await,
        ExpectedVersion::NoStream,
        Some(0),
    )?;
    expect_conflict(
        log.append(&s, ExpectedVersion::Exact(5), e(1)).await,
        ExpectedVersion::Exact(5),
        Some(0),
    )?;
    let second = log.append(&s, ExpectedVersion::Exact(0), e(1)).await?;
    ensure!(
        second.last_version == 1,
        "Exact(0) should give version 1, got {second:?}"
    );
    let third = log.append(&s, ExpectedVersion::Any, e(2)).await?;
    ensure!(
        third.last_version == 2,
        "Any should give version 2, got {third:?}"
    );
    ensure!(
        first.position < second.position && second.position < third.position,
        "positions must grow: {first:?} {second:?} {third:?}"
    );
    expect_conflict(
        log.append(&s, ExpectedVersion::Exact(1), e(3)).await,
        ExpectedVersion::Exact(1),
        Some(2),
    )?;
    let version = log.stream_version(&s).await?;
    ensure!(
        version == Some(2),
        "stream version should be 2, got {version:?}"
    );
    let events = log.read_stream(&s, 0, 100).await?;
    let ns: Vec<_> = events.iter().map(|e| e.data["n"].as_u64()).collect();
    ensure!(
        ns == [Some(0), Some(1), Some(2)],
        "refused appends must write nothing, got {ns:?}"
    );
    Ok(())
}

/// What was appended is read back at once, field for field, from the stream and from the global log.
pub async fn read_after_write(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-read");
    ensure!(
        log.stream_version(&s).await?.is_none(),
        "a new stream has no version"
    );
    ensure!(
        log.read_stream(&s, 0, 10).await?.is_empty(),
        "a new stream has no events"
    );
    let sent: Vec<_> = (0..3)
        .map(|n| new_event("Counted", json!({ "n": n, "text": "é \"x\"" })))
        .collect();
    let outcome = log
        .append(&s, ExpectedVersion::NoStream, sent.clone())
        .await?;
    ensure!(
        outcome.last_version == 2,
        "three events end at version 2, got {outcome:?}"
    );
    let read = log.read_stream(&s, 0, 10).await?;
    ensure!(read.len() == 3, "expected 3 events, got {}", read.len());
    for (version, (sent, got)) in sent.iter().zip(&read).enumerate() {
        ensure!(
            got.version == version as u64,
            "version {} at index {version}",
            got.version
        );
        ensure!(
            got.event_id == sent.event_id
                && got.event_type == sent.event_type
                && got.data == sent.data
                && got.metadata == sent.metadata
                && got.schema_version == sent.schema_version
                && got.stream == s,
            "event {version} differs from what was sent: {got:?}"
        );
    }
    ensure!(
        read[2].position == outcome.position,
        "outcome position {} is not the last event's",
        outcome.position
    );
    ensure!(
        read.windows(2).all(|w| w[0].position < w[1].position),
        "positions must grow within an append"
    );
    let tail = log.read_stream(&s, 1, 1).await?;
    ensure!(
        tail.len() == 1 && tail[0].version == 1,
        "from_version/limit not honoured: {tail:?}"
    );
    let all = log.read_all(read[0].position, 3).await?;
    ensure!(
        all.first() == read.first(),
        "read_all from the first position starts with it"
    );
    ensure!(
        log.head_position().await? >= outcome.position,
        "head is behind an acknowledged append"
    );
    Ok(())
}

/// 64 tasks race on one stream with `Exact`: each version is won by exactly one, nothing is lost.
pub async fn concurrent_appends_one_stream(log: Arc<dyn EventLog>) -> Outcome {
    let s = Arc::new(unique_stream("conformance-race"));
    let tasks: Vec<_> = (0..64u64)
        .map(|task| {
            let (log, s) = (Arc::clone(&log), Arc::clone(&s));
            tokio::spawn(async move {
                let event = new_event("Raced", json!({ "task": task }));
                let mut current = log.stream_version(&s).await?;
                loop {
                    let expected = ExpectedVersion::from_current(current);
                    match log.append(&s, expected, vec![event.clone()]).await {
                        Ok(outcome) => {
                            return Ok::<_, Failure>((outcome.last_version, event.event_id))
                        }
                        Err(AppendError::Conflict { actual, .. }) => current = actual,
                        Err(e) => return Err(e.into()),
                    }
                }
            })
        })
        .collect();
    let mut won = BTreeMap::new();
    for task in tasks {
        let (version, id) = task
            .await
            .map_err(|e| Failure(format!("task panicked: {e}")))??;
        ensure!(
            won.insert(version, id).is_none(),
            "version {version} acknowledged twice"
        );
    }
    ensure!(
        won.keys().copied().eq(0..64),
        "versions won: {:?}",
        won.keys()
    );
    let events = log.read_stream(&s, 0, 1_000).await?;
    ensure!(
        events.len() == 64,
        "stream has {} events, not 64",
        events.len()
    );
    for event in &events {
        ensure!(
            won.get(&event.version) == Some(&event.event_id),
            "version {} holds another event",
            event.version
        );
    }
    Ok(())
}

/// 64 tasks each append to their own stream: all succeed, each stream is complete, positions are distinct.
pub async fn concurrent_appends_distinct_streams(log: Arc<dyn EventLog>) -> Outcome {
    const APPENDS: u64 = 10;
    let prefix = unique_stream("conformance-many");
    let start = log.head_position().await?;
    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let (log, s) = (Arc::clone(&log), format!("{prefix}-{task}"));
            tokio::spawn(async move {
                for n in 0..APPENDS {
                    let expected = if n == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(n - 1)
                    };
                    let outcome = log
                        .append(&s, expected, vec![new_event("Counted", json!({ "n": n }))])
                        .await?;
                    ensure!(
                        outcome.last_version == n,
                        "{s}: append {n} got version {}",
                        outcome.last_version
                    );
                }
                Ok::<_, Failure>(())
            })
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| Failure(format!("task panicked: {e}")))??;
    }
    let mut ours = Vec::new();
    let mut from = start + 1;
    loop {
        let page = log.read_all(from, 500).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        ours.extend(page.into_iter().filter(|e| e.stream.starts_with(&prefix)));
    }
    ensure!(
        ours.len() == 64 * APPENDS as usize,
        "read_all shows {} of {} events",
        ours.len(),
        64 * APPENDS
    );
    ensure!(
        ours.windows(2).all(|w| w[0].position < w[1].position),
        "read_all out of order"
    );
    let mut next_version: BTreeMap<&str, u64> = BTreeMap::new();
    for event in &ours {
        let next = next_version.entry(&event.stream).or_default();
        ensure!(
            event.version == *next,
            "{} version {} out of order",
            event.stream,
            event.version
        );
        *next += 1;
    }
    Ok(())
}

/// Read `sub` until `want` events of `stream_prefix` arrived, checking order and uniqueness of everything.
async fn collect(
    sub: &mut EventSubscription,
    stream_prefix: &str,
    want: usize,
) -> Result<Vec<RecordedEvent>, Failure> {
    let mut ours = Vec::new();
    let mut last: Option<Position> = None;
    let mut ids = HashSet::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while ours.len() < want {
        let next = tokio::time::timeout_at(deadline, sub.next())
            .await
            .map_err(|_| {
                Failure(format!(
                    "subscription delivered {} of {want} events in {DEADLINE:?}",
                    ours.len()
                ))
            })?;
        let event = next.ok_or_else(|| Failure("subscription ended".into()))??;
        ensure!(
            last.is_none_or(|l| event.position > l),
            "position {} after {last:?}",
            event.position
        );
        ensure!(
            ids.insert(event.event_id),
            "event {} delivered twice",
            event.event_id
        );
        last = Some(event.position);
        if event.stream.starts_with(stream_prefix) {
            ours.push(event);
        }
    }
    Ok(ours)
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

/// A subscription from position 0 replays the log in order, including what was written before it.
pub async fn subscribe_from_start(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-sub-start");
    append_numbered(log.as_ref(), &s, 20).await?;
    let mut sub = log.subscribe(0);
    let ours = collect(&mut sub, &s, 20).await?;
    let versions: Vec<_> = ours.iter().map(|e| e.version).collect();
    ensure!(versions.iter().copied().eq(0..20), "versions {versions:?}");
    Ok(())
}

/// A subscription from an event's position starts exactly at that event.
pub async fn subscribe_from_middle(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-sub-middle");
    let outcomes = append_numbered(log.as_ref(), &s, 10).await?;
    let mut sub = log.subscribe(outcomes[4].position);
    let first = tokio::time::timeout(DEADLINE, sub.next())
        .await
        .map_err(|_| Failure("nothing delivered".into()))?
        .ok_or_else(|| Failure("subscription ended".into()))??;
    ensure!(
        first.stream == s && first.version == 4,
        "first event is {}@{}, not {s}@4",
        first.stream,
        first.version
    );
    let rest = collect(&mut sub, &s, 5).await?;
    let versions: Vec<_> = rest.iter().map(|e| e.version).collect();
    ensure!(
        versions.iter().copied().eq(5..10),
        "versions after 4: {versions:?}"
    );
    Ok(())
}

/// Live: appends keep coming from 4 writers while a (late-starting, so lagging) subscriber reads.
pub async fn subscribe_live(log: Arc<dyn EventLog>) -> Outcome {
    const PER_WRITER: u64 = 50;
    let prefix = unique_stream("conformance-live");
    let head = log.head_position().await?;
    let mut sub = log.subscribe(head + 1);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (log, s) = (Arc::clone(&log), format!("{prefix}-{w}"));
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for n in 0..PER_WRITER {
                    let events = vec![
                        new_event("A", json!({ "n": n })),
                        new_event("B", json!({ "n": n })),
                    ];
                    let expected = ExpectedVersion::from_current((n * 2).checked_sub(1));
                    outcomes.push(log.append(&s, expected, events).await?);
                    if n % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Ok::<_, Failure>(outcomes)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ours = collect(&mut sub, &prefix, 4 * 2 * PER_WRITER as usize).await?;
    let mut acknowledged = HashSet::new();
    for writer in writers {
        let outcomes = writer
            .await
            .map_err(|e| Failure(format!("writer panicked: {e}")))??;
        acknowledged.extend(outcomes.iter().map(|o| o.position));
    }
    let delivered: HashSet<_> = ours.iter().map(|e| e.position).collect();
    ensure!(
        acknowledged.is_subset(&delivered),
        "an acknowledged append was not delivered"
    );
    let mut next_version: BTreeMap<&str, u64> = BTreeMap::new();
    for event in &ours {
        let next = next_version.entry(&event.stream).or_default();
        ensure!(
            event.version == *next,
            "{} delivered version {} before {next}",
            event.stream,
            event.version
        );
        *next += 1;
    }
    Ok(())
}

/// Appending events whose ids are already in the stream is idempotent; a partial duplicate is refused.
pub async fn duplicate_event_ids(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-dedup");
    let (a, b, c) = (
        new_event("A", json!({})),
        new_event("B", json!({})),
        new_event("C", json!({})),
    );
    let first = log
        .append(&s, ExpectedVersion::NoStream, vec![a.clone(), b.clone()])
        .await?;
    let again = log
        .append(&s, ExpectedVersion::NoStream, vec![a.clone(), b.clone()])
        .await?;
    ensure!(
        again == first,
        "a repeated append should report {first:?}, got {again:?}"
    );
    let any = log
        .append(&s, ExpectedVersion::Any, vec![b.clone()])
        .await?;
    ensure!(
        any == first,
        "a repeated event with Any should report {first:?}, got {any:?}"
    );
    let partial = log
        .append(&s, ExpectedVersion::Exact(1), vec![b.clone(), c.clone()])
        .await;
    expect_conflict(partial, ExpectedVersion::Exact(1), Some(1))?;
    let third = log
        .append(&s, ExpectedVersion::Exact(1), vec![c.clone()])
        .await?;
    ensure!(
        third.last_version == 2,
        "C should land at version 2, got {third:?}"
    );
    let ids: Vec<_> = log
        .read_stream(&s, 0, 10)
        .await?
        .iter()
        .map(|e| e.event_id)
        .collect();
    ensure!(
        ids == [a.event_id, b.event_id, c.event_id],
        "stream should hold A, B, C once each: {ids:?}"
    );
    Ok(())
}

/// The latest snapshot of a stream is returned as saved.
pub async fn snapshots_round_trip(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-snapshot");
    ensure!(log.load_snapshot(&s).await?.is_none(), "no snapshot yet");
    let first = json!({ "count": 5, "nights": ["2026-01-01"] });
    log.save_snapshot(&s, 5, first.clone()).await?;
    ensure!(
        log.load_snapshot(&s).await? == Some((5, first)),
        "snapshot at 5 not returned as saved"
    );
    let second = json!({ "count": 9 });
    log.save_snapshot(&s, 9, second.clone()).await?;
    ensure!(
        log.load_snapshot(&s).await? == Some((9, second)),
        "latest snapshot (9) not returned"
    );
    Ok(())
}

/// Every recorded hash equals the one recomputed from its fields and its predecessor's hash.
pub async fn hash_chain(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-hash");
    append_numbered(log.as_ref(), &s, 3).await?;
    let batch = vec![
        new_event("A", json!({ "x": [1, 2] })),
        new_event("B", json!({ "y": null })),
    ];
    log.append(&s, ExpectedVersion::Exact(2), batch).await?;
    let events = log.read_stream(&s, 0, 10).await?;
    ensure!(events.len() == 5, "expected 5 events");
    let mut prev = String::new();
    for event in &events {
        ensure!(
            event.hash.len() == 64,
            "hash {:?} is not hex SHA-256",
            event.hash
        );
        ensure!(
            recompute_hash(&prev, event)? == event.hash,
            "hash of version {} does not chain",
            event.version
        );
        prev.clone_from(&event.hash);
    }
    Ok(())
}
