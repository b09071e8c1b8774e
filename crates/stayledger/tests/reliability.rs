//! R1 and R2 (docs/requirements.md) with real processes.
//! - R2 fault isolation: with the saga and the projector stopped, requests are still accepted;
//!   started again, they resume from their stored checkpoints (handling nothing twice) and the flows
//!   finish.
//! - R1 crash: `kill -9` of `serve` under load, restart on the same data dir: every acknowledged
//!   command is in the log, the views equal a rebuild from zero, nothing is stuck or charged twice.

#[path = "common/charges.rs"]
mod charges;
#[path = "common/process.rs"]
mod process;
#[path = "common/views.rs"]
mod views;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventlog::{EventLog, SqliteEventLog};
use process::{admin_of, auditor, customer, stay_body, Api, Process};
use readmodel::{SqliteViewStore, ViewStore};
use reqwest::{Method, StatusCode};
use saga::store::{SqliteTimerStore, TimerStore};
use serde_json::{json, Value};
use stayledger::data_dir::{EVENTS_FILE, SAGA_FILE, VIEWS_FILE};

const WAIT: Duration = Duration::from_secs(20);
const SETTLED: [&str; 5] = [
    "confirmed",
    "rejected",
    "expired",
    "cancelled",
    "payment_failed",
];

/// The saga and the projector of R2, each its own process over the data dir.
struct Consumers {
    saga: Process,
    projector: Process,
}

impl Consumers {
    async fn start(data: &str, gateway: &str) -> Self {
        let projector =
            Process::start(&["projector", "--addr", "127.0.0.1:0", "--data-dir", data]).await;
        let saga_args = ["saga", "--addr", "127.0.0.1:0", "--data-dir", data];
        let saga =
            Process::start(&[&saga_args[..], &["--payment-gateway-url", gateway]].concat()).await;
        Self { saga, projector }
    }

