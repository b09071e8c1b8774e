//! Checks of the inbox ([`InboxStore`]): a customer's entries follow every status change of their
//! reservations, newest first, and an event that leaves the status as it was makes none; a desk's
//! entries are its new requests (a `pay_first` one only once paid), payments and cancellations;
//! filters keep one inbox from another and pages follow the cursor; the customers' entries read
//! for the webhooks come oldest first, between two `seq`s; a batch applied twice writes nothing
//! more; event by event or in one batch, the same entries.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::pay_first::{hold, hotel, pay as pay_first};
use super::timeline::{day, Timeline};
use crate::inbox::{InboxEntry, InboxFilter, InboxStore, NoticeKind, NOTIFIER_ID};
use crate::{PageRequest, ReservationStatus};

/// Hands out fresh, empty inboxes of the adapter under test.
#[async_trait]
pub trait FreshInbox: Send + Sync {
    async fn fresh(&self) -> Arc<dyn InboxStore>;
}

async fn all(store: &dyn InboxStore, filter: &InboxFilter) -> Vec<InboxEntry> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let listed = store.entries(filter, &page).await.expect("list entries");
        out.extend(listed.items);
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return out,
        }
    }
}

fn customer(name: &str) -> InboxFilter {
    InboxFilter::Customer(name.to_string())
}

fn desks(lodgings: &[&str]) -> InboxFilter {
    InboxFilter::Lodgings(Some(lodgings.iter().map(ToString::to_string).collect()))
}

/// (kind, status) of `entries` about `id`, oldest first.
fn story(entries: &[InboxEntry], id: Uuid) -> Vec<(NoticeKind, ReservationStatus)> {
    let mut told: Vec<_> = entries
        .iter()
        .filter(|e| e.reservation_id == id)
        .map(|e| (e.kind, e.status))
        .collect();
    told.reverse();
    told
}

/// Manual and `pay_first` flows; the customers' and the desks' inboxes.
pub async fn inbox_follows_status_changes(stores: &dyn FreshInbox) {
    use NoticeKind::{Cancelled, NewRequest, PaymentReceived, StatusChanged};
    use ReservationStatus as S;
    let mut t = Timeline::new();
    t.register("inn", 3);
    hotel(&mut t);
    let stay = t.request("inn", "ana", day(1), 2);
    t.grant("inn", stay);
    t.defer(stay);
    t.defer(stay); // still waiting: no second entry
    t.pay(stay);
    t.cancel_confirmed("inn", stay);
    let turned_down = t.request("inn", "ana", day(5), 1);
    t.deny("inn", turned_down);
    let paid_first = t.request("hotel", "bo", day(2), 1);
    hold(&mut t, paid_first);
    pay_first(&mut t, paid_first);

    let store = stores.fresh().await;
    store.apply(NOTIFIER_ID, t.events()).await.expect("apply");
    store
        .apply(NOTIFIER_ID, t.events())
        .await
        .expect("apply again");
    assert_eq!(
        store.checkpoint(NOTIFIER_ID).await.expect("checkpoint"),
        t.head()
    );

    let anas = all(&*store, &customer("ana")).await;
    assert_eq!(
        story(&anas, stay),
        vec![
            (StatusChanged, S::Requested),
            (StatusChanged, S::Approved),
            (StatusChanged, S::PaymentPending),
            (StatusChanged, S::Confirmed),
            (StatusChanged, S::Cancelled),
        ],
        "one entry per status change, none for a repeated status or a refund"
    );
    assert_eq!(
        story(&anas, turned_down),
        vec![(StatusChanged, S::Requested), (StatusChanged, S::Rejected)]
    );
    assert!(
        anas.windows(2).all(|w| w[0].seq() > w[1].seq()),
        "newest first"
    );
    assert!(anas.iter().all(|e| e.recipient == "ana"));
    let first = anas.last().expect("ana's first entry");
    assert_eq!(first.id, format!("{}-status_changed", first.position));
    assert!(first.message.contains("inn") && first.message.contains("requested"));

    // What the webhooks deliver: the customers' entries in log order, between two seqs.
    let mut changes = all(&*store, &customer("bo")).await;
    changes.extend(anas.iter().cloned());
    changes.sort_by_key(InboxEntry::seq);
    let after = |after: u64, through: u64, limit: usize| {
        let store = Arc::clone(&store);
        async move {
            store
                .status_changes_after(after, through, limit)
                .await
                .expect("status changes")
        }
    };
    assert!(changes.len() > 4, "{changes:?}");
    assert_eq!(
        after(0, u64::MAX, 1_000).await,
        changes,
        "every one, oldest first"
    );
    assert_eq!(after(0, u64::MAX, 2).await, changes[..2], "at most `limit`");
    let (second, fourth) = (changes[1].seq(), changes[3].seq());
    assert_eq!(
        after(second, fourth, 1_000).await,
        changes[2..4],
        "after, through"
    );
    assert_eq!(after(second, fourth - 1, 1_000).await, changes[2..3]);
    assert!(after(fourth, fourth, 1_000).await.is_empty());

    let inn = all(&*store, &desks(&["inn"])).await;
    assert_eq!(
        story(&inn, stay),
        vec![
            (NewRequest, S::Requested),
            (PaymentReceived, S::PaymentPending),
            (Cancelled, S::Cancelled),
        ]
    );
    assert_eq!(story(&inn, turned_down), vec![(NewRequest, S::Requested)]);
    let hotel_desk = all(&*store, &desks(&["hotel"])).await;
    let told = story(&hotel_desk, paid_first);
    assert_eq!(
        told.iter().filter(|(kind, _)| *kind == NewRequest).count(),
        1,
        "a pay_first request reaches the desk once, when paid: {told:?}"
    );
    assert_eq!(told.last(), Some(&(NewRequest, S::Paid)), "{told:?}");
    assert!(
        all(&*store, &desks(&[])).await.is_empty(),
        "no desk, nothing"
    );
    let everyone = all(&*store, &InboxFilter::Lodgings(None)).await;
    assert_eq!(everyone.len(), inn.len() + hotel_desk.len());
    assert!(all(&*store, &customer("nobody")).await.is_empty());

    let one_by_one = stores.fresh().await;
    for event in t.events() {
        one_by_one
            .apply(NOTIFIER_ID, std::slice::from_ref(event))
            .await
            .expect("apply one");
    }
    assert_eq!(all(&*one_by_one, &customer("ana")).await, anas);
    assert_eq!(
        all(&*one_by_one, &InboxFilter::Lodgings(None)).await,
        everyone
    );
    assert_eq!(
        one_by_one.lodging_of(stay).await.expect("lodging_of"),
        Some("inn".to_string())
    );
}
