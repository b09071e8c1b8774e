use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{LogError, Position};

/// Expected version of a stream when appending. Versions are 0-based: the first event of a stream
/// has version 0, so `Exact(n)` means "the last event in the stream has version n".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    Any,
    NoStream,
    Exact(u64),
}

impl ExpectedVersion {
    /// The expectation matching a stream whose last version is `current`.
    #[must_use]
    pub fn from_current(current: StreamVersion) -> Self {
        current.map_or(Self::NoStream, Self::Exact)
    }
}

/// Version of a stream's last event; `None` for a stream that does not exist.
pub type StreamVersion = Option<u64>;

/// Who caused an event and why: carried from the command to every event it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    /// Who or what caused it: `customer:c-1`, `admin:a-1`, `saga`, `payment-worker`...
    pub actor: String,
}

/// An event to append: type + JSON payload + metadata. The store adds version, position,
/// `recorded_at` and the hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub data: Payload,
    pub metadata: EventMetadata,
}

/// A new event's payload: one JSON value, held as its text, which is what every store writes. The
/// repository makes it from the text serde_json just wrote for a domain event ([`Payload::written`]:
/// no `serde_json::Value` in between, and no second pass to check it); anything else starts from text
/// that is checked ([`Payload::from_json`]) or from a `Value` (`From`).
#[derive(Debug, Clone)]
pub struct Payload(String);

impl Payload {
    /// The payload whose JSON text is `text`; an error if `text` is not one JSON value.
    pub fn from_json(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<&serde_json::value::RawValue>(&text)?;
        Ok(Self(text))
    }

    /// A payload serde_json wrote (one JSON value by construction), taken as it is.
    pub(crate) fn written(text: String) -> Self {
        Self(text)
    }

    /// The JSON text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    #[must_use]
    pub fn into_text(self) -> String {
        self.0
    }

    /// The payload parsed.
    #[must_use]
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.text()).expect("a payload is one JSON value")
    }
}

impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Self {
        Self::written(value.to_string())
    }
}

/// Serialized as the JSON value it holds (not as a string).
impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        Ok(Self(String::from(Box::<str>::from(raw))))
    }
}

/// Two payloads are equal when they hold the same JSON value (however it is spaced or ordered).
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text() || self.to_value() == other.to_value()
    }
}

/// An event as recorded in the log, its payload as `D`: a [`RecordedEvent`] (parsed JSON) or a
/// [`RawRecordedEvent`] (the stored text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded<D> {
    pub event_id: Uuid,
    pub stream: String,
    pub version: u64,
    pub position: Position,
    pub event_type: String,
    pub schema_version: u32,
    pub data: D,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
    /// hex SHA-256 of (previous event's hash in this stream, or empty) + this event's canonical bytes.
    pub hash: String,
}

/// An event as recorded in the log, its payload parsed.
pub type RecordedEvent = Recorded<serde_json::Value>;

/// A recorded event whose payload is still the JSON text the log holds (see
/// [`EventLog::read_all`](crate::EventLog::read_all)), always text `serde_json::Value`
/// parses: a reader that decodes payloads into its own types skips building a `serde_json::Value`
/// per event, which costs more than the typed decoding (every object is an `IndexMap` here, as
/// `preserve_order` is on in the whole build). [`RawRecordedEvent::parse`] builds the `Value`.
pub type RawRecordedEvent = Recorded<String>;

impl<D> Recorded<D> {
    /// The same event with its payload turned by `f`.
    pub fn map_data<E>(self, f: impl FnOnce(D) -> E) -> Recorded<E> {
        Recorded {
            event_id: self.event_id,
            stream: self.stream,
            version: self.version,
            position: self.position,
            event_type: self.event_type,
            schema_version: self.schema_version,
            data: f(self.data),
            metadata: self.metadata,
            recorded_at: self.recorded_at,
            hash: self.hash,
        }
    }
}

impl<D> Recorded<D> {
    /// Everything but the payload.
    #[must_use]
    pub fn without_data(&self) -> Recorded<()> {
        Recorded {
            event_id: self.event_id,
            stream: self.stream.clone(),
            version: self.version,
            position: self.position,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            data: (),
            metadata: self.metadata.clone(),
            recorded_at: self.recorded_at,
            hash: self.hash.clone(),
        }
    }
}

impl RawRecordedEvent {
    /// The same event with its payload parsed into a `serde_json::Value`; text that does not parse
    /// (which a log never hands out) is `Corrupt`.
    pub fn parse(self) -> Result<RecordedEvent, LogError> {
        let data = serde_json::from_str(&self.data).map_err(|e| {
            LogError::Corrupt(format!("data of event at position {}: {e}", self.position))
        })?;
        Ok(self.map_data(|_| data))
    }
}

impl From<RecordedEvent> for RawRecordedEvent {
    fn from(event: RecordedEvent) -> Self {
        event.map_data(|data| data.to_string())
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Version of the stream's last event after the append.
    pub last_version: u64,
    /// Global position of the last event written (or of the stream's last event if all were duplicates).
    pub position: Position,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Payload;

    #[test]
    fn a_payload_is_its_json_value_as_text() {
        let payload = Payload::from(json!({"n": 1, "s": "a \"b\""}));
        assert_eq!(payload.text(), r#"{"n":1,"s":"a \"b\""}"#);
        // Serialized as the value it holds, not as a string, and read back the same.
        let wrapped = serde_json::to_string(&json!({ "data": payload })).unwrap();
        assert_eq!(wrapped, r#"{"data":{"n":1,"s":"a \"b\""}}"#);
        let back: serde_json::Value = serde_json::from_str(&wrapped).unwrap();
        let read: Payload = serde_json::from_value(back["data"].clone()).unwrap();
        assert_eq!(read, payload);
        // Equal as values, whatever the spacing.
        assert_eq!(
            Payload::from_json(r#"{ "s": "a \"b\"", "n": 1 }"#.into()).unwrap(),
            payload
        );
        assert!(Payload::from_json("{\"n\":".into()).is_err());
        assert!(Payload::from_json("1 2".into()).is_err());
    }
}
