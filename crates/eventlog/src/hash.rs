//! The per-stream hash chain and the tamper check over it.
//!
//! `hash(event) = hex(sha256(prev_hash || canonical_bytes(event)))`, where `prev_hash` is the hex hash of
//! the previous event of the same stream (empty for version 0). The canonical bytes are the fields below,
//! each written as a big-endian `u64` length followed by its UTF-8 bytes, in this order:
//! stream, version (decimal), event_id (hyphenated lowercase), event_type, schema_version (decimal),
//! data (compact JSON), metadata (compact JSON of [`EventMetadata`]), recorded_at (RFC 3339, UTC, microseconds).
//! The global position is not part of the hash: it is assigned by the store, and EventStoreDB only
//! knows it after the write.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{EventLog, EventLogExt, EventMetadata, LogError, Position, RecordedEvent};

/// The fields of one event that the chain covers, in their stored (serialized) form.
pub struct CanonicalEvent<'a> {
    pub stream: &'a str,
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    /// Compact JSON text of the payload, exactly as stored.
    pub data_json: &'a str,
    /// Compact JSON text of the [`EventMetadata`], exactly as stored.
    pub metadata_json: &'a str,
    /// [`format_recorded_at`] of the recording instant.
    pub recorded_at: &'a str,
}

/// The hash of `event` chained onto `prev_hash` (empty string for the first event of a stream).
#[must_use]
pub fn chain_hash(prev_hash: &str, event: &CanonicalEvent<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    let mut uuid_buf = Uuid::encode_buffer();
    let (mut version_buf, mut schema_buf) = ([0u8; 20], [0u8; 20]);
    let fields: [&[u8]; 8] = [
        event.stream.as_bytes(),
        decimal(event.version, &mut version_buf),
        event
            .event_id
            .hyphenated()
            .encode_lower(&mut uuid_buf)
            .as_bytes(),
        event.event_type.as_bytes(),
        decimal(u64::from(event.schema_version), &mut schema_buf),
        event.data_json.as_bytes(),
        event.metadata_json.as_bytes(),
        event.recorded_at.as_bytes(),
    ];
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hex::encode(hasher.finalize())
}

/// `n` in decimal ASCII, written into `buf` without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[start..];
        }
    }
}

/// The canonical text form of `recorded_at` (RFC 3339, UTC, microseconds, `Z`).
#[must_use]
pub fn format_recorded_at(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parse a `recorded_at` written by [`format_recorded_at`].
pub fn parse_recorded_at(text: &str) -> Result<DateTime<Utc>, LogError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| LogError::Corrupt(format!("bad recorded_at {text:?}: {e}")))
}

/// `now` truncated to what [`format_recorded_at`] keeps, so a recorded event hashes the same after a round trip.
#[must_use]
pub fn recording_instant(now: DateTime<Utc>) -> DateTime<Utc> {
    let micros = now.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(now)
}

/// Compact JSON text of metadata, the form that is stored and hashed.
pub fn metadata_json(metadata: &EventMetadata) -> Result<String, LogError> {
    serde_json::to_string(metadata).map_err(|e| LogError::Corrupt(format!("metadata: {e}")))
}

/// Recompute the hash of a recorded event from its decoded fields.
///
/// Exact for every payload whose JSON text survives a parse/print round trip (all integers and strings;
/// the stores write `serde_json`'s own output, so this holds for everything they recorded).
pub fn recompute_hash(prev_hash: &str, event: &RecordedEvent) -> Result<String, LogError> {
    let data_json = serde_json::to_string(&event.data)
        .map_err(|e| LogError::Corrupt(format!("data of {}: {e}", event.event_id)))?;
    let metadata_json = metadata_json(&event.metadata)?;
    let recorded_at = format_recorded_at(&event.recorded_at);
    Ok(chain_hash(
        prev_hash,
        &CanonicalEvent {
            stream: &event.stream,
            version: event.version,
            event_id: event.event_id,
            event_type: &event.event_type,
            schema_version: event.schema_version,
            data_json: &data_json,
            metadata_json: &metadata_json,
            recorded_at: &recorded_at,
        },
    ))
}

