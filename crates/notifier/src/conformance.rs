//! The one conformance suite every [`WebhookStore`] adapter passes (run from
//! `crates/notifier/tests/conformance.rs` against SQLite, and against MongoDB when
//! `STAYLEDGER_MONGODB_URL` is set). It checks that:
//!
//! - subscriptions are kept whole, listed oldest first (then as added), found by id, and removed
//!   once;
//! - `enqueue` is idempotent (a delivery queued again stays as first queued), drops deliveries of
//!   subscriptions not kept, and moves the cursor (0 at first) only forward;
//! - `open_deliveries` lists a subscription's pending and retrying deliveries by `seq`, at most
//!   `limit`;
//! - `record_attempt` saves every outcome field over an open delivery and nothing over a settled or
//!   unknown one;
//! - `deliveries` pages newest first through the delivery cursor and refuses a foreign cursor;
//! - `redrive` queues a parked delivery again (attempts and parking clock start over, due at `now`,
//!   the last answer kept) and tells a delivery that is not parked or not found;
//! - removing a subscription drops its deliveries and no other's;
//! - two handles enqueueing the same deliveries at once make exactly one of each;
//! - windows of outcomes saved at once (`record_attempts` from many senders) are each saved, each
//!   caller told how many of its own were open.
//!
//! Fixture times are whole milliseconds (what MongoDB keeps), so whole values compare equal after
//! the round trip. This is test support: a failed check panics with what differed.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use readmodel::{encode_delivery_cursor, PageRequest, ViewError};
use uuid::Uuid;

use crate::model::{Delivery, DeliveryState, Owner, OwnerRole, Redrive, Subscription};
use crate::store::WebhookStore;

/// Hands out fresh, empty stores of the adapter under test.
#[async_trait]
pub trait FreshWebhooks: Send + Sync {
    /// A new, empty store.
    async fn fresh(&self) -> Arc<dyn WebhookStore>;

    /// Two handles over one new, empty backing store (one file, one database). By default two
    /// clones of one [`FreshWebhooks::fresh`]; an adapter that can open a store twice (two
    /// connections, as two processes would) should.
    async fn fresh_pair(&self) -> [Arc<dyn WebhookStore>; 2] {
        let store = self.fresh().await;
        [Arc::clone(&store), store]
    }
}

/// Run every check.
pub async fn run_all(stores: &dyn FreshWebhooks) {
    subscriptions_are_kept_listed_and_removed(stores).await;
    enqueue_is_idempotent_and_the_cursor_never_moves_back(stores).await;
    deliveries_of_subscriptions_not_kept_are_dropped(stores).await;
    open_deliveries_are_pending_or_retrying_by_seq(stores).await;
    record_attempt_saves_over_open_deliveries_only(stores).await;
    record_attempts_saves_the_open_ones_of_a_window(stores).await;
    deliveries_page_newest_first(stores).await;
    redrive_queues_parked_deliveries_only(stores).await;
    removing_a_subscription_drops_its_deliveries(stores).await;
    concurrent_enqueues_make_one_of_each(stores).await;
    windows_saved_at_once_are_each_saved(stores).await;
}

// ---- fixtures ----

/// 2030-03-17T17:46:40Z plus `ms` milliseconds.
fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_900_000_000_000 + ms).expect("fixture time in range")
}

fn subscription(n: u128, created_at: DateTime<Utc>) -> Subscription {
    Subscription {
        id: Uuid::from_u128(0x5ab0_0000 + n),
        owner: Owner {
            role: OwnerRole::Customer,
            sub: format!("customer-{n}"),
            lodgings: vec![],
        },
        url: format!("https://hooks.example.com/{n}"),
        events: vec![
            "reservation.confirmed".into(),
            "reservation.cancelled".into(),
        ],
        sealed_secret: format!("sealed-secret-{n}"),
        from_position: 40 + u64::try_from(n).expect("small fixture number"),
        created_at,
    }
}

