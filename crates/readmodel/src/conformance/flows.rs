//! Checks of the documents a whole business flow produces, and of replays.

use domain::reservation::{ReservationEvent, ReservationRequested};
use domain::DomainEvent;
use uuid::Uuid;

use super::timeline::{day, recorded_at, Timeline, NIGHTLY_RATE};
use super::{dump, FreshStore, PROJECTOR};
use crate::{
    AnyEvent, ApprovalMode, ApprovalStatus as A, LodgingView, ManagementView, PaymentStatus as P,
    RefundStatus as R, ReservationStatus as S, ReservationView, ViewError, ViewEvent, ViewStore,
};

/// The reservations of [`history`], one per outcome.
#[derive(Debug, Clone, Copy)]
pub struct Cast {
    pub requested: Uuid,
    pub confirmed: Uuid,
    pub payment_pending: Uuid,
    pub cancelled: Uuid,
    pub rejected: Uuid,
    pub expired: Uuid,
    pub payment_failed: Uuid,
    pub approved: Uuid,
}

/// Two lodgings and a reservation ending in each status.
#[must_use]
pub fn history() -> (Timeline, Cast) {
    let mut t = Timeline::new();
    t.register("seoul-1", 3);
    t.register("busan-2", 1);
    let requested = t.request("seoul-1", "c-1", day(0), 2);
    let confirmed = t.request("seoul-1", "c-2", day(0), 2);
    t.grant("seoul-1", confirmed);
    t.pay(confirmed);
    let payment_pending = t.request("seoul-1", "c-1", day(2), 1);
    t.grant("seoul-1", payment_pending);
    t.defer(payment_pending);
    let cancelled = t.request("seoul-1", "c-3", day(4), 3);
    t.grant("seoul-1", cancelled);
    t.pay(cancelled);
    t.cancel_confirmed("seoul-1", cancelled);
    let rejected = t.request("busan-2", "c-1", day(0), 1);
    t.deny("busan-2", rejected);
    let expired = t.request("busan-2", "c-2", day(1), 1);
    t.expire("busan-2", expired);
    let payment_failed = t.request("busan-2", "c-3", day(2), 2);
    t.grant("busan-2", payment_failed);
    t.fail_payment("busan-2", payment_failed);
    let approved = t.request("seoul-1", "c-1", day(10), 1);
    t.grant("seoul-1", approved);
    let cast = Cast {
        requested,
        confirmed,
        payment_pending,
        cancelled,
        rejected,
        expired,
        payment_failed,
        approved,
    };
    (t, cast)
}

/// Position of the last event matching `matches`.
fn last_position(t: &Timeline, matches: impl Fn(&ViewEvent) -> bool) -> u64 {
    t.events()
        .iter()
        .rev()
        .find(|e| matches(e))
        .map_or(0, |e| e.position)
}

fn is_requested(event: &ViewEvent, id: Uuid) -> bool {
    matches!(&event.event, AnyEvent::Reservation { reservation_id, event: ReservationEvent::ReservationRequested(_) } if *reservation_id == id)
}

/// Does `event` change the documents of reservation `id` (saga events never do).
fn concerns(event: &ViewEvent, id: Uuid) -> bool {
    match &event.event {
        AnyEvent::Reservation { reservation_id, .. }
        | AnyEvent::Payment { reservation_id, .. }
        | AnyEvent::Payout { reservation_id, .. } => *reservation_id == id,
        AnyEvent::Lodging { event, .. } => event.reservation_id() == Some(id),
        AnyEvent::Customer { .. } | AnyEvent::Saga | AnyEvent::Other => false,
    }
}

async fn reservation(store: &dyn ViewStore, id: Uuid) -> ReservationView {
    store
        .reservation(id)
        .await
        .expect("read reservation")
        .expect("reservation view exists")
}

async fn request(store: &dyn ViewStore, id: Uuid) -> ManagementView {
    store
        .request(id)
        .await
        .expect("read request")
        .expect("request view exists")
}

/// A realistic flow gives every status of the contract, with every field as expected.
pub async fn flow_statuses(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let (t, cast) = history();
    store
        .apply(PROJECTOR, t.events())
        .await
        .expect("apply history");
    let checkpoint = store.checkpoint(PROJECTOR).await.expect("checkpoint");
    assert_eq!(checkpoint, t.head());
    check_confirmed(&*store, &t, cast.confirmed).await;
    check_reservation_outcomes(&*store, &t, cast).await;
    check_confirmed_request(&*store, &t, cast.confirmed).await;
    check_request_outcomes(&*store, &t, cast).await;
    check_catalog(&*store, &t).await;
}

