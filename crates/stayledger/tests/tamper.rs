//! The tamper check of a real data dir, as an attacker with write access to the files (but not the
//! log's key) would defeat the per-stream SHA-256 chains (docs/decisions/0019): rows of `events.db`
//! rewritten with rusqlite and their streams re-hashed with plain SHA-256, every other file of the
//! data dir left as it was. `stayledger verify --data-dir DIR` and `GET /audit/verify` each catch, and
//! place (stream, position), a truncation, an edited and re-hashed event, a removed middle event and
//! two swapped events; with an anchor kept elsewhere, a rollback of the whole data dir too.

mod common;
#[path = "../../eventlog/tests/support/forge.rs"]
mod forge;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{stayledger, test_config, TestPlatform};
use rusqlite::{params, Connection};
use serde_json::Value;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(15);

/// Confirm a reservation for each of `customers` on a running platform.
async fn book(t: &TestPlatform, customers: &[(&str, i64)]) {
    for (customer, day) in customers {
        let (id, _) = t.request(customer, "tamper-inn", *day, 1).await;
        t.wait_for(&id, "status", "confirmed", WAIT).await;
    }
}

fn last_position(dir: &Path) -> u64 {
    let conn = Connection::open(dir.join("events.db")).expect("sqlite");
    conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
        r.get::<_, i64>(0)
    })
    .expect("max") as u64
}