    /// Wait until both have handled the whole log (its head as `commands` reports it), the saga
    /// has nothing in flight and the head stays put for 300 ms; returns the head.
    async fn caught_up(&self, commands: &Api) -> u64 {
        let (saga, projector) = (self.saga.api(), self.projector.api());
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut quiet_since = None;
        let mut last_head = None;
        loop {
            let projected = projector
                .required_metric("stayledger_projector_position", "")
                .await;
            let handled = saga.required_metric("stayledger_saga_checkpoint", "").await;
            let in_flight = saga.required_metric("stayledger_saga_in_flight", "").await;
            let head = commands
                .required_metric("stayledger_log_head_position", "")
                .await;
            if projected >= head && handled >= head && in_flight == 0.0 && Some(head) == last_head {
                let since = *quiet_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    return position(head);
                }
            } else {
                quiet_since = None;
            }
            last_head = Some(head);
            assert!(
                tokio::time::Instant::now() < deadline,
                "never caught up: head {head}, projector {projected}, saga {handled}/{in_flight}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.saga.stop().await;
        self.projector.stop().await;
    }
}

/// A metric's value as a log position.
fn position(value: f64) -> u64 {
    assert!(
        value >= 0.0 && value.fract() == 0.0,
        "not a position: {value}"
    );
    value as u64
}

/// The checkpoints the saga and the projector stored in the data dir: (saga, projector).
async fn stored_checkpoints(dir: &Path) -> (u64, u64) {
    let saga = SqliteTimerStore::open(dir.join(SAGA_FILE)).expect("saga store");
    let saga = saga.load().await.expect("saga progress").checkpoint;
    let views = SqliteViewStore::open(dir.join(VIEWS_FILE)).expect("views");
    let projected = views
        .checkpoint(projector::PROJECTOR_ID)
        .await
        .expect("views checkpoint");
    (saga, projected)
}

/// The triggers the saga recorded as handled (`SagaEventHandled`) at positions after `after`, and
/// whether any trigger in the whole log was recorded twice.
async fn handled_triggers(dir: &Path, after: u64) -> (usize, bool) {
    let log = SqliteEventLog::open(dir.join(EVENTS_FILE)).expect("log");
    let events = log.read_all(0, 100_000).await.expect("log");
    let handled: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "SagaEventHandled")
        .collect();
    let unique: HashSet<String> = handled
        .iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).expect("json");
            data["trigger_id"].to_string()
        })
        .collect();
    let since = handled.iter().filter(|e| e.position > after).count();
    (since, unique.len() != handled.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_requests_are_accepted_while_saga_and_projector_are_down() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8");
    let sandbox = Process::sandbox(data).await;
    let gateway = format!("{}/sandbox", sandbox.base);
    let commands =
        Process::start(&["command-api", "--addr", "127.0.0.1:0", "--data-dir", data]).await;
    let query_args = ["query-api", "--addr", "127.0.0.1:0", "--data-dir", data];
    let queries = Process::start(&[&query_args[..], &["--max-projector-lag", "0"]].concat()).await;
    let (api, reads) = (commands.api(), queries.api());

    // Some flows finish with everything up; then the saga and the projector stop.
    let consumers = Consumers::start(data, &gateway).await;
    api.register_lodging("isle", 5, "instant").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(api.request(&format!("r2-{i}"), "isle", 10 + i).await.0);
    }
    for id in &ids {
        reads.wait_for(id, "status", "confirmed", WAIT).await;
    }
    let head = consumers.caught_up(&api).await;
    consumers.stop().await;
    let (saga_checkpoint, views_checkpoint) = stored_checkpoints(dir.path()).await;
    assert_eq!(
        (saga_checkpoint, views_checkpoint),
        (head, head),
        "both stored the checkpoint they had reached"
    );

    // Nothing projects or pays: requests are accepted, a read-your-write wait times out and
    // query-api is not ready, while command-api is.
    for i in 3..6 {
        ids.push(api.request(&format!("r2-{i}"), "isle", 10 + i).await.0);
    }
    let (last, _) = api.request("r2-last", "isle", 20).await;
    ids.push(last.clone());
    let stopped_head = position(
        api.required_metric("stayledger_log_head_position", "")
            .await,
    );
    assert!(stopped_head > head, "the requests were written");
    let path = format!("/reservations/{last}?min_position={stopped_head}&wait_ms=300");
    let (status, body) = reads.get(&path, Some(&auditor())).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let (status, body) = reads.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("behind"),
        "{body}"
    );
    assert_eq!(api.get("/readyz", None).await.0, StatusCode::OK);

    // Started again, they finish the flows.
    let consumers = Consumers::start(data, &gateway).await;
    for id in &ids {
        reads.wait_for(id, "status", "confirmed", WAIT).await;
    }
    reads.wait_status("/readyz", StatusCode::OK, WAIT).await;
    let head = consumers.caught_up(&api).await;

    // ...from their stored checkpoints: the projector read exactly the events after its own, and
    // every trigger the saga handled is a new one, recorded after the restart (one handled again
    // from the older log would count here without a record); none recorded twice.
    let projector = consumers.projector.api();
    let projected = projector
        .required_metric("stayledger_projector_events_total", "")
        .await;
    assert_eq!(
        position(projected),
        head - views_checkpoint,
        "events the projector read since its restart"
    );
    let saga = consumers.saga.api();
    let triggers = saga
        .required_metric("stayledger_saga_triggers_total", "")
        .await;
    let (recorded, twice) = handled_triggers(dir.path(), stopped_head).await;
    assert!(recorded > 0, "the saga handled the new requests");
    assert_eq!(
        position(triggers),
        recorded as u64,
        "triggers handled again"
    );
    assert!(!twice, "a trigger recorded twice");
    let parked = saga
        .required_metric("stayledger_saga_actions_parked", "")
        .await;
    assert_eq!(parked, 0.0);
    let charges = sandbox.api().sandbox_charges().await;
    let charged = charges::assert_charged_once(&charges, ids.iter().map(String::as_str));
    assert_eq!(charged.len(), ids.len(), "every reservation charged");
    consumers.stop().await;
    for process in [queries, commands, sandbox] {
        process.stop().await;
    }
}

