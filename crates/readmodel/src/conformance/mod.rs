//! The one conformance suite every [`ViewStore`] adapter passes (run from
//! `crates/readmodel/tests/conformance.rs` against SQLite, and against MongoDB when
//! `STAYLEDGER_MONGODB_URL` is set). Each check takes a source of fresh, empty stores.
//!
//! This is test support: a failed check panics with what differed.

mod catalog;
mod customers;
mod flows;
pub mod inbox;
mod lists;
pub mod pay_first;
pub mod payouts;
pub mod server;
pub mod timeline;

use std::sync::Arc;

use async_trait::async_trait;

pub use catalog::{availability_counts_rooms, catalog_lifecycle_and_filters};
pub use customers::customers_keep_sealed_contacts_until_erased;
pub use flows::{
    flow_statuses, history, replay_is_a_no_op, unprocessable_event_writes_nothing, Cast,
};
pub use lists::{
    availability_follows_full_nights, availability_follows_the_calendar, crowd,
    dead_letters_are_parked, filters_and_pages, rebuild_in_any_batch_size_is_identical,
};
pub use pay_first::pay_first_requests_reach_the_desk_once_paid;
pub use payouts::payouts_follow_their_events;

use crate::{PageRequest, PayoutFilter, RequestFilter, ReservationFilter, ViewStore};

/// The projector id the suite checkpoints under.
pub const PROJECTOR: &str = "views";

/// Hands out fresh, empty stores of the adapter under test.
#[async_trait]
pub trait FreshStore: Send + Sync {
    async fn fresh(&self) -> Arc<dyn ViewStore>;
}

/// Run every check.
pub async fn run_all(stores: &dyn FreshStore) {
    flow_statuses(stores).await;
    replay_is_a_no_op(stores).await;
    unprocessable_event_writes_nothing(stores).await;
    availability_follows_the_calendar(stores).await;
    availability_follows_full_nights(stores).await;
    filters_and_pages(stores).await;
    catalog_lifecycle_and_filters(stores).await;
    availability_counts_rooms(stores).await;
    pay_first_requests_reach_the_desk_once_paid(stores).await;
    payouts_follow_their_events(stores).await;
    customers_keep_sealed_contacts_until_erased(stores).await;
    dead_letters_are_parked(stores).await;
    rebuild_in_any_batch_size_is_identical(stores).await;
}

/// Every document of `store` (reservations, requests, lodgings, payouts, and the customers of the
/// reservations), serialized, read through the port's pages: two stores with equal dumps serve the
/// same bytes.
pub async fn dump(store: &dyn ViewStore) -> String {
    let mut out = String::new();
    let mut page = PageRequest::first(7);
    let mut customer_ids = std::collections::BTreeSet::new();
    loop {
        let listed = store
            .reservations(&ReservationFilter::default(), &page)
            .await
            .expect("list reservations");
        for view in &listed.items {
            customer_ids.insert(view.customer_id.clone());
            out.push_str(&serde_json::to_string(view).expect("serialize view"));
            out.push('\n');
        }
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    let mut page = PageRequest::first(7);
    loop {
        let listed = store
            .requests(&RequestFilter::default(), &page)
            .await
            .expect("list requests");
        for view in &listed.items {
            out.push_str(&serde_json::to_string(view).expect("serialize view"));
            out.push('\n');
        }
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    let lodgings = store
        .lodgings(&crate::LodgingFilter::default(), &PageRequest::first(1000))
        .await
        .expect("list lodgings");
    for view in &lodgings.items {
        out.push_str(&serde_json::to_string(view).expect("serialize view"));
        out.push('\n');
    }
    let mut page = PageRequest::first(7);
    loop {
        let listed = store
            .payouts(&PayoutFilter::default(), &page)
            .await
            .expect("list payouts");
        for view in &listed.items {
            out.push_str(&serde_json::to_string(view).expect("serialize view"));
            out.push('\n');
        }
        match listed.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => break,
        }
    }
    let customer_ids: Vec<String> = customer_ids.into_iter().collect();
    let mut customers = store.customers(&customer_ids).await.expect("customers");
    customers.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    for view in &customers {
        out.push_str(&serde_json::to_string(view).expect("serialize view"));
        out.push('\n');
    }
    out
}
