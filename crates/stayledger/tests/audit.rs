//! The auditor tools against a data dir that a running `serve` is using: history, verify, export,
//! import (exact reproduction, tampering refused) and replay (rebuild while serving, then swap).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{stayledger, TestPlatform};
use readmodel::{SqliteViewStore, ViewStore};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

/// Run `stayledger ARGS --data-dir DIR` with its stdout a pipe whose reader is already gone.
fn with_stdout_closed(args: &[&str], data_dir: &Path) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stayledger"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("stayledger runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("exits");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A confirmed-then-cancelled-and-refunded reservation; returns its id.
async fn refunded_reservation(t: &TestPlatform) -> String {
    t.register_lodging("audit-inn", 2, "instant").await;
    let (id, _) = t.request("olga", "audit-inn", 14, 2).await;
    t.wait_for(&id, "status", "confirmed", WAIT).await;
    let (status, body) = t
        .post(
            &format!("/reservations/{id}/cancel"),
            &t.customer("olga"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.wait_for(&id, "refund_status", "refunded", WAIT).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_verify_export_and_exact_import() {
    let t = TestPlatform::start().await;
    let id = refunded_reservation(&t).await;
    let dir = t.dir.path().to_path_buf();

    let history = stayledger(&["history", &id], &dir);
    assert!(history.status.success(), "{history:?}");
    let text = stdout(&history);
    for event in [
        "ReservationRequested",
        "ApprovalGranted",
        "PaymentCompleted",
        "ReservationConfirmed",
        "ReservationCancelled",
        "PaymentRefunded",
        "ReservationRefunded",
        "SagaEventHandled",
    ] {
        assert!(text.contains(event), "history lacks {event}:\n{text}");
    }
    let verify = stayledger(&["verify"], &dir);
    assert!(verify.status.success(), "{verify:?}");
    assert!(stdout(&verify).contains("\"ok\": true"));

    let exported = dir.join("export.jsonl");
    let export = stayledger(
        &["export", "--output", exported.to_str().expect("utf8")],
        &dir,
    );
    assert!(export.status.success(), "{export:?}");
    let original = std::fs::read_to_string(&exported).expect("export file");
    let head = t.platform.log.head_position().await.expect("head");
    assert_eq!(original.lines().count() as u64, head, "one line per event");

    let copy = tempfile::tempdir().expect("dir");
    let import = stayledger(
        &["import", "--input", exported.to_str().expect("utf8")],
        copy.path(),
    );
    assert!(import.status.success(), "{import:?}");
    assert!(
        !String::from_utf8_lossy(&import.stderr).contains("does not decode"),
        "every event of a real log reads through the decode entry: {import:?}"
    );
    let again = copy.path().join("again.jsonl");
    let export = stayledger(
        &["export", "--output", again.to_str().expect("utf8")],
        copy.path(),
    );
    assert!(export.status.success(), "{export:?}");
    assert_eq!(
        std::fs::read_to_string(&again).expect("re-export"),
        original,
        "import reproduces the log exactly"
    );
    assert!(stayledger(&["verify"], copy.path()).status.success());

    // Importing into a data dir that holds anything is refused in words, and changes nothing.
    let twice = stayledger(
        &["import", "--input", exported.to_str().expect("utf8")],
        copy.path(),
    );
    assert!(!twice.status.success());
    let said = String::from_utf8_lossy(&twice.stderr);
    assert!(said.contains("is not empty"), "{said}");
    assert!(said.contains("events.db"), "{said}");
    assert!(!said.contains("corrupt"), "{said}");
    assert!(stayledger(&["verify"], copy.path()).status.success());

    // A reader that goes away early is not a failure: no panic, a clean exit.
    for args in [
        &["verify"][..],
        &["export"][..],
        &["history", id.as_str()][..],
    ] {
        let (status, stderr) = with_stdout_closed(args, copy.path());
        assert!(status.success(), "{args:?}: {status:?} {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }

    // A tampered export is refused, and nothing of it is written.
    let tampered = original.replacen("\"amount\":240000", "\"amount\":1", 1);
    assert_ne!(
        tampered, original,
        "the export holds an amount to tamper with"
    );
    let tampered_file = dir.join("tampered.jsonl");
    std::fs::write(&tampered_file, tampered).expect("write");
    let target = tempfile::tempdir().expect("dir");
    let refused = stayledger(
        &["import", "--input", tampered_file.to_str().expect("utf8")],
        target.path(),
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("hash mismatch"),
        "{refused:?}"
    );
    let left: Vec<_> = std::fs::read_dir(target.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "a refused import leaves nothing: {left:?}");
    let fresh = target.path().join("new");
    let refused = stayledger(
        &["import", "--input", tampered_file.to_str().expect("utf8")],
        &fresh,
    );
    assert!(!refused.status.success());
    assert!(!fresh.exists(), "a data dir the import made is removed");
    t.stop().await;
}

/// Wait until `serve` reads its views from the rebuilt store: a lodging registered now is in the
/// views it serves and not in `old`. One probe lodging per try, tried again until a deadline.
async fn wait_for_swap(t: &TestPlatform, old: &SqliteViewStore) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for n in 0.. {
        let probe = format!("swap-probe-{n}");
        t.register_lodging(&probe, 1, "instant").await;
        while t
            .platform
            .views
            .lodging(&probe)
            .await
            .expect("read")
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no swap: {probe} never projected"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if old.lodging(&probe).await.expect("read").is_none() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never swapped to the rebuilt views"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_while_serving_then_swaps() {
    let t = TestPlatform::start().await;
    let first = refunded_reservation(&t).await;
    let dir = t.dir.path().to_path_buf();

    let replay = stayledger(&["replay"], &dir);
    assert!(replay.status.success(), "{replay:?}");
    let generation =
        std::fs::read_to_string(dir.join("views.generation")).expect("generation file");
    assert!(generation.starts_with("views-"), "{generation}");

    // Once swapped, new events land in the rebuilt store and no longer in the old file.
    let old = SqliteViewStore::open(dir.join("views.db")).expect("old store");
    wait_for_swap(&t, &old).await;
    let (second, _) = t.request("pia", "audit-inn", 20, 1).await;
    t.wait_for(&second, "status", "confirmed", WAIT).await;
    let (status, doc) = t.get(&format!("/reservations/{first}"), &t.auditor()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        doc["refund_status"], "refunded",
        "history survives the swap: {doc}"
    );

    let second_id = second.parse().expect("uuid");
    let rebuilt = SqliteViewStore::open(dir.join(generation.trim())).expect("rebuilt store");
    assert!(rebuilt
        .reservation(second_id)
        .await
        .expect("read")
        .is_some());
    assert!(
        old.reservation(second_id).await.expect("read").is_none(),
        "the old store is retired"
    );
    t.stop().await;
}
