//! Checks of a `pay_first` lodging's views: a request holds its nights (`held` in the calendar and
//! in the ReservationList) and reaches the ManagementList only once paid; one that found no room
//! never reaches it; approval books the held rooms, rejection and expiry release them and owe the
//! payment back; a confirmed stay is then completed. Applied in one batch, the same events build
//! the same documents.

use domain::lodging::{ApprovalMode, LodgingChanges, LodgingEvent};
use domain::payment::PaymentEvent;
use domain::reservation::ReservationEvent;
use uuid::Uuid;

use super::timeline::{day, Timeline};
use super::{dump, FreshStore, PROJECTOR};
use crate::{
    ApprovalStatus, PaymentStatus, RefundStatus, ReservationStatus, ReservationView, ViewStore,
};

/// The saga's and the desk's events for a held request that is then paid.
pub fn hold(t: &mut Timeline, id: Uuid) {
    t.lodging_event("hotel", LodgingEvent::NightsHeld { reservation_id: id });
    t.saga_event(id);
    t.payment_event(
        id,
        PaymentEvent::PaymentRequested {
            reservation_id: id,
            amount: 60_000,
            currency: "KRW".to_string(),
        },
    );
}

pub fn pay(t: &mut Timeline, id: Uuid) {
    let payment_id = format!("pay-{id}");
    t.payment_event(
        id,
        PaymentEvent::PaymentCompleted {
            payment_id: payment_id.clone(),
            gateway_ref: format!("ch-{id}"),
            amount: 60_000,
        },
    );
    t.reservation_event(
        id,
        ReservationEvent::ReservationPaid {
            payment_id,
            amount: 60_000,
        },
    );
    t.lodging_event("hotel", LodgingEvent::RequestPaid { reservation_id: id });
}

/// A one-room hotel that charges first.
pub fn hotel(t: &mut Timeline) {
    t.register("hotel", 1);
    let to_pay_first = LodgingChanges {
        approval_mode: Some(ApprovalMode::PayFirst),
        ..LodgingChanges::default()
    };
    t.lodging_event("hotel", LodgingEvent::LodgingUpdated(to_pay_first));
}

async fn reservation(store: &dyn ViewStore, id: Uuid) -> ReservationView {
    store
        .reservation(id)
        .await
        .expect("read")
        .expect("reservation listed")
}

/// (booked, held) of each night of `day(from)..day(to)`, 0 where nothing is stored.
async fn nights(store: &dyn ViewStore, from: u64, to: u64) -> Vec<(u32, u32)> {
    let stored = store
        .calendar("hotel", day(from), day(to))
        .await
        .expect("calendar");
    (from..to)
        .map(|n| {
            stored
                .iter()
                .find(|night| night.night == day(n))
                .map_or((0, 0), |night| (night.booked, night.held))
        })
        .collect()
}

async fn apply(store: &dyn ViewStore, t: &Timeline, from: &mut u64) {
    let start = t.events().iter().position(|e| e.position > *from);
    let events = &t.events()[start.unwrap_or(t.events().len())..];
    store.apply(PROJECTOR, events).await.expect("apply");
    *from = t.head();
}

