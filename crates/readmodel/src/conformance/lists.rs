//! Checks of availability, lists (filters, pages, cursors), dead letters and rebuilds.

use std::collections::HashSet;

use chrono::NaiveDate;
use uuid::Uuid;

use super::flows::history;
use super::timeline::{day, Timeline};
use super::{dump, FreshStore, PROJECTOR};
use crate::{
    DeadLetter, LodgingFilter, PageRequest, RequestFilter, ReservationFilter, ViewError, ViewStore,
};

async fn available(store: &dyn ViewStore, id: Uuid) -> bool {
    store
        .request(id)
        .await
        .expect("read request")
        .expect("request exists")
        .available
}

/// Apply the events of `t` after position `from`; returns the new head.
async fn apply_since(store: &dyn ViewStore, t: &Timeline, from: u64) -> u64 {
    let start = t
        .events()
        .iter()
        .position(|e| e.position > from)
        .unwrap_or(t.events().len());
    store
        .apply(PROJECTOR, &t.events()[start..])
        .await
        .expect("apply");
    t.head()
}

/// `available` of pending requests flips as other stays of the lodging are granted and withdrawn.
pub async fn availability_follows_the_calendar(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let mut t = Timeline::new();
    t.register("jeju-3", 1);
    t.register("jeju-4", 1);
    let first = t.request("jeju-3", "c-1", day(0), 3);
    let overlapping = t.request("jeju-3", "c-2", day(2), 2);
    let later = t.request("jeju-3", "c-3", day(5), 1);
    let elsewhere = t.request("jeju-4", "c-4", day(2), 2);
    let mut head = apply_since(&*store, &t, 0).await;
    for id in [first, overlapping, later, elsewhere] {
        assert!(available(&*store, id).await, "{id} fits an empty calendar");
    }
    t.grant("jeju-3", first);
    head = apply_since(&*store, &t, head).await;
    assert!(
        available(&*store, first).await,
        "an approved request holds its rooms"
    );
    assert!(!available(&*store, overlapping).await, "night 2 is taken");
    assert!(available(&*store, later).await);
    assert!(
        available(&*store, elsewhere).await,
        "another lodging's calendar"
    );

    t.fail_payment("jeju-3", first);
    head = apply_since(&*store, &t, head).await;
    assert!(
        available(&*store, overlapping).await,
        "the rooms are free again"
    );
    assert!(
        !available(&*store, first).await,
        "a withdrawn request is not available"
    );

    t.grant("jeju-3", overlapping);
    let newcomer = t.request("jeju-3", "c-5", day(3), 1);
    let free_night = t.request("jeju-3", "c-6", day(4), 1);
    apply_since(&*store, &t, head).await;
    assert!(
        !available(&*store, newcomer).await,
        "night 3 is held by the approved stay"
    );
    assert!(available(&*store, free_night).await);
}

/// `available` moves only when a night turns full or free, for every pending request on that night,
/// however early it checked in (a stay of the most nights ending on it) and in any batch.
pub async fn availability_follows_full_nights(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let mut t = Timeline::new();
    t.register("busan-2", 2);
    let night = day(29);
    let longest = t.request("busan-2", "c-1", day(0), domain::stay::MAX_NIGHTS);
    let same_night = t.request("busan-2", "c-2", night, 1);
    let next_night = t.request("busan-2", "c-3", day(30), 1);
    let (a, b) = (
        t.request("busan-2", "c-4", night, 1),
        t.request("busan-2", "c-5", night, 1),
    );
    let mut head = apply_since(&*store, &t, 0).await;
    t.grant("busan-2", a);
    head = apply_since(&*store, &t, head).await;
    for id in [longest, same_night, next_night, b] {
        assert!(available(&*store, id).await, "one of two rooms is free");
    }
    t.grant("busan-2", b);
    head = apply_since(&*store, &t, head).await;
    for id in [longest, same_night] {
        assert!(!available(&*store, id).await, "{id}: night 29 is full");
    }
    assert!(available(&*store, next_night).await, "night 30 is free");
    t.fail_payment("busan-2", b);
    t.grant("busan-2", same_night);
    t.fail_payment("busan-2", a);
    apply_since(&*store, &t, head).await;
    assert!(
        available(&*store, longest).await,
        "night 29 turned free again within one batch"
    );
    let fresh = stores.fresh().await;
    fresh.apply(PROJECTOR, t.events()).await.expect("apply");
    assert_eq!(
        dump(&*fresh).await,
        dump(&*store).await,
        "one batch = steps"
    );
}

