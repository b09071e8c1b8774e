//! The audit routes (auditors only), read straight from the event log: a reservation's whole
//! history, its state as of a position or an instant, the global log and single streams page by
//! page, and the tamper check (hash chains, the keyed MAC chain, the signed head, an auditor's anchor)
//! with the signed head to keep as an anchor (docs/decisions/0019).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::events::{self, Decoded, Payload, SagaPayloads};
use domain::reservation::{Reservation, ReservationAggregate};
use domain::{Aggregate, StreamId};
use eventlog::{Anchor, EventLog, EventLogExt, RecordedEvent, VerifyReport};
use http_edge::{Principal, Role};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::document::document;
use crate::error::QueryError;
use crate::history::{reservation_history, whole_stream};
use crate::params::Params;
use crate::state::QueryState;

pub(crate) fn routes() -> Router<QueryState> {
    Router::new()
        .route("/audit/reservations/{id}/history", get(history))
        .route("/audit/reservations/{id}/state", get(state_as_of))
        .route("/audit/events", get(events))
        .route("/audit/streams/{stream}", get(stream))
        .route("/audit/verify", get(verify))
        .route("/audit/anchor", get(anchor))
}

fn auditor(principal: &Principal) -> Result<(), QueryError> {
    if principal.role == Role::Auditor {
        Ok(())
    } else {
        Err(QueryError::Forbidden(
            "only auditors read the audit log".into(),
        ))
    }
}

/// A reservation id from the path; anything else names no reservation.
fn reservation_id(raw: &str) -> Result<Uuid, QueryError> {
    Uuid::parse_str(raw).map_err(|_| QueryError::NotFound(format!("no reservation {raw}")))
}

/// The reservation's own stream; 404 if it has none.
async fn reservation_stream(
    log: &dyn EventLog,
    id: Uuid,
) -> Result<Vec<RecordedEvent>, QueryError> {
    let events = whole_stream(log, &StreamId::Reservation(id).to_string()).await?;
    if events.is_empty() {
        return Err(QueryError::NotFound(format!("no reservation {id}")));
    }
    Ok(events)
}

async fn history(
    State(state): State<QueryState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Json<Value>, QueryError> {
    auditor(&principal)?;
    let id = reservation_id(&raw)?;
    let events = reservation_history(state.log.as_ref(), id)
        .await?
        .ok_or_else(|| QueryError::NotFound(format!("no reservation {id}")))?;
    Ok(Json(json!({"reservation_id": id, "events": events})))
}

/// The point in the log a state is wanted as of: up to a position, an instant, or both (the
/// earlier of the two wins).
fn cutoff(params: &Params) -> Result<(Option<u64>, Option<DateTime<Utc>>), QueryError> {
    let position = params.number("as_of_position", 0, u64::MAX)?;
    let time = params.timestamp("as_of_time")?;
    Ok((position, time))
}

async fn state_as_of(
    State(state): State<QueryState>,
    principal: Principal,
    Path(raw): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    auditor(&principal)?;
    let id = reservation_id(&raw)?;
    let (position, time) = cutoff(&params)?;
    let recorded = reservation_stream(state.log.as_ref(), id).await?;
    let upto: Vec<&RecordedEvent> = recorded
        .iter()
        .take_while(|e| {
            position.is_none_or(|p| e.position <= p) && time.is_none_or(|t| e.recorded_at <= t)
        })
        .collect();
    let Some(last) = upto.last() else {
        return Err(QueryError::NotFound(format!(
            "reservation {id} did not exist yet at that point"
        )));
    };
    let folded = fold(&upto)?;
    let body = json!({
        "reservation_id": id,
        "status": folded.status.as_str(),
        "version": last.version,
        "position": last.position,
        "recorded_at": last.recorded_at,
        "events_applied": upto.len(),
        "state": folded,
    });
    Ok(document(&headers, last.position, &body))
}

/// The Reservation state after `events`.
fn fold(events: &[&RecordedEvent]) -> Result<Reservation, QueryError> {
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        let failed = |e: &dyn std::fmt::Display| {
            QueryError::Internal(format!("{} v{}: {e}", event.stream, event.version))
        };
        let decoded_event = events::decode(
            &event.stream,
            &event.event_type,
            event.schema_version,
            Payload::Parsed(&event.data),
            SagaPayloads::Skip,
        )
        .map_err(|e| failed(&e))?;
        match decoded_event {
            Decoded::Reservation { event, .. } => decoded.push(event),
            _ => return Err(failed(&"not a reservation's event")),
        }
    }
    Ok(ReservationAggregate::fold(Reservation::default(), &decoded))
}

