//! The persisted shape of domain events and how it evolves: each event type's current schema
//! version, the upcaster chain that brings an older payload up to it, and decoding a stored
//! (type, version, payload) back into the typed event, from a parsed `serde_json::Value` or from
//! JSON text.
//!
//! Owns: [`DomainEvent`] (with [`impl_domain_event!`] for the tagged enums), [`Upcaster`],
//! [`DecodeError`], [`decode_json`]. A payload change is a new version of that one event type plus
//! one [`Upcaster`] step from the old version; logs already written stay readable.
//! Must not: know streams or contexts (see [`crate::events`] for the one decode entry over them).

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The persisted shape of a domain event: a type name plus a JSON payload, kept apart from the enum
/// so events can evolve (a schema version per event type, upcasting in [`DomainEvent::decode`]).
pub trait DomainEvent: Clone + Send + Sync + std::fmt::Debug + Sized + 'static {
    /// The upcaster chains of this enum's event types: for each type, one step from every version
    /// before its current one. Empty while every type is at its first version.
    const UPCASTERS: &'static [Upcaster] = &[];

    /// The contract name seen by auditors and read models, e.g. `ReservationRequested`.
    fn event_type(&self) -> &'static str;

    /// The current schema version of `event_type`; `None` if it is not one of this enum's types.
    fn current_version(event_type: &str) -> Option<u32>;

    /// The schema version this event is written with: its type's current version.
    fn schema_version(&self) -> u32;

    /// The JSON payload (without the type tag).
    fn payload(&self) -> Value;

    /// [`DomainEvent::payload`] as JSON text, written straight from the typed event (no `Value` in
    /// between, which costs more to build and free than the text): the same JSON value, its fields
    /// in the enum's order (`payload().to_string()`'s text where serde_json preserves order).
    fn payload_json(&self) -> String;

    /// Decode a payload that is at its type's current version (no upcasting).
    fn decode_current(event_type: &str, payload: &Value) -> Result<Self, DecodeError>;

    /// Rebuild an event from its stored type, schema version and payload: an older version is
    /// brought up to the current one by the type's [`Upcaster`] steps, in order; a version newer
    /// than the code knows is refused ([`DecodeError::UnsupportedVersion`]). Version 0, which no
    /// code writes but which has always been read, reads as version 1.
    fn decode(event_type: &str, schema_version: u32, payload: &Value) -> Result<Self, DecodeError> {
        let current = Self::current_version(event_type)
            .ok_or_else(|| DecodeError::UnknownType(event_type.to_string()))?;
        let schema_version = schema_version.max(1);
        if schema_version == current {
            return Self::decode_current(event_type, payload);
        }
        if schema_version > current {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_string(),
                version: schema_version,
            });
        }
        let upcast = upcast(
            Self::UPCASTERS,
            event_type,
            schema_version,
            current,
            payload.clone(),
        )?;
        Self::decode_current(event_type, &upcast)
    }
}

/// One step of an event type's upcaster chain: its payload at version `from`, rewritten as the
/// payload of version `from + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from: u32,
    /// The rewrite; an `Err` says why this payload cannot be brought up (it is then malformed).
    pub step: fn(Value) -> Result<Value, String>,
}

/// Bring `payload` of `event_type` from version `from` up to `to`, one step at a time, in order.
/// A missing step means the code cannot read that version: [`DecodeError::UnsupportedVersion`].
pub fn upcast(
    upcasters: &[Upcaster],
    event_type: &str,
    from: u32,
    to: u32,
    mut payload: Value,
) -> Result<Value, DecodeError> {
    for version in from..to {
        let step = upcasters
            .iter()
            .find(|u| u.event_type == event_type && u.from == version)
            .ok_or_else(|| DecodeError::UnsupportedVersion {
                event_type: event_type.to_string(),
                version: from,
            })?;
        payload = (step.step)(payload).map_err(|message| DecodeError::Malformed {
            event_type: event_type.to_string(),
            message: format!("upcasting from version {version}: {message}"),
        })?;
    }
    Ok(payload)
}

