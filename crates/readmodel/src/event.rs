//! The store-agnostic input of the views: a decoded event with its place in the global log.
//! The projector builds these from recorded events (decoded by `domain::events::decode`, whose
//! [`Decoded`] becomes an [`AnyEvent`]); this crate never sees the event log.

use chrono::{DateTime, Utc};
use domain::customer::CustomerEvent;
use domain::events::Decoded;
use domain::lodging::LodgingEvent;
use domain::payment::PaymentEvent;
use domain::payout::PayoutEvent;
use domain::reservation::ReservationEvent;
use uuid::Uuid;

/// One event of the global log, decoded, as the views consume it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewEvent {
    /// Global log position (strictly increasing along the log).
    pub position: u64,
    pub stream: String,
    pub version: u64,
    pub event_id: Uuid,
    /// When the log recorded it: the only clock the views ever read.
    pub recorded_at: DateTime<Utc>,
    pub event: AnyEvent,
}

/// The decoded payload, by the stream it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    /// Stream `reservation-{reservation_id}`.
    Reservation {
        reservation_id: Uuid,
        event: ReservationEvent,
    },
    /// Stream `lodging-{lodging_id}`.
    Lodging {
        lodging_id: String,
        event: LodgingEvent,
    },
    /// Stream `payment-{reservation_id}`.
    Payment {
        reservation_id: Uuid,
        event: PaymentEvent,
    },
    /// Stream `payout-{reservation_id}`.
    Payout {
        reservation_id: Uuid,
        event: PayoutEvent,
    },
    /// Stream `customer-{customer_id}`.
    Customer {
        customer_id: String,
        event: CustomerEvent,
    },
    /// Stream `saga-{reservation_id}`: no view reads it; it only moves the checkpoint.
    Saga,
    /// A stream no view reads; it only moves the checkpoint.
    Other,
}

impl From<Decoded> for AnyEvent {
    /// The views' part of a decoded event (a saga stream's payload, if decoded, is dropped).
    fn from(decoded: Decoded) -> Self {
        match decoded {
            Decoded::Reservation { id, event } => AnyEvent::Reservation {
                reservation_id: id,
                event,
            },
            Decoded::Lodging { id, event } => AnyEvent::Lodging {
                lodging_id: id,
                event,
            },
            Decoded::Payment { id, event } => AnyEvent::Payment {
                reservation_id: id,
                event,
            },
            Decoded::Payout { id, event } => AnyEvent::Payout {
                reservation_id: id,
                event,
            },
            Decoded::Saga(_) => AnyEvent::Saga,
            Decoded::Customer { id, event } => AnyEvent::Customer {
                customer_id: id,
                event,
            },
            Decoded::Other => AnyEvent::Other,
        }
    }
}