/// A page of events and the cursor of the next one (the next position or version, as text).
fn page(
    items: Vec<RecordedEvent>,
    limit: usize,
    next: impl Fn(&RecordedEvent) -> u64,
) -> Json<Value> {
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|e| next(e).to_string()))
        .flatten();
    Json(json!({"items": items, "next_cursor": next_cursor}))
}

/// Where a page starts: the `cursor` if given, else the named parameter, else 0.
fn start(params: &Params, name: &str) -> Result<u64, QueryError> {
    match params.cursor()? {
        Some(cursor) => cursor
            .parse()
            .map_err(|_| QueryError::parameter("cursor", "is not a cursor of this list")),
        None => Ok(params.number(name, 0, u64::MAX)?.unwrap_or(0)),
    }
}

async fn events(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<Value>, QueryError> {
    auditor(&principal)?;
    let limit = usize::try_from(params.limit()?).unwrap_or(usize::MAX);
    let from = start(&params, "from_position")?;
    let items = state.log.read_all_parsed(from, limit).await?;
    Ok(page(items, limit, |e| e.position + 1))
}

async fn stream(
    State(state): State<QueryState>,
    principal: Principal,
    Path(stream): Path<String>,
    params: Params,
) -> Result<Json<Value>, QueryError> {
    auditor(&principal)?;
    let limit = usize::try_from(params.limit()?).unwrap_or(usize::MAX);
    let from = start(&params, "from_version")?;
    if state.log.stream_version(&stream).await?.is_none() {
        return Err(QueryError::NotFound(format!("no stream {stream}")));
    }
    let items = state.log.read_stream(&stream, from, limit).await?;
    Ok(page(items, limit, |e| e.version + 1))
}

async fn verify(
    State(state): State<QueryState>,
    principal: Principal,
    params: Params,
) -> Result<Json<VerifyReport>, QueryError> {
    auditor(&principal)?;
    let anchor = given_anchor(&params)?;
    match state.log.integrity() {
        Some(integrity) => Ok(Json(integrity.verify_keyed(anchor.as_ref()).await?)),
        None if anchor.is_some() => Err(QueryError::parameter(
            "anchor_position",
            "this event log keeps no keyed chain to check an anchor against",
        )),
        None => Ok(Json(eventlog::verify_log(state.log.as_ref()).await?)),
    }
}

/// An auditor's anchor from `anchor_position` and `anchor_mac` (the mac may be left out only for an
/// anchor taken before the log had a key).
fn given_anchor(params: &Params) -> Result<Option<Anchor>, QueryError> {
    let position = params.number("anchor_position", 0, u64::MAX)?;
    let mac = params.raw("anchor_mac");
    if let Some(mac) = mac {
        if mac.len() != 64 || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(QueryError::parameter("anchor_mac", "is not 64 hex digits"));
        }
    }
    match (position, mac) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(QueryError::parameter(
            "anchor_position",
            "is required with anchor_mac",
        )),
        (Some(position), mac) => Ok(Some(Anchor {
            position,
            stream: String::new(),
            version: 0,
            mac: mac.map(str::to_ascii_lowercase),
            keyed_from: 0,
            signature: None,
        })),
    }
}

async fn anchor(
    State(state): State<QueryState>,
    principal: Principal,
) -> Result<Json<Anchor>, QueryError> {
    auditor(&principal)?;
    let Some(integrity) = state.log.integrity() else {
        return Err(QueryError::NotFound(
            "this event log keeps no signed head".into(),
        ));
    };
    Ok(Json(integrity.anchor().await?))
}
