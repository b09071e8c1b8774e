//! Each service alone, as real processes on one data dir: command-api, query-api, projector, saga and
//! the payment sandbox take a reservation from requested to confirmed, the customer following it on
//! query-api's live stream (whose hub learns the views' progress from the stored checkpoint); saga
//! shards split the work.

#[path = "common/process.rs"]
mod process;

use std::time::Duration;

use process::{admin_of, auditor, customer, stay_body, Process};
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

struct Platform {
    sandbox: Process,
    commands: Process,
    queries: Process,
    projector: Process,
    sagas: Vec<Process>,
    _dir: tempfile::TempDir,
}

/// `stayledger <service>` on a free port over the data dir `data`.
async fn on_data(service: &str, data: &str) -> Process {
    Process::start(&[service, "--addr", "127.0.0.1:0", "--data-dir", data]).await
}

impl Platform {
    /// The four services and the sandbox on one temp data dir; one saga per shard in `shards`.
    async fn start(shards: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_str().expect("utf-8 path").to_string();
        let sandbox = Process::sandbox(&data).await;
        let commands = on_data("command-api", &data).await;
        let queries = on_data("query-api", &data).await;
        let projector = on_data("projector", &data).await;
        let gateway = format!("{}/sandbox", sandbox.base);
        let mut sagas = Vec::new();
        for shard in shards {
            let args = ["saga", "--addr", "127.0.0.1:0", "--data-dir", &data];
            let args = [
                &args[..],
                &["--payment-gateway-url", &gateway, "--shard", shard],
            ]
            .concat();
            sagas.push(Process::start(&args).await);
        }
        Self {
            sandbox,
            commands,
            queries,
            projector,
            sagas,
            _dir: dir,
        }
    }