async fn all_reservations(
    store: &dyn ViewStore,
    filter: &ReservationFilter,
    limit: usize,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let listed = store
            .reservations(filter, &page)
            .await
            .expect("list reservations");
        assert!(listed.items.len() <= limit);
        ids.extend(listed.items.iter().map(|v| v.reservation_id));
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return ids,
        }
    }
}

async fn all_requests(store: &dyn ViewStore, filter: &RequestFilter, limit: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let listed = store.requests(filter, &page).await.expect("list requests");
        ids.extend(listed.items.iter().map(|v| v.reservation_id));
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return ids,
        }
    }
}

/// One reservation of [`crowd`] and how it ends.
#[derive(Debug, Clone)]
pub struct Booking {
    pub id: Uuid,
    pub lodging: &'static str,
    pub customer: String,
    pub status: &'static str,
    pub check_in: NaiveDate,
}

/// 30 reservations over two lodgings (and a third lodging without any) and three customers, a
/// quarter each requested, approved, confirmed and rejected; in request order.
pub fn crowd(t: &mut Timeline) -> Vec<Booking> {
    for lodging in ["L1", "L2", "L3"] {
        t.register(lodging, 50);
    }
    (0..30_u64)
        .map(|i| {
            let lodging = if i % 2 == 0 { "L1" } else { "L2" };
            let customer = format!("c-{}", i % 3);
            let check_in = day(i % 10);
            let id = t.request(lodging, &customer, check_in, 2);
            let status = match i % 4 {
                0 => "requested",
                1 => {
                    t.grant(lodging, id);
                    "approved"
                }
                2 => {
                    t.grant(lodging, id);
                    t.pay(id);
                    "confirmed"
                }
                _ => {
                    t.deny(lodging, id);
                    "rejected"
                }
            };
            Booking {
                id,
                lodging,
                customer,
                status,
                check_in,
            }
        })
        .collect()
}

/// The ids of `bookings` that match, newest first.
fn newest(bookings: &[Booking], matches: impl Fn(&Booking) -> bool) -> Vec<Uuid> {
    bookings
        .iter()
        .rev()
        .filter(|b| matches(b))
        .map(|b| b.id)
        .collect()
}

/// Filters select exactly the right documents; pages cover a list once, in order, also while
/// new documents arrive; bad cursors and filters are refused as the caller's error.
pub async fn filters_and_pages(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    let mut t = Timeline::new();
    let bookings = crowd(&mut t);
    let head = apply_since(&*store, &t, 0).await;
    check_reservation_filters(&*store, &bookings).await;
    check_reservation_lodging_and_dates(&*store, &bookings).await;
    check_request_filters(&*store, &bookings).await;
    check_lodging_pages(&*store).await;
    let newest_first = newest(&bookings, |_| true);
    let oldest_first: Vec<Uuid> = bookings.iter().map(|b| b.id).collect();
    pages_under_inserts(&*store, &mut t, head, &newest_first, &oldest_first).await;
    refuses_bad_input(&*store).await;
}

