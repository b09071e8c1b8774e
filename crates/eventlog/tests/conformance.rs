//! The conformance suite against every adapter: SQLite always (a fresh file per case), EventStoreDB when
//! `STAYLEDGER_EVENTSTORE_URL` is set. Plus the SQLite-only checks: tampering, reopening, two writers
//! (as two processes would) on one file.

use std::sync::Arc;
use std::time::Duration;

use eventlog::conformance::{self, new_event, unique_stream};
use eventlog::{
    EsdbEventLog, EventLog, EventLogExt, ExpectedVersion, LocalGroups, Snapshots, SqliteEventLog,
};
use futures::StreamExt;
use serde_json::json;

fn fresh() -> (tempfile::TempDir, SqliteEventLog) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = SqliteEventLog::open(dir.path().join("events.db")).expect("open log");
    (dir, log)
}

macro_rules! sqlite_cases {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let (_dir, log) = fresh();
            conformance::$case(Arc::new(log)).await.unwrap();
        }
    )*};
}

sqlite_cases!(
    expected_version_conflicts,
    read_after_write,
    concurrent_appends_one_stream,
    concurrent_appends_distinct_streams,
    subscribe_from_start,
    subscribe_from_middle,
    subscribe_live,
    subscribe_parsed_matches_subscribe,
    duplicate_event_ids,
    dedup_window,
    snapshots_round_trip,
    hash_chain,
);

#[test]
fn every_case_is_run_against_sqlite() {
    // The macro above must list every case of the suite.
    assert_eq!(conformance::CASES.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventstoredb_conformance() {
    let Some(url) =
        eventlog::conformance::server_url("STAYLEDGER_EVENTSTORE_URL", "EventStoreDB conformance")
    else {
        return;
    };
    let log = EsdbEventLog::connect(&url)
        .await
        .expect("connect to EventStoreDB");
    let log = Arc::new(log);
    conformance::run_all(Arc::clone(&log) as Arc<dyn EventLog>)
        .await
        .unwrap();
    conformance::consumer_group(Arc::clone(&log) as Arc<dyn EventLog>, log)
        .await
        .unwrap();
}

/// The embedded log has no server to keep consumer groups; `LocalGroups` keeps them in the process,
/// over it, and passes the same case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_held_in_process() {
    let (_dir, log) = fresh();
    let log: Arc<dyn EventLog> = Arc::new(log);
    let groups = Arc::new(LocalGroups::new(Arc::clone(&log)));
    conformance::consumer_group(log, groups).await.unwrap();
}

#[tokio::test]
async fn fresh_log_positions_start_at_one_and_verify() {
    let (_dir, log) = fresh();
    assert_eq!(log.head_position().await.unwrap(), 0);
    let outcome = log
        .append(
            "s-1",
            ExpectedVersion::NoStream,
            vec![new_event("A", json!({})), new_event("B", json!({}))],
        )
        .await
        .unwrap();
    assert_eq!((outcome.last_version, outcome.position), (1, 2));
    let report = log.verify().await.unwrap();
    assert!(report.ok && report.events_checked == 2, "{report:?}");
    assert_eq!(eventlog::verify_log(&log).await.unwrap(), report);
}

#[tokio::test]
async fn tampered_row_is_reported_by_verify() {
    let (dir, log) = fresh();
    let s = unique_stream("tamper");
    for n in 0..3u64 {
        let expected = ExpectedVersion::from_current(n.checked_sub(1));
        log.append(&s, expected, vec![new_event("Counted", json!({ "n": n }))])
            .await
            .unwrap();
    }
    log.append(
        "other",
        ExpectedVersion::NoStream,
        vec![new_event("A", json!({}))],
    )
    .await
    .unwrap();
    assert!(log.verify().await.unwrap().ok);

    let raw = rusqlite::Connection::open(dir.path().join("events.db")).unwrap();
    let changed = raw
        .execute(
            "UPDATE events SET data = '{\"n\":100}' WHERE stream = ?1 AND version = 1",
            [&s],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(raw);

    for report in [
        log.verify().await.unwrap(),
        eventlog::verify_log(&log).await.unwrap(),
    ] {
        assert!(!report.ok);
        let bad = report.first_bad.expect("a bad event");
        assert_eq!(
            (bad.stream.as_str(), bad.version, bad.position),
            (s.as_str(), 1, 2)
        );
        assert_eq!(bad.reason, "hash mismatch");
    }
}

#[tokio::test]
async fn verify_reports_deleted_and_retyped_rows() {
    let (dir, log) = fresh();
    for n in 0..4u64 {
        let expected = ExpectedVersion::from_current(n.checked_sub(1));
        log.append("s", expected, vec![new_event("Counted", json!({ "n": n }))])
            .await
            .unwrap();
    }
    let raw = rusqlite::Connection::open(dir.path().join("events.db")).unwrap();
    raw.execute("UPDATE events SET event_type = 42 WHERE version = 3", [])
        .unwrap();
    let report = log.verify().await.unwrap();
    let bad = report.first_bad.expect("a retyped column is reported");
    assert_eq!((bad.version, bad.reason.as_str()), (3, "hash mismatch"));

    raw.execute("DELETE FROM events WHERE version = 1", [])
        .unwrap();
    let report = log.verify().await.unwrap();
    let bad = report.first_bad.expect("a deleted event is reported");
    assert_eq!(bad.version, 2);
    assert_eq!(bad.reason, "version 2 where 1 was expected");
    let generic = eventlog::verify_log(&log).await.unwrap();
    assert_eq!(generic.first_bad.map(|b| b.version), Some(2));
}

#[tokio::test]
async fn a_payload_a_value_cannot_hold_fails_the_raw_read_as_the_parsed_one() {
    let (dir, log) = fresh();
    log.append(
        "s",
        ExpectedVersion::NoStream,
        vec![new_event("A", json!({ "n": 1 }))],
    )
    .await
    .unwrap();
    assert!(log.read_all(1, 10).await.is_ok());
    let raw = rusqlite::Connection::open(dir.path().join("events.db")).unwrap();
    // Well-formed JSON, but the number is out of range for a Value; then not JSON at all.
    for data in ["{\"n\":1e400}", "{\"n\":"] {
        raw.execute("UPDATE events SET data = ?1 WHERE version = 0", [data])
            .unwrap();
        let parsed = log
            .read_all_parsed(1, 10)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let text = log
            .read_all(1, 10)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(parsed.is_err(), "{data}");
        assert_eq!(text, parsed, "{data}");
    }
}

#[tokio::test]
async fn events_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let event = new_event("A", json!({ "kept": true }));
    {
        let log = SqliteEventLog::open(&path).unwrap();
        log.append("s", ExpectedVersion::NoStream, vec![event.clone()])
            .await
            .unwrap();
        Snapshots::save(&log, "s", 0, json!({ "snap": 1 }))
            .await
            .unwrap();
    }
    let log = SqliteEventLog::open(&path).unwrap();
    let read = log.read_stream("s", 0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].event_id, &read[0].data),
        (event.event_id, &event.data.to_value())
    );
    assert_eq!(
        Snapshots::load(&log, "s").await.unwrap(),
        Some((0, json!({ "snap": 1 })))
    );
    let next = log
        .append(
            "s",
            ExpectedVersion::Exact(0),
            vec![new_event("B", json!({}))],
        )
        .await
        .unwrap();
    assert_eq!((next.last_version, next.position), (1, 2));
    assert!(log.verify().await.unwrap().ok);
}

