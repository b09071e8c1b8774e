//! When an idle dispatcher looks at the inbox again: at each of the inbox's moves while a
//! subscription is kept, at its poll alone while none is (under load the inbox moves hundreds of
//! times a second, and each look is a batch's reads for nothing to deliver). Real SQLite stores; the
//! webhook store is wrapped only to count how often the dispatcher lists the subscriptions (once
//! per look).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use notifier::dispatch::{Dispatcher, Hosts};
use notifier::model::Redrive;
use notifier::{Delivery, Owner, OwnerRole, SqliteWebhooks, Subscription, WebhookStore};
use readmodel::inbox::SqliteInbox;
use readmodel::{Page, PageRequest, SqliteViewStore, ViewError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A real store that counts the dispatcher's looks.
struct Counted {
    store: SqliteWebhooks,
    looks: AtomicUsize,
}

#[async_trait]
impl WebhookStore for Counted {
    async fn add_subscription(&self, subscription: &Subscription) -> Result<(), ViewError> {
        self.store.add_subscription(subscription).await
    }
    async fn subscriptions(&self) -> Result<Vec<Subscription>, ViewError> {
        self.looks.fetch_add(1, Ordering::SeqCst);
        self.store.subscriptions().await
    }
    async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, ViewError> {
        self.store.subscription(id).await
    }
    async fn remove_subscription(&self, id: Uuid) -> Result<bool, ViewError> {
        self.store.remove_subscription(id).await
    }
    async fn cursor(&self) -> Result<u64, ViewError> {
        self.store.cursor().await
    }
    async fn enqueue(&self, deliveries: &[Delivery], cursor: u64) -> Result<(), ViewError> {
        self.store.enqueue(deliveries, cursor).await
    }
    async fn open_deliveries(&self, id: Uuid, limit: usize) -> Result<Vec<Delivery>, ViewError> {
        self.store.open_deliveries(id, limit).await
    }
    async fn record_attempt(&self, delivery: &Delivery) -> Result<bool, ViewError> {
        self.store.record_attempt(delivery).await
    }
    async fn deliveries(&self, id: Uuid, page: &PageRequest) -> Result<Page<Delivery>, ViewError> {
        self.store.deliveries(id, page).await
    }
    async fn redrive(
        &self,
        id: Uuid,
        delivery: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Redrive, ViewError> {
        self.store.redrive(id, delivery, now).await
    }
}

fn subscription() -> Subscription {
    Subscription {
        id: Uuid::new_v4(),
        owner: Owner {
            role: OwnerRole::Customer,
            sub: "customer-1".into(),
            lodgings: vec![],
        },
        url: "https://hooks.example.com/1".into(),
        events: vec![],
        sealed_secret: "sealed".into(),
        from_position: 0,
        created_at: Utc::now(),
    }
}

/// How many looks the dispatcher takes while the inbox moves every millisecond for `span`.
async fn looks_while_moving(
    inbox: &tokio::sync::watch::Sender<u64>,
    store: &Counted,
    span: Duration,
) -> usize {
    let before = store.looks.load(Ordering::SeqCst);
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        inbox.send_modify(|position| *position += 1);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    store.looks.load(Ordering::SeqCst) - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_wakes_an_idle_dispatcher_only_while_a_subscription_is_kept() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(Counted {
        store: SqliteWebhooks::open(dir.path().join("webhooks.db")).expect("webhook store"),
        looks: AtomicUsize::new(0),
    });
    let (inbox, moved) = tokio::sync::watch::channel(0u64);
    let dispatcher = Dispatcher {
        inbox: Arc::new(SqliteInbox::open(dir.path().join("inbox.db")).expect("inbox")),
        views: Arc::new(SqliteViewStore::open(dir.path().join("views.db")).expect("views")),
        views_checkpoint: "views".into(),
        inbox_checkpoint: "inbox".into(),
        store: Arc::clone(&store) as Arc<dyn WebhookStore>,
        wakeups: Arc::default(),
        hosts: Hosts::default(),
        inbox_moved: Some(moved),
    };
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(dispatcher.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Without a subscription: the 50 ms poll alone, about 10 looks in 500 ms, however often the
    // inbox moves (about 400 times here).
    let span = Duration::from_millis(500);
    let unsubscribed = looks_while_moving(&inbox, &store, span).await;
    assert!(
        unsubscribed <= 20,
        "{unsubscribed} looks in 500 ms without a subscription: the inbox's moves woke it"
    );

    // With one: every move is seen at once.
    store
        .add_subscription(&subscription())
        .await
        .expect("subscribe");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let subscribed = looks_while_moving(&inbox, &store, span).await;
    assert!(
        subscribed >= 3 * unsubscribed.max(10),
        "{subscribed} looks in 500 ms with a subscription (without one: {unsubscribed}): \
         the inbox's moves did not wake it"
    );

    shutdown.cancel();
    run.await.expect("the dispatcher stops");
}
