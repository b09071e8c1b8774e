//! Scale-out with real processes on one data dir: two sagas and two projectors (`--shards 2
//! --instance 0|1`) split the work, never handle one event twice, and when instance 1 of each is
//! killed (SIGKILL) the survivors take its shards over once the leases expire.

#[path = "common/charges.rs"]
mod charges;
#[path = "common/process.rs"]
mod process;
#[path = "common/views.rs"]
mod views;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventlog::{EventLog, SqliteEventLog};
use process::{Api, Process};
use projector::{ProjectorShard, ViewShard, PROJECTOR_ID};
use readmodel::conformance::server::{Server, NOW_IN_QUERY_EXPR};
use readmodel::{SqliteViewStore, ViewStore};
use serde_json::Value;
use stayledger::data_dir::LEASES_FILE;
use stayledger::lease::{Lease, LeaseStore, LeaseTable};

const WAIT: Duration = Duration::from_secs(30);
/// Lodgings per projector shard.
const LODGINGS_PER_SHARD: usize = 3;

struct Cluster {
    sandbox: Process,
    commands: Process,
    queries: Process,
    sagas: Vec<Process>,
    projectors: Vec<Process>,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_str().expect("utf-8 path").to_string();
        let sandbox = Process::sandbox(&data).await;
        let gateway = format!("{}/sandbox", sandbox.base);
        let commands = on_data(&data, "command-api", &[]).await;
        let queries = on_data(&data, "query-api", &[]).await;
        let mut sagas = Vec::new();
        let mut projectors = Vec::new();
        for instance in ["0", "1"] {
            let shards = ["--shards", "2", "--instance", instance];
            let saga = [&["--payment-gateway-url", gateway.as_str()], &shards[..]].concat();
            sagas.push(on_data(&data, "saga", &saga).await);
            projectors.push(on_data(&data, "projector", &shards).await);
        }
        Self {
            sandbox,
            commands,
            queries,
            sagas,
            projectors,
            dir,
        }
    }
}

/// `stayledger <service>` on port 0 over the data dir `data`.
async fn on_data(data: &str, service: &str, extra: &[&str]) -> Process {
    let args = [
        &[service, "--addr", "127.0.0.1:0", "--data-dir", data],
        extra,
    ]
    .concat();
    Process::start(&args).await
}

/// The shards `process` runs now, and their status.
async fn running(process: &Api) -> (Vec<u64>, Vec<Value>) {
    let (status, body) = process.get("/shards", None).await;
    assert!(status.is_success(), "{status} {body}");
    let running = body["running"].as_array().cloned().unwrap_or_default();
    let shards = running.iter().filter_map(|r| r["shard"].as_u64()).collect();
    (
        shards,
        running.iter().map(|r| r["status"].clone()).collect(),
    )
}

async fn wait_running(process: &Api, expected: &[u64], timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (shards, _) = running(process).await;
        if shards == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} runs {shards:?}, not {expected:?}",
            process.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lodgings spread over both projector shards.
fn lodgings() -> Vec<String> {
    let shards = [0, 1].map(|i| ProjectorShard::new(i, 2).expect("shard"));
    let mut picked = Vec::new();
    for shard in shards {
        let owned = (0..)
            .map(|n| format!("inst-{n}"))
            .filter(|l| shard.owns_lodging(l));
        picked.extend(owned.take(LODGINGS_PER_SHARD));
    }
    picked
}

/// Request `count` stays (spread over `lodgings`), starting with stay number `first`.
async fn request(commands: &Api, lodgings: &[String], first: usize, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in first..first + count {
        let lodging = &lodgings[n % lodgings.len()];
        let offset = 3 + i64::try_from(n).expect("small");
        ids.push(
            commands
                .request(&format!("guest-{n}"), lodging, offset)
                .await
                .0,
        );
    }
    ids
}

/// Every reservation charged, nothing else; each charge asked for at most `max_attempts` times (1:
/// no reservation was charged by both instances).
async fn check_charges(sandbox: &Api, ids: &[String], max_attempts: u64) {
    let charges = sandbox.sandbox_charges().await;
    let known = ids.iter().map(String::as_str);
    let charged = charges::assert_charged_at_most(&charges, known, max_attempts);
    assert_eq!(charged.len(), ids.len(), "every reservation charged");
}

/// Unix time in milliseconds, the clock the leases are kept in.
fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(since.as_millis()).expect("ms")
}

