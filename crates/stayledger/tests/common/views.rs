//! Every document of a view store, and the check that live views equal a rebuild from position 0.
//! Include with `#[path = "common/views.rs"] mod views;` (or through `mod common;`).
#![allow(dead_code)]

use std::sync::Arc;

use eventlog::EventLog;
use readmodel::{
    PageRequest, PayoutFilter, RequestFilter, ReservationFilter, SqliteViewStore, ViewStore,
};
use serde_json::Value;

/// All documents of a store: (ReservationList, ManagementList, lodging catalog, payouts), in list
/// order, and the customers view of every customer with a reservation, by customer id.
pub struct Documents {
    pub reservations: Vec<Value>,
    pub requests: Vec<Value>,
    pub lodgings: Vec<Value>,
    pub payouts: Vec<Value>,
    pub customers: Vec<Value>,
}

const PAGE: usize = 100;

fn json<T: serde::Serialize>(items: &[T]) -> impl Iterator<Item = Value> + '_ {
    items.iter().map(|d| serde_json::to_value(d).expect("json"))
}

pub async fn all_documents(store: &dyn ViewStore) -> Documents {
    let mut reservations = Vec::new();
    let mut page = PageRequest::first(PAGE);
    loop {
        let got = store
            .reservations(&ReservationFilter::default(), &page)
            .await
            .expect("list reservations");
        reservations.extend(json(&got.items));
        let Some(cursor) = got.next_cursor else { break };
        page = PageRequest {
            limit: PAGE,
            cursor: Some(cursor),
        };
    }
    let mut requests = Vec::new();
    let mut page = PageRequest::first(PAGE);
    loop {
        let got = store
            .requests(&RequestFilter::default(), &page)
            .await
            .expect("list requests");
        requests.extend(json(&got.items));
        let Some(cursor) = got.next_cursor else { break };
        page = PageRequest {
            limit: PAGE,
            cursor: Some(cursor),
        };
    }
    let lodgings = store
        .lodgings(
            &readmodel::LodgingFilter::default(),
            &PageRequest::first(500),
        )
        .await
        .expect("lodgings");
    let lodgings = json(&lodgings.items).collect();
    let mut payouts = Vec::new();
    let mut page = PageRequest::first(PAGE);
    loop {
        let got = store
            .payouts(&PayoutFilter::default(), &page)
            .await
            .expect("list payouts");
        payouts.extend(json(&got.items));
        let Some(cursor) = got.next_cursor else { break };
        page = PageRequest {
            limit: PAGE,
            cursor: Some(cursor),
        };
    }
    let mut customer_ids: Vec<String> = reservations
        .iter()
        .filter_map(|r| r["customer_id"].as_str().map(str::to_string))
        .collect();
    customer_ids.sort();
    customer_ids.dedup();
    let mut customers = Vec::new();
    for ids in customer_ids.chunks(PAGE) {
        let got = store.customers(ids).await.expect("customers");
        customers.extend(json(&got));
    }
    customers.sort_by(|a, b| a["customer_id"].as_str().cmp(&b["customer_id"].as_str()));
    Documents {
        reservations,
        requests,
        lodgings,
        payouts,
        customers,
    }
}

/// Rebuild the views from position 0 of `log` into a fresh store and assert they equal `live`,
/// document for document. Returns the live documents.
pub async fn assert_equal_to_rebuild(log: Arc<dyn EventLog>, live: &dyn ViewStore) -> Documents {
    let dir = tempfile::tempdir().expect("dir");
    let fresh: Arc<dyn ViewStore> =
        Arc::new(SqliteViewStore::open(dir.path().join("rebuilt.db")).expect("open"));
    let head = log.head_position().await.expect("head");
    let rebuilt_to = projector::rebuild(log, Arc::clone(&fresh), |_, _| {})
        .await
        .expect("rebuild");
    assert_eq!(rebuilt_to, head, "the rebuild reached the log head");
    let live = all_documents(live).await;
    let rebuilt = all_documents(fresh.as_ref()).await;
    assert_eq!(
        live.reservations, rebuilt.reservations,
        "ReservationList equals its rebuild"
    );
    assert_eq!(
        live.requests, rebuilt.requests,
        "ManagementList equals its rebuild"
    );
    assert_eq!(
        live.lodgings, rebuilt.lodgings,
        "catalog equals its rebuild"
    );
    assert_eq!(live.payouts, rebuilt.payouts, "payouts equal their rebuild");
    assert_eq!(
        live.customers, rebuilt.customers,
        "customers equal their rebuild"
    );
    live
}