async fn check_reservation_filters(store: &dyn ViewStore, bookings: &[Booking]) {
    let everything = ReservationFilter::default();
    let all = newest(bookings, |_| true);
    assert_eq!(all_reservations(store, &everything, 4).await, all);
    let filter = ReservationFilter {
        customer_id: Some("c-1".into()),
        status: Some("confirmed".into()),
        ..ReservationFilter::default()
    };
    let expected = newest(bookings, |b| b.customer == "c-1" && b.status == "confirmed");
    assert!(!expected.is_empty());
    assert_eq!(all_reservations(store, &filter, 2).await, expected);
    let filter = ReservationFilter {
        lodging_ids: Some(vec!["L2".into()]),
        ..ReservationFilter::default()
    };
    let expected = newest(bookings, |b| b.lodging == "L2");
    assert_eq!(all_reservations(store, &filter, 5).await, expected);
    let filter = ReservationFilter {
        lodging_ids: Some(vec!["L1".into(), "L2".into()]),
        status: Some("requested".into()),
        ..ReservationFilter::default()
    };
    let expected = newest(bookings, |b| b.status == "requested");
    assert_eq!(all_reservations(store, &filter, 3).await, expected);
    let filter = ReservationFilter {
        lodging_ids: Some(vec![]),
        ..ReservationFilter::default()
    };
    assert!(all_reservations(store, &filter, 5).await.is_empty());
}

/// `lodging_id` (within an admin's `lodging_ids`), `status` alone, and the check-in range
/// (both ends inclusive), each alone and combined.
async fn check_reservation_lodging_and_dates(store: &dyn ViewStore, bookings: &[Booking]) {
    let cases: Vec<(ReservationFilter, Vec<Uuid>)> = vec![
        (
            ReservationFilter {
                lodging_id: Some("L1".into()),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| b.lodging == "L1"),
        ),
        (
            ReservationFilter {
                lodging_id: Some("L2".into()),
                customer_id: Some("c-2".into()),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| b.lodging == "L2" && b.customer == "c-2"),
        ),
        (
            ReservationFilter {
                lodging_ids: Some(vec!["L1".into(), "L2".into()]),
                lodging_id: Some("L2".into()),
                status: Some("approved".into()),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| b.lodging == "L2" && b.status == "approved"),
        ),
        (
            ReservationFilter {
                status: Some("rejected".into()),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| b.status == "rejected"),
        ),
        (
            ReservationFilter {
                check_in_from: Some(day(7)),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| b.check_in >= day(7)),
        ),
        (
            ReservationFilter {
                check_in_to: Some(day(2)),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| b.check_in <= day(2)),
        ),
        (
            ReservationFilter {
                check_in_from: Some(day(3)),
                check_in_to: Some(day(5)),
                lodging_id: Some("L1".into()),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| {
                b.lodging == "L1" && (day(3)..=day(5)).contains(&b.check_in)
            }),
        ),
        (
            ReservationFilter {
                check_in_from: Some(day(4)),
                check_in_to: Some(day(4)),
                customer_id: Some("c-1".into()),
                status: Some("requested".into()),
                ..ReservationFilter::default()
            },
            newest(bookings, |b| {
                b.check_in == day(4) && b.customer == "c-1" && b.status == "requested"
            }),
        ),
    ];
    for (filter, expected) in cases {
        assert!(!expected.is_empty(), "{filter:?} selects something");
        assert!(
            expected.len() < bookings.len(),
            "{filter:?} leaves something out"
        );
        assert_eq!(
            all_reservations(store, &filter, 2).await,
            expected,
            "{filter:?}"
        );
    }
    let outside = ReservationFilter {
        lodging_ids: Some(vec!["L1".into()]),
        lodging_id: Some("L2".into()),
        ..ReservationFilter::default()
    };
    assert!(all_reservations(store, &outside, 5).await.is_empty());
    let empty_range = ReservationFilter {
        check_in_from: Some(day(6)),
        check_in_to: Some(day(5)),
        ..ReservationFilter::default()
    };
    assert!(all_reservations(store, &empty_range, 5).await.is_empty());
    let no_lodging = ReservationFilter {
        lodging_id: Some("L3".into()),
        ..ReservationFilter::default()
    };
    assert!(all_reservations(store, &no_lodging, 5).await.is_empty());
}

