//! The guest on the lists: `guest_name` on ReservationList, `guest_name` and `guest_phone` on
//! ManagementList. The customers view keeps a customer's contact details sealed, as the log has
//! them; they are opened here, with the customer's data key, at each read. So no view holds
//! plaintext, and once a customer is erased (key destroyed first, then the fields scrubbed) their
//! fields read `null` at once, before the projector has seen the erasure.
//!
//! A document's ETag covers its guest: it is the later of the document's and the customer's
//! positions, so a new profile is never answered with a 304.

use std::collections::{BTreeSet, HashMap};

use keys::{DataKey, KeyState, KeyStoreError};
use readmodel::{CustomerView, ManagementView, Page, ReservationView};
use serde::Serialize;

use crate::error::QueryError;
use crate::state::QueryState;

/// A ReservationList document with its guest's name.
#[derive(Debug, Serialize)]
pub(crate) struct ReservationRow {
    #[serde(flatten)]
    pub view: ReservationView,
    pub guest_name: Option<String>,
}

/// A ManagementList document with its guest's name and phone.
#[derive(Debug, Serialize)]
pub(crate) struct RequestRow {
    #[serde(flatten)]
    pub view: ManagementView,
    pub guest_name: Option<String>,
    pub guest_phone: Option<String>,
}

/// A customer's contact details, opened.
#[derive(Debug, Default)]
struct Guest {
    name: Option<String>,
    phone: Option<String>,
    position: u64,
}

/// The data key of `customer_id`: `None` once destroyed (or never made).
pub(crate) async fn customer_key(
    state: &QueryState,
    customer_id: &str,
) -> Result<Option<DataKey>, QueryError> {
    let Some(keys) = state.keys.as_ref() else {
        return Err(QueryError::Internal(
            "no key store configured: profiles cannot be read".into(),
        ));
    };
    match keys.key(customer_id).await {
        Ok(KeyState::Active(key)) => Ok(Some(key)),
        Ok(KeyState::Destroyed | KeyState::Missing) => Ok(None),
        Err(KeyStoreError::Unavailable(cause)) => Err(QueryError::Log(
            eventlog::LogError::Unavailable(format!("key store: {cause}")),
        )),
        Err(error) => Err(QueryError::Internal(format!("key store: {error}"))),
    }
}

/// Open the sealed fields of `customer` (a field that does not open reads `None`).
async fn open(state: &QueryState, customer: &CustomerView) -> Result<Guest, QueryError> {
    let mut guest = Guest {
        position: customer.position,
        ..Guest::default()
    };
    if customer.erased || (customer.name.is_none() && customer.phone.is_none()) {
        return Ok(guest);
    }
    let Some(key) = customer_key(state, &customer.customer_id).await? else {
        return Ok(guest);
    };
    let id = &customer.customer_id;
    let field = |name: &str, sealed: &Option<String>| {
        sealed
            .as_deref()
            .and_then(|sealed| keys::open(&key, id, name, sealed).ok())
    };
    guest.name = field("name", &customer.name);
    guest.phone = field("phone", &customer.phone);
    Ok(guest)
}

/// The opened contact details of the customers `customer_ids` (those without any are absent).
async fn guests<'a>(
    state: &QueryState,
    customer_ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Guest>, QueryError> {
    let ids: BTreeSet<&str> = customer_ids.collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
    let mut opened = HashMap::with_capacity(ids.len());
    for customer in state.views.customers(&ids).await? {
        let guest = open(state, &customer).await?;
        opened.insert(customer.customer_id, guest);
    }
    Ok(opened)
}

/// A page of ReservationList documents with their guests' names.
pub(crate) async fn reservation_page(
    state: &QueryState,
    page: Page<ReservationView>,
) -> Result<Page<ReservationRow>, QueryError> {
    let guests = guests(state, page.items.iter().map(|v| v.customer_id.as_str())).await?;
    let items = page
        .items
        .into_iter()
        .map(|view| ReservationRow {
            guest_name: guests.get(&view.customer_id).and_then(|g| g.name.clone()),
            view,
        })
        .collect();
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// One ReservationList document with its guest's name (from `customer`, its customer's contact
/// details as the views keep them), and the position its ETag stands for.
pub(crate) async fn reservation_row(
    state: &QueryState,
    view: ReservationView,
    customer: Option<CustomerView>,
) -> Result<(ReservationRow, u64), QueryError> {
    let guest = match customer {
        Some(customer) => open(state, &customer).await?,
        None => Guest::default(),
    };
    let position = view.position.max(guest.position);
    Ok((
        ReservationRow {
            view,
            guest_name: guest.name,
        },
        position,
    ))
}

/// A page of ManagementList documents with their guests' names and phones.
pub(crate) async fn request_page(
    state: &QueryState,
    page: Page<ManagementView>,
) -> Result<Page<RequestRow>, QueryError> {
    let guests = guests(state, page.items.iter().map(|v| v.customer_id.as_str())).await?;
    let items = page
        .items
        .into_iter()
        .map(|view| {
            let guest = guests.get(&view.customer_id);
            RequestRow {
                guest_name: guest.and_then(|g| g.name.clone()),
                guest_phone: guest.and_then(|g| g.phone.clone()),
                view,
            }
        })
        .collect();
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}
