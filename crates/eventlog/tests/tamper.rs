//! The tamper check against an attacker who can write the log file but does not hold its key
//! (docs/decisions/0019): rows rewritten with rusqlite, stream chains re-hashed with plain SHA-256 (the
//! public per-stream scheme). Truncation, an edited and re-hashed event, a removed middle event and two
//! swapped events are each caught and placed; an anchor catches a rollback of the files; a log written
//! before the key existed still verifies and says where its keyed part begins.

#[path = "support/forge.rs"]
mod forge;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eventlog::{
    Anchor, EventLog, EventMetadata, ExpectedVersion, Integrity, LogKey, NewEvent, SqliteEventLog,
    VerifyReport,
};
use rusqlite::{params, Connection};
use serde_json::json;
use uuid::Uuid;

fn key() -> LogKey {
    LogKey::new(&[42; 32])
}

fn event(n: u32) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "Added".into(),
        schema_version: 1,
        data: json!({"n": n, "amount": 1000 + n}).into(),
        metadata: EventMetadata {
            correlation_id: Uuid::nil(),
            causation_id: Uuid::nil(),
            actor: "test".into(),
        },
    }
}

/// Append 12 events round-robin to streams a, b, c (positions 1..=12), one append each.
async fn fill(log: &SqliteEventLog, from: u32, count: u32) {
    for n in from..from + count {
        let stream = ["s-a", "s-b", "s-c"][(n % 3) as usize];
        log.append(stream, ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("append");
    }
}

fn head_position(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path.with_extension("head")).ok()?;
    serde_json::from_str::<Anchor>(&text)
        .ok()
        .map(|a| a.position)
}

