//! The notifier as its own process (`stayledger notifier`), beside command-api, query-api,
//! projector, saga and the sandbox on one data dir: it builds the inbox that query-api serves and
//! sends the webhooks subscribed through query-api, signed, to a real receiver. Scaled out
//! (`--shards 2`), two instances split the inbox and the subscriptions, no delivery is sent by
//! both, and when one dies the other takes its shard over and sends what it left.

#[path = "common/process.rs"]
mod process;
#[path = "common/receiver.rs"]
mod receiver;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use eventlog::Partition;
use process::{customer, Api, Process};
use receiver::{Hit, Receiver};
use reqwest::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// `stayledger <service>` on port 0 over the data dir `data`.
async fn on_data(data: &str, service: &str, extra: &[&str]) -> Process {
    let args = [
        &[service, "--addr", "127.0.0.1:0", "--data-dir", data],
        extra,
    ]
    .concat();
    Process::start(&args).await
}

const WEBHOOK_FLAGS: [&str; 3] = ["--webhook-allow-private", "--webhook-retry-base", "100ms"];

struct Services {
    sandbox: Process,
    commands: Process,
    queries: Process,
    projector: Process,
    saga: Process,
    notifiers: Vec<Process>,
    _dir: tempfile::TempDir,
}

impl Services {
    /// Everything on one data dir; one notifier per entry of `notifiers` (its extra flags).
    async fn start(notifiers: &[&[&str]]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().to_str().expect("utf-8 path").to_string();
        let sandbox = on_data(&data, "payment-sandbox", &[]).await;
        let gateway = format!("{}/sandbox", sandbox.base);
        let commands = on_data(&data, "command-api", &[]).await;
        let queries = on_data(&data, "query-api", &["--webhook-allow-private"]).await;
        let projector = on_data(&data, "projector", &[]).await;
        let saga = on_data(&data, "saga", &["--payment-gateway-url", &gateway]).await;
        let mut started = Vec::new();
        for extra in notifiers {
            let flags = [&WEBHOOK_FLAGS[..], extra].concat();
            started.push(on_data(&data, "notifier", &flags).await);
        }
        Self {
            sandbox,
            commands,
            queries,
            projector,
            saga,
            notifiers: started,
            _dir: dir,
        }
    }

    async fn stop(self) {
        for notifier in self.notifiers {
            notifier.stop().await;
        }
        for process in [
            self.saga,
            self.projector,
            self.queries,
            self.commands,
            self.sandbox,
        ] {
            process.stop().await;
        }
    }
}