/// Every field of the confirmed reservation.
async fn check_confirmed(store: &dyn ViewStore, t: &Timeline, id: Uuid) {
    let requested_at = recorded_at(last_position(t, |e| is_requested(e, id)));
    let confirmed_at = last_position(t, |e| {
        let confirmed = ReservationEvent::ReservationConfirmed {
            payment_id: format!("pay-{id}"),
            amount: 2 * NIGHTLY_RATE,
        };
        matches!(&e.event, AnyEvent::Reservation { reservation_id, event } if *reservation_id == id && *event == confirmed)
    });
    let expected = ReservationView {
        rooms: 1,
        reservation_id: id,
        customer_id: "c-2".into(),
        lodging_id: "seoul-1".into(),
        lodging_name: Some("Stay seoul-1".into()),
        check_in: day(0),
        check_out: day(2),
        guests: 2,
        nights: 2,
        total_amount: 2 * NIGHTLY_RATE,
        currency: "KRW".into(),
        status: S::Confirmed,
        approval_status: A::Approved,
        payment_status: P::Completed,
        refund_status: R::None,
        payout_status: crate::PayoutStatus::None,
        status_reason: None,
        requested_at,
        updated_at: recorded_at(confirmed_at),
        position: confirmed_at,
    };
    assert_eq!(reservation(store, id).await, expected);
}

