//! `GET /me` (My Page): the calling customer's profile and how many of their reservations are in
//! each status. The profile is read from the customer's own stream (`customer-{sub}`: a handful of
//! events) and opened with their data key at the moment of the request, so its plaintext is never
//! stored in a view; once the key is destroyed the fields read `null` and `erased` is `true`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::customer::{CustomerAggregate, CustomerEvent, SealedProfile};
use domain::{Aggregate, DomainEvent};
use http_edge::{Principal, Role};
use readmodel::{PageRequest, ReservationFilter};
use serde::Serialize;

use crate::document::await_views;
use crate::error::QueryError;
use crate::guests::customer_key;
use crate::params::Params;
use crate::state::QueryState;

/// A customer's profile events are few; read at most this many.
const PROFILE_READ_LIMIT: usize = 10_000;
/// Reservations counted per view read.
const COUNT_PAGE: usize = 500;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new().route("/me", get(me))
}

#[derive(Debug, Serialize)]
struct Me {
    customer_id: String,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    erased: bool,
    /// The caller's reservations per status (statuses with none left out).
    reservations: BTreeMap<&'static str, u64>,
}

async fn me(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Me>, QueryError> {
    if principal.role != Role::Customer {
        return Err(QueryError::Forbidden(
            "only a customer has a page of their own".into(),
        ));
    }
    await_views(&state, &params).await?;
    let customer_id = principal.sub.clone();
    let customer = customer(&state, &customer_id).await?;
    let opened = match (&customer.profile, customer.erased) {
        (Some(profile), false) => open(&state, &customer_id, profile).await?,
        _ => [None, None, None],
    };
    let [name, email, phone] = opened;
    Ok(Json(Me {
        erased: customer.erased,
        reservations: count_reservations(&state, &customer_id).await?,
        customer_id,
        name,
        email,
        phone,
    }))
}

/// The customer's state, folded from their stream.
async fn customer(
    state: &QueryState,
    customer_id: &str,
) -> Result<domain::customer::Customer, QueryError> {
    let stream = CustomerAggregate::stream_name(customer_id);
    let recorded = state
        .log
        .read_stream(&stream, 0, PROFILE_READ_LIMIT)
        .await?;
    let mut events = Vec::with_capacity(recorded.len());
    for event in &recorded {
        let decoded = CustomerEvent::decode(&event.event_type, event.schema_version, &event.data)
            .map_err(|e| QueryError::Internal(format!("{stream}: {e}")))?;
        events.push(decoded);
    }
    Ok(CustomerAggregate::fold(Default::default(), &events))
}

/// The profile's fields in plaintext; `None` for a field whose key is gone or that does not open.
async fn open(
    state: &QueryState,
    customer_id: &str,
    profile: &SealedProfile,
) -> Result<[Option<String>; 3], QueryError> {
    let Some(key) = customer_key(state, customer_id).await? else {
        return Ok([None, None, None]);
    };
    Ok(profile
        .fields()
        .map(|(field, sealed)| keys::open(&key, customer_id, field, sealed).ok()))
}

async fn count_reservations(
    state: &QueryState,
    customer_id: &str,
) -> Result<BTreeMap<&'static str, u64>, QueryError> {
    let filter = ReservationFilter {
        customer_id: Some(customer_id.to_string()),
        ..ReservationFilter::default()
    };
    let mut counts = BTreeMap::new();
    let mut page = PageRequest::first(COUNT_PAGE);
    loop {
        let read = state.views.reservations(&filter, &page).await?;
        for view in &read.items {
            *counts.entry(view.status.as_str()).or_insert(0) += 1;
        }
        match read.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return Ok(counts),
        }
    }
}
