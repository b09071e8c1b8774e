//! Given/when/then test harness for aggregates (in the style of disintegrate's `TestHarness` and
//! cqrs-es's `TestFramework`):
//!
//! ```ignore
//! given::<LodgingAggregate>([registered(2)])
//!     .when(grant(id, stay))
//!     .at(now)
//!     .then([LodgingEvent::ApprovalGranted { .. }]);
//! ```
//!
//! `then` also folds the decided events onto the state and returns it, so a test can go on to
//! assert on the state; `then_err` checks that the rejection is exactly the expected error.

use std::fmt::Debug;

use chrono::{NaiveDate, TimeZone, Utc};

use crate::{Aggregate, DomainEvent, Timestamp};

/// The instant decisions are made at unless `.at(..)` says otherwise: 2030-06-01 10:00 UTC.
pub(crate) fn default_now() -> Timestamp {
    at(2030, 6, 1, 10)
}

/// `year-month-day hour:00:00 UTC`.
pub(crate) fn at(year: i32, month: u32, day: u32, hour: u32) -> Timestamp {
    Utc.with_ymd_and_hms(year, month, day, hour, 0, 0)
        .single()
        .expect("valid test instant")
}

/// `year-month-day hour:minute:00 UTC`.
pub(crate) fn at_hm(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Timestamp {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .single()
        .expect("valid test instant")
}

/// A calendar date.
pub(crate) fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("valid test date")
}

/// The history an aggregate is given.
pub(crate) struct Given<A: Aggregate> {
    history: Vec<A::Event>,
    state: A::State,
}

/// Start a scenario from the events already in the stream.
pub(crate) fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = events.into_iter().collect();
    let state = A::fold(A::State::default(), &history);
    Given { history, state }
}

impl<A: Aggregate> Given<A> {
    /// Start from a state built some other way (e.g. compacted), keeping no history.
    pub(crate) fn with_state(state: A::State) -> Self {
        Self {
            history: Vec::new(),
            state,
        }
    }

    /// The command to decide.
    pub(crate) fn when(self, command: A::Command) -> When<A> {
        When {
            given: self,
            command,
            now: default_now(),
        }
    }

    /// The state the history folds to.
    pub(crate) fn state(&self) -> &A::State {
        &self.state
    }
}

/// A command about to be decided.
pub(crate) struct When<A: Aggregate> {
    given: Given<A>,
    command: A::Command,
    now: Timestamp,
}

impl<A> When<A>
where
    A: Aggregate,
    A::Event: PartialEq,
    A::State: PartialEq + Debug,
    A::Command: Debug,
{
    /// Decide at this instant instead of [`default_now`].
    pub(crate) fn at(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    fn decide(&self) -> Result<Vec<A::Event>, A::Error> {
        let before = self.given.state.clone();
        let decided = A::decide(&self.given.state, &self.command, self.now);
        assert_eq!(before, self.given.state, "decide must not change the state");
        decided
    }

    fn context(&self) -> String {
        format!(
            "given {:#?}\nwhen {:#?}\nat {}",
            self.given.history, self.command, self.now
        )
    }

    /// The command is accepted and decides exactly `expected`; returns the state after them.
    #[track_caller]
    pub(crate) fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A::State {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match self.decide() {
            Ok(events) => {
                assert_eq!(events, expected, "{}", self.context());
                A::fold(self.given.state, &events)
            }
            Err(error) => panic!(
                "expected events {expected:#?}\nbut got error {error:?}\n{}",
                self.context()
            ),
        }
    }

    /// The command is rejected with exactly `expected`.
    #[track_caller]
    pub(crate) fn then_err(self, expected: A::Error) {
        match self.decide() {
            Ok(events) => panic!(
                "expected error {expected:?}\nbut got events {events:#?}\n{}",
                self.context()
            ),
            Err(error) => assert_eq!(error, expected, "{}", self.context()),
        }
    }

    /// The command is accepted and decides nothing (a replay, or a step overtaken by another).
    #[track_caller]
    pub(crate) fn then_nothing(self) -> A::State {
        self.then([])
    }
}

/// `payload()` then `decode()` gives the event back, also through a JSON string, which
/// `payload_json()` writes; the payload holds no type tag; a newer schema version and an unknown
/// type are rejected; the event is written at its type's current version, and every older version
/// of the type has an upcaster step.
#[track_caller]
pub(crate) fn assert_round_trip<E: DomainEvent + PartialEq>(event: &E) {
    let event_type = event.event_type();
    let payload = event.payload();
    let version = event.schema_version();
    assert_eq!(
        E::current_version(event_type),
        Some(version),
        "{event_type}: written at its type's current version"
    );
    assert_eq!(
        crate::missing_steps::<E>(event_type),
        Vec::<u32>::new(),
        "{event_type}: upcaster steps from every older version"
    );
    assert!(
        payload.is_object(),
        "{event_type}: payload is a JSON object"
    );
    assert!(
        payload.get("type").is_none() && payload.get("data").is_none(),
        "{event_type}: payload is untagged: {payload}"
    );
    assert_eq!(
        E::decode(event_type, version, &payload).as_ref(),
        Ok(event),
        "{event_type}: decode(payload)"
    );
    let stored = serde_json::to_string(&payload).expect("payload serializes");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&event.payload_json()).ok(),
        Some(payload.clone()),
        "{event_type}: payload_json() is payload() as text"
    );
    let reread: serde_json::Value = serde_json::from_str(&stored).expect("payload parses");
    assert_eq!(
        E::decode(event_type, version, &reread).as_ref(),
        Ok(event),
        "{event_type}: decode(parse(stored payload))"
    );
    assert_eq!(
        E::decode(event_type, version + 1, &payload).err(),
        Some(crate::DecodeError::UnsupportedVersion {
            event_type: event_type.to_string(),
            version: version + 1,
        }),
        "{event_type}: a newer schema version is rejected"
    );
    let unknown = format!("{event_type}V2");
    assert_eq!(
        E::decode(&unknown, version, &payload).err(),
        Some(crate::DecodeError::UnknownType(unknown.clone())),
        "{event_type}: an unknown type is rejected"
    );
}
