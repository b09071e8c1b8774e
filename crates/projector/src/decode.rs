//! Recorded events -> [`ViewEvent`]s: the stream name says which context an event belongs to
//! (`reservation-{uuid}`, `lodging-{id}`, `payment-{uuid}`, `saga-{uuid}`), the type and schema
//! version say how to decode its payload (`domain` upcasts older versions).

use domain::lodging::LodgingEvent;
use domain::payment::PaymentEvent;
use domain::reservation::ReservationEvent;
use domain::DomainEvent;
use eventlog::RecordedEvent;
use readmodel::{AnyEvent, DeadLetter, ViewEvent};
use uuid::Uuid;

/// Why a recorded event cannot become a [`ViewEvent`]; it will never decode, so it is parked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeFailure(pub String);

fn uuid_of(stream: &str, id: &str) -> Result<Uuid, DecodeFailure> {
    Uuid::parse_str(id)
        .map_err(|_| DecodeFailure(format!("stream {stream:?}: {id:?} is not a reservation id")))
}

fn payload<E: DomainEvent>(recorded: &RecordedEvent) -> Result<E, DecodeFailure> {
    E::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.data,
    )
    .map_err(|e| DecodeFailure(e.to_string()))
}

/// Decode one recorded event. Streams no view reads become [`AnyEvent::Saga`] or
/// [`AnyEvent::Other`] without looking at the payload. Lodging ids may contain `-`: the stream
/// name is split on its first `-` only.
pub fn decode(recorded: &RecordedEvent) -> Result<ViewEvent, DecodeFailure> {
    let stream = recorded.stream.as_str();
    let event = match stream.split_once('-') {
        Some(("reservation", id)) => AnyEvent::Reservation {
            reservation_id: uuid_of(stream, id)?,
            event: payload::<ReservationEvent>(recorded)?,
        },
        Some(("lodging", id)) if !id.is_empty() => AnyEvent::Lodging {
            lodging_id: id.to_string(),
            event: payload::<LodgingEvent>(recorded)?,
        },
        Some(("payment", id)) => AnyEvent::Payment {
            reservation_id: uuid_of(stream, id)?,
            event: payload::<PaymentEvent>(recorded)?,
        },
        Some(("saga", _)) => AnyEvent::Saga,
        _ => AnyEvent::Other,
    };
    Ok(ViewEvent {
        position: recorded.position,
        stream: recorded.stream.clone(),
        version: recorded.version,
        event_id: recorded.event_id,
        recorded_at: recorded.recorded_at,
        event,
    })
}

/// The dead letter of `recorded`, which failed with `error`.
#[must_use]
pub fn dead_letter(recorded: &RecordedEvent, error: &str) -> DeadLetter {
    DeadLetter {
        position: recorded.position,
        event_id: recorded.event_id,
        stream: recorded.stream.clone(),
        event_type: recorded.event_type.clone(),
        error: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use eventlog::EventMetadata;
    use serde_json::json;

    use super::*;

    fn recorded(stream: &str, event_type: &str, data: serde_json::Value) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::from_u128(1),
            stream: stream.to_string(),
            version: 0,
            position: 9,
            event_type: event_type.to_string(),
            schema_version: 1,
            data,
            metadata: EventMetadata {
                correlation_id: Uuid::from_u128(2),
                causation_id: Uuid::from_u128(3),
                actor: "test".into(),
            },
            recorded_at: Utc::now(),
            hash: String::new(),
        }
    }

    #[test]
    fn lodging_ids_keep_their_dashes() {
        let event = recorded(
            "lodging-seoul-station-2",
            "ApprovalWithdrawn",
            json!({"reservation_id": Uuid::from_u128(5), "reason": "expired"}),
        );
        let decoded = decode(&event).expect("decodes");
        assert!(matches!(
            decoded.event,
            AnyEvent::Lodging { ref lodging_id, .. } if lodging_id == "seoul-station-2"
        ));
        assert_eq!(
            (decoded.position, decoded.event_id),
            (9, Uuid::from_u128(1))
        );
    }

    #[test]
    fn saga_and_unknown_streams_are_not_decoded() {
        let saga = recorded("saga-x", "Anything", json!("not even an object"));
        assert_eq!(decode(&saga).map(|e| e.event), Ok(AnyEvent::Saga));
        let other = recorded("idempotency", "KeyRecorded", json!({}));
        assert_eq!(decode(&other).map(|e| e.event), Ok(AnyEvent::Other));
    }

    #[test]
    fn poison_events_fail_to_decode() {
        let bad_id = recorded("reservation-x", "ReservationExpired", json!({}));
        assert!(decode(&bad_id).is_err());
        let id = Uuid::from_u128(4);
        let unknown = recorded(
            &format!("reservation-{id}"),
            "ReservationTeleported",
            json!({}),
        );
        assert!(decode(&unknown).is_err());
        let malformed = recorded(
            &format!("payment-{id}"),
            "PaymentFailed",
            json!({"reason": 5}),
        );
        assert!(decode(&malformed).is_err());
        let fine = recorded(
            &format!("payment-{id}"),
            "PaymentFailed",
            json!({"reason": "no"}),
        );
        assert!(decode(&fine).is_ok());
    }
}
