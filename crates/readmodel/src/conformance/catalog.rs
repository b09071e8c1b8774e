//! Checks of the catalog: the listing lifecycle (submitted, approved with a fee, rejected, updated,
//! closed), the catalog's filters, and `available` for requests of several rooms.

use domain::lodging::{ApprovalMode, ListingStatus, LodgingChanges, LodgingEvent, LodgingProfile};
use uuid::Uuid;

use super::timeline::{day, Timeline};
use super::{FreshStore, PROJECTOR};
use crate::{LodgingFilter, LodgingView, PageRequest, ViewStore};

fn listing(lodging_id: &str, name: &str, host: &str, mode: ApprovalMode) -> LodgingEvent {
    LodgingEvent::ListingSubmitted(LodgingProfile {
        lodging_id: lodging_id.to_string(),
        name: name.to_string(),
        nightly_rate: 30_000,
        currency: "KRW".to_string(),
        rooms: 3,
        max_guests: 2,
        approval_mode: mode,
        admin_id: host.to_string(),
        timezone: domain::Tz::Asia__Seoul,
        fee_bps: 1_000,
    })
}

fn approved(fee_bps: u32) -> LodgingEvent {
    LodgingEvent::ListingApproved {
        fee_bps,
        approved_by: "admin:root".to_string(),
    }
}

/// Lodgings of three admins, one in every listing status.
fn catalog(t: &mut Timeline) {
    t.register("inn", 2);
    t.lodging_event(
        "car-1",
        listing("car-1", "Compact Car", "company-7", ApprovalMode::Manual),
    );
    t.lodging_event("car-1", approved(1_500));
    t.lodging_event(
        "car-2",
        listing("car-2", "Van", "company-7", ApprovalMode::Manual),
    );
    let rejected = LodgingEvent::ListingRejected {
        reason: "no photos".to_string(),
        rejected_by: "admin:root".to_string(),
    };
    t.lodging_event("car-2", rejected);
    let cafe = listing(
        "cafe",
        "Study Cafe Gangnam",
        "cafe-host",
        ApprovalMode::Instant,
    );
    t.lodging_event("cafe", cafe);
    t.register("old", 1);
    let closed = LodgingEvent::LodgingClosed {
        reason: "season over".to_string(),
        closed_by: "admin:old".to_string(),
    };
    t.lodging_event("old", closed);
}

async fn ids(store: &dyn ViewStore, filter: LodgingFilter) -> Vec<String> {
    let page = store
        .lodgings(&filter, &PageRequest::first(100))
        .await
        .expect("list lodgings");
    page.items.into_iter().map(|l| l.lodging_id).collect()
}

async fn lodging(store: &dyn ViewStore, id: &str) -> LodgingView {
    store
        .lodging(id)
        .await
        .expect("read lodging")
        .expect("lodging exists")
}

async fn available(store: &dyn ViewStore, id: Uuid) -> bool {
    let request = store.request(id).await.expect("read request");
    request.expect("request exists").available
}