/// Subscribe `who`'s webhook at `path` on `receiver`: (id, secret).
async fn subscribe(queries: &Api, who: &str, receiver: &Receiver, path: &str) -> (String, String) {
    let body = json!({"url": receiver.url_at(path)});
    let (status, answer) = queries.post("/webhooks", &customer(who), body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let text = |f: &str| answer[f].as_str().expect(f).to_string();
    (text("id"), text("secret"))
}

/// `who`'s status changes as the inbox has them once the notifier reached `position`:
/// (reservation id, status, position), oldest first.
async fn inbox(queries: &Api, who: &str, position: u64) -> Vec<(String, String, u64)> {
    let path = format!("/me/notifications?min_position={position}&wait_ms=10000&limit=500");
    let (status, page) = queries.get(&path, Some(&customer(who))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut items: Vec<(String, String, u64)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "status_changed")
        .map(|i| {
            let text = |f: &str| i[f].as_str().unwrap_or_default().to_string();
            (
                text("reservation_id"),
                text("status"),
                i["position"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    items.reverse();
    items
}

/// Request a stay for `who` at `lodging` and wait until it is confirmed: its position then.
async fn confirmed_stay(s: &Services, who: &str, lodging: &str, offset: i64) -> (String, u64) {
    let (id, _) = s.commands.api().request(who, lodging, offset).await;
    let doc = s
        .queries
        .api()
        .wait_for(&id, "status", "confirmed", WAIT)
        .await;
    (id, doc["position"].as_u64().expect("position"))
}

/// The requests `receiver` answered 2xx at `path`, in arrival order.
fn delivered_at(receiver: &Receiver, path: &str) -> Vec<Hit> {
    let path = format!("/{path}");
    receiver
        .hits()
        .into_iter()
        .filter(|h| h.path == path && h.ok())
        .collect()
}

/// What `receiver` delivered (2xx) at `path`: (reservation id, status, position) in arrival order,
/// each signed with `secret`.
fn delivered(receiver: &Receiver, path: &str, secret: &str) -> Vec<(String, String, u64)> {
    delivered_at(receiver, path)
        .iter()
        .map(|r| {
            assert!(
                r.signed_by(secret),
                "a delivery not signed by {path}'s secret"
            );
            assert!(r.delivery.is_some(), "no Stayledger-Delivery");
            let body = r.json();
            assert_eq!(
                body["type"],
                format!("reservation.{}", body["status"].as_str().unwrap_or("")),
            );
            let text = |f: &str| body[f].as_str().unwrap_or_default().to_string();
            (
                text("reservation_id"),
                text("status"),
                body["position"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Each reservation's deliveries arrived in log order. A change may come twice in a row (at least
/// once: the one in flight on an instance that died is sent again by its successor, before the
/// next change of that reservation).
fn in_log_order(got: &[(String, String, u64)]) {
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (id, _, position) in got {
        let before = last.insert(id, *position).unwrap_or(0);
        assert!(
            *position >= before,
            "{id}: {position} after {before}: {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_alone_builds_the_inbox_and_sends_signed_webhooks() {
    let s = Services::start(&[&[]]).await;
    let queries = s.queries.api();
    s.notifiers[0]
        .api()
        .wait_status("/readyz", StatusCode::OK, WAIT)
        .await;
    s.commands
        .api()
        .register_lodging("quay", 4, "instant")
        .await;
    let receiver = Receiver::start(204).await;
    let (_, secret) = subscribe(&queries, "mina", &receiver, "mina").await;
    let (_, theirs) = subscribe(&queries, "jun", &receiver, "jun").await;

    let (first, _) = confirmed_stay(&s, "mina", "quay", 5).await;
    let (second, position) = confirmed_stay(&s, "mina", "quay", 9).await;
    let (other, other_position) = confirmed_stay(&s, "jun", "quay", 12).await;
    let told = inbox(&queries, "mina", position).await;
    let ids: HashSet<&str> = told.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(ids, HashSet::from([first.as_str(), second.as_str()]));
    assert!(told.len() >= 4, "at least two changes each: {told:?}");

    receiver
        .wait_for("mina's changes", |_| {
            delivered_at(&receiver, "mina").len() >= told.len()
        })
        .await;
    let got = delivered(&receiver, "mina", &secret);
    // Log order holds per reservation (checked on the arrival order below); two reservations'
    // deliveries may interleave either way.
    let (mut each_got, mut each_told) = (got.clone(), told.clone());
    each_got.sort();
    each_told.sort();
    assert_eq!(
        each_got, each_told,
        "one delivery per status change, as the inbox has them"
    );
    in_log_order(&got);
    // Jun's hook has Jun's reservation only, and Jun's secret does not sign Mina's deliveries.
    let jun_told = inbox(&queries, "jun", other_position).await;
    receiver
        .wait_for("jun's changes", |_| {
            delivered_at(&receiver, "jun").len() >= jun_told.len()
        })
        .await;
    let jun_got = delivered(&receiver, "jun", &theirs);
    assert!(jun_got.iter().all(|(id, ..)| *id == other), "{jun_got:?}");
    assert!(delivered_at(&receiver, "mina")
        .iter()
        .all(|r| !r.signed_by(&theirs)));
    s.stop().await;
}

/// Subscriptions of new customers until each of the two sender shards has `per_shard`:
/// customer -> (secret, shard).
async fn spread_subscriptions(
    queries: &Api,
    receiver: &Receiver,
    per_shard: usize,
) -> HashMap<String, (String, u32)> {
    let mut made = HashMap::new();
    let mut counts = [0usize; 2];
    for n in 0..64 {
        if counts.iter().all(|c| *c >= per_shard) {
            break;
        }
        let who = format!("guest-{n}");
        let (id, secret) = subscribe(queries, &who, receiver, &who).await;
        let id = uuid::Uuid::parse_str(&id).expect("uuid");
        let shard = (0..2u32)
            .find(|i| notifier::sender::serves(Partition::new(*i, 2).expect("shard"), id))
            .expect("a shard serves it");
        let index = usize::try_from(shard).expect("small");
        if counts[index] >= per_shard {
            let (status, body) = queries
                .try_call(
                    Method::DELETE,
                    &format!("/webhooks/{id}"),
                    Some(&customer(&who)),
                    None,
                    None,
                )
                .await
                .expect("an answer");
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
            continue;
        }
        counts[index] += 1;
        made.insert(who, (secret, shard));
    }
    assert!(counts.iter().all(|c| *c >= per_shard), "{counts:?}");
    made
}

async fn shards_running(process: &Api) -> Vec<u64> {
    let (status, body) = process.get("/shards", None).await;
    assert!(status.is_success(), "{status} {body}");
    body["running"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["shard"].as_u64()).collect())
        .unwrap_or_default()
}

async fn wait_shards(process: &Api, expected: &[u64]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while shards_running(process).await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never ran {expected:?}",
            process.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every customer's hook got every status change of theirs the inbox has, in log order, signed.
async fn all_delivered(
    queries: &Api,
    receiver: &Receiver,
    hooks: &HashMap<String, (String, u32)>,
    position: u64,
) {
    for (who, (secret, _)) in hooks {
        let told = inbox(queries, who, position).await;
        let expected: HashSet<(String, String, u64)> = told.iter().cloned().collect();
        receiver
            .wait_for(&format!("{who}'s changes"), |_| {
                let got: HashSet<_> = delivered(receiver, who, secret).into_iter().collect();
                got == expected
            })
            .await;
        in_log_order(&delivered(receiver, who, secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notifiers_split_the_work_and_the_survivor_takes_over() {
    let shards = |instance| ["--shards", "2", "--instance", instance];
    let mut s = Services::start(&[&shards("0"), &shards("1")]).await;
    let queries = s.queries.api();
    for (instance, notifier) in (0..).zip(&s.notifiers) {
        wait_shards(&notifier.api(), &[instance]).await;
    }
    let lodgings = ["pier-a", "pier-b", "pier-c", "pier-d"];
    for lodging in lodgings {
        s.commands
            .api()
            .register_lodging(lodging, 50, "instant")
            .await;
    }
    let receiver = Receiver::start(204).await;
    let hooks = spread_subscriptions(&queries, &receiver, 2).await;
    let customers: Vec<String> = hooks.keys().cloned().collect();

    // Both alive: every change reaches its hook once.
    let mut position = 0;
    for (n, who) in customers.iter().enumerate() {
        let lodging = lodgings[n % lodgings.len()];
        let offset = 3 + i64::try_from(n).expect("small");
        position = position.max(confirmed_stay(&s, who, lodging, offset).await.1);
    }
    all_delivered(&queries, &receiver, &hooks, position).await;
    let before_crash: Vec<Hit> = receiver.hits();
    let mut seen = HashSet::new();
    for r in before_crash.iter().filter(|r| r.ok()) {
        assert!(
            seen.insert(r.delivery.clone()),
            "{:?} delivered twice",
            r.delivery
        );
    }

    // Instance 1 dies; the survivor takes its shard (inbox part and subscriptions) over.
    let mut dead = s.notifiers.remove(1);
    dead.crash().await;
    for (n, who) in customers.iter().enumerate() {
        let lodging = lodgings[(n + 1) % lodgings.len()];
        let offset = 40 + i64::try_from(n).expect("small");
        position = position.max(confirmed_stay(&s, who, lodging, offset).await.1);
    }
    wait_shards(&s.notifiers[0].api(), &[0, 1]).await;
    all_delivered(&queries, &receiver, &hooks, position).await;
    // A delivery is sent twice only if it was in flight on the instance that died.
    let mut seen = HashSet::new();
    let earlier: HashSet<Option<String>> =
        before_crash.iter().map(|r| r.delivery.clone()).collect();
    for r in receiver.hits().iter().filter(|r| r.ok()) {
        if !seen.insert(r.delivery.clone()) {
            assert!(
                earlier.contains(&r.delivery),
                "{:?} delivered twice after the takeover",
                r.delivery
            );
        }
    }
    s.stop().await;
}
