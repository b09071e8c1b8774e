//! A reservation's history as a table a person can read.

use std::io::Write;

use eventlog::RecordedEvent;
use uuid::Uuid;

/// Print one line per event: position, time, stream@version, type, actor and the payload in short.
pub fn print(out: &mut impl Write, id: Uuid, events: &[RecordedEvent]) -> std::io::Result<()> {
    writeln!(
        out,
        "reservation {id}: {} events across its streams",
        events.len()
    )?;
    writeln!(
        out,
        "{:>8}  {:<24}  {:<22}  {:<26}  {:<22}  details",
        "position", "recorded at", "stream", "event", "actor"
    )?;
    for event in events {
        let stream = short_stream(&event.stream, id);
        writeln!(
            out,
            "{:>8}  {:<24}  {:<22}  {:<26}  {:<22}  {}",
            event.position,
            event.recorded_at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
            format!("{stream}@{}", event.version),
            event.event_type,
            event.metadata.actor,
            details(&event.data),
        )?;
    }
    Ok(())
}

/// `payment-<id>` -> `payment`, `lodging-hanok-1` stays as it is.
fn short_stream(stream: &str, id: Uuid) -> String {
    let suffix = format!("-{id}");
    stream.strip_suffix(&suffix).unwrap_or(stream).to_string()
}

/// The payload's fields as `key=value`, leaving out ids already shown and nested saga inputs.
fn details(data: &serde_json::Value) -> String {
    let Some(fields) = data.as_object() else {
        return data.to_string();
    };
    fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "reservation_id" | "trigger_id" | "input"))
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => format!("{key}={text}"),
            serde_json::Value::Array(items) => format!("{key}=[{} item(s)]", items.len()),
            other => format!("{key}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_are_short_and_skip_ids() {
        let text = details(
            &json!({"reservation_id": "x", "reason": "no room", "amount": 5, "actions": [1, 2]}),
        );
        for part in ["reason=no room", "amount=5", "actions=[2 item(s)]"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!text.contains("reservation_id"), "{text}");
        assert_eq!(text.matches('=').count(), 3, "{text}");
    }

    #[test]
    fn streams_lose_the_reservation_suffix() {
        let id = Uuid::nil();
        assert_eq!(short_stream(&format!("payment-{id}"), id), "payment");
        assert_eq!(short_stream("lodging-hanok-1", id), "lodging-hanok-1");
    }
}