fn head_record(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("events.head")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Wait (polling) until the stopped platform's head record covers the whole log.
fn await_head(dir: &Path) {
    let last = last_position(dir);
    let deadline = Instant::now() + WAIT;
    while head_record(dir).and_then(|h| h["position"].as_u64()) != Some(last) {
        assert!(
            Instant::now() < deadline,
            "the head record never reached {last}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A data dir with two confirmed reservations, its platform stopped.
async fn served() -> TempDir {
    let t = TestPlatform::start().await;
    t.register_lodging("tamper-inn", 3, "instant").await;
    book(&t, &[("ana", 10), ("ben", 12)]).await;
    let dir = t.stop().await;
    await_head(dir.path());
    dir
}

/// A copy of every file of `dir` (the shared-memory index aside: SQLite rebuilds it).
fn copy(dir: &Path) -> TempDir {
    let to = tempfile::tempdir().expect("copy");
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if entry.path().is_file() && !name.to_string_lossy().ends_with("-shm") {
            std::fs::copy(entry.path(), to.path().join(&name)).expect("copy file");
        }
    }
    to
}

fn at(conn: &Connection, position: u64) -> (String, i64) {
    conn.query_row(
        "SELECT stream, version FROM events WHERE position = ?1",
        [position as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .expect("row")
}

/// Tamper with a copy of `dir`: `attack` gets the log file and answers the stream and position the
/// check must report.
fn tampered(
    dir: &Path,
    attack: impl FnOnce(&Connection, u64) -> (String, u64),
) -> (TempDir, String, u64) {
    let copy = copy(dir);
    let last = last_position(copy.path());
    let conn = Connection::open(copy.path().join("events.db")).expect("sqlite");
    let (stream, position) = attack(&conn, last);
    drop(conn);
    (copy, stream, position)
}

fn first_bad(report: &Value) -> (String, u64) {
    let bad = &report["first_bad"];
    (
        bad["stream"].as_str().unwrap_or_default().to_owned(),
        bad["position"].as_u64().unwrap_or_default(),
    )
}

/// `stayledger verify` fails and names `stream` and `position`.
fn cli_catches(dir: &Path, extra: &[&str], stream: &str, position: u64) {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    let out = stayledger(&args, dir);
    assert!(!out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a report on stdout");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        first_bad(&report),
        (stream.to_owned(), position),
        "{report}"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("position {position}")), "{said}");
}

/// `GET /audit/verify{query}` on a platform serving `dir` reports `stream` and `position`.
async fn http_catches(dir: TempDir, query: &str, stream: &str, position: u64) -> TempDir {
    let config = test_config(dir.path());
    let t = TestPlatform::start_in(dir, config).await;
    let (status, report) = t.get(&format!("/audit/verify{query}"), &t.auditor()).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["keyed"], true, "{report}");
    assert_eq!(
        first_bad(&report),
        (stream.to_owned(), position),
        "{report}"
    );
    t.stop().await
}

async fn caught_both_ways(dir: TempDir, stream: &str, position: u64) {
    cli_catches(dir.path(), &[], stream, position);
    http_catches(dir, "", stream, position).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncation_and_an_edited_rehashed_event_are_caught() {
    let dir = served().await;
    let verified = stayledger(&["verify"], dir.path());
    assert!(verified.status.success(), "{verified:?}");

    // The last three events removed; events.head and every other file left as they were.
    let (copy, stream, position) = tampered(dir.path(), |conn, last| {
        let (stream, _) = at(conn, last);
        conn.execute("DELETE FROM events WHERE position > ?1", [last as i64 - 3])
            .expect("truncate");
        (stream, last)
    });
    caught_both_ways(copy, &stream, position).await;

    // A payment's amount edited, its stream re-hashed with plain SHA-256.
    let (copy, stream, position) = tampered(dir.path(), |conn, _| {
        let position: i64 = conn
            .query_row(
                "SELECT position FROM events WHERE event_type = 'PaymentCompleted' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("a completed payment");
        let (stream, _) = at(conn, position as u64);
        conn.execute(
            "UPDATE events SET data = json_set(data, '$.amount', 1) WHERE position = ?1",
            [position],
        )
        .expect("edit");
        forge::rehash(conn, &stream);
        (stream, position as u64)
    });
    caught_both_ways(copy, &stream, position).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_middle_event_and_two_swapped_events_are_caught() {
    let dir = served().await;

    // The middle event removed, its stream's later versions and every later position moved down by
    // one (no gap anywhere), the stream re-hashed.
    let (copy, stream, position) = tampered(dir.path(), |conn, last| {
        let middle = last / 2;
        let (stream, version) = at(conn, middle);
        conn.execute("DELETE FROM events WHERE position = ?1", [middle as i64])
            .expect("delete");
        let top: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1",
                [&stream],
                |r| r.get(0),
            )
            .expect("top");
        for v in version + 1..=top {
            conn.execute(
                "UPDATE events SET version = ?1 WHERE stream = ?2 AND version = ?3",
                params![v - 1, stream, v],
            )
            .expect("renumber versions");
        }
        for p in middle + 1..=last {
            conn.execute(
                "UPDATE events SET position = ?1 WHERE position = ?2",
                params![p as i64 - 1, p as i64],
            )
            .expect("renumber positions");
        }
        forge::rehash(conn, &stream);
        (at(conn, middle).0, middle)
    });
    caught_both_ways(copy, &stream, position).await;

    // Two neighbouring events of different streams swapped in the global order.
    let (copy, stream, position) = tampered(dir.path(), |conn, last| {
        let mut first = last / 2;
        while at(conn, first).0 == at(conn, first + 1).0 {
            first += 1;
        }
        let moved = at(conn, first + 1).0;
        for (from, to) in [(first, 0), (first + 1, first), (0, first + 1)] {
            conn.execute(
                "UPDATE events SET position = ?1 WHERE position = ?2",
                params![to as i64, from as i64],
            )
            .expect("swap");
        }
        (moved, first)
    });
    caught_both_ways(copy, &stream, position).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_catches_a_rollback_of_the_whole_data_dir() {
    let t = TestPlatform::start().await;
    t.register_lodging("tamper-inn", 3, "instant").await;
    book(&t, &[("ana", 10)]).await;
    let dir = t.stop().await;
    await_head(dir.path());
    let early = copy(dir.path());

    let config = test_config(dir.path());
    let t = TestPlatform::start_in(dir, config).await;
    book(&t, &[("ben", 12)]).await;
    let (status, served_anchor) = t.get("/audit/anchor", &t.auditor()).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{served_anchor}");
    assert!(served_anchor["signature"].is_string(), "{served_anchor}");
    let dir = t.stop().await;
    await_head(dir.path());

    // The auditor takes an anchor and keeps it apart from the data dir.
    let printed = stayledger(&["verify", "--print-anchor"], dir.path());
    assert!(printed.status.success(), "{printed:?}");
    let anchor: Value = serde_json::from_slice(&printed.stdout).expect("an anchor");
    let kept = tempfile::tempdir().expect("auditor's dir");
    let anchor_file = kept.path().join("anchor.json");
    std::fs::write(&anchor_file, &printed.stdout).expect("keep");
    let anchor_arg = anchor_file.to_str().expect("utf8");
    let position = anchor["position"].as_u64().expect("position");
    let stream = anchor["stream"].as_str().expect("stream");
    assert_eq!(position, last_position(dir.path()));
    let current = stayledger(&["verify", "--anchor", anchor_arg], dir.path());
    assert!(current.status.success(), "{current:?}");

    // The whole data dir rolled back to the earlier copy: consistent in itself, not with the anchor.
    let alone = stayledger(&["verify"], early.path());
    assert!(alone.status.success(), "{alone:?}");
    cli_catches(early.path(), &["--anchor", anchor_arg], stream, position);
    let query = format!(
        "?anchor_position={}&anchor_mac={}",
        served_anchor["position"],
        served_anchor["mac"].as_str().expect("mac")
    );
    let served_position = served_anchor["position"].as_u64().expect("position");
    // A position and a MAC name no stream: the report places the rollback by position alone.
    http_catches(early, &query, "", served_position).await;
}
