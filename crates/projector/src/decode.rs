//! Recorded events -> [`ViewEvent`]s through `domain`'s one decode entry
//! ([`domain::events::decode`]): the stream name says which context an event belongs to, the type
//! and schema version how to decode (and upcast) its payload; saga streams are not read. Events
//! come with their payload as JSON text ([`RawRecordedEvent`], as the live projector and a rebuild
//! read the log) or parsed ([`RecordedEvent`], as tests and auditors hold them); both decode to the
//! same view event.

use domain::events::{self, Payload, SagaPayloads};
use eventlog::{RawRecordedEvent, RecordedEvent};
use readmodel::{AnyEvent, DeadLetter, ViewEvent};

/// Why a recorded event cannot become a [`ViewEvent`]; it will never decode, so it is parked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeFailure(pub String);

/// The payload of one recorded event, by its stream. Streams no view reads become
/// [`AnyEvent::Saga`] or [`AnyEvent::Other`] without looking at the payload.
fn any_event(
    stream: &str,
    event_type: &str,
    schema_version: u32,
    payload: Payload<'_>,
) -> Result<AnyEvent, DecodeFailure> {
    events::decode(
        stream,
        event_type,
        schema_version,
        payload,
        SagaPayloads::Skip,
    )
    .map(AnyEvent::from)
    .map_err(|e| DecodeFailure(e.to_string()))
}

/// Decode one recorded event (see [`any_event`]).
pub fn decode(recorded: &RecordedEvent) -> Result<ViewEvent, DecodeFailure> {
    Ok(ViewEvent {
        event: any_event(
            &recorded.stream,
            &recorded.event_type,
            recorded.schema_version,
            Payload::Parsed(&recorded.data),
        )?,
        position: recorded.position,
        stream: recorded.stream.clone(),
        version: recorded.version,
        event_id: recorded.event_id,
        recorded_at: recorded.recorded_at,
    })
}

