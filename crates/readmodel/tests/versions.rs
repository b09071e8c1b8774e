//! Every version of a ReservationList document, derived from the last one known
//! (`projection::reservation_versions`, what the live streams send), is the document a projection
//! event by event into a real store has after that event: for every point a follower may start
//! from, in any batch size, knowing every document then or none.

use std::collections::HashMap;

use domain::reservation::ReservationEvent;
use readmodel::conformance::timeline::{day, Timeline};
use readmodel::conformance::{crowd, history, pay_first, payouts, PROJECTOR};
use readmodel::projection::{reservation_of, reservation_versions};
use readmodel::{AnyEvent, LodgingView, ReservationView, SqliteViewStore, ViewEvent, ViewStore};
use uuid::Uuid;

/// Every kind of change a reservation's document goes through: the flows' outcomes, a crowd with
/// payouts in every status, `pay_first` stays held, paid, granted, refused and completed, and
/// customers' contact details (events that change no reservation) among them.
fn everything() -> Timeline {
    let (mut t, cast) = history();
    t.profile("c-1", "Mina Kim", "+82-10-0000-0001");
    let bookings = crowd(&mut t);
    payouts::pay_hosts(&mut t, &bookings);
    pay_first::hotel(&mut t);
    let kept = t.request_rooms("hotel", "guest-1", (day(20), 2), 1);
    pay_first::hold(&mut t, kept);
    pay_first::pay(&mut t, kept);
    t.grant("hotel", kept);
    let refused = t.request_rooms("hotel", "guest-2", (day(30), 1), 1);
    pay_first::hold(&mut t, refused);
    pay_first::pay(&mut t, refused);
    t.deny("hotel", refused);
    t.erase("c-1");
    t.reservation_event(
        cast.confirmed,
        ReservationEvent::ReservationCompleted {
            completed_by: "timer".to_string(),
        },
    );
    t
}

/// What a projection event by event into SQLite makes: each version (the document after an event
/// that changed it), and the documents as they stand before each event.
struct Reference {
    versions: Vec<ReservationView>,
    before: Vec<HashMap<Uuid, ReservationView>>,
    lodgings: HashMap<String, LodgingView>,
}

async fn reference(events: &[ViewEvent]) -> Reference {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteViewStore::open(dir.path().join("views.db")).expect("open");
    let mut current = HashMap::new();
    let mut before = Vec::new();
    let mut versions = Vec::new();
    for event in events {
        before.push(current.clone());
        store
            .apply(PROJECTOR, std::slice::from_ref(event))
            .await
            .expect("apply");
        let Some(id) = reservation_of(&event.event) else {
            continue;
        };
        let Some(view) = store.reservation(id).await.expect("read") else {
            continue;
        };
        if view.position == event.position {
            current.insert(id, view.clone());
            versions.push(view);
        }
    }
    before.push(current);
    let mut lodgings = HashMap::new();
    for event in events {
        if let AnyEvent::Lodging { lodging_id, .. } = &event.event {
            if let Some(lodging) = store.lodging(lodging_id).await.expect("read") {
                lodgings.insert(lodging_id.clone(), lodging);
            }
        }
    }
    Reference {
        versions,
        before,
        lodgings,
    }
}

/// The versions derived for `events[from..]` in batches of `batch`, starting from `known`.
fn derived(
    events: &[ViewEvent],
    from: usize,
    batch: usize,
    mut known: HashMap<Uuid, ReservationView>,
    lodgings: &HashMap<String, LodgingView>,
) -> Vec<ReservationView> {
    events[from..]
        .chunks(batch)
        .flat_map(|chunk| reservation_versions(&mut known, lodgings, chunk).expect("derive"))
        .collect()
}

/// Where each reservation's document was created (its `ReservationRequested`).
fn created_at(events: &[ViewEvent]) -> HashMap<Uuid, usize> {
    events
        .iter()
        .enumerate()
        .filter_map(|(index, event)| match &event.event {
            AnyEvent::Reservation {
                reservation_id,
                event: ReservationEvent::ReservationRequested(_),
            } => Some((*reservation_id, index)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn derived_versions_are_the_documents_of_a_projection_event_by_event() {
    let t = everything();
    let events = t.events();
    let reference = reference(events).await;
    assert!(
        reference.versions.len() > 150,
        "a rich history: {} versions",
        reference.versions.len()
    );
    let created = created_at(events);
    for from in 0..=events.len() {
        let after =
            |view: &&ReservationView| from == 0 || view.position > events[from - 1].position;
        // Knowing every document at `from`: every later version, in log order.
        let expected: Vec<ReservationView> =
            reference.versions.iter().filter(after).cloned().collect();
        // Knowing none: the versions of the reservations created from `from` on.
        let fresh: Vec<ReservationView> = expected
            .iter()
            .filter(|view| created.get(&view.reservation_id) >= Some(&from))
            .cloned()
            .collect();
        for batch in [1, 3, 16, 512] {
            let known = reference.before[from].clone();
            let got = derived(events, from, batch, known, &reference.lodgings);
            assert_eq!(got, expected, "from event {from}, batches of {batch}");
            let got = derived(events, from, batch, HashMap::new(), &reference.lodgings);
            assert_eq!(
                got, fresh,
                "from event {from} knowing none, batches of {batch}"
            );
        }
    }
}

#[tokio::test]
async fn without_its_lodging_a_new_document_has_no_lodging_name() {
    let t = everything();
    let events = t.events();
    let reference = reference(events).await;
    let got = derived(events, 0, 64, HashMap::new(), &HashMap::new());
    assert_eq!(got.len(), reference.versions.len());
    assert!(got.iter().all(|view| view.lodging_name.is_none()));
    assert!(
        reference
            .versions
            .iter()
            .any(|view| view.lodging_name.is_some()),
        "the store names them"
    );
}
