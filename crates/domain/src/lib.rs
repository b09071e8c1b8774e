//! The pure business model of stayledger: aggregates (Reservation, LodgingApproval, Payment),
//! their commands and events, and the reservation saga's decisions.
//!
//! Owns: every business rule, as `decide(&state, &command, now) -> Result<Vec<Event>, Error>` and
//! `evolve(state, &event) -> state` pairs, plus the saga's `react(&state, &input, now)`.
//! Must not: do I/O, spawn tasks, read the clock or depend on tokio, axum, rusqlite, eventstore or mongodb.
//! Time and any looked-up data are passed in.

pub mod customer;
pub mod events;
pub mod lodging;
pub mod payment;
pub mod payout;
pub mod reservation;
pub mod saga;
mod schema;
pub mod stay;
pub mod streams;

#[cfg(test)]
pub(crate) mod harness;

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

pub use chrono_tz::Tz;
#[doc(hidden)]
pub use schema::untagged_payload;
pub use schema::{decode_json, missing_steps, upcast, DecodeError, DomainEvent, Upcaster};
pub use stay::{
    check_out_moment, local_date, one_room, RoomLimits, Stay, StayError, CHECK_OUT_HOUR,
    WAVE1_TIMEZONE,
};
pub use streams::{StreamId, StreamKind};

/// A reservation's id: the correlation key across every context.
pub type ReservationId = uuid::Uuid;

/// Wall-clock instant passed into decisions.
pub type Timestamp = DateTime<Utc>;

/// An event-sourced aggregate: a pure decide/evolve pair over one stream.
pub trait Aggregate: 'static {
    /// Stream name prefix: the stream of aggregate `id` is `{STREAM_PREFIX}-{id}` (the domain's
    /// aggregates take theirs from [`StreamKind::prefix`], so the name is their [`StreamId`]'s).
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

    /// Roughly how many events' replay reading a snapshot of `state` costs (its entries). The
    /// repository spaces snapshots at least this many events apart, so a big state is not
    /// serialized and written over and over while its snapshot would save little replay.
    /// Default: 0 (the repository's fixed spacing).
    fn snapshot_weight(_state: &Self::State) -> u64 {
        0
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
