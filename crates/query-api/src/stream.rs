//! `GET /stream`: the live stream of reservation changes (Server-Sent Events), scoped like
//! `GET /reservations/{id}`: a customer follows their own reservations, an admin those of the
//! lodgings they manage, an auditor all. Each frame is `event: reservation`, `id: <log position>`,
//! `data: <ReservationList document>`: the stream follows the log in order and, at each event that
//! changed a reservation's document, sends that document once the views reflect it, if it is still
//! the version that event made (its `position`). So a frame's id is its document's position, ids
//! only grow, and a client that comes back with `Last-Event-ID` resumes right after the last frame
//! it got without a gap (every later version is sent) or a repeat (no version twice). When the views
//! already hold a newer version, the older one is not sent: the newer comes at its own event. Without
//! `Last-Event-ID` the stream starts at the log's head. A browser's `EventSource` cannot set headers,
//! so the token may also come as the `access_token` query parameter. Comments keep idle connections
//! alive.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::events::{self, Decoded, Payload, SagaPayloads};
use eventlog::RawRecordedEvent;
use futures::{Stream, StreamExt};
use http_edge::{AuthError, Principal};
use readmodel::Views;
use uuid::Uuid;

use crate::error::QueryError;
use crate::params::Params;
use crate::state::QueryState;
use crate::views::may_read;

/// How long one wait for the views lasts before it is tried again (the stream never skips).
const VIEWS_WAIT: Duration = Duration::from_secs(5);
/// A comment on an idle stream this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) fn routes() -> Router<QueryState> {
    Router::new().route("/stream", get(stream))
}

/// The caller: the `Authorization` header, or else the `access_token` query parameter.
fn caller(
    state: &QueryState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Principal, AuthError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return state.auth.authenticate_headers(headers);
    }
    match params.raw("access_token") {
        Some(token) => state.auth.verify(token),
        None => Err(AuthError::Missing),
    }
}

/// Where to start: after `Last-Event-ID` (a log position), or at the head.
async fn start(state: &QueryState, headers: &HeaderMap) -> Result<u64, QueryError> {
    match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(|position| position.saturating_add(1))
            .ok_or_else(|| QueryError::parameter("Last-Event-ID", "must be a log position")),
        None => Ok(state.log.head_position().await?.saturating_add(1)),
    }
}

/// The reservation whose ReservationList document `recorded` may change (`None`: none).
fn reservation_of(recorded: &RawRecordedEvent) -> Option<Uuid> {
    let decoded = events::decode(
        &recorded.stream,
        &recorded.event_type,
        recorded.schema_version,
        Payload::Text(&recorded.data),
        SagaPayloads::Skip,
    )
    .ok()?;
    match decoded {
        Decoded::Reservation { id, .. }
        | Decoded::Payment { id, .. }
        | Decoded::Payout { id, .. } => Some(id),
        Decoded::Lodging { event, .. } => event.reservation_id(),
        _ => None,
    }
}

/// The frame for the event at `position` about reservation `id`, once the views reflect it;
/// `None` if the caller may not see it, or its document is not the version that event made.
async fn frame(
    state: &QueryState,
    principal: &Principal,
    id: Uuid,
    position: u64,
) -> Result<Option<Event>, QueryError> {
    let views = Views(Arc::clone(&state.views));
    while !state
        .progress
        .wait_for(&views, position, VIEWS_WAIT)
        .await?
    {}
    let Some(view) = state.views.reservation(id).await? else {
        return Ok(None);
    };
    if view.position != position || !may_read(state, principal, &view).await? {
        return Ok(None);
    }
    let data = serde_json::to_string(&view).map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(Some(
        Event::default()
            .event("reservation")
            .id(position.to_string())
            .data(data),
    ))
}

fn frames(
    state: QueryState,
    principal: Principal,
    from: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let log = state.log.subscribe(from);
    futures::stream::unfold(
        (log, state, principal),
        |(mut log, state, principal)| async move {
            loop {
                let recorded = match log.next().await? {
                    Ok(recorded) => recorded,
                    Err(error) => {
                        tracing::warn!(%error, "the live stream lost the log; the client reconnects");
                        return None;
                    }
                };
                let Some(id) = reservation_of(&recorded) else {
                    continue;
                };
                match frame(&state, &principal, id, recorded.position).await {
                    Ok(Some(event)) => return Some((Ok(event), (log, state, principal))),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, "the live stream could not read the views; the client reconnects");
                        return None;
                    }
                }
            }
        },
    )
}

async fn stream(State(state): State<QueryState>, headers: HeaderMap, params: Params) -> Response {
    let principal = match caller(&state, &headers, &params) {
        Ok(principal) => principal,
        Err(refused) => return refused.into_response(),
    };
    let from = match start(&state, &headers).await {
        Ok(from) => from,
        Err(error) => return error.into_response(),
    };
    let closing = state.closing.clone().cancelled_owned();
    Sse::new(frames(state, principal, from).take_until(closing))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
