//! Checks of the payouts view and the ReservationList's `payout_status`: each payout event moves
//! both (scheduled, deferred -> pending, sent with its reference and time, failed, retried ->
//! scheduled); lists filter by lodging, host, scope and status and page newest first; the summary
//! sums per currency over the same filters; an event applied twice changes nothing; applied in one
//! batch, the same events build the same documents.

use domain::payout::{self, PayoutEvent};
use domain::reservation::ReservationEvent;
use uuid::Uuid;

use super::lists::Booking;
use super::timeline::{day, recorded_at, Timeline};
use super::{dump, FreshStore, PROJECTOR};
use crate::{
    PageRequest, PayoutFilter, PayoutStatus as P, PayoutTotals, PayoutView, ViewError, ViewStore,
};

/// The platform's fee on every stay of the suite (as its lodgings are registered).
const FEE_BPS: u32 = 1_000;

/// The stay of `id` at `lodging_id` is over: completed, and its payout scheduled (the host is the
/// lodging's admin, the gross what the customer paid).
pub fn schedule(t: &mut Timeline, lodging_id: &str, id: Uuid) -> u64 {
    let completed = ReservationEvent::ReservationCompleted {
        completed_by: "check-out".to_string(),
    };
    t.reservation_event(id, completed);
    let (gross, currency) = t.price(id);
    let (fee, net) = payout::split(gross, FEE_BPS).unwrap_or((0, gross));
    let scheduled = PayoutEvent::PayoutScheduled {
        reservation_id: id,
        lodging_id: lodging_id.to_string(),
        host_id: format!("admin-{lodging_id}"),
        gross,
        fee_bps: FEE_BPS,
        fee,
        net,
        currency,
    };
    t.payout_event(id, scheduled).position
}

pub fn defer(t: &mut Timeline, id: Uuid, attempt: u32) {
    let retry_at = recorded_at(t.head() + 30);
    let reason = "gateway unavailable".to_string();
    let deferred = PayoutEvent::PayoutDeferred {
        reason,
        attempt,
        retry_at,
    };
    t.payout_event(id, deferred);
}

/// The gateway pays the host; returns the event's position.
pub fn send(t: &mut Timeline, id: Uuid) -> u64 {
    let gateway_ref = format!("po-{id}");
    t.payout_event(id, PayoutEvent::PayoutSent { gateway_ref })
        .position
}

pub fn fail(t: &mut Timeline, id: Uuid) {
    let reason = "payee account closed".to_string();
    t.payout_event(id, PayoutEvent::PayoutFailed { reason });
}

pub fn retry(t: &mut Timeline, id: Uuid) {
    let requested_by = "admin:root".to_string();
    t.payout_event(id, PayoutEvent::PayoutRetryRequested { requested_by });
}

/// Payouts for the confirmed stays of [`super::crowd`], ending in every status.
pub fn pay_hosts(t: &mut Timeline, bookings: &[Booking]) {
    let confirmed = bookings.iter().filter(|b| b.status == "confirmed");
    for (n, booking) in confirmed.enumerate() {
        schedule(t, booking.lodging, booking.id);
        match n % 4 {
            0 => {}
            1 => defer(t, booking.id, 1),
            2 => {
                defer(t, booking.id, 1);
                send(t, booking.id);
            }
            _ => {
                fail(t, booking.id);
                retry(t, booking.id);
                fail(t, booking.id);
            }
        }
    }
}

async fn apply(store: &dyn ViewStore, t: &Timeline, from: &mut u64) {
    let start = t.events().iter().position(|e| e.position > *from);
    let events = &t.events()[start.unwrap_or(t.events().len())..];
    store.apply(PROJECTOR, events).await.expect("apply");
    *from = t.head();
}

/// Every payout that passes `filter`, read in pages of `limit`, newest first.
async fn listed(store: &dyn ViewStore, filter: &PayoutFilter, limit: usize) -> Vec<PayoutView> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let listed = store.payouts(filter, &page).await.expect("list payouts");
        all.extend(listed.items);
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return all,
        }
    }
}

async fn ids(store: &dyn ViewStore, filter: PayoutFilter) -> Vec<Uuid> {
    let rows = listed(store, &filter, 2).await;
    rows.iter().map(|row| row.reservation_id).collect()
}

async fn row(store: &dyn ViewStore, id: Uuid) -> PayoutView {
    let rows = listed(store, &PayoutFilter::default(), 100).await;
    let found = rows.into_iter().find(|row| row.reservation_id == id);
    found.expect("payout listed")
}