pub async fn pay_first_requests_reach_the_desk_once_paid(stores: &dyn FreshStore) {
    let live = stores.fresh().await;
    let store = live.as_ref();
    let mut t = Timeline::new();
    let mut seen = 0;
    hotel(&mut t);
    let guest = t.request_rooms("hotel", "guest-1", (day(10), 2), 1);
    hold(&mut t, guest);
    // Another guest asks for the same nights: no room, turned away before any charge.
    let late = t.request_rooms("hotel", "guest-2", (day(11), 1), 1);
    t.lodging_event(
        "hotel",
        LodgingEvent::ApprovalDenied {
            reason: format!("no free room on {}", day(11)),
            reservation_id: late,
            denied_by: "pay_first".to_string(),
        },
    );
    t.reservation_event(
        late,
        ReservationEvent::ReservationRejected {
            reason: "no free room".to_string(),
        },
    );
    apply(store, &t, &mut seen).await;
    let held = reservation(store, guest).await;
    assert_eq!(
        (held.status, held.approval_status),
        (ReservationStatus::Requested, ApprovalStatus::Held)
    );
    assert!(
        store.request(guest).await.expect("read").is_none(),
        "unpaid: not on the desk"
    );
    assert!(
        store.request(late).await.expect("read").is_none(),
        "never on the desk"
    );
    let turned_away = reservation(store, late).await;
    assert_eq!(turned_away.status, ReservationStatus::Rejected);
    assert_eq!(turned_away.payment_status, PaymentStatus::None);
    assert_eq!(nights(store, 9, 13).await, [(0, 0), (0, 1), (0, 1), (0, 0)]);

    pay(&mut t, guest);
    apply(store, &t, &mut seen).await;
    let paid = reservation(store, guest).await;
    assert_eq!(
        (paid.status, paid.approval_status, paid.payment_status),
        (
            ReservationStatus::Paid,
            ApprovalStatus::Held,
            PaymentStatus::Completed
        )
    );
    let on_desk = store
        .request(guest)
        .await
        .expect("read")
        .expect("on the desk");
    assert_eq!(on_desk.request_status, ApprovalStatus::Pending);
    assert!(on_desk.available, "its rooms are held for it");
    assert_eq!(on_desk.payment_status, PaymentStatus::Completed);
    assert_eq!(on_desk.customer_id, "guest-1");

    t.lodging_event(
        "hotel",
        LodgingEvent::ApprovalGranted {
            reservation_id: guest,
            granted_by: "admin-hotel".to_string(),
        },
    );
    t.reservation_event(
        guest,
        ReservationEvent::ReservationConfirmed {
            payment_id: format!("pay-{guest}"),
            amount: 60_000,
        },
    );
    apply(store, &t, &mut seen).await;
    let confirmed = reservation(store, guest).await;
    assert_eq!(
        (confirmed.status, confirmed.approval_status),
        (ReservationStatus::Confirmed, ApprovalStatus::Approved)
    );
    assert_eq!(
        nights(store, 10, 12).await,
        [(1, 0), (1, 0)],
        "held became booked"
    );
    // At check-out the stay is completed: its rooms stay booked for the nights it had.
    t.reservation_event(
        guest,
        ReservationEvent::ReservationCompleted {
            completed_by: "check-out".to_string(),
        },
    );
    apply(store, &t, &mut seen).await;
    let completed = reservation(store, guest).await;
    assert_eq!(
        (completed.status, completed.approval_status),
        (ReservationStatus::Completed, ApprovalStatus::Approved)
    );
    let request = store
        .request(guest)
        .await
        .expect("read")
        .expect("on the desk");
    assert_eq!(request.request_status, ApprovalStatus::Completed);
    assert!(request.available, "its rooms were its own");
    assert_eq!(nights(store, 10, 12).await, [(1, 0), (1, 0)]);

    // Paid, then rejected: released, and the payment is owed back until refunded.
    let second = t.request_rooms("hotel", "guest-3", (day(20), 2), 1);
    hold(&mut t, second);
    pay(&mut t, second);
    t.lodging_event(
        "hotel",
        LodgingEvent::ApprovalDenied {
            reason: "closed that week".to_string(),
            reservation_id: second,
            denied_by: "admin-hotel".to_string(),
        },
    );
    t.reservation_event(
        second,
        ReservationEvent::ReservationRejected {
            reason: "closed that week".to_string(),
        },
    );
    // Held, never paid, expired: released.
    let third = t.request_rooms("hotel", "guest-4", (day(30), 1), 1);
    hold(&mut t, third);
    t.expire("hotel", third);
    apply(store, &t, &mut seen).await;
    let rejected = reservation(store, second).await;
    assert_eq!(
        (rejected.status, rejected.refund_status),
        (ReservationStatus::Rejected, RefundStatus::Pending)
    );
    let on_desk = store
        .request(second)
        .await
        .expect("read")
        .expect("was paid");
    assert_eq!(on_desk.request_status, ApprovalStatus::Rejected);
    assert_eq!(nights(store, 20, 22).await, [(0, 0), (0, 0)]);
    let expired = reservation(store, third).await;
    assert_eq!(
        (expired.status, expired.approval_status),
        (ReservationStatus::Expired, ApprovalStatus::Expired)
    );
    assert!(store.request(third).await.expect("read").is_none());
    assert_eq!(nights(store, 30, 31).await, [(0, 0)]);
    t.payment_event(
        second,
        PaymentEvent::PaymentRefunded {
            amount: 60_000,
            gateway_ref: format!("rf-{second}"),
        },
    );
    apply(store, &t, &mut seen).await;
    assert_eq!(
        reservation(store, second).await.refund_status,
        RefundStatus::Refunded
    );

    // The same events in one batch build the same documents and calendar.
    let rebuilt = stores.fresh().await;
    rebuilt
        .apply(PROJECTOR, t.events())
        .await
        .expect("apply at once");
    assert_eq!(dump(rebuilt.as_ref()).await, dump(store).await);
    assert_eq!(
        nights(rebuilt.as_ref(), 9, 31).await,
        nights(store, 9, 31).await
    );
}
