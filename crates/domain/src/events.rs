//! The one way from a recorded event to a domain event: its stream says which context it belongs to
//! ([`StreamId`]), its type and schema version say how to read its payload (upcast from an older
//! version by [`DomainEvent::decode`]), and the payload comes parsed or as JSON text ([`Payload`]).
//! The projector, the saga's inbound classification, shard routing and the audit reads all decode
//! here; repository loads use the same per-type [`DomainEvent::decode`] / [`decode_json`].
//!
//! Owns: [`decode`], [`Decoded`], [`Undecodable`].
//! Must not: know the event log's types (callers hand in the stream, type, version and payload).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::customer::CustomerEvent;
use crate::lodging::LodgingEvent;
use crate::payment::PaymentEvent;
use crate::payout::PayoutEvent;
use crate::reservation::ReservationEvent;
use crate::saga::SagaEvent;
use crate::streams::{StreamIdError, StreamKind};
use crate::{decode_json, DecodeError, DomainEvent, ReservationId, StreamId};

/// A stored payload, as the reader has it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// Parsed (as the live log hands it out).
    Parsed(&'a Value),
    /// Still JSON text (as a rebuild or the saga reads it): decoded straight into the typed event
    /// when it is at its type's current version, see [`decode_json`].
    Text(&'a str),
}

impl Payload<'_> {
    /// The payload as an `E` of `event_type` at `schema_version`, upcast if it is older.
    pub fn decode<E: DomainEvent + DeserializeOwned>(
        self,
        event_type: &str,
        schema_version: u32,
    ) -> Result<E, DecodeError> {
        match self {
            Payload::Parsed(value) => E::decode(event_type, schema_version, value),
            Payload::Text(text) => decode_json(event_type, schema_version, text),
        }
    }
}

/// Whether [`decode`] reads the payload of a saga stream's event. The views and the saga's inbound
/// classification never look at it, so they skip it (a `SagaEventHandled` is the largest payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaPayloads {
    Skip,
    Decode,
}

/// A recorded event, decoded, by the context of its stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Stream `reservation-{id}`.
    Reservation {
        id: ReservationId,
        event: ReservationEvent,
    },
    /// Stream `lodging-{id}`.
    Lodging { id: String, event: LodgingEvent },
    /// Stream `payment-{id}`.
    Payment {
        id: ReservationId,
        event: PaymentEvent,
    },
    /// Stream `payout-{id}`.
    Payout {
        id: ReservationId,
        event: PayoutEvent,
    },
    /// Stream `customer-{id}` (its personal fields sealed).
    Customer { id: String, event: CustomerEvent },
    /// A saga stream (`saga-{id}`); its event when asked for with [`SagaPayloads::Decode`] (with
    /// [`SagaPayloads::Skip`], any `saga-...` stream, unread).
    Saga(Option<Box<SagaEvent>>),
    /// A stream of no context (`lodging-` without an id counts as one): nothing to decode.
    Other,
}

/// Why a recorded event cannot be decoded; it never will be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Undecodable {
    /// A stream of a context whose id is not one (e.g. `reservation-x`).
    #[error(transparent)]
    Stream(StreamIdError),
    /// The payload does not decode (unknown type, newer version, malformed, failed upcast).
    #[error("{error}")]
    Payload {
        stream: StreamId,
        error: DecodeError,
    },
}

/// Decode one recorded event: `stream`'s kind picks the event enum, `event_type` and
/// `schema_version` how to read `payload`. The stream's id is checked before the payload.
pub fn decode(
    stream: &str,
    event_type: &str,
    schema_version: u32,
    payload: Payload<'_>,
    saga: SagaPayloads,
) -> Result<Decoded, Undecodable> {
    let Some((kind, key)) = StreamKind::split(stream) else {
        return Ok(Decoded::Other);
    };
    if kind == StreamKind::Saga && saga == SagaPayloads::Skip {
        return Ok(Decoded::Saga(None));
    }
    let Some(id) = kind.with_key(key) else {
        return match kind {
            StreamKind::Lodging => Ok(Decoded::Other),
            _ => Err(Undecodable::Stream(StreamIdError::BadId {
                stream: stream.to_string(),
                kind,
                id: key.to_string(),
            })),
        };
    };
    let (t, v) = (event_type, schema_version);
    Ok(match id {
        StreamId::Reservation(rid) => Decoded::Reservation {
            id: rid,
            event: read(payload, t, v, || StreamId::Reservation(rid))?,
        },
        StreamId::Payment(rid) => Decoded::Payment {
            id: rid,
            event: read(payload, t, v, || StreamId::Payment(rid))?,
        },
        StreamId::Lodging(lodging) => Decoded::Lodging {
            event: read(payload, t, v, || StreamId::Lodging(lodging.clone()))?,
            id: lodging,
        },
        StreamId::Saga(rid) => {
            Decoded::Saga(Some(Box::new(read(payload, t, v, || StreamId::Saga(rid))?)))
        }
        StreamId::Payout(rid) => Decoded::Payout {
            id: rid,
            event: read(payload, t, v, || StreamId::Payout(rid))?,
        },
        StreamId::Customer(customer) => Decoded::Customer {
            event: read(payload, t, v, || StreamId::Customer(customer.clone()))?,
            id: customer,
        },
    })
}

