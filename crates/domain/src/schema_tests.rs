//! Versioned events with a test-only event type whose `Renamed` is at version 3: an upcaster chain
//! of two steps, applied in order, from the parsed payload and from JSON text alike.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{decode_json, missing_steps, upcast, DecodeError, DomainEvent, Upcaster};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum Guest {
    /// v1 `{"name"}`, v2 `{"full_name"}`, v3 `{"full_name", "nights"}`.
    Renamed {
        full_name: String,
        nights: u32,
    },
    Plain {},
}

thread_local! {
    /// The steps run on this thread, by the version each started from.
    static STEPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

fn ran(from: u32) {
    STEPS.with(|s| s.borrow_mut().push(from));
}

fn steps_run() -> Vec<u32> {
    STEPS.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// v1 -> v2: `name` is renamed `full_name`.
fn rename(mut payload: Value) -> Result<Value, String> {
    ran(1);
    let name = payload
        .as_object_mut()
        .and_then(|o| o.remove("name"))
        .ok_or("no name")?;
    payload["full_name"] = name;
    Ok(payload)
}

/// v2 -> v3: `nights` added, 1 for what was written before. Needs v2's `full_name`, so it only
/// works after `rename`.
fn add_nights(mut payload: Value) -> Result<Value, String> {
    ran(2);
    if payload.get("full_name").is_none() {
        return Err("no full_name: not a version 2 payload".into());
    }
    payload["nights"] = json!(1);
    Ok(payload)
}

const GUEST_UPCASTERS: &[Upcaster] = &[
    Upcaster {
        event_type: "Renamed",
        from: 2,
        step: add_nights,
    },
    Upcaster {
        event_type: "Renamed",
        from: 1,
        step: rename,
    },
];

crate::impl_domain_event!(Guest { Renamed = 3, Plain } upcasters: GUEST_UPCASTERS);

fn decoded_both_ways(version: u32, payload: Value) -> Result<Guest, DecodeError> {
    let parsed = Guest::decode("Renamed", version, &payload);
    let parsed_steps = steps_run();
    let text = decode_json::<Guest>("Renamed", version, &payload.to_string());
    assert_eq!(steps_run(), parsed_steps, "the same steps from text");
    assert_eq!(parsed, text, "v{version} {payload}");
    STEPS.with(|s| s.borrow_mut().extend(parsed_steps));
    parsed
}

fn kim(nights: u32) -> Guest {
    Guest::Renamed {
        full_name: "Kim".into(),
        nights,
    }
}

#[test]
fn each_type_says_its_version_and_events_are_written_at_it() {
    assert_eq!(Guest::current_version("Renamed"), Some(3));
    assert_eq!(Guest::current_version("Plain"), Some(1));
    assert_eq!(Guest::current_version("Gone"), None);
    assert_eq!(kim(2).schema_version(), 3);
    assert_eq!(Guest::Plain {}.schema_version(), 1);
    assert!(missing_steps::<Guest>("Renamed").is_empty());
}

#[test]
fn a_version_1_payload_goes_through_both_steps_in_order() {
    assert_eq!(decoded_both_ways(1, json!({"name": "Kim"})), Ok(kim(1)));
    assert_eq!(steps_run(), [1, 2]);
}

#[test]
fn a_version_2_payload_takes_only_the_last_step() {
    assert_eq!(
        decoded_both_ways(2, json!({"full_name": "Kim"})),
        Ok(kim(1))
    );
    assert_eq!(steps_run(), [2]);
}

#[test]
fn the_current_version_decodes_without_any_step() {
    let payload = kim(4).payload();
    assert_eq!(decoded_both_ways(3, payload), Ok(kim(4)));
    assert_eq!(steps_run(), Vec::<u32>::new());
}

#[test]
fn a_step_that_cannot_read_its_payload_makes_it_malformed() {
    assert_eq!(
        decoded_both_ways(1, json!({})),
        Err(DecodeError::Malformed {
            event_type: "Renamed".into(),
            message: "upcasting from version 1: no name".into(),
        })
    );
    assert_eq!(steps_run(), [1]);
}

#[test]
fn a_newer_version_is_refused_and_a_version_without_steps_too() {
    assert_eq!(
        decoded_both_ways(4, kim(1).payload()),
        Err(DecodeError::UnsupportedVersion {
            event_type: "Renamed".into(),
            version: 4
        })
    );
    assert_eq!(steps_run(), Vec::<u32>::new());
    assert_eq!(
        upcast(&[], "Renamed", 1, 3, json!({"name": "Kim"})),
        Err(DecodeError::UnsupportedVersion {
            event_type: "Renamed".into(),
            version: 1
        })
    );
}

#[test]
fn version_0_reads_as_version_1() {
    assert_eq!(decoded_both_ways(0, json!({"name": "Kim"})), Ok(kim(1)));
    assert_eq!(steps_run(), [1, 2]);
}

#[test]
fn a_payload_of_todays_shape_under_an_old_version_is_still_upcast() {
    // Written as v2 (no `nights`), but it happens to carry a `nights`: the step decides, not the shape.
    let payload = json!({"full_name": "Kim", "nights": 9});
    assert_eq!(decoded_both_ways(2, payload), Ok(kim(1)));
    assert_eq!(steps_run(), [2]);
}

#[test]
fn payload_json_is_the_payloads_text() {
    // A field whose text looks like the frame around it changes nothing.
    let tricky = Guest::Renamed {
        full_name: r#"Kim","data":{"x":1}}"#.into(),
        nights: 2,
    };
    for event in [kim(3), tricky, Guest::Plain {}] {
        let text = event.payload_json();
        assert_eq!(
            serde_json::from_str::<Value>(&text).ok(),
            Some(event.payload())
        );
    }
    // In the enum's field order (what a `Value` keeps when serde_json preserves order, as in the
    // binaries, where MongoDB's driver turns that on).
    assert_eq!(kim(3).payload_json(), r#"{"full_name":"Kim","nights":3}"#);
    assert_eq!(Guest::Plain {}.payload_json(), "{}");
    // Text not framed as the enum writes it (a variant without data) is read as `payload` does.
    assert_eq!(
        crate::untagged_payload("Unit", r#"{"type":"Unit"}"#.into()),
        "{}"
    );
    assert_eq!(
        crate::untagged_payload("Other", r#"{"type":"Renamed","data":{"n":1}}"#.into()),
        r#"{"n":1}"#
    );
}