/// The versions of `event_type` that `E` has no upcaster step for (between 1 and its current
/// version): empty for a complete chain.
pub fn missing_steps<E: DomainEvent>(event_type: &str) -> Vec<u32> {
    let current = E::current_version(event_type).unwrap_or(1);
    (1..current)
        .filter(|v| {
            !E::UPCASTERS
                .iter()
                .any(|u| u.event_type == event_type && u.from == *v)
        })
        .collect()
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
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
/// event. A payload of its type's current version is decoded straight from the text as the tagged
/// enum the domain persists (`{"type": .., "data": ..}`, see [`impl_domain_event`]). Whatever does
/// not decode that way (an older version, to upcast, or a newer one, an unknown type, a malformed
/// payload, a repeated field, of which a `Value` keeps the last) is handed to `E::decode` parsed,
/// so it is decoded, upcast or refused exactly as there, with the same error (the projector's
/// `text_payloads_decode_as_parsed_ones_do` holds the two ways together).
pub fn decode_json<E: DomainEvent + DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    payload_json: &str,
) -> Result<E, DecodeError> {
    let tagged = format!(r#"{{"type":"{event_type}","data":{payload_json}}}"#);
    // Only a type that names the decoded variant is taken: one with quotes in it, which would not be
    // quoted right above, cannot pass as another. And only at the variant's current version: an
    // older payload that happens to fit today's shape is still upcast.
    match serde_json::from_str::<E>(&tagged) {
        Ok(event)
            if event.event_type() == event_type && event.schema_version() == schema_version =>
        {
            return Ok(event)
        }
        _ => {}
    }
    let payload = serde_json::from_str(payload_json).map_err(|e| DecodeError::Malformed {
        event_type: event_type.to_string(),
        message: e.to_string(),
    })?;
    E::decode(event_type, schema_version, &payload)
}

/// The payload in `tagged`, the JSON text of an event of `event_type` as its enum serializes
/// (`{"type":"<event_type>","data":<payload>}`, see [`impl_domain_event`]): the text between the
/// two, or `{}` for a variant without data, as [`DomainEvent::payload`] takes it from the parsed
/// value. The mirror of [`decode_json`]'s wrapping.
#[doc(hidden)]
pub fn untagged_payload(event_type: &str, mut tagged: String) -> String {
    let prefix_len = r#"{"type":"","data":"#.len() + event_type.len();
    let framed = tagged.len() > prefix_len
        && tagged.ends_with('}')
        && tagged.strip_prefix(r#"{"type":""#).is_some_and(|rest| {
            rest.strip_prefix(event_type)
                .is_some_and(|rest| rest.starts_with(r#"","data":"#))
        });
    if framed {
        tagged.truncate(tagged.len() - 1);
        return tagged.split_off(prefix_len);
    }
    // Not framed that way (a variant without data serializes as `{"type":".."}`): as `payload`.
    let mut value: Value =
        serde_json::from_str(&tagged).expect("the serializer's own output parses");
    value
        .get_mut("data")
        .map(Value::take)
        .unwrap_or_else(|| serde_json::json!({}))
        .to_string()
}

/// Implements [`DomainEvent`] for an enum tagged `#[serde(tag = "type", content = "data")]`.
/// Each variant is an event type at version 1, or at the version written after it
/// (`Variant = 2`); `upcasters: PATH` names the enum's [`Upcaster`] steps, which must cover every
/// version before each type's current one.
#[macro_export]
macro_rules! impl_domain_event {
    ($ty:ty { $($variant:ident $(= $version:literal)?),* $(,)? } $(upcasters: $upcasters:expr)?) => {
        impl $crate::DomainEvent for $ty {
            $(const UPCASTERS: &'static [$crate::Upcaster] = $upcasters;)?

            fn event_type(&self) -> &'static str {
                match self { $(Self::$variant { .. } => stringify!($variant),)* }
            }
            fn current_version(event_type: &str) -> Option<u32> {
                match event_type {
                    $(stringify!($variant) => Some({ let _v = 1_u32; $(let _v = $version;)? _v }),)*
                    _ => None,
                }
            }
            fn schema_version(&self) -> u32 {
                match self {
                    $(Self::$variant { .. } => { let _v = 1_u32; $(let _v = $version;)? _v })*
                }
            }
            fn payload(&self) -> serde_json::Value {
                let mut tagged = serde_json::to_value(self).expect("domain events always serialize");
                tagged.get_mut("data").map(serde_json::Value::take).unwrap_or_else(|| serde_json::json!({}))
            }
            fn payload_json(&self) -> String {
                let tagged = serde_json::to_string(self).expect("domain events always serialize");
                $crate::untagged_payload(self.event_type(), tagged)
            }
            fn decode_current(
                event_type: &str,
                payload: &serde_json::Value,
            ) -> Result<Self, $crate::DecodeError> {
                let tagged = serde_json::json!({ "type": event_type, "data": payload });
                serde_json::from_value(tagged).map_err(|e| $crate::DecodeError::Malformed {
                    event_type: event_type.to_string(),
                    message: e.to_string(),
                })
            }
        }
    };
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