/// A new (pending, untried) delivery of entry `seq` to `subscription_id`.
fn delivery(subscription_id: Uuid, seq: u64) -> Delivery {
    let ms = i64::try_from(seq).expect("small fixture seq");
    Delivery {
        delivery_id: Delivery::id_for(subscription_id, seq),
        subscription_id,
        seq,
        event_id: Uuid::from_u128(0xe000_0000 + u128::from(seq)),
        event_type: "reservation.confirmed".into(),
        reservation_id: Uuid::from_u128(0xa000_0000 + u128::from(seq % 3)),
        position: seq / 4,
        body: format!(r#"{{"type":"reservation.confirmed","seq":{seq}}}"#),
        state: DeliveryState::Pending,
        attempts: 0,
        last_status_code: None,
        last_error: None,
        queued_at: at(ms * 1000 + 7),
        first_attempt_at: None,
        next_attempt_at: None,
        settled_at: None,
    }
}

/// `d` after attempt `n` at `when` ended in `state`, answered `code`.
fn attempted(d: &Delivery, state: DeliveryState, n: u32, code: Option<u16>, when: i64) -> Delivery {
    let settled = !state.is_open();
    Delivery {
        state,
        attempts: n,
        last_status_code: code,
        last_error: Some(format!("attempt {n}: {state:?}")),
        first_attempt_at: Some(at(when - 1500)),
        next_attempt_at: (!settled).then(|| at(when + 30_000)),
        settled_at: settled.then(|| at(when)),
        ..d.clone()
    }
}

// ---- port calls that must succeed ----

async fn add(store: &dyn WebhookStore, subscription: &Subscription) {
    store
        .add_subscription(subscription)
        .await
        .unwrap_or_else(|e| panic!("add subscription {}: {e}", subscription.id));
}

async fn enqueue(store: &dyn WebhookStore, deliveries: &[Delivery], cursor: u64) {
    store.enqueue(deliveries, cursor).await.unwrap_or_else(|e| {
        panic!(
            "enqueue {} deliveries, cursor {cursor}: {e}",
            deliveries.len()
        )
    });
}

async fn cursor(store: &dyn WebhookStore) -> u64 {
    store.cursor().await.expect("dispatcher cursor")
}

async fn open(store: &dyn WebhookStore, subscription_id: Uuid, limit: usize) -> Vec<Delivery> {
    store
        .open_deliveries(subscription_id, limit)
        .await
        .unwrap_or_else(|e| panic!("open deliveries of {subscription_id}: {e}"))
}

async fn record(store: &dyn WebhookStore, d: &Delivery) -> bool {
    store
        .record_attempt(d)
        .await
        .unwrap_or_else(|e| panic!("record attempt on seq {}: {e}", d.seq))
}

async fn redrive(store: &dyn WebhookStore, subscription_id: Uuid, delivery_id: Uuid) -> Redrive {
    store
        .redrive(subscription_id, delivery_id, at(9_000_000))
        .await
        .unwrap_or_else(|e| panic!("redrive {delivery_id}: {e}"))
}

/// Every delivery of a subscription, following the pages (`size` at a time); each page but the
/// last is full.
async fn all_deliveries(
    store: &dyn WebhookStore,
    subscription_id: Uuid,
    size: usize,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(size);
    loop {
        let listed = store
            .deliveries(subscription_id, &page)
            .await
            .unwrap_or_else(|e| panic!("deliveries of {subscription_id}: {e}"));
        assert!(listed.items.len() <= size, "a page longer than asked for");
        assert!(out.len() < 10_000, "the pages never end");
        out.extend(listed.items.iter().cloned());
        match listed.next_cursor {
            Some(next) => {
                assert_eq!(
                    listed.items.len(),
                    size,
                    "a page with a next cursor is full"
                );
                page.cursor = Some(next);
            }
            None => return out,
        }
    }
}

/// The one stored delivery of `subscription_id` at `seq`.
async fn stored(store: &dyn WebhookStore, subscription_id: Uuid, seq: u64) -> Option<Delivery> {
    all_deliveries(store, subscription_id, 100)
        .await
        .into_iter()
        .find(|d| d.seq == seq)
}

/// Move a queued delivery to `state` through the port (one attempt), as the sender would.
async fn settle(store: &dyn WebhookStore, d: &Delivery, state: DeliveryState) -> Delivery {
    let done = attempted(d, state, 1, Some(503), 5000);
    assert!(
        record(store, &done).await,
        "attempt on queued seq {}",
        d.seq
    );
    done
}

fn seqs(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.seq).collect()
}

// ---- checks ----

