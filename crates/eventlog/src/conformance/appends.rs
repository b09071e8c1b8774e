//! Cases about appending and reading back: expected versions, races, dedup, snapshots, the hash chain.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::{append_numbered, expect_conflict, new_event, unique_stream, Failure, Outcome};
use crate::hash::recompute_hash;
use crate::{
    AppendError, EventLog, EventLogExt, ExpectedVersion, RawRecordedEvent, RecordedEvent,
    Snapshots, DEDUP_WINDOW,
};

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

/// What was appended is read back at once, field for field, from the stream and from the global log
/// (with payloads parsed, and as text).
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
                && got.data == sent.data.to_value()
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
    let all = log.read_all_parsed(read[0].position, 3).await?;
    ensure!(
        all.first() == read.first(),
        "read_all from the first position starts with it"
    );
    let raw = log.read_all(read[0].position, 3).await?;
    ensure!(
        raw.len() == all.len() && raw.iter().zip(&all).all(|(r, e)| same_event(r, e)),
        "read_all differs from read_all_parsed: {raw:?}"
    );
    ensure!(
        log.head_position().await? >= outcome.position,
        "head is behind an acknowledged append"
    );
    Ok(())
}

/// Whether `raw` is `event` with its payload as JSON text.
fn same_event(raw: &RawRecordedEvent, event: &RecordedEvent) -> bool {
    let data = serde_json::from_str::<serde_json::Value>(&raw.data).ok();
    let without_payload = |e: RawRecordedEvent| RawRecordedEvent {
        data: String::new(),
        ..e
    };
    data.as_ref() == Some(&event.data)
        && without_payload(raw.clone()) == without_payload(RawRecordedEvent::from(event.clone()))
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

/// A long stream's repeats are looked for in its last [`DEDUP_WINDOW`] events: a repeat of a recent
/// append is a no-op, also an append of more events than the window; a repeat from further back
/// conflicts on its old expected version.
pub async fn dedup_window(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-window");
    let first = new_event("E", json!({ "n": 0 }));
    log.append(&s, ExpectedVersion::NoStream, vec![first.clone()])
        .await?;
    let mut last = None;
    for n in 1..=DEDUP_WINDOW as u64 + 8 {
        let event = new_event("E", json!({ "n": n }));
        let outcome = log
            .append(&s, ExpectedVersion::Exact(n - 1), vec![event.clone()])
            .await?;
        last = Some((n - 1, event, outcome));
    }
    let (expected, event, outcome) = last.ok_or_else(|| Failure("no appends".into()))?;
    let again = log
        .append(&s, ExpectedVersion::Exact(expected), vec![event])
        .await?;
    ensure!(
        again == outcome,
        "a repeat of the last append should report {outcome:?}, got {again:?}"
    );
    let old = log.append(&s, ExpectedVersion::NoStream, vec![first]).await;
    let head = Some(outcome.last_version);
    expect_conflict(old, ExpectedVersion::NoStream, head)?;
    let big: Vec<_> = (0..DEDUP_WINDOW + 16)
        .map(|n| new_event("Big", json!({ "n": n })))
        .collect();
    let written = log
        .append(
            &s,
            ExpectedVersion::Exact(outcome.last_version),
            big.clone(),
        )
        .await?;
    let repeated = log
        .append(&s, ExpectedVersion::Exact(outcome.last_version), big)
        .await?;
    ensure!(
        repeated == written,
        "a repeat of an append larger than the window should report {written:?}, got {repeated:?}"
    );
    let count = log.read_stream(&s, 0, 1_000).await?.len();
    let want = 1 + DEDUP_WINDOW + 8 + DEDUP_WINDOW + 16;
    ensure!(
        count == want,
        "the stream should hold {want} events, holds {count}"
    );
    Ok(())
}

/// The latest snapshot of a stream is returned as saved (the [`Snapshots`] port).
pub async fn snapshots_round_trip(snapshots: Arc<dyn Snapshots>) -> Outcome {
    let s = unique_stream("conformance-snapshot");
    ensure!(snapshots.load(&s).await?.is_none(), "no snapshot yet");
    let first = json!({ "count": 5, "nights": ["2026-01-01"] });
    snapshots.save(&s, 5, first.clone()).await?;
    ensure!(
        snapshots.load(&s).await? == Some((5, first)),
        "snapshot at 5 not returned as saved"
    );
    let second = json!({ "count": 9 });
    snapshots.save(&s, 9, second.clone()).await?;
    ensure!(
        snapshots.load(&s).await? == Some((9, second)),
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
