//! When an idle dispatcher looks at the inbox again: at each of the inbox's moves while a
//! subscription is kept, at its poll alone while none is (under load the inbox moves hundreds of
//! times a second, and each look is a batch's reads for nothing to deliver). Real SQLite stores; the
//! webhook store is wrapped only to count how often the dispatcher lists the subscriptions (once
//! per look).

use std::sync::Arc;
use std::time::Duration;

use notifier::dispatch::{Dispatcher, Hosts};
use notifier::{SqliteWebhooks, WebhookStore};
use readmodel::inbox::SqliteInbox;
use readmodel::SqliteViewStore;
use tokio_util::sync::CancellationToken;

#[path = "common/counted.rs"]
mod counted;
use counted::Counted;
#[path = "common/fixtures.rs"]
mod fixtures;
use fixtures::subscription;

/// How many looks the dispatcher takes while the inbox moves every millisecond for `span`.
async fn looks_while_moving(
    inbox: &tokio::sync::watch::Sender<u64>,
    store: &Counted,
    span: Duration,
) -> usize {
    let before = store.listed();
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        inbox.send_modify(|position| *position += 1);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    store.listed() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_wakes_an_idle_dispatcher_only_while_a_subscription_is_kept() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Arc::new(Counted::new(
        SqliteWebhooks::open(dir.path().join("webhooks.db")).expect("webhook store"),
    ));
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
