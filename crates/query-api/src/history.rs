//! A reservation's whole history across every stream it touches (reservation, payment, saga, and the
//! lodging's events about it), in log order. Shared by `GET /audit/reservations/{id}/history` and the
//! `stayledger history` CLI.

use domain::events::{self, Decoded, Payload, SagaPayloads};
use domain::reservation::ReservationEvent;
use domain::StreamId;
use eventlog::{EventLog, LogError, RecordedEvent};
use uuid::Uuid;

/// Events read per page when a whole stream is needed.
const PAGE: usize = 1_000;

/// Every event of `stream`.
pub async fn whole_stream(
    log: &dyn EventLog,
    stream: &str,
) -> Result<Vec<RecordedEvent>, LogError> {
    let mut events = Vec::new();
    loop {
        let from = events.last().map_or(0, |e: &RecordedEvent| e.version + 1);
        let page = log.read_stream(stream, from, PAGE).await?;
        let done = page.len() < PAGE;
        events.extend(page);
        if done {
            return Ok(events);
        }
    }
}

/// Every event about reservation `id`, in log order; `None` if the reservation does not exist.
/// Which lodging it is at and which of that lodging's events are about it are read from the events
/// decoded (`domain::events::decode`), as every read of a payload is.
pub async fn reservation_history(
    log: &dyn EventLog,
    id: Uuid,
) -> Result<Option<Vec<RecordedEvent>>, LogError> {
    let mut events = whole_stream(log, &StreamId::Reservation(id).to_string()).await?;
    let Some(first) = events.first() else {
        return Ok(None);
    };
    let lodging_id = match decode(first) {
        Some(Decoded::Reservation {
            event: ReservationEvent::ReservationRequested(details),
            ..
        }) => Some(details.lodging_id),
        _ => None,
    };
    for stream in [StreamId::Payment(id), StreamId::Saga(id)] {
        events.extend(whole_stream(log, &stream.to_string()).await?);
    }
    if let Some(lodging_id) = lodging_id {
        let lodging = whole_stream(log, &StreamId::Lodging(lodging_id).to_string()).await?;
        events.extend(
            lodging
                .into_iter()
                .filter(|e| decode(e).and_then(|d| d.reservation_id()) == Some(id)),
        );
    }
    events.sort_by_key(|e| e.position);
    Ok(Some(events))
}

/// `event` decoded (saga payloads unread); `None` if it does not decode.
fn decode(event: &RecordedEvent) -> Option<Decoded> {
    events::decode(
        &event.stream,
        &event.event_type,
        event.schema_version,
        Payload::Parsed(&event.data),
        SagaPayloads::Skip,
    )
    .ok()
}