/// Subscriptions come back whole, oldest first (`created_at`, then as added); by id; removal is
/// once.
pub async fn subscriptions_are_kept_listed_and_removed(stores: &dyn FreshWebhooks) {
    let store = stores.fresh().await;
    assert!(store.subscriptions().await.expect("list").is_empty());
    let newer = subscription(1, at(2000));
    let mut older = subscription(2, at(1000));
    older.owner = Owner {
        role: OwnerRole::Admin,
        sub: "host-7".into(),
        lodgings: vec!["inn".into(), "*".into()],
    };
    older.events = vec![];
    let tied = subscription(3, at(2000));
    for s in [&newer, &older, &tied] {
        add(&*store, s).await;
    }
    assert_eq!(
        store.subscriptions().await.expect("list"),
        vec![older.clone(), newer.clone(), tied.clone()],
        "oldest first, then as added"
    );
    for s in [&newer, &older, &tied] {
        assert_eq!(
            store.subscription(s.id).await.expect("get"),
            Some(s.clone())
        );
    }
    let unknown = Uuid::from_u128(0xdead);
    assert_eq!(
        store.subscription(unknown).await.expect("get unknown"),
        None
    );

    assert!(store.remove_subscription(newer.id).await.expect("remove"));
    assert_eq!(
        store.subscriptions().await.expect("list"),
        vec![older.clone(), tied.clone()]
    );
    assert_eq!(
        store.subscription(newer.id).await.expect("get removed"),
        None
    );
    assert!(!store
        .remove_subscription(newer.id)
        .await
        .expect("remove again"));
    assert!(!store
        .remove_subscription(unknown)
        .await
        .expect("remove unknown"));
}

/// A delivery queued again is left as first queued; the cursor starts at 0 and never moves back.
pub async fn enqueue_is_idempotent_and_the_cursor_never_moves_back(stores: &dyn FreshWebhooks) {
    let store = stores.fresh().await;
    let s = subscription(1, at(0));
    add(&*store, &s).await;
    assert_eq!(cursor(&*store).await, 0, "the cursor starts at 0");

    let (d4, d8) = (delivery(s.id, 4), delivery(s.id, 8));
    enqueue(&*store, &[d4.clone(), d8.clone()], 8).await;
    assert_eq!(cursor(&*store).await, 8);

    let mut changed = d8.clone();
    changed.body = r#"{"changed":true}"#.into();
    changed.state = DeliveryState::Parked;
    changed.attempts = 9;
    let d12 = delivery(s.id, 12);
    enqueue(&*store, &[changed, d12.clone()], 12).await;
    assert_eq!(cursor(&*store).await, 12);
    assert_eq!(
        all_deliveries(&*store, s.id, 10).await,
        vec![d12.clone(), d8.clone(), d4.clone()],
        "seq 8 queued again stays as first queued; seq 12 is new"
    );

    enqueue(&*store, &[], 5).await;
    assert_eq!(cursor(&*store).await, 12, "the cursor never moves back");
    enqueue(&*store, std::slice::from_ref(&d4), 3).await;
    assert_eq!(cursor(&*store).await, 12, "the cursor never moves back");
    assert_eq!(all_deliveries(&*store, s.id, 10).await, vec![d12, d8, d4]);
}

/// A delivery of a subscription never added, or removed, is dropped; the cursor still moves.
pub async fn deliveries_of_subscriptions_not_kept_are_dropped(stores: &dyn FreshWebhooks) {
    let store = stores.fresh().await;
    let (kept, never, removed) = (
        subscription(1, at(0)),
        subscription(2, at(0)),
        subscription(3, at(0)),
    );
    add(&*store, &kept).await;
    add(&*store, &removed).await;
    assert!(store.remove_subscription(removed.id).await.expect("remove"));

    let mine = delivery(kept.id, 4);
    let strays = [delivery(never.id, 4), delivery(removed.id, 8)];
    enqueue(
        &*store,
        &[strays[0].clone(), mine.clone(), strays[1].clone()],
        8,
    )
    .await;
    assert_eq!(
        cursor(&*store).await,
        8,
        "the cursor moves past dropped deliveries"
    );
    assert_eq!(all_deliveries(&*store, kept.id, 10).await, vec![mine]);
    for stray in &strays {
        let id = stray.subscription_id;
        assert!(
            all_deliveries(&*store, id, 10).await.is_empty(),
            "listed: {id}"
        );
        assert!(open(&*store, id, 10).await.is_empty(), "open: {id}");
        assert!(
            !record(
                &*store,
                &attempted(stray, DeliveryState::Delivered, 1, Some(200), 1)
            )
            .await
        );
        assert_eq!(
            redrive(&*store, id, stray.delivery_id).await,
            Redrive::NotFound
        );
    }
    add(&*store, &removed).await;
    assert!(
        all_deliveries(&*store, removed.id, 10).await.is_empty(),
        "a dropped delivery does not show up once its subscription is added again"
    );
}