/// Decode one event read with its payload as text, into the view event [`decode`] makes of it
/// parsed, and its type; it is consumed, so its strings are moved rather than copied (a rebuild
/// decodes millions). A failure comes with the event's dead letter.
pub(crate) fn decode_raw(recorded: RawRecordedEvent) -> Result<(ViewEvent, String), DeadLetter> {
    let event = any_event(
        &recorded.stream,
        &recorded.event_type,
        recorded.schema_version,
        Payload::Text(&recorded.data),
    );
    match event {
        Ok(event) => Ok((
            ViewEvent {
                event,
                position: recorded.position,
                stream: recorded.stream,
                version: recorded.version,
                event_id: recorded.event_id,
                recorded_at: recorded.recorded_at,
            },
            recorded.event_type,
        )),
        Err(failure) => Err(DeadLetter {
            position: recorded.position,
            event_id: recorded.event_id,
            stream: recorded.stream,
            event_type: recorded.event_type,
            error: failure.0,
        }),
    }
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
    use domain::lodging::LodgingEvent;
    use domain::payment::PaymentEvent;
    use domain::reservation::ReservationEvent;
    use domain::DomainEvent;
    use eventlog::EventMetadata;
    use serde_json::json;
    use uuid::Uuid;

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

    /// What the rebuild makes of `recorded` (payload as text) next to what live projection makes
    /// of it (parsed), in the shape the rebuild uses.
    fn both_ways(
        recorded: RecordedEvent,
        data_json: &str,
    ) -> [Result<(ViewEvent, String), DeadLetter>; 2] {
        let parsed = decode(&recorded)
            .map(|view| (view, recorded.event_type.clone()))
            .map_err(|failure| dead_letter(&recorded, &failure.0));
        let raw = RawRecordedEvent {
            data: data_json.to_string(),
            ..RawRecordedEvent::from(recorded)
        };
        [decode_raw(raw), parsed]
    }

    /// An event as the log stores it: `data_json` as written, `data` as parsing it gives.
    fn stored(
        stream: &str,
        event_type: &str,
        schema_version: u32,
        data_json: &str,
    ) -> RecordedEvent {
        let data = serde_json::from_str(data_json).expect("test payloads are JSON");
        RecordedEvent {
            schema_version,
            ..recorded(stream, event_type, data)
        }
    }

    #[test]
    fn text_payloads_decode_as_parsed_ones_do() {
        use domain::lodging::{ApprovalMode, LodgingProfile};
        use domain::reservation::ReservationRequested;

        let id = Uuid::from_u128(4);
        let day = |d| chrono::NaiveDate::from_ymd_opt(2030, 1, d).expect("a day");
        let (reservation, payment) = (format!("reservation-{id}"), format!("payment-{id}"));
        let typed = |stream: &str, event: &dyn Fn() -> (&'static str, serde_json::Value)| {
            let (event_type, data) = event();
            (stream.to_string(), event_type, 1, data.to_string())
        };
        let mut cases = vec![
            typed(&reservation, &|| {
                let event = ReservationEvent::ReservationRequested(ReservationRequested {
                    timezone: domain::WAVE1_TIMEZONE,
                    rooms: 1,
                    reservation_id: id,
                    customer_id: "c-1".into(),
                    lodging_id: "seoul-station-2".into(),
                    check_in: day(3),
                    check_out: day(5),
                    guests: 2,
                    nights: 2,
                    total_amount: 240_000,
                    currency: "KRW".into(),
                });
                (event.event_type(), event.payload())
            }),
            typed(&reservation, &|| {
                let event = ReservationEvent::ReservationPaymentPending {
                    reason: "gateway \"busy\" é".into(),
                    retry_at: Utc::now(),
                };
                (event.event_type(), event.payload())
            }),
            typed(&reservation, &|| {
                let event = ReservationEvent::ReservationExpired {};
                (event.event_type(), event.payload())
            }),
            typed("lodging-seoul-station-2", &|| {
                let event = LodgingEvent::LodgingRegistered(LodgingProfile {
                    fee_bps: 1_000,
                    lodging_id: "seoul-station-2".into(),
                    name: "Seoul Station".into(),
                    nightly_rate: 120_000,
                    currency: "KRW".into(),
                    rooms: 10,
                    max_guests: 4,
                    approval_mode: ApprovalMode::Instant,
                    admin_id: "a-1".into(),
                    timezone: domain::Tz::Asia__Seoul,
                });
                (event.event_type(), event.payload())
            }),
            typed("lodging-seoul-station-2", &|| {
                let event = LodgingEvent::ApprovalRequested {
                    rooms: 1,
                    reservation_id: id,
                    check_in: day(3),
                    check_out: day(5),
                    guests: 2,
                };
                (event.event_type(), event.payload())
            }),
            typed(&payment, &|| {
                let event = PaymentEvent::PaymentCompleted {
                    payment_id: "pay-1".into(),
                    gateway_ref: "ch_1".into(),
                    amount: 240_000,
                };
                (event.event_type(), event.payload())
            }),
        ];
        let text = |stream: &str, event_type: &'static str, version, data: &str| {
            (stream.to_string(), event_type, version, data.to_string())
        };
        cases.extend([
            // A repeated field: a `Value` keeps the last one.
            text(
                &reservation,
                "ReservationRejected",
                1,
                r#"{"reason":"a","reason":"b"}"#,
            ),
            // Fields the event does not have are ignored; an older schema is decoded too.
            text(
                &reservation,
                "ReservationApproved",
                1,
                r#"{"approved_by":"a","x":[1.5]}"#,
            ),
            text(
                &reservation,
                "ReservationApproved",
                0,
                r#"{"approved_by":"a"}"#,
            ),
            // Poison: a newer schema, an unknown type, a malformed payload, a missing field,
            // a type with quotes in it, a stream that is not a reservation's.
            text(
                &reservation,
                "ReservationApproved",
                2,
                r#"{"approved_by":"a"}"#,
            ),
            text(&reservation, "ReservationTeleported", 1, r#"{"to":"mars"}"#),
            text(&payment, "PaymentFailed", 1, r#"{"reason":5}"#),
            text(&payment, "PaymentFailed", 1, "null"),
            text(&reservation, "ReservationExpired", 1, "[]"),
            text(&payment, "PaymentCompleted", 1, "{}"),
            text(
                &payment,
                r#"PaymentFailed","data":{"reason":"x"},"z":""#,
                1,
                "{}",
            ),
            text("reservation-x", "ReservationExpired", 1, "{}"),
            // Not decoded at all.
            text("saga-x", "Anything", 1, r#""not even an object""#),
            text("idempotency", "KeyRecorded", 1, "{}"),
        ]);
        let (mut decoded, mut parked) = (0, 0);
        for (stream, event_type, version, data_json) in cases {
            let event = stored(&stream, event_type, version, &data_json);
            let [raw, parsed] = both_ways(event, &data_json);
            assert_eq!(raw, parsed, "{stream} {event_type} v{version} {data_json}");
            if raw.is_ok() {
                decoded += 1;
            } else {
                parked += 1;
            }
        }
        assert_eq!((decoded, parked), (11, 8));
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
    fn payout_streams_decode_for_the_payouts_view() {
        let id = Uuid::from_u128(6);
        let sent = recorded(
            &format!("payout-{id}"),
            "PayoutSent",
            json!({"gateway_ref": "po-1"}),
        );
        let expected = AnyEvent::Payout {
            reservation_id: id,
            event: domain::payout::PayoutEvent::PayoutSent {
                gateway_ref: "po-1".into(),
            },
        };
        assert_eq!(decode(&sent).map(|e| e.event), Ok(expected));
        let malformed = recorded(&format!("payout-{id}"), "PayoutSent", json!({}));
        assert!(decode(&malformed).is_err());
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