pub async fn catalog_lifecycle_and_filters(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let mut t = Timeline::new();
    catalog(&mut t);
    store.apply(PROJECTOR, t.events()).await.expect("apply");

    let car = lodging(store.as_ref(), "car-1").await;
    assert_eq!(
        (car.status, car.fee_bps, car.admin_id.as_str()),
        (ListingStatus::Active, 1_500, "company-7")
    );
    let status = |s| LodgingFilter {
        status: Some(s),
        ..LodgingFilter::default()
    };
    let store = store.as_ref();
    assert_eq!(
        ids(store, LodgingFilter::default()).await,
        ["cafe", "car-1", "car-2", "inn", "old"]
    );
    assert_eq!(
        ids(store, status(ListingStatus::Active)).await,
        ["car-1", "inn"]
    );
    assert_eq!(
        ids(store, status(ListingStatus::PendingReview)).await,
        ["cafe"]
    );
    assert_eq!(ids(store, status(ListingStatus::Rejected)).await, ["car-2"]);
    assert_eq!(ids(store, status(ListingStatus::Closed)).await, ["old"]);
    let host = LodgingFilter {
        admin_id: Some("company-7".to_string()),
        ..LodgingFilter::default()
    };
    assert_eq!(ids(store, host.clone()).await, ["car-1", "car-2"]);
    let host_active = LodgingFilter {
        status: Some(ListingStatus::Active),
        ..host
    };
    assert_eq!(ids(store, host_active).await, ["car-1"]);
    let named = |q: &str| LodgingFilter {
        name_contains: Some(q.to_string()),
        ..LodgingFilter::default()
    };
    assert_eq!(ids(store, named("CAFE gang")).await, ["cafe"]);
    assert_eq!(
        ids(store, named("a.")).await,
        Vec::<String>::new(),
        "a literal, not a pattern"
    );
    let instant = LodgingFilter {
        approval_mode: Some(ApprovalMode::Instant),
        ..LodgingFilter::default()
    };
    assert_eq!(ids(store, instant).await, ["cafe"]);

    // An update changes the document; the catalog finds it by its new name.
    let changes = LodgingChanges {
        name: Some("Compact Car XL".to_string()),
        rooms: Some(2),
        updated_by: "admin:company-7".to_string(),
        ..LodgingChanges::default()
    };
    let head = t.head();
    t.lodging_event("car-1", LodgingEvent::LodgingUpdated(changes));
    apply_after(store, &t, head).await;
    let car = lodging(store, "car-1").await;
    assert_eq!((car.name.as_str(), car.rooms), ("Compact Car XL", 2));
    assert_eq!(ids(store, named("xl")).await, ["car-1"]);
}

/// Apply the events of `t` after position `from`.
async fn apply_after(store: &dyn ViewStore, t: &Timeline, from: u64) {
    let start = t.events().iter().position(|e| e.position > from);
    let events = &t.events()[start.unwrap_or(t.events().len())..];
    store.apply(PROJECTOR, events).await.expect("apply");
}

/// A pending request of both rooms of a lodging fits while both are free: a one-room booking on its
/// night makes it not fit, although the night is not full; releasing it makes it fit again.
pub async fn availability_counts_rooms(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let store = store.as_ref();
    let mut t = Timeline::new();
    t.register("hall", 2);
    let pair = t.request_rooms("hall", "c-1", (day(10), 1), 2);
    let single = t.request_rooms("hall", "c-2", (day(10), 1), 1);
    let other_night = t.request_rooms("hall", "c-3", (day(12), 1), 2);
    store.apply(PROJECTOR, t.events()).await.expect("apply");
    assert!(available(store, pair).await);
    assert!(available(store, other_night).await);
    let head = t.head();
    t.grant("hall", single);
    apply_after(store, &t, head).await;
    assert!(
        !available(store, pair).await,
        "two rooms asked, two free: one taken"
    );
    assert!(available(store, other_night).await, "another night");
    let head = t.head();
    t.fail_payment("hall", single);
    apply_after(store, &t, head).await;
    assert!(available(store, pair).await, "released");
    let head = t.head();
    t.grant("hall", pair);
    apply_after(store, &t, head).await;
    let granted = store.request(pair).await.expect("read").expect("exists");
    assert!(granted.available && granted.rooms == 2);
    // The calendar as the availability route reads it: booked rooms by night, in order.
    let nights = store
        .calendar("hall", day(9), day(13))
        .await
        .expect("read calendar");
    let booked: Vec<_> = nights
        .iter()
        .filter(|n| n.booked > 0)
        .map(|n| (n.night, n.booked))
        .collect();
    assert_eq!(booked, [(day(10), 2)]);
    assert!(
        nights.windows(2).all(|w| w[0].night < w[1].night),
        "by night"
    );
    let outside = store
        .calendar("hall", day(11), day(12))
        .await
        .expect("read");
    assert!(outside.iter().all(|n| n.booked == 0), "{outside:?}");
}