/// Only pending and retrying deliveries, of that subscription only, ascending by `seq`, at most
/// `limit`.
pub async fn open_deliveries_are_pending_or_retrying_by_seq(stores: &dyn FreshWebhooks) {
    use DeliveryState::{Delivered, Parked, Retrying};
    let store = stores.fresh().await;
    let (a, b) = (subscription(1, at(0)), subscription(2, at(1)));
    add(&*store, &a).await;
    add(&*store, &b).await;
    let queued: Vec<Delivery> = [6, 2, 9, 1, 5, 3]
        .into_iter()
        .map(|seq| delivery(a.id, seq))
        .chain([delivery(b.id, 2), delivery(b.id, 7)])
        .collect();
    enqueue(&*store, &queued, 9).await;
    let of_a = |seq: u64| delivery(a.id, seq);
    settle(&*store, &of_a(1), Delivered).await;
    settle(&*store, &of_a(3), Parked).await;
    let retrying = settle(&*store, &of_a(5), Retrying).await;

    let expected = vec![of_a(2), retrying.clone(), of_a(6), of_a(9)];
    assert_eq!(
        open(&*store, a.id, 10).await,
        expected,
        "open ones of a, by seq"
    );
    assert_eq!(
        open(&*store, a.id, 2).await,
        expected[..2].to_vec(),
        "at most limit"
    );
    assert_eq!(open(&*store, a.id, 4).await, expected);
    assert!(open(&*store, a.id, 0).await.is_empty(), "limit 0: none");
    assert_eq!(
        open(&*store, b.id, 10).await,
        vec![delivery(b.id, 2), delivery(b.id, 7)]
    );
    assert!(open(&*store, Uuid::from_u128(0xdead), 10).await.is_empty());
}

/// Every outcome field is saved over an open delivery; a settled or unknown one is left as it is.
pub async fn record_attempt_saves_over_open_deliveries_only(stores: &dyn FreshWebhooks) {
    use DeliveryState::{Delivered, Parked, Retrying};
    let store = stores.fresh().await;
    let s = subscription(1, at(0));
    add(&*store, &s).await;
    let (d1, d2) = (delivery(s.id, 1), delivery(s.id, 2));
    enqueue(&*store, &[d1.clone(), d2.clone()], 2).await;

    let first = Delivery {
        settled_at: Some(at(4321)),
        ..attempted(&d1, Retrying, 1, Some(503), 4000)
    };
    assert!(record(&*store, &first).await, "pending -> retrying");
    assert_eq!(
        stored(&*store, s.id, 1).await,
        Some(first.clone()),
        "every field saved"
    );

    let parked = Delivery {
        last_status_code: None,
        last_error: Some("connection refused".into()),
        first_attempt_at: first.first_attempt_at,
        ..attempted(&first, Parked, 2, None, 90_000)
    };
    assert!(record(&*store, &parked).await, "retrying -> parked");
    assert_eq!(
        stored(&*store, s.id, 1).await,
        Some(parked.clone()),
        "Some -> None saved too"
    );
    let late = attempted(&parked, Delivered, 3, Some(200), 100_000);
    assert!(!record(&*store, &late).await, "parked is not open");
    assert_eq!(stored(&*store, s.id, 1).await, Some(parked));

    let delivered = attempted(&d2, Delivered, 1, Some(204), 6000);
    assert!(record(&*store, &delivered).await, "pending -> delivered");
    assert_eq!(stored(&*store, s.id, 2).await, Some(delivered.clone()));
    let again = attempted(&d2, Retrying, 2, Some(500), 7000);
    assert!(!record(&*store, &again).await, "delivered is not open");
    assert_eq!(stored(&*store, s.id, 2).await, Some(delivered));

    let unknown = attempted(&delivery(s.id, 3), Delivered, 1, Some(200), 8000);
    assert!(!record(&*store, &unknown).await, "unknown delivery");
    assert_eq!(
        stored(&*store, s.id, 3).await,
        None,
        "not created by an attempt"
    );
}