/// Result of walking every stream's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// `true` when every event checked out.
    pub ok: bool,
    /// Events whose hash was recomputed (up to and including the first bad one).
    pub events_checked: u64,
    /// The first event found broken, if any.
    pub first_bad: Option<BadEvent>,
    /// Whether the keyed MAC chain and the signed head were checked too (docs/decisions/0019); `false`
    /// where only the per-stream SHA-256 chains were (they can be recomputed by whoever writes the log).
    #[serde(default)]
    pub keyed: bool,
    /// Events before this position carry no MAC: written before the log had a key (only the per-stream
    /// chains vouch for them). `None` when every event carries one (or the check was not keyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unkeyed_before: Option<u64>,
    /// The position of the signed head record checked against the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_position: Option<u64>,
    /// The position of the auditor's anchor checked against the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_position: Option<u64>,
}

/// An event whose stored hash, version or position does not check out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadEvent {
    pub stream: String,
    pub version: u64,
    pub position: Position,
    pub reason: String,
}

impl VerifyReport {
    pub(crate) fn good(events_checked: u64) -> Self {
        Self {
            ok: true,
            events_checked,
            first_bad: None,
            keyed: false,
            unkeyed_before: None,
            head_position: None,
            anchor_position: None,
        }
    }

    pub(crate) fn bad(events_checked: u64, first_bad: BadEvent) -> Self {
        Self {
            ok: false,
            first_bad: Some(first_bad),
            ..Self::good(events_checked)
        }
    }
}

impl BadEvent {
    pub(crate) fn new(stream: &str, version: u64, position: Position, reason: String) -> Self {
        Self {
            stream: stream.to_owned(),
            version,
            position,
            reason,
        }
    }

    fn of(event: &RecordedEvent, reason: String) -> Self {
        Self::new(&event.stream, event.version, event.position, reason)
    }
}

/// Walk the global log of any adapter (via `read_all`) and check every stream's chain:
/// versions contiguous from 0, and each stored hash equal to the recomputed one.
/// Memory grows with the number of streams (one hash per stream is kept).
pub async fn verify_log(log: &dyn EventLog) -> Result<VerifyReport, LogError> {
    const PAGE: usize = 1_000;
    let mut heads: HashMap<String, (u64, String)> = HashMap::new();
    let mut checked = 0u64;
    let mut from = 0;
    loop {
        let page = log.read_all_parsed(from, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(VerifyReport::good(checked));
        };
        from = last.position + 1;
        for event in &page {
            checked += 1;
            let (expected_version, prev_hash) = match heads.get(&event.stream) {
                Some((version, hash)) => (version + 1, hash.as_str()),
                None => (0, ""),
            };
            if event.version != expected_version {
                let reason = format!(
                    "version {} where {expected_version} was expected",
                    event.version
                );
                return Ok(VerifyReport::bad(checked, BadEvent::of(event, reason)));
            }
            if recompute_hash(prev_hash, event)? != event.hash {
                let bad = BadEvent::of(event, "hash mismatch".into());
                return Ok(VerifyReport::bad(checked, bad));
            }
            heads.insert(event.stream.clone(), (event.version, event.hash.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(data_json: &'a str, recorded_at: &'a str) -> CanonicalEvent<'a> {
        CanonicalEvent {
            stream: "s-1",
            version: 0,
            event_id: Uuid::nil(),
            event_type: "Added",
            schema_version: 1,
            data_json,
            metadata_json: "{}",
            recorded_at,
        }
    }

    #[test]
    fn hash_depends_on_every_field_and_on_the_previous_hash() {
        let at = "2026-01-01T00:00:00.000000Z";
        let base = chain_hash("", &sample("{\"n\":1}", at));
        assert_eq!(base.len(), 64);
        assert_ne!(base, chain_hash("", &sample("{\"n\":2}", at)));
        assert_ne!(base, chain_hash("x", &sample("{\"n\":1}", at)));
        assert_ne!(
            base,
            chain_hash("", &sample("{\"n\":1}", "2026-01-01T00:00:00.000001Z"))
        );
        // Length prefixes keep field boundaries apart.
        let mut shifted = sample("{\"n\":1}", at);
        shifted.stream = "s-";
        shifted.event_type = "1Added";
        assert_ne!(base, chain_hash("", &shifted));
    }

    #[test]
    fn decimal_matches_to_string() {
        for n in [0, 7, 10, 12_345, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn recorded_at_round_trips_at_microsecond_precision() {
        let now = recording_instant(Utc::now());
        let text = format_recorded_at(&now);
        assert_eq!(parse_recorded_at(&text).ok(), Some(now));
        assert!(parse_recorded_at("yesterday").is_err());
    }
}
