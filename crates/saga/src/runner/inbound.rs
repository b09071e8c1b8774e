//! Which events of the global log the saga reacts to, and as what input.

use domain::events::{self, Decoded, Payload, SagaPayloads, Undecodable};
use domain::saga::{self as saga, SagaInput};
use domain::ReservationId;
use eventlog::RawRecordedEvent;
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

/// Sort an event of the log into ignore / trigger / poison: decoded by `domain`'s one entry (saga
/// streams unread), then kept if `domain::saga::concerns` it.
#[must_use]
pub fn classify(event: &RawRecordedEvent) -> Classified {
    let decoded = events::decode(
        &event.stream,
        &event.event_type,
        event.schema_version,
        Payload::Text(&event.data),
        SagaPayloads::Skip,
    );
    let (reservation_id, input) = match decoded {
        Ok(Decoded::Reservation { id, event }) => (id, SagaInput::Reservation(event)),
        Ok(Decoded::Payment { id, event }) => (id, SagaInput::Payment(event)),
        Ok(Decoded::Payout { id, event }) => (id, SagaInput::Payout(event)),
        Ok(Decoded::Lodging { event, .. }) => match event.reservation_id() {
            Some(id) => (id, SagaInput::Lodging(event)),
            None => return Classified::Ignore,
        },
        Ok(Decoded::Saga(_) | Decoded::Customer { .. } | Decoded::Other) => {
            return Classified::Ignore
        }
        Err(Undecodable::Stream(_)) => {
            return Classified::Poison {
                reservation_id: None,
                error: format!(
                    "stream {} is not named after a reservation id",
                    event.stream
                ),
            }
        }
        Err(Undecodable::Payload { stream, error }) => {
            return Classified::Poison {
                reservation_id: stream.reservation_id(),
                error: error.to_string(),
            }
        }
    };
    if !saga::concerns(&input) {
        return Classified::Ignore;
    }
    Classified::Trigger(Inbound {
        trigger_id: event.event_id,
        correlation_id: event.metadata.correlation_id,
        reservation_id,
        input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::lodging::LodgingProfile;
    use domain::payment::PaymentEvent;
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
            timezone: domain::Tz::Asia__Seoul,
            fee_bps: 1_000,
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