    async fn stop(self) {
        for saga in self.sagas {
            saga.stop().await;
        }
        self.projector.stop().await;
        self.queries.stop().await;
        self.commands.stop().await;
        self.sandbox.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_take_a_reservation_to_confirmed() {
    let p = Platform::start(&["0/1"]).await;
    let (commands, queries) = (p.commands.api(), p.queries.api());
    for process in [
        &p.sandbox,
        &p.commands,
        &p.queries,
        &p.projector,
        &p.sagas[0],
    ] {
        let api = process.api();
        assert_eq!(
            api.get("/healthz", None).await.0,
            StatusCode::OK,
            "{}",
            process.name
        );
        api.wait_status("/readyz", StatusCode::OK, WAIT).await;
    }

    commands.register_lodging("harbor", 2, "manual").await;
    let mut alice_stream = open_stream(&queries, &customer("alice")).await;
    let mut bob_stream = open_stream(&queries, &customer("bob")).await;
    let (id, position) = commands.request("alice", "harbor", 12).await;
    // Read your own write through the other process: query-api waits for the projector's checkpoint.
    let (status, doc) = queries
        .get(
            &format!("/reservations/{id}?min_position={position}"),
            Some(&customer("alice")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["lodging_name"], "Lodging harbor");
    let pending = queries
        .get(
            &format!("/management/requests?lodging_id=harbor&min_position={position}"),
            Some(&admin_of("harbor")),
        )
        .await;
    assert_eq!(
        pending.1["items"][0]["reservation_id"],
        id.as_str(),
        "{}",
        pending.1
    );

    let (status, body) = commands
        .post(
            &format!("/management/requests/{id}/approve"),
            &admin_of("harbor"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let doc = queries.wait_for(&id, "status", "confirmed", WAIT).await;
    assert_eq!(doc["approval_status"], "approved");
    let frames = frames_until(&mut alice_stream, &id, "confirmed").await;
    assert!(frames.windows(2).all(|w| w[0].0 < w[1].0), "{frames:?}");
    assert_eq!(
        frames.last().map(|f| f.0),
        doc["position"].as_u64(),
        "the stream ends with the current version"
    );
    let nothing = tokio::time::timeout(Duration::from_millis(300), bob_stream.chunk()).await;
    assert!(
        !matches!(&nothing, Ok(Ok(Some(chunk))) if chunk.starts_with(b"event")),
        "bob sees none of alice's: {nothing:?}"
    );
    assert_eq!(doc["payment_status"], "completed");
    let charges = p.sandbox.api().sandbox_charges().await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["idempotency_key"], id.as_str());

    // Each process serves its own routes only, and reports its own part in /metrics.
    let (status, _) = commands
        .get(&format!("/reservations/{id}"), Some(&auditor()))
        .await;
    assert!(
        status.is_client_error(),
        "command-api serves no views: {status}"
    );
    let (status, _) = queries
        .post("/reservations", &customer("bob"), stay_body("harbor", 3, 1))
        .await;
    assert!(
        status.is_client_error(),
        "query-api takes no commands: {status}"
    );
    let saga = p.sagas[0].api();
    let completed = saga
        .metric("stayledger_payments_total", "outcome=\"completed\"")
        .await;
    assert_eq!(completed, Some(1.0));
    assert!(commands.metric("stayledger_appends_total", "").await >= Some(2.0));
    let head = commands.metric("stayledger_log_head_position", "").await;
    let projector = p.projector.api();
    let projected = projector.metric("stayledger_projector_position", "").await;
    assert!(projected.is_some());
    let checkpoint = queries
        .metric("stayledger_view_checkpoint_position", "")
        .await;
    assert!(
        checkpoint.is_some() && checkpoint <= head,
        "{checkpoint:?} {head:?}"
    );
    p.stop().await;
}

/// `GET /stream` on `api` as `token`, opened now (so it starts at the log's head).
async fn open_stream(api: &process::Api, token: &str) -> reqwest::Response {
    let response = reqwest::Client::new()
        .get(format!("{}/stream", api.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// The frames of `stream` until one shows `reservation` in `status`: (id, status) of each.
async fn frames_until(
    stream: &mut reqwest::Response,
    reservation: &str,
    status: &str,
) -> Vec<(u64, String)> {
    let mut buffer = String::new();
    let mut frames = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            let data = block.lines().find_map(|l| l.strip_prefix("data:"));
            if let (Some(id), Some(data)) = (id, data) {
                let doc: serde_json::Value =
                    serde_json::from_str(data.trim_start()).expect("a JSON document");
                assert_eq!(doc["position"].as_u64(), Some(id), "{doc}");
                let shown = doc["status"].as_str().unwrap_or_default().to_string();
                let done = doc["reservation_id"] == reservation && shown == status;
                frames.push((id, shown));
                if done {
                    return frames;
                }
            }
        }
        let chunk = tokio::time::timeout(WAIT, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {status} frame; saw {frames:?}"))
            .expect("the stream")
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_saga_shards_split_the_reservations_and_charge_each_once() {
    let p = Platform::start(&["0/2", "1/2"]).await;
    let commands = p.commands.api();
    commands.register_lodging("dunes", 20, "instant").await;
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(commands.request(&format!("c{i}"), "dunes", 5 + i).await.0);
    }
    for id in &ids {
        p.queries
            .api()
            .wait_for(id, "status", "confirmed", WAIT)
            .await;
    }
    let charges = p.sandbox.api().sandbox_charges().await;
    assert_eq!(charges.len(), ids.len(), "{charges:?}");
    assert!(
        charges.iter().all(|c| c["attempts"] == 1),
        "no reservation was charged by both shards: {charges:?}"
    );
    let mut per_shard = Vec::new();
    for saga in &p.sagas {
        let completed = saga
            .api()
            .metric("stayledger_payments_total", "outcome=\"completed\"")
            .await
            .unwrap_or_default();
        per_shard.push(completed);
    }
    assert_eq!(per_shard.iter().sum::<f64>(), 16.0, "{per_shard:?}");
    assert!(
        per_shard.iter().all(|n| *n > 0.0),
        "both shards worked: {per_shard:?}"
    );
    p.stop().await;
}

/// The charges the sandbox took for `ids` (its idempotency key is the reservation id).
async fn charges_of(sandbox: &Process, ids: &[String]) -> Vec<serde_json::Value> {
    let charges = sandbox.api().sandbox_charges().await;
    charges
        .into_iter()
        .filter(|c| {
            c["idempotency_key"]
                .as_str()
                .is_some_and(|key| ids.iter().any(|id| id == key))
        })
        .collect()
}

/// On EventStoreDB (`STAYLEDGER_EVENTSTORE_URL`): two saga processes in one consumer group split the
/// reservations and charge each once; after a SIGKILL of one, the other takes its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saga_group_members_on_eventstoredb_split_the_work_and_take_over() {
    let Some(url) = eventlog::conformance::server_url(
        "STAYLEDGER_EVENTSTORE_URL",
        "saga consumer group on EventStoreDB",
    ) else {
        return;
    };
    const GROUP_WAIT: Duration = Duration::from_secs(90);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let sandbox = Process::sandbox(&data).await;
    let esdb = ["--eventstore-url", url.as_str()];
    let commands = Process::start(
        &[
            &["command-api", "--addr", "127.0.0.1:0", "--data-dir", &data][..],
            &esdb,
        ]
        .concat(),
    )
    .await;
    let gateway = format!("{}/sandbox", sandbox.base);
    let group = format!("saga-test-{}", uuid::Uuid::new_v4().simple());
    let mut members = Vec::new();
    for member in ["a", "b"] {
        let args = [
            &["saga", "--addr", "127.0.0.1:0", "--data-dir", &data][..],
            &esdb,
            &[
                "--payment-gateway-url",
                &gateway,
                "--consumer-group",
                &group,
            ],
            &["--group-member", member],
        ]
        .concat();
        members.push(Process::start(&args).await);
    }
    let lodging = format!("group-{}", uuid::Uuid::new_v4().simple());
    let api = commands.api();
    api.register_lodging(&lodging, 40, "instant").await;
    let request_all = |from: i64| {
        let api = api.clone();
        let lodging = lodging.clone();
        async move {
            let mut ids = Vec::new();
            for i in from..from + 12 {
                ids.push(api.request(&format!("c{i}"), &lodging, 5 + i).await.0);
            }
            ids
        }
    };
    let charged_once = |ids: Vec<String>| {
        let sandbox = &sandbox;
        async move {
            let deadline = tokio::time::Instant::now() + GROUP_WAIT;
            loop {
                let charges = charges_of(sandbox, &ids).await;
                if charges.len() == ids.len() {
                    assert!(charges.iter().all(|c| c["attempts"] == 1), "{charges:?}");
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "charged: {charges:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let first = request_all(0).await;
    charged_once(first).await;
    let mut per_member = Vec::new();
    for saga in &members {
        let completed = saga
            .api()
            .metric("stayledger_payments_total", "outcome=\"completed\"")
            .await
            .unwrap_or_default();
        per_member.push(completed);
    }
    assert!(
        per_member.iter().all(|n| *n > 0.0),
        "both members worked: {per_member:?}"
    );

    members[0].crash().await;
    let second = request_all(12).await;
    charged_once(second).await;
    for saga in members.into_iter().skip(1) {
        saga.stop().await;
    }
    commands.stop().await;
    sandbox.stop().await;
}
