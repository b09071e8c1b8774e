//! The pure business model of stayledger: aggregates (Reservation, LodgingApproval, Payment),
//! their commands and events, and the reservation saga's decisions.
//!
//! Owns: every business rule, as `decide(&state, &command, now) -> Result<Vec<Event>, Error>` and
//! `evolve(state, &event) -> state` pairs, plus the saga's `react(&state, &input, now)`.
//! Must not: do I/O, spawn tasks, read the clock or depend on tokio, axum, rusqlite, eventstore or mongodb.
//! Time and any looked-up data are passed in.

pub mod lodging;
pub mod payment;
pub mod reservation;
pub mod saga;
pub mod stay;

#[cfg(test)]
pub(crate) mod harness;

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

pub use stay::{Stay, StayError};

/// A reservation's id: the correlation key across every context.
pub type ReservationId = uuid::Uuid;

/// Wall-clock instant passed into decisions.
pub type Timestamp = DateTime<Utc>;

/// An event-sourced aggregate: a pure decide/evolve pair over one stream.
pub trait Aggregate: 'static {
    /// Stream name prefix: the stream of aggregate `id` is `{STREAM_PREFIX}-{id}`.
    const STREAM_PREFIX: &'static str;
    /// State rebuilt from events. `Default` is the state of an empty stream.
    type State: Default + Clone + Send + Sync + Serialize + DeserializeOwned + 'static;
    type Command: Clone + Send + Sync + 'static;
    type Event: DomainEvent;
    type Error: std::error::Error + Send + Sync + PartialEq + 'static;

    fn decide(
        state: &Self::State,
        command: &Self::Command,
        now: Timestamp,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Drop state that can no longer matter (e.g. nights in the past) before a snapshot is taken
    /// or a decision is made. Default: keep everything.
    fn compact(state: Self::State, _now: Timestamp) -> Self::State {
        state
    }

    /// Fold a sequence of events onto a state.
    fn fold<'a>(
        state: Self::State,
        events: impl IntoIterator<Item = &'a Self::Event>,
    ) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(state, Self::evolve)
    }

    fn stream_name(id: &str) -> String {
        format!("{}-{}", Self::STREAM_PREFIX, id)
    }
}

/// Current schema version of every persisted event payload.
pub const SCHEMA_VERSION: u32 = 1;

/// The persisted shape of a domain event: a type name plus a JSON payload, kept apart from the enum
/// so events can evolve (schema version + upcasting in [`DomainEvent::decode`]).
pub trait DomainEvent: Clone + Send + Sync + std::fmt::Debug + Sized + 'static {
    /// The contract name seen by auditors and read models, e.g. `ReservationRequested`.
    fn event_type(&self) -> &'static str;
    /// The JSON payload (without the type tag).
    fn payload(&self) -> serde_json::Value;
    /// Rebuild an event from its stored type, schema version and payload (upcasting older versions).
    fn decode(
        event_type: &str,
        schema_version: u32,
        payload: &serde_json::Value,
    ) -> Result<Self, DecodeError>;
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("unsupported schema version {version} of {event_type}")]
    UnsupportedVersion { event_type: String, version: u32 },
    #[error("malformed payload of {event_type}: {message}")]
    Malformed { event_type: String, message: String },
}

/// [`DomainEvent::decode`] of a payload that is still JSON text (one JSON value, as the log hands it
/// out), without a `serde_json::Value` in between, which costs more to build and free than the typed
/// event. A payload of the current schema is decoded straight from the text as the tagged enum the
/// domain persists (`{"type": .., "data": ..}`, see [`impl_domain_event`]). Whatever does not decode
/// that way (an older or newer schema, an unknown type, a malformed payload, a repeated field, of
/// which a `Value` keeps the last) is handed to `E::decode` parsed, so it is decoded or refused
/// exactly as before, with the same error (the projector's `text_payloads_decode_as_parsed_ones_do`
/// holds the two ways together).
pub fn decode_json<E: DomainEvent + DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    payload_json: &str,
) -> Result<E, DecodeError> {
    if schema_version == SCHEMA_VERSION {
        let tagged = format!(r#"{{"type":"{event_type}","data":{payload_json}}}"#);
        // Only a type that names the decoded variant is taken: one with quotes in it, which
        // would not be quoted right above, cannot pass as another.
        match serde_json::from_str::<E>(&tagged) {
            Ok(event) if event.event_type() == event_type => return Ok(event),
            _ => {}
        }
    }
    let payload = serde_json::from_str(payload_json).map_err(|e| DecodeError::Malformed {
        event_type: event_type.to_string(),
        message: e.to_string(),
    })?;
    E::decode(event_type, schema_version, &payload)
}

/// Implements [`DomainEvent`] for an enum tagged `#[serde(tag = "type", content = "data")]`.
#[macro_export]
macro_rules! impl_domain_event {
    ($ty:ty { $($variant:ident),* $(,)? }) => {
        impl $crate::DomainEvent for $ty {
            fn event_type(&self) -> &'static str {
                match self { $(Self::$variant { .. } => stringify!($variant),)* }
            }
            fn payload(&self) -> serde_json::Value {
                let mut tagged = serde_json::to_value(self).expect("domain events always serialize");
                tagged.get_mut("data").map(serde_json::Value::take).unwrap_or_else(|| serde_json::json!({}))
            }
            fn decode(
                event_type: &str,
                schema_version: u32,
                payload: &serde_json::Value,
            ) -> Result<Self, $crate::DecodeError> {
                if schema_version > $crate::SCHEMA_VERSION {
                    return Err($crate::DecodeError::UnsupportedVersion {
                        event_type: event_type.to_string(),
                        version: schema_version,
                    });
                }
                if ![$(stringify!($variant)),*].contains(&event_type) {
                    return Err($crate::DecodeError::UnknownType(event_type.to_string()));
                }
                let tagged = serde_json::json!({ "type": event_type, "data": payload });
                serde_json::from_value(tagged).map_err(|e| $crate::DecodeError::Malformed {
                    event_type: event_type.to_string(),
                    message: e.to_string(),
                })
            }
        }
    };
}