type ReservationOutcome = (Uuid, S, A, P, R, Option<&'static str>);

#[rustfmt::skip]
fn reservation_outcomes(cast: Cast) -> [ReservationOutcome; 7] {
    [
        (cast.requested, S::Requested, A::Pending, P::None, R::None, None),
        (cast.payment_pending, S::PaymentPending, A::Approved, P::Pending, R::None, Some("gateway overloaded")),
        (cast.cancelled, S::Cancelled, A::Withdrawn, P::Refunded, R::Refunded, Some("plans changed")),
        (cast.rejected, S::Rejected, A::Rejected, P::None, R::None, Some("closed for renovation")),
        (cast.expired, S::Expired, A::Expired, P::None, R::None, Some("approval deadline passed")),
        (cast.payment_failed, S::PaymentFailed, A::Withdrawn, P::Failed, R::None, Some("card declined")),
        (cast.approved, S::Approved, A::Approved, P::Requested, R::None, None),
    ]
}

/// Each reservation's statuses, and a position and `updated_at` of an event about it.
async fn check_reservation_outcomes(store: &dyn ViewStore, t: &Timeline, cast: Cast) {
    for (id, status, approval, payment, refund, reason) in reservation_outcomes(cast) {
        let view = reservation(store, id).await;
        let got = (view.status, view.approval_status, view.payment_status);
        assert_eq!(got, (status, approval, payment), "reservation {id}");
        let got = (view.refund_status, view.status_reason.as_deref());
        assert_eq!(got, (refund, reason), "reservation {id}");
        let last = last_position(t, |e| concerns(e, id));
        let changed_by = t.events().iter().find(|e| e.position == view.position);
        let about_it = changed_by.is_some_and(|e| concerns(e, id));
        assert!(view.position <= last && about_it, "position of {id}");
        let updated_at = recorded_at(view.position);
        assert_eq!(view.updated_at, updated_at, "updated_at of {id}");
    }
}

fn is_lodging_event(event: &ViewEvent, id: Uuid, kind: &str) -> bool {
    matches!(&event.event, AnyEvent::Lodging { event, .. } if event.reservation_id() == Some(id) && event.event_type() == kind)
}

/// Every field of the confirmed reservation's approval request.
async fn check_confirmed_request(store: &dyn ViewStore, t: &Timeline, id: Uuid) {
    let view = request(store, id).await;
    let granted = last_position(t, |e| is_lodging_event(e, id, "ApprovalGranted"));
    let got = (view.request_status, view.available, view.payment_status);
    assert_eq!(got, (A::Approved, true, P::Completed));
    let got = (
        view.customer_id.as_str(),
        view.lodging_id.as_str(),
        view.guests,
    );
    assert_eq!(got, ("c-2", "seoul-1", 2));
    assert_eq!((view.check_in, view.check_out), (day(0), day(2)));
    assert_eq!(view.decided_at, Some(recorded_at(granted)));
    assert_eq!(view.decided_by.as_deref(), Some("admin-seoul-1"));
}

type RequestOutcome = (Uuid, A, bool, P, Option<&'static str>);

#[rustfmt::skip]
fn request_outcomes(cast: Cast) -> [RequestOutcome; 7] {
    [
        (cast.requested, A::Pending, true, P::None, None),
        (cast.payment_pending, A::Approved, true, P::Pending, Some("admin-seoul-1")),
        (cast.cancelled, A::Withdrawn, false, P::Refunded, Some("admin-seoul-1")),
        (cast.rejected, A::Rejected, false, P::None, Some("admin-busan-2")),
        (cast.expired, A::Expired, false, P::None, None),
        (cast.payment_failed, A::Withdrawn, false, P::Failed, Some("admin-busan-2")),
        (cast.approved, A::Approved, true, P::Requested, Some("admin-seoul-1")),
    ]
}

/// Each request's status, availability, payment and decider, and when it was requested.
async fn check_request_outcomes(store: &dyn ViewStore, t: &Timeline, cast: Cast) {
    for (id, status, available, payment, decided_by) in request_outcomes(cast) {
        let view = request(store, id).await;
        let got = (view.request_status, view.available, view.payment_status);
        assert_eq!(got, (status, available, payment), "request {id}");
        assert_eq!(view.decided_by.as_deref(), decided_by, "request {id}");
        // Listed from the customer's request (the lodging's ApprovalRequested comes later).
        let requested = match last_position(t, |e| is_requested(e, id)) {
            0 => last_position(t, |e| is_lodging_event(e, id, "ApprovalRequested")),
            position => position,
        };
        let requested_at = recorded_at(requested);
        assert_eq!(view.requested_at, requested_at, "requested_at of {id}");
    }
}

async fn check_catalog(store: &dyn ViewStore, t: &Timeline) {
    let seoul = store.lodging("seoul-1").await.expect("read lodging");
    let expected = LodgingView {
        lodging_id: "seoul-1".into(),
        name: "Stay seoul-1".into(),
        nightly_rate: NIGHTLY_RATE,
        currency: "KRW".into(),
        rooms: 3,
        max_guests: 4,
        approval_mode: ApprovalMode::Manual,
        admin_id: "admin-seoul-1".into(),
        timezone: domain::Tz::Asia__Seoul,
        fee_bps: 1_000,
        status: domain::lodging::ListingStatus::Active,
        max_request_rooms: 1,
        position: t.events()[0].position,
    };
    assert_eq!(seoul, Some(expected));
    assert_eq!(store.lodging("nowhere").await.expect("read lodging"), None);
    assert_eq!(store.reservation(Uuid::nil()).await.expect("read"), None);
    assert_eq!(store.request(Uuid::nil()).await.expect("read"), None);
}

/// Applying a batch again, or part of it, or under another projector id, changes nothing.
pub async fn replay_is_a_no_op(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let (t, _) = history();
    assert_eq!(store.checkpoint(PROJECTOR).await.expect("checkpoint"), 0);
    store.apply(PROJECTOR, t.events()).await.expect("apply");
    let before = dump(&*store).await;
    store
        .apply(PROJECTOR, t.events())
        .await
        .expect("apply again");
    store
        .apply(PROJECTOR, &t.events()[5..20])
        .await
        .expect("apply a part again");
    assert_eq!(dump(&*store).await, before);
    assert_eq!(
        store.checkpoint(PROJECTOR).await.expect("checkpoint"),
        t.head()
    );
    // Another projector id has its own checkpoint, and the documents guard themselves.
    store
        .apply("second", t.events())
        .await
        .expect("apply under another id");
    assert_eq!(dump(&*store).await, before);
    assert_eq!(
        store.checkpoint("second").await.expect("checkpoint"),
        t.head()
    );
    store.apply(PROJECTOR, &[]).await.expect("empty batch");
    assert_eq!(
        store.checkpoint(PROJECTOR).await.expect("checkpoint"),
        t.head()
    );
}

/// An event the views cannot take fails the whole batch, and the batch writes nothing.
pub async fn unprocessable_event_writes_nothing(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let mut t = Timeline::new();
    t.register("jeju-1", 1);
    let stream_id = Uuid::from_u128(7);
    let forged = ReservationRequested {
        timezone: domain::WAVE1_TIMEZONE,
        rooms: 1,
        reservation_id: Uuid::from_u128(8),
        customer_id: "c-1".into(),
        lodging_id: "jeju-1".into(),
        check_in: day(0),
        check_out: day(1),
        guests: 1,
        nights: 1,
        total_amount: NIGHTLY_RATE,
        currency: "KRW".into(),
    };
    let bad = t
        .reservation_event(stream_id, ReservationEvent::ReservationRequested(forged))
        .position;
    let result = store.apply(PROJECTOR, t.events()).await;
    assert!(
        matches!(result, Err(ViewError::Unprocessable { position, .. }) if position == bad),
        "{result:?}"
    );
    assert_eq!(store.lodging("jeju-1").await.expect("read"), None);
    assert_eq!(store.checkpoint(PROJECTOR).await.expect("checkpoint"), 0);
    store
        .apply(PROJECTOR, &t.events()[..1])
        .await
        .expect("apply the good part");
    assert!(store.lodging("jeju-1").await.expect("read").is_some());
    assert_eq!(store.checkpoint(PROJECTOR).await.expect("checkpoint"), 1);
}