/// A window of outcomes at once: the open deliveries' are saved, a settled or unknown one's not.
pub async fn record_attempts_saves_the_open_ones_of_a_window(stores: &dyn FreshWebhooks) {
    use DeliveryState::{Delivered, Parked, Retrying};
    let store = stores.fresh().await;
    let s = subscription(1, at(0));
    add(&*store, &s).await;
    let queued: Vec<Delivery> = [1, 2, 3].map(|seq| delivery(s.id, seq)).to_vec();
    enqueue(&*store, &queued, 3).await;
    let parked = attempted(&queued[2], Parked, 1, Some(410), 1000);
    assert!(record(&*store, &parked).await);

    let window = [
        attempted(&queued[0], Delivered, 1, Some(204), 2000),
        attempted(&queued[1], Retrying, 1, Some(503), 2000),
        attempted(&parked, Delivered, 2, Some(204), 3000),
        attempted(&delivery(s.id, 9), Delivered, 1, Some(204), 3000),
    ];
    let saved = store
        .record_attempts(&window)
        .await
        .expect("record a window");
    assert_eq!(saved, 2, "the two open ones");
    assert_eq!(stored(&*store, s.id, 1).await, Some(window[0].clone()));
    assert_eq!(stored(&*store, s.id, 2).await, Some(window[1].clone()));
    assert_eq!(
        stored(&*store, s.id, 3).await,
        Some(parked),
        "parked is not open"
    );
    assert_eq!(stored(&*store, s.id, 9).await, None, "not created");
    assert_eq!(store.record_attempts(&[]).await.expect("nothing"), 0);
}

