//! Which senders look at their deliveries when some are queued: only those of the subscriptions
//! they were queued for (the rest look at their own poll, once a second), and the senders'
//! supervisor only when the subscriptions change; and a sender whose window held every open
//! delivery does not read them back once sent. Real SQLite stores, a real receiver on loopback;
//! the webhook store is wrapped only to count the looks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use keys::{KeyStore, SqliteKeyStore};
use notifier::sender::{Senders, SECRET_FIELD};
use notifier::{Delivery, Owner, OwnerRole, SqliteWebhooks, Subscription, Wakeups, WebhookStore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[path = "common/counted.rs"]
mod counted;
use counted::Counted;
#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::delivery;

/// A receiver on loopback that answers 204 and counts what it got.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let got = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { axum::http::StatusCode::NO_CONTENT }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Running senders over `subscriptions` subscriptions (real stores, one receiver), each sender's
/// first look done.
struct Rig {
    store: Arc<Counted>,
    wakeups: Arc<Wakeups>,
    ids: Vec<Uuid>,
    got: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    run: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(subscriptions: usize) -> Rig {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(Counted::new(
        SqliteWebhooks::open(dir.path().join("webhooks.db")).expect("webhook store"),
    ));
    let keys = Arc::new(SqliteKeyStore::open(dir.path().join("keys.db")).expect("key store"));
    let (url, got) = receiver().await;
    let mut ids = Vec::new();
    for _ in 0..subscriptions {
        let id = Uuid::new_v4();
        let name = Subscription::key_name(id);
        let key = keys.key_for_writing(&name).await.expect("key");
        let subscription = Subscription {
            id,
            owner: Owner {
                role: OwnerRole::Customer,
                sub: "customer-1".into(),
                lodgings: vec![],
            },
            url: url.clone(),
            events: vec![],
            sealed_secret: keys::seal(&key, &name, SECRET_FIELD, "whsec_test"),
            from_position: 0,
            created_at: Utc::now(),
        };
        store.add_subscription(&subscription).await.expect("add");
        ids.push(id);
    }
    let wakeups = Arc::new(Wakeups::default());
    let senders = Senders {
        store: Arc::clone(&store) as Arc<dyn WebhookStore>,
        keys: keys as Arc<dyn KeyStore>,
        policy: notifier::policy::RetryPolicy::default(),
        client: notifier::guard::client(true, Duration::from_secs(5)).expect("client"),
        wakeups: Arc::clone(&wakeups),
        allow_private: true,
        shard: eventlog::Partition::ALL,
    };
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(senders.run(shutdown.clone()));
    eventually("every sender's first look", || {
        store.looks().len() == subscriptions
    })
    .await;
    Rig {
        store,
        wakeups,
        ids,
        got,
        shutdown,
        run,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deliveries_wake_only_their_subscription_s_sender() {
    const SUBSCRIPTIONS: usize = 20;
    const DELIVERIES: u64 = 30;
    let rig = start(SUBSCRIPTIONS).await;
    let (store, wakeups, ids, got) = (&rig.store, &rig.wakeups, &rig.ids, &rig.got);

    let before = store.looks();
    let listed_before = store.listed();
    let started = tokio::time::Instant::now();
    let busy = ids[0];
    for seq in 1..=DELIVERIES {
        store
            .enqueue(&[delivery(busy, seq)], seq)
            .await
            .expect("enqueue");
        wakeups.queued([busy]);
        let want = usize::try_from(seq).expect("small");
        eventually("the delivery", || got.load(Ordering::SeqCst) == want).await;
    }
    let span = started.elapsed();
    let after = store.looks();
    let grew = |id: &Uuid| after[id] - before[id];
    // Each of the others looks on its own poll only: once a second.
    let polls = usize::try_from(span.as_secs()).expect("short") + 2;
    assert!(
        grew(&busy) >= 30,
        "the busy sender looked {} times",
        grew(&busy)
    );
    for id in &ids[1..] {
        assert!(
            grew(id) <= polls,
            "an idle sender looked {} times in {span:?} for deliveries that were not its own",
            grew(id)
        );
    }
    let listed = store.listed() - listed_before;
    assert!(
        listed <= polls,
        "the subscriptions were listed {listed} times in {span:?}"
    );

    rig.shutdown.cancel();
    rig.run.await.expect("senders stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_took_every_open_delivery_does_not_read_them_back() {
    const DELIVERIES: u64 = 20;
    let rig = start(1).await;
    let id = rig.ids[0];
    let batch: Vec<Delivery> = (1..=DELIVERIES).map(|seq| delivery(id, seq)).collect();
    rig.store
        .enqueue(&batch, DELIVERIES)
        .await
        .expect("enqueue");
    let before = rig.store.looks()[&id];
    let started = tokio::time::Instant::now();
    rig.wakeups.queued([id]);
    eventually("every delivery", || {
        rig.got.load(Ordering::SeqCst) == usize::try_from(DELIVERIES).expect("small")
    })
    .await;
    // Time for a look right after the window's outcomes were saved, had there been one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let looks = rig.store.looks()[&id] - before;
    // One look took the whole window; beyond it, only the sender's poll, once a second.
    let polls = usize::try_from(started.elapsed().as_secs()).expect("short");
    assert!(
        looks <= 1 + polls,
        "the sender looked {looks} times in {:?} for one window of {DELIVERIES}",
        started.elapsed()
    );
    let open = rig.store.open_deliveries(id, 100).await.expect("open");
    assert!(open.is_empty(), "{} deliveries still open", open.len());
    rig.shutdown.cancel();
    rig.run.await.expect("senders stop");
}
