//! Webhooks across a restart of `serve` on the same data dir: deliveries queued while the receiver
//! was down are kept (`webhooks.db`) and sent once it is back, after the restart; what was already
//! delivered is not sent again; the dispatcher's cursor (saved at most a second late) queues
//! nothing twice when it reads some of the inbox again.

mod common;
#[path = "common/receiver.rs"]
mod receiver;

use std::collections::HashSet;
use std::time::Duration;

use common::{test_config, TestPlatform};
use notifier::policy::RetryPolicy;
use receiver::Receiver;
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

async fn start_in(dir: tempfile::TempDir) -> TestPlatform {
    let mut config = test_config(dir.path());
    config.webhook_allow_private = true;
    config.webhook_policy = RetryPolicy {
        base: Duration::from_millis(100),
        max_delay: Duration::from_millis(300),
        park_after: Duration::from_secs(600),
        timeout: Duration::from_secs(2),
    };
    TestPlatform::start_in(dir, config).await
}

/// The statuses of `who`'s status changes in the inbox once the notifier reached `position`.
async fn inbox(t: &TestPlatform, who: &str, position: u64) -> Vec<(String, u64)> {
    let path = format!("/me/notifications?min_position={position}&wait_ms=5000&limit=100");
    let (status, page) = t.get(&path, &t.customer(who)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut told: Vec<(String, u64)> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "status_changed")
        .map(|i| {
            (
                i["status"].as_str().unwrap_or_default().to_string(),
                i["position"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    told.reverse();
    told
}

/// `serve` on a fresh data dir, "ona" subscribed to a receiver answering 204, and one stay of hers
/// at "keel" (instant) confirmed and every change of it delivered: the platform, the receiver, the
/// subscription's secret and what her inbox told of that stay.
async fn subscribed_with_a_stay_delivered() -> (TestPlatform, Receiver, String, Vec<(String, u64)>)
{
    let t = start_in(tempfile::tempdir().expect("temp dir")).await;
    t.register_lodging("keel", 4, "instant").await;
    let hook = Receiver::start(204).await;
    let (status, made) = t
        .post("/webhooks", &t.customer("ona"), json!({"url": hook.url()}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().expect("secret").to_string();
    let (first, _) = t.request("ona", "keel", 4, 2).await;
    let doc = t.wait_for(&first, "status", "confirmed", WAIT).await;
    let told = inbox(&t, "ona", doc["position"].as_u64().expect("position")).await;
    hook.wait_for("the first stay's changes", |hits| {
        hits.iter().filter(|h| h.ok()).count() == told.len()
    })
    .await;
    (t, hook, secret, told)
}

/// Each change `told` came once in `delivered` (no delivery id twice), and each reservation's in log
/// order.
fn assert_each_once_in_log_order(delivered: &[receiver::Hit], told: &[(String, u64)]) {
    let mut ids = HashSet::new();
    for hit in delivered {
        assert!(ids.insert(hit.delivery.clone()), "{:?} twice", hit.delivery);
    }
    let mut sent: Vec<(String, u64)> = Vec::new();
    let mut by_stay: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for hit in delivered {
        let body = hit.json();
        let position = body["position"].as_u64().unwrap_or(0);
        sent.push((
            body["status"].as_str().unwrap_or_default().to_string(),
            position,
        ));
        let stay = body["reservation_id"].as_str().unwrap_or_default();
        by_stay.entry(stay.to_string()).or_default().push(position);
    }
    for (stay, positions) in &by_stay {
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{stay}: in log order per reservation: {positions:?}"
        );
    }
    sent.sort_by_key(|(_, position)| *position);
    assert_eq!(sent, told, "each change once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_a_restart_and_none_is_sent_twice() {
    // One stay delivered while the receiver is up.
    let (t, hook, secret, first_told) = subscribed_with_a_stay_delivered().await;

    // The receiver goes down; a second stay's changes wait, retrying, when serve stops.
    hook.answer_with(503);
    let (second, _) = t.request("ona", "keel", 9, 2).await;
    let doc = t.wait_for(&second, "status", "confirmed", WAIT).await;
    let told = inbox(&t, "ona", doc["position"].as_u64().expect("position")).await;
    hook.wait_for("a failed attempt at the second stay", |hits| {
        hits.iter().any(|h| h.answered == 503)
    })
    .await;
    let dir = t.stop().await;

    // Back up, on the same data dir, with the receiver answering again.
    hook.answer_with(204);
    let t = start_in(dir).await;
    let (third, _) = t.request("ona", "keel", 14, 2).await;
    let doc = t.wait_for(&third, "status", "confirmed", WAIT).await;
    let all_told = inbox(&t, "ona", doc["position"].as_u64().expect("position")).await;
    assert!(all_told.len() > told.len() && told.len() > first_told.len());
    let hits = hook
        .wait_for("every change, after the restart", |hits| {
            hits.iter().filter(|h| h.ok()).count() >= all_told.len()
        })
        .await;
    // Nothing more comes (a second send would show up here).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered: Vec<_> = hook.hits().into_iter().filter(|h| h.ok()).collect();
    assert_eq!(
        delivered.len(),
        all_told.len(),
        "{:?}",
        receiver::summary(&hits)
    );
    for hit in &delivered {
        assert!(hit.signed_by(&secret));
    }
    assert_each_once_in_log_order(&delivered, &all_told);
    t.stop().await;
}

/// The webhook store refuses the dispatcher's writes for a while (another connection holds
/// `webhooks.db`'s write lock past the 5 s busy timeout): the batch whose write failed, and the one
/// read meanwhile, are read again from the cursor last saved once writes pass, so every change is
/// delivered, once, in log order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_store_refusing_writes_for_a_while_loses_and_repeats_nothing() {
    let (t, hook, _, first_told) = subscribed_with_a_stay_delivered().await;

    let lock = rusqlite::Connection::open(t.dir.path().join("webhooks.db")).expect("open");
    lock.execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    let locked_at = std::time::Instant::now();
    let mut stays = Vec::new();
    for offset in [9, 14] {
        stays.push(t.request("ona", "keel", offset, 2).await.0);
    }
    let mut last = 0;
    for stay in &stays {
        let doc = t.wait_for(stay, "status", "confirmed", WAIT).await;
        last = doc["position"].as_u64().expect("position");
    }
    let all_told = inbox(&t, "ona", last).await;
    assert!(
        hook.hits().iter().filter(|h| h.ok()).count() == first_told.len(),
        "nothing of the later stays could be queued while the lock is held"
    );
    tokio::time::sleep(Duration::from_secs(7).saturating_sub(locked_at.elapsed())).await;
    lock.execute_batch("ROLLBACK").expect("let go of the lock");
    drop(lock);

    hook.wait_for("every change once writes pass again", |hits| {
        hits.iter().filter(|h| h.ok()).count() >= all_told.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered: Vec<_> = hook.hits().into_iter().filter(|h| h.ok()).collect();
    for stay in &stays {
        let positions: Vec<u64> = delivered
            .iter()
            .map(receiver::Hit::json)
            .filter(|body| body["reservation_id"] == stay.as_str())
            .filter_map(|body| body["position"].as_u64())
            .collect();
        assert!(
            positions.len() >= 2 && positions.windows(2).all(|w| w[0] < w[1]),
            "{stay}: every change, in log order: {positions:?}"
        );
    }
    assert_each_once_in_log_order(&delivered, &all_told);
    t.stop().await;
}