/// One lease, read again while the processes hold the table busy.
async fn lease(leases: &LeaseTable, name: &str) -> Option<Lease> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match leases.get(name).await {
            Ok(lease) => return lease,
            Err(error) => assert!(tokio::time::Instant::now() < deadline, "{name}: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After instance 1 of `kind` was killed: poll the survivor (`survivor`, instance 0) until it runs
/// both shards, checking that every answer it gave before instance 1's member lease expired showed
/// its own shard only, then that it holds shard 1's lease, taken from instance 1. Returns how many
/// answers came before the expiry.
async fn watch_takeover(survivor: &Api, leases: &LeaseTable, kind: &str) -> usize {
    let member = lease(leases, &format!("{kind}/instance-1-of-2"))
        .await
        .expect("instance 1's member lease");
    assert!(
        member.owner.starts_with(&format!("{kind}-1-")),
        "{member:?}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut before_expiry = 0;
    loop {
        let (shards, _) = running(survivor).await;
        let answered_at = now_ms();
        if answered_at < member.expires_at {
            assert_eq!(shards, [0], "{kind}: taken over before the lease expired");
            before_expiry += 1;
        } else if shards == [0, 1] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{kind}: the survivor runs {shards:?}, not [0, 1]"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = lease(leases, &format!("{kind}/shard-1-of-2"))
        .await
        .expect("shard 1's lease");
    assert!(taken.owner.starts_with(&format!("{kind}-0-")), "{taken:?}");
    assert!(taken.epoch >= 2, "it changed owner: {taken:?}");
    before_expiry
}

/// Every trigger of every reservation's saga is recorded once.
async fn check_triggers(log: &SqliteEventLog, ids: &[String]) {
    for id in ids {
        let events = log
            .read_stream(&format!("saga-{id}"), 0, 10_000)
            .await
            .expect("read saga stream");
        let triggers: Vec<&Value> = events
            .iter()
            .filter(|e| e.event_type == "SagaEventHandled")
            .map(|e| &e.data["trigger_id"])
            .collect();
        assert!(
            triggers.len() >= 3,
            "{id}: requested, approved, paid: {triggers:?}"
        );
        let unique: HashSet<String> = triggers.iter().map(ToString::to_string).collect();
        assert_eq!(
            unique.len(),
            triggers.len(),
            "{id}: a trigger recorded twice"
        );
    }
}

async fn wait_views_at_head(log: &SqliteEventLog, views: &SqliteViewStore) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let head = log.head_position().await.expect("head");
        let at = views.checkpoint(PROJECTOR_ID).await.expect("checkpoint");
        if at >= head {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "views checkpoint {at} never reached {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_shards_and_the_survivor_takes_over() {
    let mut c = Cluster::start().await;
    let (commands, queries, sandbox) = (c.commands.api(), c.queries.api(), c.sandbox.api());
    for consumer in [&c.sagas, &c.projectors] {
        for (instance, process) in (0..).zip(consumer) {
            wait_running(&process.api(), &[instance], WAIT).await;
        }
    }
    let lodgings = lodgings();
    for lodging in &lodgings {
        commands.register_lodging(lodging, 50, "instant").await;
    }

    // Both instances alive: each reservation is handled by one saga instance, charged once.
    let mut ids = request(&commands, &lodgings, 0, 20).await;
    for id in &ids {
        queries.wait_for(id, "status", "confirmed", WAIT).await;
    }
    check_charges(&sandbox, &ids, 1).await;
    for saga in &c.sagas {
        let (_, status) = running(&saga.api()).await;
        let handled = status[0]["triggers_handled"].as_u64().unwrap_or(0);
        assert!(handled > 0, "both saga instances worked: {status:?}");
    }

    // Instance 1 of each dies with work in flight; the survivors take shard 1 over once its lease
    // has expired (3 s TTL), not before, while more requests come in.
    let mut more = request(&commands, &lodgings, 20, 10).await;
    c.sagas[1].crash().await;
    c.projectors[1].crash().await;
    let leases = LeaseTable::open(c.dir.path().join(LEASES_FILE)).expect("lease table");
    let (saga, projector) = (c.sagas[0].api(), c.projectors[0].api());
    let (saga_early, projector_early, extra) = tokio::join!(
        watch_takeover(&saga, &leases, "saga"),
        watch_takeover(&projector, &leases, "projector"),
        request(&commands, &lodgings, 30, 10),
    );
    println!(
        "takeover: {saga_early} saga and {projector_early} projector answers before the expiry"
    );
    more.extend(extra);
    for id in &more {
        queries.wait_for(id, "status", "confirmed", WAIT).await;
    }
    ids.extend(more);
    // A charge in flight on a killed instance is asked for again (same key) by the survivor.
    check_charges(&sandbox, &ids, 2).await;

    let log = SqliteEventLog::open(c.dir.path().join("events.db")).expect("open log");
    check_triggers(&log, &ids).await;
    let live = SqliteViewStore::open(c.dir.path().join("views.db")).expect("open views");
    wait_views_at_head(&log, &live).await;
    let projected = views::assert_equal_to_rebuild(Arc::new(log), &live).await;
    assert_eq!(projected.reservations.len(), ids.len());

    for process in [
        c.sagas.remove(0),
        c.projectors.remove(0),
        c.queries,
        c.commands,
        c.sandbox,
    ] {
        process.stop().await;
    }
}

/// With the views on MongoDB (`STAYLEDGER_MONGODB_URL`), projector instances keep their leases there
/// too, not in a file of the data dir, so they may run on different hosts: each starts with its own
/// shard, no `leases.db` appears, and the survivor takes over the shard of one killed with SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_leases_on_mongodb_split_and_take_over() {
    let Some(url) =
        eventlog::conformance::server_url("STAYLEDGER_MONGODB_URL", "projector leases on MongoDB")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let db = format!("stayledger_scale_{}", uuid::Uuid::new_v4().simple());
    let mongo = ["--mongodb-url", url.as_str(), "--mongodb-db", db.as_str()];
    let mut projectors = Vec::new();
    for instance in ["0", "1"] {
        let args = [&["--shards", "2", "--instance", instance][..], &mongo].concat();
        projectors.push(on_data(&data, "projector", &args).await);
    }
    for (instance, process) in (0..).zip(&projectors) {
        wait_running(&process.api(), &[instance], WAIT).await;
    }
    assert!(
        !dir.path().join("leases.db").exists(),
        "leases are kept in MongoDB"
    );
    let server = Server::at(&url).await;
    if server.skips_on_secantus("takeover of a killed projector's shard", NOW_IN_QUERY_EXPR) {
        for process in projectors {
            process.stop().await;
        }
        return;
    }
    projectors[1].crash().await;
    wait_running(&projectors[0].api(), &[0, 1], WAIT).await;
    projectors.remove(0).stop().await;
}