/// Wait (polling) until the head record beside `path` records `position`.
fn await_head(path: &Path, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while head_position(path) != Some(position) {
        assert!(
            Instant::now() < deadline,
            "head record never reached {position}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A keyed log of 12 events in a fresh dir, closed, its head record written.
async fn written() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("events.db");
    let log = SqliteEventLog::open_keyed(&path, key()).expect("open");
    fill(&log, 0, 12).await;
    drop(log);
    await_head(&path, 12);
    (dir, path)
}

async fn verify(path: &Path, anchor: Option<&Anchor>) -> VerifyReport {
    let log = SqliteEventLog::open_keyed(path, key()).expect("reopen");
    log.verify_keyed(anchor).await.expect("verify")
}

fn stream_at(conn: &Connection, position: i64) -> (String, i64) {
    conn.query_row(
        "SELECT stream, version FROM events WHERE position = ?1",
        [position],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("row")
}

fn caught(report: &VerifyReport, stream: &str, position: u64) {
    assert!(!report.ok, "{report:?}");
    let bad = report.first_bad.as_ref().expect("first bad");
    assert_eq!(
        (bad.stream.as_str(), bad.position),
        (stream, position),
        "{report:?}"
    );
}

#[tokio::test]
async fn an_untouched_log_verifies_keyed() {
    let (_dir, path) = written().await;
    let report = verify(&path, None).await;
    assert!(report.ok && report.keyed, "{report:?}");
    assert_eq!((report.events_checked, report.unkeyed_before), (12, None));
    assert_eq!(report.head_position, Some(12));
}

#[tokio::test]
async fn removing_the_last_events_is_caught_by_the_head_record() {
    let (_dir, path) = written().await;
    let conn = Connection::open(&path).expect("sqlite");
    let (stream, _) = stream_at(&conn, 12);
    conn.execute("DELETE FROM events WHERE position > 9", [])
        .expect("truncate");
    drop(conn);
    let report = verify(&path, None).await;
    caught(&report, &stream, 12);
    let reason = &report.first_bad.expect("bad").reason;
    assert!(reason.contains("ends at position 9"), "{reason}");
}

#[tokio::test]
async fn an_edited_and_rehashed_event_is_caught() {
    let (_dir, path) = written().await;
    let conn = Connection::open(&path).expect("sqlite");
    let (stream, _) = stream_at(&conn, 5);
    conn.execute(
        "UPDATE events SET data = json_set(data, '$.amount', 1) WHERE position = 5",
        [],
    )
    .expect("edit");
    forge::rehash(&conn, &stream);
    drop(conn);
    caught(&verify(&path, None).await, &stream, 5);
}

#[tokio::test]
async fn a_removed_middle_event_is_caught_even_renumbered() {
    let (_dir, path) = written().await;
    let conn = Connection::open(&path).expect("sqlite");
    let (stream, version) = stream_at(&conn, 6);
    conn.execute("DELETE FROM events WHERE position = 6", [])
        .expect("delete");
    // Close the gaps: the stream's later versions and the later positions move down by one.
    for v in version + 1..=4 {
        conn.execute(
            "UPDATE events SET version = ?1 WHERE stream = ?2 AND version = ?3",
            params![v - 1, stream, v],
        )
        .expect("renumber versions");
    }
    for p in 7..=12 {
        conn.execute(
            "UPDATE events SET position = ?1 WHERE position = ?2",
            params![p - 1, p],
        )
        .expect("renumber positions");
    }
    forge::rehash(&conn, &stream);
    let (now_at_6, _) = stream_at(&conn, 6);
    drop(conn);
    caught(&verify(&path, None).await, &now_at_6, 6);
}

#[tokio::test]
async fn two_swapped_events_are_caught() {
    let (_dir, path) = written().await;
    let conn = Connection::open(&path).expect("sqlite");
    let (first, _) = stream_at(&conn, 7);
    let (second, _) = stream_at(&conn, 8);
    assert_ne!(first, second);
    for (from, to) in [(7, 100), (8, 7), (100, 8)] {
        conn.execute(
            "UPDATE events SET position = ?1 WHERE position = ?2",
            params![to, from],
        )
        .expect("swap");
    }
    drop(conn);
    caught(&verify(&path, None).await, &second, 7);
}

#[tokio::test]
async fn an_anchor_catches_a_rollback_of_every_file() {
    let (dir, path) = written().await;
    let early = tempfile::tempdir().expect("copy");
    for file in ["events.db", "events.head"] {
        std::fs::copy(dir.path().join(file), early.path().join(file)).expect("copy");
    }
    let log = SqliteEventLog::open_keyed(&path, key()).expect("reopen");
    fill(&log, 12, 3).await;
    let anchor = log.anchor().await.expect("anchor");
    assert_eq!(anchor.position, 15);
    assert!(anchor.signed_by(&key()));
    assert!(log.verify_keyed(Some(&anchor)).await.expect("verify").ok);
    drop(log);

    let rolled_back = early.path().join("events.db");
    let alone = verify(&rolled_back, None).await;
    assert!(
        alone.ok,
        "an earlier copy is consistent in itself: {alone:?}"
    );
    let report = verify(&rolled_back, Some(&anchor)).await;
    caught(&report, &anchor.stream, 15);
    assert_eq!(report.anchor_position, Some(15));
    // The position and MAC alone (as /audit/verify takes them) are enough.
    let bare = Anchor {
        signature: None,
        stream: String::new(),
        ..anchor.clone()
    };
    assert!(!verify(&rolled_back, Some(&bare)).await.ok);
}

#[tokio::test]
async fn a_log_written_before_the_key_verifies_and_says_where_keying_began() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("events.db");
    let old = SqliteEventLog::open(&path).expect("unkeyed");
    fill(&old, 0, 4).await;
    drop(old);
    let log = SqliteEventLog::open_keyed(&path, key()).expect("keyed");
    fill(&log, 4, 3).await;
    drop(log);
    await_head(&path, 7);
    let report = verify(&path, None).await;
    assert!(report.ok && report.keyed, "{report:?}");
    assert_eq!(report.unkeyed_before, Some(5));

    // An unkeyed verify of a keyed log (its key withheld) does not pass.
    let unkeyed = SqliteEventLog::open(&path).expect("unkeyed again");
    let report = unkeyed.verify().await.expect("verify");
    assert!(!report.ok && !report.keyed, "{report:?}");
}

#[tokio::test]
async fn the_head_record_follows_a_log_that_stays_open() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("events.db");
    let log = SqliteEventLog::open_keyed(&path, key()).expect("open");
    // Commits in quick succession (one wake of the head thread for many), then one alone after a
    // pause (a wake of its own): the record catches up with each while the log is still open.
    fill(&log, 0, 30).await;
    await_head(&path, 30);
    fill(&log, 30, 1).await;
    await_head(&path, 31);
    fill(&log, 31, 5).await;
    drop(log);
    await_head(&path, 36);
    assert!(verify(&path, None).await.ok);
}