/// A read of the whole log large enough to go through a connection of its own that maps the file
/// gives exactly what pooled reads page by page give, rows already copied into the file by the
/// background checkpoint and rows still in the WAL alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_read_of_the_log_gives_what_reads_page_by_page_give() {
    let (_dir, log) = fresh();
    for round in 0..2 {
        for s in 0..50 {
            let events = (0..50)
                .map(|n| new_event("E", json!({ "round": round, "s": s, "n": n })))
                .collect();
            log.append(
                &format!("bulk-{round}-{s}"),
                ExpectedVersion::NoStream,
                events,
            )
            .await
            .unwrap();
        }
        // The background checkpoint (every 50 ms) copies the first half into the file meanwhile.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let bulk = log.read_all(1, 10_000).await.unwrap();
    assert_eq!(bulk.len(), 5_000);
    let mut paged: Vec<eventlog::RawRecordedEvent> = Vec::new();
    loop {
        let next = paged.last().map_or(1, |event| event.position + 1);
        let page = log.read_all(next, 512).await.unwrap();
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(bulk, paged);
    let middle = log.read_all(2_501, 4_096).await.unwrap();
    assert_eq!(middle.len(), 2_500);
    assert_eq!(middle[..], paged[2_500..]);
}

/// A reopened log knows nothing of a stream until its next append reads it back from the file: its
/// head (to chain and check the version) and every event id (to deduplicate) come from its rows.
#[tokio::test]
async fn a_stream_read_back_after_reopening_keeps_its_head_and_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let first = vec![new_event("A", json!({ "n": 1 })), new_event("B", json!({}))];
    let second = vec![new_event("C", json!({ "n": 3 }))];
    let written = {
        let log = SqliteEventLog::open(&path).unwrap();
        log.append(
            "other",
            ExpectedVersion::NoStream,
            vec![new_event("X", json!({}))],
        )
        .await
        .unwrap();
        log.append("s", ExpectedVersion::NoStream, first.clone())
            .await
            .unwrap();
        log.append("s", ExpectedVersion::Exact(1), second.clone())
            .await
            .unwrap()
    };
    assert_eq!((written.last_version, written.position), (2, 4));
    let log = SqliteEventLog::open(&path).unwrap();
    // The first append again, as a retry: every id is there, so the stream is reported as it is.
    let again = log
        .append("s", ExpectedVersion::NoStream, first.clone())
        .await
        .unwrap();
    assert_eq!(again, written);
    // Old ids mixed with a new one: not a retry of one append.
    let mixed = log
        .append(
            "s",
            ExpectedVersion::Exact(2),
            vec![first[1].clone(), new_event("D", json!({}))],
        )
        .await;
    conformance::expect_conflict(mixed, ExpectedVersion::Exact(2), Some(2)).unwrap();
    let next = log
        .append(
            "s",
            ExpectedVersion::Exact(2),
            vec![new_event("D", json!({}))],
        )
        .await
        .unwrap();
    assert_eq!((next.last_version, next.position), (3, 5));
    assert_eq!(log.read_stream("s", 0, 10).await.unwrap().len(), 4);
    assert!(
        log.verify().await.unwrap().ok,
        "the chain went on from the stored head"
    );
}