/// Newest first, pages following the cursor to the end, each delivery once; a foreign cursor is
/// refused; only that subscription's deliveries.
pub async fn deliveries_page_newest_first(stores: &dyn FreshWebhooks) {
    let store = stores.fresh().await;
    let (a, b) = (subscription(1, at(0)), subscription(2, at(1)));
    add(&*store, &a).await;
    add(&*store, &b).await;
    let mut queued: Vec<Delivery> = [3, 12, 1, 8, 5].map(|seq| delivery(a.id, seq)).to_vec();
    queued.extend([delivery(b.id, 4), delivery(b.id, 8)]);
    enqueue(&*store, &queued, 12).await;

    let newest_first = [12, 8, 5, 3, 1].map(|seq| delivery(a.id, seq)).to_vec();
    assert_eq!(all_deliveries(&*store, a.id, 2).await, newest_first);
    assert_eq!(all_deliveries(&*store, a.id, 5).await, newest_first);
    assert_eq!(all_deliveries(&*store, a.id, 50).await, newest_first);
    assert_eq!(seqs(&all_deliveries(&*store, b.id, 1).await), vec![8, 4]);

    let first = store
        .deliveries(a.id, &PageRequest::first(2))
        .await
        .expect("first page");
    assert_eq!(seqs(&first.items), vec![12, 8]);
    assert_eq!(first.next_cursor, Some(encode_delivery_cursor(8)));
    let after_5 = PageRequest {
        limit: 10,
        cursor: Some(encode_delivery_cursor(5)),
    };
    let rest = store.deliveries(a.id, &after_5).await.expect("after seq 5");
    assert_eq!((seqs(&rest.items), rest.next_cursor), (vec![3, 1], None));

    for garbage in ["garbage", "zz", &hex_of("w:"), &hex_of("n:5")] {
        let bad = PageRequest {
            limit: 2,
            cursor: Some(garbage.to_string()),
        };
        assert!(
            matches!(
                store.deliveries(a.id, &bad).await,
                Err(ViewError::BadCursor(_))
            ),
            "cursor {garbage:?} must be refused"
        );
    }
    let empty = store
        .deliveries(Uuid::from_u128(0xdead), &PageRequest::first(2))
        .await
        .expect("deliveries of an unknown subscription");
    assert!(empty.items.is_empty() && empty.next_cursor.is_none());
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A parked delivery is queued again (pending, attempts 0, parking clock cleared, due at `now`,
/// last answer kept) and is open again; anything else is told apart.
pub async fn redrive_queues_parked_deliveries_only(stores: &dyn FreshWebhooks) {
    use DeliveryState::{Delivered, Parked, Pending, Retrying};
    let store = stores.fresh().await;
    let (a, b) = (subscription(1, at(0)), subscription(2, at(1)));
    add(&*store, &a).await;
    add(&*store, &b).await;
    let queued = [1, 2, 3, 4].map(|seq| delivery(a.id, seq));
    enqueue(&*store, &queued, 4).await;
    enqueue(&*store, &[delivery(b.id, 5)], 5).await;
    let parked = attempted(&queued[0], Parked, 3, Some(500), 60_000);
    assert!(record(&*store, &parked).await);
    settle(&*store, &queued[1], Delivered).await;
    settle(&*store, &queued[3], Retrying).await;

    let requeued = Delivery {
        state: Pending,
        attempts: 0,
        first_attempt_at: None,
        next_attempt_at: Some(at(9_000_000)),
        settled_at: None,
        ..parked.clone()
    };
    assert_eq!(
        redrive(&*store, a.id, parked.delivery_id).await,
        Redrive::Queued(Box::new(requeued.clone())),
        "last status code and error kept"
    );
    assert_eq!(stored(&*store, a.id, 1).await, Some(requeued.clone()));
    assert_eq!(open(&*store, a.id, 1).await, vec![requeued], "open again");

    let told = |seq: u64| Delivery::id_for(a.id, seq);
    assert_eq!(
        redrive(&*store, a.id, told(1)).await,
        Redrive::NotParked(Pending)
    );
    assert_eq!(
        redrive(&*store, a.id, told(2)).await,
        Redrive::NotParked(Delivered)
    );
    assert_eq!(
        redrive(&*store, a.id, told(3)).await,
        Redrive::NotParked(Pending)
    );
    assert_eq!(
        redrive(&*store, a.id, told(4)).await,
        Redrive::NotParked(Retrying)
    );
    assert_eq!(
        redrive(&*store, a.id, told(9)).await,
        Redrive::NotFound,
        "unknown"
    );
    let of_b = Delivery::id_for(b.id, 5);
    assert_eq!(
        redrive(&*store, a.id, of_b).await,
        Redrive::NotFound,
        "b's, asked via a"
    );
    assert_eq!(
        redrive(&*store, b.id, told(2)).await,
        Redrive::NotFound,
        "a's, asked via b"
    );
}

/// Removing a subscription drops its deliveries (not to come back with it) and leaves others'.
pub async fn removing_a_subscription_drops_its_deliveries(stores: &dyn FreshWebhooks) {
    use DeliveryState::{Delivered, Parked};
    let store = stores.fresh().await;
    let (a, b) = (subscription(1, at(0)), subscription(2, at(1)));
    add(&*store, &a).await;
    add(&*store, &b).await;
    let queued: Vec<Delivery> = (1..=4)
        .flat_map(|seq| [delivery(a.id, seq), delivery(b.id, seq)])
        .collect();
    enqueue(&*store, &queued, 4).await;
    settle(&*store, &delivery(a.id, 1), Delivered).await;
    settle(&*store, &delivery(a.id, 2), Parked).await;
    settle(&*store, &delivery(b.id, 1), Delivered).await;
    let (b_all, b_open) = (
        all_deliveries(&*store, b.id, 10).await,
        open(&*store, b.id, 10).await,
    );
    assert_eq!((b_all.len(), b_open.len()), (4, 3));

    assert!(store.remove_subscription(a.id).await.expect("remove"));
    assert!(all_deliveries(&*store, a.id, 10).await.is_empty());
    assert!(open(&*store, a.id, 10).await.is_empty());
    let a2 = Delivery::id_for(a.id, 2);
    assert_eq!(redrive(&*store, a.id, a2).await, Redrive::NotFound);
    let late = attempted(&delivery(a.id, 3), Delivered, 1, Some(200), 1);
    assert!(
        !record(&*store, &late).await,
        "a removed subscription's delivery"
    );
    assert_eq!(
        all_deliveries(&*store, b.id, 10).await,
        b_all,
        "b's untouched"
    );
    assert_eq!(open(&*store, b.id, 10).await, b_open);

    add(&*store, &a).await;
    assert!(
        all_deliveries(&*store, a.id, 10).await.is_empty(),
        "dropped, not hidden: they do not come back with the subscription"
    );
}

/// Two handles enqueueing the same (and overlapping) deliveries at once make one of each, and the
/// cursor ends at the furthest.
pub async fn concurrent_enqueues_make_one_of_each(stores: &dyn FreshWebhooks) {
    const ROUNDS: u64 = 5;
    const BATCH: u64 = 20;
    let [one, two] = stores.fresh_pair().await;
    let (a, b) = (subscription(1, at(0)), subscription(2, at(1)));
    add(&*one, &a).await;
    add(&*two, &b).await;
    let batch = |from: u64, to: u64| -> Vec<Delivery> {
        (from..=to)
            .flat_map(|seq| [delivery(a.id, seq), delivery(b.id, seq)])
            .collect()
    };
    for round in 0..ROUNDS {
        let start = round * BATCH + 1;
        let same = batch(start, start + BATCH - 1);
        let end = start + BATCH - 1;
        let (first, second) = tokio::join!(one.enqueue(&same, end), two.enqueue(&same, end));
        first.expect("enqueue through one handle");
        second.expect("same deliveries through the other handle");
        let (low, high) = (batch(start, end), batch(start + BATCH / 2, end + BATCH / 2));
        let (first, second) =
            tokio::join!(two.enqueue(&low, end), one.enqueue(&high, end + BATCH / 2));
        first.expect("enqueue the lower half again");
        second.expect("enqueue an overlapping batch");
    }
    let last = ROUNDS * BATCH + BATCH / 2;
    let want: Vec<Delivery> = (1..=last).rev().map(|seq| delivery(a.id, seq)).collect();
    for store in [&one, &two] {
        assert_eq!(cursor(&**store).await, last, "the cursor at the furthest");
        assert_eq!(
            all_deliveries(&**store, a.id, 17).await,
            want,
            "one of each"
        );
        assert_eq!(
            seqs(&all_deliveries(&**store, b.id, 1000).await),
            (1..=last).rev().collect::<Vec<_>>()
        );
        let open_a = open(&**store, a.id, 1000).await;
        assert_eq!(open_a.len(), want.len(), "one open delivery of each");
    }
}

/// Eight senders saving their windows at once (as the senders of eight subscriptions do): each
/// learns how many of its own were open, and every outcome is saved, whatever the store groups.
pub async fn windows_saved_at_once_are_each_saved(stores: &dyn FreshWebhooks) {
    use DeliveryState::{Delivered, Retrying};
    const SENDERS: u128 = 8;
    let store = stores.fresh().await;
    let subscriptions: Vec<Subscription> = (1..=SENDERS).map(|n| subscription(n, at(0))).collect();
    for s in &subscriptions {
        add(&*store, s).await;
        let queued: Vec<Delivery> = (1..=6).map(|seq| delivery(s.id, seq)).collect();
        enqueue(&*store, &queued, 6).await;
    }
    let windows: Vec<Vec<Delivery>> = subscriptions
        .iter()
        .enumerate()
        .map(|(n, s)| {
            // Sender n saves the first n % 5 + 1 of its deliveries, and one it never had.
            let mut window: Vec<Delivery> = (1..=(n as u64 % 5 + 1))
                .map(|seq| {
                    let state = if seq % 2 == 0 { Retrying } else { Delivered };
                    attempted(&delivery(s.id, seq), state, 1, Some(204), 2000)
                })
                .collect();
            window.push(attempted(
                &delivery(s.id, 99),
                Delivered,
                1,
                Some(204),
                2000,
            ));
            window
        })
        .collect();
    let saved = futures::future::join_all(windows.iter().map(|w| store.record_attempts(w))).await;
    for ((n, s), (window, saved)) in subscriptions
        .iter()
        .enumerate()
        .zip(windows.iter().zip(saved))
    {
        let open_ones = n % 5 + 1;
        assert_eq!(
            saved.expect("save a window"),
            open_ones,
            "sender {n}: its own open ones"
        );
        for outcome in &window[..open_ones] {
            assert_eq!(
                stored(&*store, s.id, outcome.seq).await.as_ref(),
                Some(outcome)
            );
        }
        assert_eq!(stored(&*store, s.id, 99).await, None, "not created");
        let still_open = open(&*store, s.id, 100).await;
        let retrying = window.iter().filter(|d| d.state == Retrying).count();
        assert_eq!(still_open.len(), 6 - open_ones + retrying);
    }
}
