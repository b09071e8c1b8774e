//! Which events of the global log the saga reacts to, and as what input.

use domain::lodging::LodgingEvent;
use domain::payment::PaymentEvent;
use domain::reservation::ReservationEvent;
use domain::saga::SagaInput;
use domain::{DomainEvent, ReservationId};
use eventlog::RawRecordedEvent;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// An event of the log, as a trigger for one reservation's saga.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The event's id: the saga records it as handled under this id.
    pub trigger_id: Uuid,
    pub correlation_id: Uuid,
    pub reservation_id: ReservationId,
    pub input: SagaInput,
}

/// What to do with one event of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Not for the saga (its own stream, another context, a lodging event about no reservation).
    Ignore,
    Trigger(Inbound),
    /// A saga-relevant stream whose event cannot be read: park it, never stall on it.
    Poison {
        reservation_id: Option<ReservationId>,
        error: String,
    },
}

/// Sort an event of the log into ignore / trigger / poison.
#[must_use]
pub fn classify(event: &RawRecordedEvent) -> Classified {
    let Some((prefix, id)) = event.stream.split_once('-') else {
        return Classified::Ignore;
    };
    let decoded = match prefix {
        "reservation" => decode::<ReservationEvent>(event).map(|e| {
            let rid = Uuid::parse_str(id).ok();
            (rid, SagaInput::Reservation(e))
        }),
        "payment" => decode::<PaymentEvent>(event).map(|e| {
            let rid = Uuid::parse_str(id).ok();
            (rid, SagaInput::Payment(e))
        }),
        "lodging" => {
            decode::<LodgingEvent>(event).map(|e| (e.reservation_id(), SagaInput::Lodging(e)))
        }
        _ => return Classified::Ignore,
    };
    match decoded {
        Ok((Some(_), input)) if !has_a_saga_row(&input) => Classified::Ignore,
        Ok((Some(reservation_id), input)) => Classified::Trigger(Inbound {
            trigger_id: event.event_id,
            correlation_id: event.metadata.correlation_id,
            reservation_id,
            input,
        }),
        Ok((None, SagaInput::Lodging(_))) => Classified::Ignore,
        Ok((None, _)) => Classified::Poison {
            reservation_id: None,
            error: format!(
                "stream {} is not named after a reservation id",
                event.stream
            ),
        },
        Err(error) => Classified::Poison {
            reservation_id: Uuid::parse_str(id).ok(),
            error,
        },
    }
}

/// Whether the saga table (ARCHITECTURE.md section 4) has a row for this input. The events left
/// out are the saga's own echoes (its commands' results) and neither trigger an action nor change
/// the saga's state in any stage, so recording them would only cost a write per event. A test
/// below holds `domain`'s decisions to that.
fn has_a_saga_row(input: &SagaInput) -> bool {
    !matches!(
        input,
        SagaInput::Reservation(
            ReservationEvent::ReservationApproved { .. }
                | ReservationEvent::ReservationPaymentPending { .. }
                | ReservationEvent::ReservationConfirmed { .. }
                | ReservationEvent::ReservationRefunded { .. }
        ) | SagaInput::Lodging(
            LodgingEvent::ApprovalRequested { .. } | LodgingEvent::ApprovalWithdrawn { .. }
        )
    )
}

/// The payload as `E`, decoded from its text (as [`DomainEvent::decode`] decodes it parsed).
fn decode<E: DomainEvent + DeserializeOwned>(event: &RawRecordedEvent) -> Result<E, String> {
    domain::decode_json(&event.event_type, event.schema_version, &event.data)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::lodging::LodgingProfile;
    use eventlog::{EventMetadata, RecordedEvent};
    use serde_json::json;

    fn recorded(stream: &str, event_type: &str, data: serde_json::Value) -> RawRecordedEvent {
        RecordedEvent {
            event_id: Uuid::from_u128(42),
            stream: stream.to_string(),
            version: 0,
            position: 1,
            event_type: event_type.to_string(),
            schema_version: 1,
            data,
            metadata: EventMetadata {
                correlation_id: Uuid::from_u128(9),
                causation_id: Uuid::from_u128(8),
                actor: "test".to_string(),
            },
            recorded_at: chrono::Utc::now(),
            hash: String::new(),
        }
        .into()
    }

    #[test]
    fn payment_events_trigger_the_reservations_saga() {
        let rid = Uuid::from_u128(5);
        let event = recorded(
            &format!("payment-{rid}"),
            "PaymentFailed",
            json!({"reason": "no"}),
        );
        let Classified::Trigger(inbound) = classify(&event) else {
            panic!("expected a trigger");
        };
        assert_eq!(inbound.reservation_id, rid);
        assert_eq!(inbound.trigger_id, Uuid::from_u128(42));
        assert_eq!(inbound.correlation_id, Uuid::from_u128(9));
        assert_eq!(
            inbound.input,
            SagaInput::Payment(PaymentEvent::PaymentFailed {
                reason: "no".into()
            })
        );
    }

    #[test]
    fn lodging_events_about_a_reservation_trigger_others_are_ignored() {
        let rid = Uuid::from_u128(5);
        let granted = recorded(
            "lodging-hotel-1",
            "ApprovalGranted",
            json!({"reservation_id": rid, "granted_by": "admin"}),
        );
        assert!(matches!(classify(&granted), Classified::Trigger(i) if i.reservation_id == rid));
        let profile = LodgingProfile {
            lodging_id: "hotel-1".into(),
            name: "Hotel".into(),
            nightly_rate: 1,
            currency: "KRW".into(),
            rooms: 1,
            max_guests: 2,
            approval_mode: domain::lodging::ApprovalMode::Manual,
            admin_id: "a".into(),
        };
        let registered = recorded("lodging-hotel-1", "LodgingRegistered", json!(profile));
        assert_eq!(classify(&registered), Classified::Ignore);
        assert_eq!(
            classify(&recorded("saga-x", "SagaTimerCancelled", json!({}))),
            Classified::Ignore
        );
    }

    #[test]
    fn unreadable_events_are_poison() {
        let rid = Uuid::from_u128(5);
        let bad = recorded(
            &format!("reservation-{rid}"),
            "ReservationExploded",
            json!({}),
        );
        assert!(
            matches!(classify(&bad), Classified::Poison { reservation_id: Some(r), .. } if r == rid)
        );
        let unnamed = recorded("payment-nope", "PaymentFailed", json!({"reason": "x"}));
        assert!(matches!(
            classify(&unnamed),
            Classified::Poison {
                reservation_id: None,
                ..
            }
        ));
    }
}

#[cfg(test)]
#[path = "inbound_rows_test.rs"]
mod rows_test;