/// Two logs on one file stand in for two processes: SQLite's lock serializes their writers, positions stay
/// gap-free, and a subscription on one sees what the other wrote (by polling). Live subscriptions on
/// both, read while the writes go on, take their own writer's rows from memory and the other's from
/// the file: each delivers every event once, in order, equal to what the file holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_file_keep_positions_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let (a, b) = (
        SqliteEventLog::open(&path).unwrap(),
        SqliteEventLog::open(&path).unwrap(),
    );
    let mut sub_on_a = a.subscribe_parsed(0);
    let live = [a.subscribe(1), b.subscribe(1)].map(|mut sub| {
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < 160 {
                let next = tokio::time::timeout(Duration::from_secs(10), sub.next()).await;
                seen.push(next.expect("live").expect("open").expect("read"));
            }
            seen
        })
    });
    let mut tasks = Vec::new();
    for (i, log) in [a.clone(), b.clone()]
        .into_iter()
        .cycle()
        .take(16)
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let s = format!("shared-{i}");
            for n in 0..10u64 {
                let expected = ExpectedVersion::from_current(n.checked_sub(1));
                log.append(&s, expected, vec![new_event("Counted", json!({ "n": n }))])
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = b.read_all_parsed(0, 1_000).await.unwrap();
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=160).collect::<Vec<_>>());
    for expected in 1..=160 {
        let event = tokio::time::timeout(Duration::from_secs(10), sub_on_a.next())
            .await
            .expect("subscription on A sees B's events")
            .unwrap()
            .unwrap();
        assert_eq!(event.position, expected);
    }
    let stored = b.read_all(0, 1_000).await.unwrap();
    for live in live {
        assert_eq!(live.await.unwrap(), stored);
    }
    assert!(a.verify().await.unwrap().ok);
}

#[test]
fn opening_something_that_is_not_a_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert!(SqliteEventLog::open(&garbage).is_err());
    assert!(SqliteEventLog::open(dir.path().join("missing-dir").join("events.db")).is_err());
}

#[tokio::test]
async fn esdb_connect_rejects_a_bad_url() {
    assert!(EsdbEventLog::connect("not a url").await.is_err());
}

/// The writer's in-memory stream state (versions, hashes, event ids for dedup) follows writes made by
/// another writer on the same file.
#[tokio::test]
async fn dedup_and_versions_see_the_other_writers_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let (a, b) = (
        SqliteEventLog::open(&path).unwrap(),
        SqliteEventLog::open(&path).unwrap(),
    );
    let (first, second) = (new_event("A", json!({})), new_event("B", json!({})));
    a.append("s", ExpectedVersion::NoStream, vec![first.clone()])
        .await
        .unwrap();
    b.append(
        "s",
        ExpectedVersion::Exact(0),
        vec![new_event("C", json!({}))],
    )
    .await
    .unwrap();
    // A cached "s" at version 0; B moved it on. A must see version 1 and B's hash.
    let stale = a
        .append("s", ExpectedVersion::Exact(0), vec![second.clone()])
        .await;
    conformance::expect_conflict(stale, ExpectedVersion::Exact(0), Some(1)).unwrap();
    let added = a
        .append("s", ExpectedVersion::Exact(1), vec![second.clone()])
        .await
        .unwrap();
    assert_eq!((added.last_version, added.position), (2, 3));
    // B cached "s" at version 1; it must know that A wrote `second` since.
    let again = b
        .append("s", ExpectedVersion::Exact(1), vec![second.clone()])
        .await
        .unwrap();
    assert_eq!(again, added);
    assert_eq!(b.read_stream("s", 0, 10).await.unwrap().len(), 3);
    assert!(b.verify().await.unwrap().ok);
}