/// (the payout's status, the ReservationList's `payout_status`) of stay `id`.
async fn statuses(store: &dyn ViewStore, id: Uuid) -> (P, P) {
    let view = store.reservation(id).await.expect("read").expect("listed");
    (row(store, id).await.status, view.payout_status)
}

/// Three completed stays in Seoul (KRW), two in New York (USD).
fn stays(t: &mut Timeline) -> [Uuid; 5] {
    t.register("seoul-1", 5);
    t.register_in("nyc-1", 5, "USD");
    let nights = [2, 3, 1, 2, 4];
    let lodgings = ["seoul-1", "seoul-1", "seoul-1", "nyc-1", "nyc-1"];
    let mut ids = [Uuid::nil(); 5];
    for (n, (lodging, nights)) in lodgings.into_iter().zip(nights).enumerate() {
        let customer = format!("c-{n}");
        let id = t.request(
            lodging,
            &customer,
            day(u64::try_from(n).unwrap_or(0) * 5),
            nights,
        );
        t.grant(lodging, id);
        t.pay(id);
        ids[n] = id;
    }
    ids
}

pub async fn payouts_follow_their_events(stores: &dyn FreshStore) {
    let live = stores.fresh().await;
    let store = live.as_ref();
    let mut t = Timeline::new();
    let mut seen = 0;
    let [a, b, c, d, e] = stays(&mut t);
    apply(store, &t, &mut seen).await;
    let none = store.reservation(a).await.expect("read").expect("listed");
    assert_eq!(
        none.payout_status,
        P::None,
        "no payout before the stay ends"
    );
    assert!(listed(store, &PayoutFilter::default(), 10).await.is_empty());
    let summary = store.payout_summary(&PayoutFilter::default()).await;
    assert_eq!(summary, Ok(vec![]));

    let scheduled_at = schedule(&mut t, "seoul-1", a);
    apply(store, &t, &mut seen).await;
    let (gross, _) = t.price(a);
    let expected = PayoutView {
        reservation_id: a,
        lodging_id: "seoul-1".into(),
        host_id: "admin-seoul-1".into(),
        gross,
        fee: gross / 10,
        net: gross - gross / 10,
        currency: "KRW".into(),
        status: P::Scheduled,
        gateway_ref: None,
        scheduled_at: recorded_at(scheduled_at),
        sent_at: None,
        position: scheduled_at,
    };
    assert_eq!(
        row(store, a).await,
        expected,
        "every field of a scheduled payout"
    );
    assert_eq!(statuses(store, a).await, (P::Scheduled, P::Scheduled));
    let view = store.reservation(a).await.expect("read").expect("listed");
    assert_eq!(view.position, scheduled_at);

    for (lodging, id) in [("seoul-1", b), ("seoul-1", c), ("nyc-1", d), ("nyc-1", e)] {
        schedule(&mut t, lodging, id);
    }
    defer(&mut t, a, 1);
    defer(&mut t, b, 1);
    let sent = send(&mut t, b);
    fail(&mut t, c);
    defer(&mut t, d, 1);
    fail(&mut t, d);
    retry(&mut t, d);
    send(&mut t, e);
    apply(store, &t, &mut seen).await;
    assert_eq!(
        statuses(store, a).await,
        (P::Pending, P::Pending),
        "deferred"
    );
    assert_eq!(statuses(store, b).await, (P::Sent, P::Sent));
    assert_eq!(statuses(store, c).await, (P::Failed, P::Failed));
    assert_eq!(
        statuses(store, d).await,
        (P::Scheduled, P::Scheduled),
        "retried"
    );
    let paid = row(store, b).await;
    assert_eq!(paid.gateway_ref, Some(format!("po-{b}")));
    assert_eq!(
        (paid.sent_at, paid.position),
        (Some(recorded_at(sent)), sent)
    );
    assert_eq!(row(store, c).await.gateway_ref, None);

    check_filters(store, [a, b, c, d, e]).await;
    check_summary(store, &t, [a, b, c, d, e]).await;
    check_pages(store).await;

    // An event applied again, under this projector or another, changes nothing.
    let before = dump(store).await;
    let last = &t.events()[t.events().len() - 1..];
    store.apply(PROJECTOR, last).await.expect("apply again");
    store
        .apply("second", last)
        .await
        .expect("apply under another id");
    store.apply("second", t.events()).await.expect("replay all");
    assert_eq!(dump(store).await, before);

    // The same events in one batch build the same documents.
    let rebuilt = stores.fresh().await;
    rebuilt
        .apply(PROJECTOR, t.events())
        .await
        .expect("apply at once");
    assert_eq!(dump(rebuilt.as_ref()).await, before);
}

