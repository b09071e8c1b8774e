//! Rooms free per night, as users search them: `GET /lodgings/{id}/availability` (booked, held and
//! free for each night of a range: the study cafe's seat status, rent-car's "available / rented"),
//! `status_today` on every catalog document, and the catalog's availability filter
//! (`available_from`, `available_to`, `rooms`).
//!
//! "Today" is the lodging's own date (its time zone), read from the wall clock at each request: the
//! views stay free of the clock. `held` counts rooms held by requests before they are decided, which
//! no approval mode does yet (0 until `pay_first`).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{NaiveDate, TimeDelta, Utc};
use http_edge::Principal;
use readmodel::{ListingStatus, LodgingView};
use serde::Serialize;

use crate::document::await_views;
use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;

/// The most nights one availability answer (or filter) covers.
pub(crate) const MAX_NIGHTS: i64 = 366;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Night {
    date: NaiveDate,
    booked: u32,
    held: u32,
    free: u32,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Availability {
    lodging_id: String,
    rooms: u32,
    timezone: String,
    nights: Vec<Night>,
}

/// A range of nights `from..to` (to exclusive) from two date parameters, at most [`MAX_NIGHTS`].
pub(crate) fn night_range(
    params: &Params,
    (from_name, to_name): (&str, &str),
) -> Result<Option<(NaiveDate, NaiveDate)>, QueryError> {
    let (from, to) = (params.date(from_name)?, params.date(to_name)?);
    let (from, to) = match (from, to) {
        (None, None) => return Ok(None),
        (Some(from), Some(to)) => (from, to),
        (None, Some(_)) => return Err(QueryError::parameter(from_name, "is required with it")),
        (Some(_), None) => return Err(QueryError::parameter(to_name, "is required with it")),
    };
    let nights = (to - from).num_days();
    if nights < 1 {
        return Err(QueryError::parameter(
            to_name,
            format!("must be after {from_name}"),
        ));
    }
    if nights > MAX_NIGHTS {
        return Err(QueryError::parameter(
            to_name,
            format!("at most {MAX_NIGHTS} nights after {from_name}"),
        ));
    }
    Ok(Some((from, to)))
}

/// Rooms booked and held on each night of `from..to` (absent where the calendar holds nothing).
async fn booked(
    state: &QueryState,
    lodging_id: &str,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<HashMap<NaiveDate, (u32, u32)>, QueryError> {
    let nights = state.views.calendar(lodging_id, from, to).await?;
    Ok(nights
        .into_iter()
        .map(|n| (n.night, (n.booked, n.held)))
        .collect())
}

/// `GET /lodgings/{id}/availability?from=&to=`.
pub(crate) async fn availability(
    State(state): State<QueryState>,
    _principal: Principal,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<Availability>, QueryError> {
    let range = night_range(&params, ("from", "to"))?
        .ok_or_else(|| QueryError::parameter("from", "from and to are required"))?;
    await_views(&state, &params).await?;
    let lodging = state
        .views
        .lodging(&id)
        .await?
        .ok_or_else(|| QueryError::NotFound(format!("no lodging {id}")))?;
    let booked = booked(&state, &id, range).await?;
    let nights = range
        .0
        .iter_days()
        .take_while(|night| *night < range.1)
        .map(|date| {
            let (booked, held) = booked.get(&date).copied().unwrap_or((0, 0));
            Night {
                date,
                booked,
                held,
                free: lodging.rooms.saturating_sub(booked.saturating_add(held)),
            }
        })
        .collect();
    Ok(Json(Availability {
        lodging_id: lodging.lodging_id,
        rooms: lodging.rooms,
        timezone: lodging.timezone.name().to_string(),
        nights,
    }))
}

/// Whether `rooms` rooms are free on every night of `range` at `lodging`.
pub(crate) async fn has_free(
    state: &QueryState,
    lodging: &LodgingView,
    range: (NaiveDate, NaiveDate),
    rooms: u32,
) -> Result<bool, QueryError> {
    let booked = booked(state, &lodging.lodging_id, range).await?;
    Ok(booked.values().all(|(booked, held)| {
        u64::from(*booked) + u64::from(*held) + u64::from(rooms) <= u64::from(lodging.rooms)
    }))
}

/// `available` (a room is free tonight where the lodging is), `fully_booked`, or `closed` (not
/// taking requests: closed, or not yet or never approved).
pub(crate) async fn status_today(
    state: &QueryState,
    lodging: &LodgingView,
) -> Result<&'static str, QueryError> {
    if lodging.status != ListingStatus::Active {
        return Ok("closed");
    }
    let today = domain::local_date(Utc::now(), lodging.timezone);
    let tonight = (today, today + TimeDelta::days(1));
    Ok(if has_free(state, lodging, tonight, 1).await? {
        "available"
    } else {
        "fully_booked"
    })
}
