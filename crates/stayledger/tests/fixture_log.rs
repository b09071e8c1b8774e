//! The wave-1 fixture log: a real log of today's events, kept to prove that every later change of
//! an event's payload still reads the logs already written.
//!
//! How the fixture was made: `make_wave1_fixture` (in this file at commit 8996b63, removed since, as
//! running it on later code would write later events) was run once, on the wave-1 code (before
//! versioned events), and its output committed: it drives real flows through the
//! in-process platform (`serve::start`, as the other stayledger tests do) so that every event type
//! of the three aggregates and of the saga appears at least once, exports the log as JSON Lines
//! (`stayledger export`'s `audit::export_to`) into `fixtures/wave1-log.jsonl`, and dumps the views
//! that code rebuilds from it into `fixtures/wave1-views.json`. The fixture is history: never
//! regenerate it to "fix" this test.
//!
//! A later change of a payload gives that event type a new schema version and an upcaster in
//! `domain` from the old version, and keeps this test green without touching the fixture: the
//! old events still import, verify, decode and rebuild into the same views.

mod common;
#[path = "common/views.rs"]
mod views;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eventlog::{EventLog, EventLogExt, RecordedEvent, SqliteEventLog};
use readmodel::{LodgingView, ManagementView, ReservationView, SqliteViewStore, ViewStore};
use serde_json::{json, Value};
use views::{all_documents, Documents};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture's events, parsed as `stayledger import` parses them.
fn fixture_events() -> Vec<RecordedEvent> {
    let text = std::fs::read_to_string(fixtures().join("wave1-log.jsonl")).expect("fixture log");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("an exported event"))
        .collect()
}

/// The views the wave-1 code built from the fixture, as today's code reads those documents (fields
/// added since, such as `rooms` or a listing's `status`, take the values their documents declare for
/// documents stored before them).
fn committed_views() -> Value {
    let text = std::fs::read_to_string(fixtures().join("wave1-views.json")).expect("views dump");
    let dump: Value = serde_json::from_str(&text).expect("views dump is JSON");
    fn read<T: serde::de::DeserializeOwned + serde::Serialize>(docs: &Value) -> Vec<Value> {
        let typed: Vec<T> = serde_json::from_value(docs.clone()).expect("a wave-1 document reads");
        typed
            .iter()
            .map(|doc| serde_json::to_value(doc).expect("serialize"))
            .collect()
    }
    documents_json(Documents {
        reservations: read::<ReservationView>(&dump["reservations"]),
        requests: read::<ManagementView>(&dump["requests"]),
        lodgings: read::<LodgingView>(&dump["lodgings"]),
        payouts: Vec::new(),
        customers: Vec::new(),
    })
}

fn documents_json(documents: Documents) -> Value {
    json!({
        "reservations": documents.reservations,
        "requests": documents.requests,
        "lodgings": documents.lodgings,
        "payouts": documents.payouts,
        "customers": documents.customers,
    })
}

/// Every event type the fixture must hold (the three aggregates and the saga).
const EVERY_TYPE: &[&str] = &[
    "ReservationRequested",
    "ReservationApproved",
    "ReservationRejected",
    "ReservationPaymentPending",
    "ReservationConfirmed",
    "ReservationPaymentFailed",
    "ReservationCancelled",
    "ReservationRefunded",
    "ReservationExpired",
    "LodgingRegistered",
    "ApprovalRequested",
    "ApprovalGranted",
    "ApprovalDenied",
    "ApprovalWithdrawn",
    "PaymentRequested",
    "PaymentDeferred",
    "PaymentCompleted",
    "PaymentFailed",
    "PaymentRefunded",
    "PaymentVoided",
    "PaymentRetryRequested",
    "SagaEventHandled",
    "SagaTimerArmed",
    "SagaTimerCancelled",
];