/// What the load's clients got a 2xx for.
#[derive(Default)]
struct Acked {
    requests: Vec<String>,
    approvals: Vec<String>,
}

/// One client: request stays (every other one on the manual lodging, then approve it) until the
/// first answer that does not come (the server was killed), at most `max` times.
async fn client(api: Api, n: usize, max: usize, acked: Arc<Mutex<Acked>>) {
    let who = format!("r1-c{n}");
    for i in 0..max {
        let lodging = if i % 2 == 0 {
            "r1-instant"
        } else {
            "r1-manual"
        };
        let body = stay_body(lodging, 5 + (i % 20) as i64, 2);
        let token = customer(&who);
        let call = api.try_call(
            Method::POST,
            "/reservations",
            Some(&token),
            Some(&body),
            None,
        );
        let Ok((status, answer)) = call.await else {
            return;
        };
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let id = answer["id"].as_str().expect("id").to_string();
        acked.lock().expect("lock").requests.push(id.clone());
        if lodging == "r1-manual" {
            let path = format!("/management/requests/{id}/approve");
            let (admin, empty) = (admin_of(lodging), json!({}));
            let call = api.try_call(Method::POST, &path, Some(&admin), Some(&empty), None);
            let Ok((status, answer)) = call.await else {
                return;
            };
            assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
            acked.lock().expect("lock").approvals.push(id);
        }
    }
}