/// The payload as an `E`; on failure, the stream `stream` names.
fn read<E: DomainEvent + DeserializeOwned>(
    payload: Payload<'_>,
    event_type: &str,
    schema_version: u32,
    stream: impl FnOnce() -> StreamId,
) -> Result<E, Undecodable> {
    payload
        .decode(event_type, schema_version)
        .map_err(|error| Undecodable::Payload {
            stream: stream(),
            error,
        })
}

impl Decoded {
    /// The reservation this event is about, if its stream or payload names one.
    #[must_use]
    pub fn reservation_id(&self) -> Option<ReservationId> {
        match self {
            Decoded::Reservation { id, .. }
            | Decoded::Payment { id, .. }
            | Decoded::Payout { id, .. } => Some(*id),
            Decoded::Lodging { event, .. } => event.reservation_id(),
            Decoded::Saga(_) | Decoded::Customer { .. } | Decoded::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn both(
        stream: &str,
        event_type: &str,
        version: u32,
        payload: Value,
    ) -> Result<Decoded, Undecodable> {
        let text = payload.to_string();
        let parsed = decode(
            stream,
            event_type,
            version,
            Payload::Parsed(&payload),
            SagaPayloads::Decode,
        );
        let raw = decode(
            stream,
            event_type,
            version,
            Payload::Text(&text),
            SagaPayloads::Decode,
        );
        assert_eq!(parsed, raw, "{stream} {event_type} v{version}");
        parsed
    }

    #[test]
    fn each_stream_kind_decodes_its_own_events() {
        let id = Uuid::from_u128(3);
        assert_eq!(
            both(
                &format!("reservation-{id}"),
                "ReservationExpired",
                1,
                json!({})
            ),
            Ok(Decoded::Reservation {
                id,
                event: ReservationEvent::ReservationExpired {}
            })
        );
        assert!(matches!(
            both(&format!("payment-{id}"), "PaymentFailed", 1, json!({"reason": "no"})),
            Ok(Decoded::Payment { id: p, event: PaymentEvent::PaymentFailed { .. } }) if p == id
        ));
        let withdrawn = both(
            "lodging-seoul-station-2",
            "ApprovalWithdrawn",
            1,
            json!({"reservation_id": id, "reason": "r"}),
        )
        .expect("decodes");
        assert!(matches!(&withdrawn, Decoded::Lodging { id, .. } if id == "seoul-station-2"));
        assert_eq!(withdrawn.reservation_id(), Some(id));
        assert!(matches!(
            both(
                &format!("saga-{id}"),
                "SagaTimerCancelled",
                1,
                json!({"timer": "approval_deadline"})
            ),
            Ok(Decoded::Saga(Some(_)))
        ));
    }

    #[test]
    fn saga_payloads_are_skipped_when_asked_and_unknown_streams_are_not_read() {
        let junk = json!("not even an object");
        for stream in ["saga-x", "saga-00000000-0000-0000-0000-000000000001"] {
            assert_eq!(
                decode(
                    stream,
                    "Anything",
                    1,
                    Payload::Parsed(&junk),
                    SagaPayloads::Skip
                ),
                Ok(Decoded::Saga(None))
            );
        }
        assert!(both("saga-x", "Anything", 1, junk.clone()).is_err());
        assert_eq!(
            both("idempotency", "KeyRecorded", 1, junk.clone()),
            Ok(Decoded::Other)
        );
        assert_eq!(
            both("lodging-", "ApprovalWithdrawn", 1, junk),
            Ok(Decoded::Other)
        );
    }

    #[test]
    fn bad_ids_and_bad_payloads_are_undecodable() {
        let bad_id = both("reservation-x", "ReservationExpired", 1, json!({})).unwrap_err();
        assert_eq!(
            bad_id.to_string(),
            r#"stream "reservation-x": "x" is not a reservation id"#
        );
        let id = Uuid::from_u128(4);
        let newer = both(
            &format!("payment-{id}"),
            "PaymentFailed",
            2,
            json!({"reason": "no"}),
        );
        assert_eq!(
            newer,
            Err(Undecodable::Payload {
                stream: StreamId::Payment(id),
                error: DecodeError::UnsupportedVersion {
                    event_type: "PaymentFailed".into(),
                    version: 2
                },
            })
        );
        assert!(matches!(
            both(
                &format!("reservation-{id}"),
                "ReservationTeleported",
                1,
                json!({})
            ),
            Err(Undecodable::Payload {
                error: DecodeError::UnknownType(_),
                ..
            })
        ));
    }
}
