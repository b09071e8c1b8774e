//! Cases about subscriptions: from the start, from an event's position, and live under load.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::json;

use super::{append_numbered, new_event, unique_stream, Failure, Outcome, DEADLINE};
use crate::{EventLog, EventLogExt, ExpectedVersion, LogError, Position, Recorded};

/// Read `sub` until `want` events of `stream_prefix` arrived, checking order and uniqueness of everything.
async fn collect<D>(
    sub: &mut BoxStream<'static, Result<Recorded<D>, LogError>>,
    stream_prefix: &str,
    want: usize,
) -> Result<Vec<Recorded<D>>, Failure> {
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

/// `subscribe` delivers what `subscribe_parsed` does, each payload as JSON text that parses to the
/// same value (nested objects, unicode, escapes, numbers of every kind).
pub async fn subscribe_parsed_matches_subscribe(log: Arc<dyn EventLog>) -> Outcome {
    let s = unique_stream("conformance-sub-raw");
    let payloads = [
        json!({ "n": 0 }),
        json!({ "text": "é \"quoted\" \\ \u{1F600} \n", "empty": "" }),
        json!({ "nested": { "list": [1, -2, 3.5, 1e-7, null, true], "deep": { "a": [] } } }),
        json!({ "big": u64::MAX, "neg": i64::MIN }),
        json!([]),
        json!("just a string"),
    ];
    let head = log.head_position().await?;
    for (n, data) in payloads.iter().enumerate() {
        let expected = ExpectedVersion::from_current((n as u64).checked_sub(1));
        log.append(&s, expected, vec![new_event("Raw", data.clone())])
            .await?;
    }
    let parsed = collect(&mut log.subscribe_parsed(head + 1), &s, payloads.len()).await?;
    let raw = collect(&mut log.subscribe(head + 1), &s, payloads.len()).await?;
    ensure!(
        raw.len() == parsed.len(),
        "{} raw, {} parsed",
        raw.len(),
        parsed.len()
    );
    for ((raw, parsed), written) in raw.into_iter().zip(parsed).zip(&payloads) {
        let text = raw.data.clone();
        let data: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Failure(format!("raw payload {text:?} is not JSON: {e}")))?;
        ensure!(data == *written, "raw payload {text} is not {written}");
        ensure!(
            parsed.data == *written,
            "parsed payload {} is not {written}",
            parsed.data
        );
        let (raw, parsed) = (raw.map_data(|_| ()), parsed.map_data(|_| ()));
        ensure!(raw == parsed, "raw {raw:?} differs from parsed {parsed:?}");
    }
    Ok(())
}