/// Wait until every reservation is in a settled state, the saga and the projector have handled the
/// whole log and nothing moves for 300 ms; returns the ReservationList documents.
async fn settle(api: &Api) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut last_head, mut quiet_since) = (None, None);
    loop {
        let (status, page) = api.get("/reservations?limit=500", Some(&auditor())).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page["next_cursor"].is_null(), "fewer than 500 reservations");
        let docs = page["items"].as_array().cloned().unwrap_or_default();
        let settled = docs
            .iter()
            .all(|d| SETTLED.contains(&d["status"].as_str().unwrap_or_default()));
        // Each must be published: a missing one fails (never compares as caught up).
        let head = api
            .required_metric("stayledger_log_head_position", "")
            .await;
        let projected = api
            .required_metric("stayledger_projector_position", "")
            .await;
        let saga = api.required_metric("stayledger_saga_checkpoint", "").await;
        let in_flight = api.required_metric("stayledger_saga_in_flight", "").await;
        let caught_up = projected >= head && saga >= head && in_flight == 0.0;
        let head = Some(head);
        if settled && caught_up && head == last_head {
            let since = *quiet_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > Duration::from_millis(300) {
                return docs;
            }
        } else {
            quiet_since = None;
        }
        last_head = head;
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: head {head:?}, projector {projected:?}, saga {saga:?}/{in_flight:?}, {docs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Four clients load `serve` until 120 requests are acknowledged, then `serve` gets SIGKILL; returns
/// what was acknowledged (the clients stop at their first unanswered call).
async fn load_then_kill(serve: &mut Process) -> Acked {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let clients: Vec<_> = (0..4)
        .map(|n| tokio::spawn(client(serve.api(), n, 400, Arc::clone(&acked))))
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked.lock().expect("lock").requests.len() < 120 {
        assert!(tokio::time::Instant::now() < deadline, "load too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    serve.crash().await;
    for client in clients {
        tokio::time::timeout(WAIT, client)
            .await
            .expect("clients stop once serve is gone")
            .expect("client task");
    }
    let taken = std::mem::take(&mut *acked.lock().expect("lock"));
    taken
}

/// Every acknowledged request is listed, every acknowledged approval ended confirmed, and exactly
/// the confirmed reservations are charged, each once. Returns the confirmed ids.
fn assert_acknowledged_and_charged_once(docs: &[Value], acked: &Acked, charges: &[Value]) -> usize {
    let status_of: BTreeMap<&str, &str> = docs
        .iter()
        .map(|d| {
            (
                d["reservation_id"].as_str().unwrap_or_default(),
                d["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(status_of.len(), docs.len(), "no reservation listed twice");
    for id in &acked.requests {
        assert!(
            status_of.contains_key(id.as_str()),
            "acknowledged request {id} is listed"
        );
    }
    for id in &acked.approvals {
        assert_eq!(
            status_of[id.as_str()],
            "confirmed",
            "acknowledged approval of {id}"
        );
    }
    let confirmed: BTreeSet<&str> = status_of
        .iter()
        .filter(|(_, s)| **s == "confirmed")
        .map(|(id, _)| *id)
        .collect();
    // A charge whose answer the kill cut off before the saga recorded it is asked for once more
    // after the restart, with the same key; never more.
    let charged = charges::assert_charged_at_most(charges, status_of.keys().copied(), 2);
    let asked_again = charged.values().filter(|c| c["attempts"] != 1).count();
    println!("R1: {asked_again} charges asked for again after the restart");
    let charged: BTreeSet<&str> = charged.keys().copied().collect();
    assert_eq!(
        charged, confirmed,
        "exactly the confirmed reservations are charged"
    );
    confirmed.len()
}

/// In the log file: every acknowledged request once, confirmed at most once; the views equal a
/// rebuild from position 0.
async fn assert_log_and_views(dir: &std::path::Path, acked: &Acked, listed: usize) {
    let log: Arc<dyn EventLog> =
        Arc::new(SqliteEventLog::open(dir.join("events.db")).expect("log"));
    for id in &acked.requests {
        let events = log
            .read_stream(&format!("reservation-{id}"), 0, 100)
            .await
            .expect("stream");
        let count = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
        assert_eq!(count("ReservationRequested"), 1, "{id} is in the log once");
        assert!(
            count("ReservationConfirmed") <= 1,
            "{id} confirmed at most once"
        );
    }
    let live = SqliteViewStore::open(dir.join("views.db")).expect("views");
    let documents = views::assert_equal_to_rebuild(log, &live).await;
    assert_eq!(documents.reservations.len(), listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_kill_9_under_load_loses_no_acknowledged_command() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().to_str().expect("utf-8");
    // The sandbox runs apart, so its record of charges survives the crash of `serve`.
    let sandbox = Process::sandbox(data).await;
    let gateway = format!("{}/sandbox", sandbox.base);
    // Undecided requests (an approval lost in the crash) expire after 5 s, so everything settles;
    // long enough that the restarted saga has read the log before a deadline falls due (a saga
    // behind the log may fire a deadline before it sees the approval: reported on the saga crate).
    let serve_args = [
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--payment-gateway-url",
        &gateway,
        "--approval-deadline",
        "5s",
        "--payment-retry-base",
        "100ms",
    ];
    let mut serve = Process::start(&serve_args).await;
    serve
        .api()
        .register_lodging("r1-instant", 200, "instant")
        .await;
    serve
        .api()
        .register_lodging("r1-manual", 200, "manual")
        .await;
    let acked = load_then_kill(&mut serve).await;

    let serve = Process::start(&serve_args).await;
    let docs = settle(&serve.api()).await;
    let charges = sandbox.api().sandbox_charges().await;
    let confirmed = assert_acknowledged_and_charged_once(&docs, &acked, &charges);
    serve.stop().await;
    sandbox.stop().await;
    assert_log_and_views(dir.path(), &acked, docs.len()).await;
    println!(
        "R1: {} requests and {} approvals acknowledged before kill -9; {} reservations, {confirmed} confirmed",
        acked.requests.len(),
        acked.approvals.len(),
        docs.len(),
    );
}