async fn check_request_filters(store: &dyn ViewStore, bookings: &[Booking]) {
    let filter = RequestFilter {
        lodging_id: Some("L1".into()),
        status: Some("pending".into()),
        lodging_ids: None,
    };
    let mut expected = newest(bookings, |b| b.lodging == "L1" && b.status == "requested");
    expected.reverse();
    assert_eq!(all_requests(store, &filter, 2).await, expected);
    let filter = RequestFilter {
        lodging_ids: Some(vec!["L2".into()]),
        lodging_id: Some("L1".into()),
        status: None,
    };
    assert!(all_requests(store, &filter, 2).await.is_empty());
    let filter = RequestFilter {
        lodging_ids: Some(vec!["L2".into(), "L3".into()]),
        status: Some("rejected".into()),
        lodging_id: None,
    };
    let mut expected = newest(bookings, |b| b.lodging == "L2" && b.status == "rejected");
    expected.reverse();
    assert_eq!(all_requests(store, &filter, 2).await, expected);
    let oldest_first: Vec<Uuid> = bookings.iter().map(|b| b.id).collect();
    let everything = RequestFilter::default();
    assert_eq!(all_requests(store, &everything, 3).await, oldest_first);
}

async fn check_lodging_pages(store: &dyn ViewStore) {
    let first = store
        .lodgings(&LodgingFilter::default(), &PageRequest::first(2))
        .await
        .expect("lodgings");
    let cursor = first.next_cursor.clone();
    let rest = store
        .lodgings(&LodgingFilter::default(), &PageRequest { limit: 2, cursor })
        .await
        .expect("lodgings");
    let names: Vec<&str> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|l| l.lodging_id.as_str())
        .collect();
    assert_eq!(names, ["L1", "L2", "L3"]);
    assert_eq!(rest.next_cursor, None);
}

async fn pages_under_inserts(
    store: &dyn ViewStore,
    t: &mut Timeline,
    head: u64,
    newest_first: &[Uuid],
    oldest_first: &[Uuid],
) {
    let first = store
        .reservations(&ReservationFilter::default(), &PageRequest::first(5))
        .await
        .expect("list");
    let first_requests = store
        .requests(&RequestFilter::default(), &PageRequest::first(5))
        .await
        .expect("list");
    let added: Vec<Uuid> = (0..3).map(|i| t.request("L3", "c-9", day(i), 1)).collect();
    apply_since(store, t, head).await;

    let mut seen: Vec<Uuid> = first.items.iter().map(|v| v.reservation_id).collect();
    let mut page = PageRequest {
        limit: 5,
        cursor: first.next_cursor,
    };
    while page.cursor.is_some() {
        let listed = store
            .reservations(&ReservationFilter::default(), &page)
            .await
            .expect("list");
        seen.extend(listed.items.iter().map(|v| v.reservation_id));
        page.cursor = listed.next_cursor;
    }
    assert_eq!(
        seen, newest_first,
        "no duplicate, no miss while newer reservations arrive"
    );

    let mut seen: Vec<Uuid> = first_requests
        .items
        .iter()
        .map(|v| v.reservation_id)
        .collect();
    let mut page = PageRequest {
        limit: 5,
        cursor: first_requests.next_cursor,
    };
    while page.cursor.is_some() {
        let listed = store
            .requests(&RequestFilter::default(), &page)
            .await
            .expect("list");
        seen.extend(listed.items.iter().map(|v| v.reservation_id));
        page.cursor = listed.next_cursor;
    }
    let expected: Vec<Uuid> = oldest_first.iter().copied().chain(added).collect();
    assert_eq!(seen, expected, "oldest first: the new requests come last");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
}

async fn refuses_bad_input(store: &dyn ViewStore) {
    let bad = PageRequest {
        limit: 5,
        cursor: Some("not a cursor".into()),
    };
    let result = store
        .reservations(&ReservationFilter::default(), &bad)
        .await;
    assert!(matches!(result, Err(ViewError::BadCursor(_))), "{result:?}");
    let requests_page = store
        .requests(&RequestFilter::default(), &PageRequest::first(1))
        .await
        .expect("list");
    let foreign = PageRequest {
        limit: 5,
        cursor: requests_page.next_cursor,
    };
    let result = store
        .reservations(&ReservationFilter::default(), &foreign)
        .await;
    assert!(
        matches!(result, Err(ViewError::BadCursor(_))),
        "a requests cursor on reservations: {result:?}"
    );
    let page = PageRequest {
        limit: 5,
        cursor: Some("abc".into()),
    };
    let result = store.lodgings(&LodgingFilter::default(), &page).await;
    assert!(matches!(result, Err(ViewError::BadCursor(_))), "{result:?}");
    let filter = ReservationFilter {
        status: Some("lost".into()),
        ..ReservationFilter::default()
    };
    let result = store.reservations(&filter, &PageRequest::first(5)).await;
    assert!(
        matches!(result, Err(ViewError::InvalidFilter(_))),
        "{result:?}"
    );
    let filter = RequestFilter {
        status: Some("granted".into()),
        ..RequestFilter::default()
    };
    let result = store.requests(&filter, &PageRequest::first(5)).await;
    assert!(
        matches!(result, Err(ViewError::InvalidFilter(_))),
        "{result:?}"
    );
}

