//! A reservation's whole history across every stream it touches (reservation, payment, saga, and the
//! lodging's events about it), in log order. Shared by `GET /audit/reservations/{id}/history` and the
//! `stayledger history` CLI.

use domain::reservation::ReservationAggregate;
use domain::Aggregate;
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
pub async fn reservation_history(
    log: &dyn EventLog,
    id: Uuid,
) -> Result<Option<Vec<RecordedEvent>>, LogError> {
    let mut events = whole_stream(log, &ReservationAggregate::stream_name(&id.to_string())).await?;
    let Some(first) = events.first() else {
        return Ok(None);
    };
    let lodging_id = first.data["lodging_id"].as_str().map(str::to_string);
    for prefix in ["payment", "saga"] {
        events.extend(whole_stream(log, &format!("{prefix}-{id}")).await?);
    }
    if let Some(lodging_id) = lodging_id {
        let about = id.to_string();
        let lodging = whole_stream(log, &format!("lodging-{lodging_id}")).await?;
        events.extend(
            lodging
                .into_iter()
                .filter(|e| e.data["reservation_id"] == about.as_str()),
        );
    }
    events.sort_by_key(|e| e.position);
    Ok(Some(events))
}
