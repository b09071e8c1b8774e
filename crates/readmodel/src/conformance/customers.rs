//! Checks of the customers view (the sealed contact details the query side opens for
//! `guest_name` / `guest_phone`): a profile is kept as the log has it (sealed), a later one
//! replaces it, `CustomerErased` scrubs it for good (and marks a customer with no profile erased);
//! only the customers asked for come back (and, read by id together, only the reservations); an event applied twice changes nothing; one batch or
//! event by event, the same documents.

use super::timeline::{day, Timeline};
use super::{FreshStore, PROJECTOR};
use uuid::Uuid;

use crate::{CustomerView, ReservationView, ViewStore};

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(ToString::to_string).collect()
}

async fn customers(store: &dyn ViewStore, names: &[&str]) -> Vec<CustomerView> {
    let mut found = store.customers(&ids(names)).await.expect("read customers");
    found.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    found
}

fn view(customer_id: &str, sealed: Option<(&str, &str)>, position: u64) -> CustomerView {
    CustomerView {
        customer_id: customer_id.to_string(),
        name: sealed.map(|(name, _)| format!("v1:sealed-{name}")),
        phone: sealed.map(|(_, phone)| format!("v1:sealed-{phone}")),
        erased: sealed.is_none(),
        position,
    }
}

/// A customer's profile, replaced, then erased; another customer erased without a profile.
pub async fn customers_keep_sealed_contacts_until_erased(stores: &dyn FreshStore) {
    let mut t = Timeline::new();
    t.register("L1", 2);
    t.profile("ana", "Ana", "010-1");
    let bo = t.profile("bo", "Bo", "010-2");
    let ana = t.profile("ana", "Ana Kim", "010-3");
    let anas = t.request("L1", "ana", day(1), 2);
    let dans = t.request("L1", "dan", day(1), 1);
    let store = stores.fresh().await;
    store
        .apply(PROJECTOR, t.events())
        .await
        .expect("apply profiles");
    assert_eq!(
        customers(&*store, &["ana", "bo", "nobody"]).await,
        vec![
            view("ana", Some(("Ana Kim", "010-3")), ana),
            view("bo", Some(("Bo", "010-2")), bo),
        ],
        "the latest profile, sealed as recorded; no document for a customer without one"
    );
    assert!(customers(&*store, &[]).await.is_empty());
    let (reservation, guest) = store
        .reservation_with_guest(anas)
        .await
        .expect("read")
        .expect("ana's reservation");
    assert_eq!(reservation.customer_id, "ana");
    let mut both = store
        .reservations_by_id(&[dans, Uuid::new_v4(), anas])
        .await
        .expect("read by id");
    both.sort_by_key(|view| view.position);
    let one_by_one = [anas, dans].map(|id| store.reservation(id));
    let mut one_by_one: Vec<ReservationView> = futures::future::try_join_all(one_by_one)
        .await
        .expect("read")
        .into_iter()
        .flatten()
        .collect();
    one_by_one.sort_by_key(|view| view.position);
    assert_eq!(
        both, one_by_one,
        "those asked for that exist, read together"
    );
    assert_eq!(both.len(), 2);
    assert!(store
        .reservations_by_id(&[])
        .await
        .expect("read none")
        .is_empty());
    assert_eq!(guest, Some(view("ana", Some(("Ana Kim", "010-3")), ana)));
    let (_, guest) = store
        .reservation_with_guest(dans)
        .await
        .expect("read")
        .expect("dan's reservation");
    assert_eq!(guest, None, "dan has no profile");
    assert!(store
        .reservation_with_guest(uuid::Uuid::from_u128(404))
        .await
        .expect("read")
        .is_none());

    let before = t.head();
    let erased = t.erase("ana");
    let never = t.erase("cy");
    let batch = &t.events()[usize::try_from(before).unwrap_or(0)..];
    store.apply(PROJECTOR, batch).await.expect("apply erasures");
    store.apply(PROJECTOR, batch).await.expect("apply again");
    let scrubbed = customers(&*store, &["ana", "bo", "cy"]).await;
    assert_eq!(
        scrubbed,
        vec![
            view("ana", None, erased),
            view("bo", Some(("Bo", "010-2")), bo),
            view("cy", None, never),
        ],
        "erasure scrubs the sealed fields; a replay changes nothing"
    );
    let text = serde_json::to_string(&scrubbed[0]).expect("json");
    assert!(!text.contains("sealed-Ana"), "{text}");

    let one_by_one = stores.fresh().await;
    for event in t.events() {
        one_by_one
            .apply(PROJECTOR, std::slice::from_ref(event))
            .await
            .expect("apply one");
    }
    assert_eq!(
        customers(&*one_by_one, &["ana", "bo", "cy"]).await,
        scrubbed,
        "a rebuild event by event builds the same documents"
    );
}