fn dead_letter(position: u64) -> DeadLetter {
    DeadLetter {
        position,
        event_id: Uuid::from_u128(u128::from(position)),
        stream: "reservation-x".into(),
        event_type: "ReservationTeleported".into(),
        error: "unknown event type ReservationTeleported".into(),
    }
}

/// A parked event is listed and counted, moves the checkpoint past it, and parking is idempotent.
pub async fn dead_letters_are_parked(stores: &dyn FreshStore) {
    let store = stores.fresh().await;
    assert_eq!(store.dead_letter_count().await.expect("count"), 0);
    store.ping().await.expect("ping");
    let (t, _) = history();
    store
        .apply(PROJECTOR, &t.events()[..4])
        .await
        .expect("apply");
    store
        .record_dead_letter(PROJECTOR, &dead_letter(5))
        .await
        .expect("park");
    store
        .record_dead_letter(PROJECTOR, &dead_letter(5))
        .await
        .expect("park again");
    assert_eq!(store.checkpoint(PROJECTOR).await.expect("checkpoint"), 5);
    store
        .apply(PROJECTOR, &t.events()[5..9])
        .await
        .expect("apply");
    store
        .record_dead_letter(PROJECTOR, &dead_letter(10))
        .await
        .expect("park");
    assert_eq!(store.checkpoint(PROJECTOR).await.expect("checkpoint"), 10);
    assert_eq!(store.dead_letter_count().await.expect("count"), 2);
    assert_eq!(
        store.dead_letters().await.expect("list"),
        vec![dead_letter(5), dead_letter(10)]
    );
    store
        .apply(PROJECTOR, &t.events()[10..])
        .await
        .expect("apply the rest");
    assert_eq!(
        store.checkpoint(PROJECTOR).await.expect("checkpoint"),
        t.head()
    );
}

/// The same history (its confirmed stays' hosts paid) applied one event at a time, in batches of 7
/// and all at once gives the same bytes (a rebuild equals live projection).
pub async fn rebuild_in_any_batch_size_is_identical(stores: &dyn FreshStore) {
    let (mut t, _) = history();
    let bookings = crowd(&mut t);
    super::payouts::pay_hosts(&mut t, &bookings);
    t.profile("c-0", "Ana", "010-1");
    t.profile("c-1", "Bo", "010-2");
    t.profile("c-0", "Ana Kim", "010-3");
    t.erase("c-1");
    let mut dumps = Vec::new();
    for size in [1, 7, t.events().len()] {
        let store = stores.fresh().await;
        for batch in t.events().chunks(size) {
            store.apply(PROJECTOR, batch).await.expect("apply");
        }
        assert_eq!(
            store.checkpoint(PROJECTOR).await.expect("checkpoint"),
            t.head()
        );
        dumps.push(dump(&*store).await);
    }
    assert!(
        dumps[0].lines().count() > 40,
        "the history builds many documents"
    );
    assert!(
        dumps[0].contains("\"gateway_ref\":\"po-"),
        "and payouts, some sent"
    );
    assert!(
        dumps[0].contains("\"name\":\"v1:sealed-Ana Kim\"") && dumps[0].contains("\"erased\":true"),
        "and customers, one erased"
    );
    assert_eq!(dumps[0], dumps[1], "batches of 1 and 7");
    assert_eq!(dumps[0], dumps[2], "batches of 1 and all");
}