/// Decode one recorded event through `domain`'s one decode entry, saga payloads included, from the
/// parsed payload and from its JSON text alike.
fn decode(event: &RecordedEvent) -> Result<(), String> {
    use domain::events::{self, Decoded, Payload, SagaPayloads};
    let text = event.data.to_string();
    let [parsed, raw] = [Payload::Parsed(&event.data), Payload::Text(&text)].map(|payload| {
        events::decode(
            &event.stream,
            &event.event_type,
            event.schema_version,
            payload,
            SagaPayloads::Decode,
        )
        .map_err(|e| format!("{} v{}: {e}", event.stream, event.version))
    });
    if parsed != raw {
        return Err(format!(
            "{} v{}: {parsed:?} != {raw:?}",
            event.stream, event.version
        ));
    }
    match parsed? {
        Decoded::Other | Decoded::Saga(None) | Decoded::Customer { .. } => {
            Err(format!("{} is not read", event.stream))
        }
        _ => Ok(()),
    }
}

/// Import `events` into a fresh data dir, verify its hash chains, decode every event, rebuild the
/// views and return them. Any failure is an `Err` saying where.
async fn import_and_rebuild(events: Vec<RecordedEvent>) -> Result<Value, String> {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("events.db");
    let count = events.len() as u64;
    let report = eventlog::import_into(&path, events.into_iter().map(Ok))
        .map_err(|e| format!("import: {e}"))?;
    assert_eq!(report.events, count);
    let log = SqliteEventLog::open(&path).map_err(|e| e.to_string())?;
    let verified = log.verify().await.map_err(|e| e.to_string())?;
    if !verified.ok {
        return Err(format!("verify: {verified:?}"));
    }
    let log: Arc<dyn EventLog> = Arc::new(log);
    let all = log
        .read_all_parsed(1, 100_000)
        .await
        .map_err(|e| e.to_string())?;
    for event in &all {
        decode(event)?;
    }
    let store: Arc<dyn ViewStore> =
        Arc::new(SqliteViewStore::open(dir.path().join("views.db")).expect("views"));
    let head = log.head_position().await.map_err(|e| e.to_string())?;
    let rebuilt = projector::rebuild(log, Arc::clone(&store), |_, _| {})
        .await
        .map_err(|e| format!("rebuild: {e}"))?;
    if rebuilt != head {
        return Err(format!("rebuilt to {rebuilt}, head {head}"));
    }
    let dead = store.dead_letters().await.map_err(|e| e.to_string())?;
    if !dead.is_empty() {
        return Err(format!("dead letters: {dead:?}"));
    }
    Ok(documents_json(all_documents(store.as_ref()).await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wave1_log_still_imports_verifies_decodes_and_rebuilds_the_same_views() {
    let events = fixture_events();
    let types: BTreeSet<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    for wanted in EVERY_TYPE {
        assert!(types.contains(wanted), "the fixture holds a {wanted}");
    }
    let views = import_and_rebuild(events.clone())
        .await
        .expect("the fixture reads");
    assert_eq!(views, committed_views(), "views rebuilt from the fixture");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_copy_of_the_fixture_fails() {
    let original = fixture_events();
    let nth = |event_type: &str| {
        original
            .iter()
            .position(|e| e.event_type == event_type)
            .expect("in the fixture")
    };

    // A payload field changed in place: the hash chain no longer holds.
    let mut tampered = original.clone();
    tampered[nth("ReservationRequested")].data["guests"] = json!(3);
    let error = import_and_rebuild(tampered).await.expect_err("tampered");
    assert!(error.contains("import"), "{error}");

    // The same change with the chain recomputed: it reads, but the views differ.
    let mut rehashed = original.clone();
    rehashed[nth("ReservationRequested")].data["total_amount"] = json!(1);
    rechain(&mut rehashed);
    let views = import_and_rebuild(rehashed)
        .await
        .expect("a consistent log");
    assert_ne!(views, committed_views());

    // A field of the wrong type, chain recomputed: the event does not decode.
    let mut malformed = original.clone();
    malformed[nth("PaymentCompleted")].data["amount"] = json!("a lot");
    rechain(&mut malformed);
    let error = import_and_rebuild(malformed).await.expect_err("malformed");
    assert!(error.contains("PaymentCompleted"), "{error}");
}

/// Recompute every stream's hash chain after an edit (what a forger with write access would do).
fn rechain(events: &mut [RecordedEvent]) {
    let mut heads = std::collections::HashMap::<String, String>::new();
    for event in events.iter_mut() {
        let prev = heads.get(&event.stream).cloned().unwrap_or_default();
        event.hash = eventlog::hash::recompute_hash(&prev, event).expect("hash");
        heads.insert(event.stream.clone(), event.hash.clone());
    }
}