async fn check_filters(store: &dyn ViewStore, [a, b, c, d, e]: [Uuid; 5]) {
    let all = ids(store, PayoutFilter::default()).await;
    assert_eq!(all, [e, d, c, b, a], "newest scheduled first");
    let lodging = |id: &str| PayoutFilter {
        lodging_id: Some(id.into()),
        ..PayoutFilter::default()
    };
    let status = |text: &str| PayoutFilter {
        status: Some(text.into()),
        ..PayoutFilter::default()
    };
    assert_eq!(ids(store, lodging("nyc-1")).await, [e, d]);
    assert_eq!(ids(store, status("sent")).await, [e, b]);
    assert_eq!(ids(store, status("pending")).await, [a]);
    assert_eq!(ids(store, status("failed")).await, [c]);
    let seoul_sent = PayoutFilter {
        status: Some("sent".into()),
        ..lodging("seoul-1")
    };
    assert_eq!(ids(store, seoul_sent).await, [b]);
    let host = PayoutFilter {
        host_id: Some("admin-nyc-1".into()),
        ..PayoutFilter::default()
    };
    assert_eq!(ids(store, host).await, [e, d]);
    let scope = |lodgings: &[&str]| PayoutFilter {
        lodging_ids: Some(lodgings.iter().map(|l| (*l).to_string()).collect()),
        ..PayoutFilter::default()
    };
    assert_eq!(ids(store, scope(&["seoul-1"])).await, [c, b, a]);
    assert!(ids(store, scope(&[])).await.is_empty(), "an empty scope");
    let outside = PayoutFilter {
        lodging_id: Some("nyc-1".into()),
        ..scope(&["seoul-1"])
    };
    assert!(
        ids(store, outside).await.is_empty(),
        "a lodging outside the scope"
    );
    let unknown = store.payouts(&status("none"), &PageRequest::first(5)).await;
    assert!(
        matches!(unknown, Err(ViewError::InvalidFilter(_))),
        "{unknown:?}"
    );
}

fn totals(t: &Timeline, currency: &str, ids: &[Uuid]) -> PayoutTotals {
    let gross: i64 = ids.iter().map(|id| t.price(*id).0).sum();
    let fee: i64 = ids.iter().map(|id| t.price(*id).0 / 10).sum();
    PayoutTotals {
        currency: currency.into(),
        count: u64::try_from(ids.len()).unwrap_or(0),
        gross,
        fee,
        net: gross - fee,
    }
}

async fn check_summary(store: &dyn ViewStore, t: &Timeline, [a, b, c, d, e]: [Uuid; 5]) {
    let summary =
        |filter: PayoutFilter| async move { store.payout_summary(&filter).await.expect("summary") };
    let everything = vec![totals(t, "KRW", &[a, b, c]), totals(t, "USD", &[d, e])];
    assert_eq!(summary(PayoutFilter::default()).await, everything);
    let sent = PayoutFilter {
        status: Some("sent".into()),
        ..PayoutFilter::default()
    };
    let sent_totals = vec![totals(t, "KRW", &[b]), totals(t, "USD", &[e])];
    assert_eq!(summary(sent).await, sent_totals);
    let nyc = PayoutFilter {
        lodging_id: Some("nyc-1".into()),
        ..PayoutFilter::default()
    };
    assert_eq!(summary(nyc).await, vec![totals(t, "USD", &[d, e])]);
    let nothing = PayoutFilter {
        lodging_ids: Some(vec![]),
        ..PayoutFilter::default()
    };
    assert_eq!(summary(nothing).await, vec![]);
}

async fn check_pages(store: &dyn ViewStore) {
    let first = store
        .payouts(&PayoutFilter::default(), &PageRequest::first(3))
        .await
        .expect("first page");
    assert_eq!(first.items.len(), 3);
    let cursor = first.next_cursor.expect("more");
    let rest = PageRequest {
        limit: 3,
        cursor: Some(cursor.clone()),
    };
    let second = store
        .payouts(&PayoutFilter::default(), &rest)
        .await
        .expect("second page");
    assert_eq!((second.items.len(), second.next_cursor), (2, None));
    let elsewhere = store
        .reservations(&crate::ReservationFilter::default(), &rest)
        .await;
    assert!(
        matches!(elsewhere, Err(ViewError::BadCursor(_))),
        "a payout cursor is not a reservation cursor: {elsewhere:?}"
    );
}
