//! Request bodies: JSON objects (400 problem when malformed; past [`MAX_BODY_BYTES`], enforced by
//! [`crate::layers::apply`], 413), and [`Fields`], which reads typed fields and collects every
//! invalid one so a client learns all its mistakes at once. The fields a request takes are the
//! ones its reader reads: any other field of the body is refused at [`Fields::finish`] (400 naming
//! it), so adding a field to a request is the one line that reads it.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::problem::{FieldError, Problem};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parse a body as a JSON object (empty or whitespace-only means `{}`).
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Problem::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(Problem::bad_request(format!("malformed JSON: {e}"))),
    }
}

/// At most this many unknown fields are named in one answer (a body may hold thousands).
const MAX_UNKNOWN_REPORTED: usize = 10;

/// Typed reads of an object's fields; every failure is remembered and reported together, and
/// [`Fields::finish`] refuses every field of the object that was not read.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<FieldError>,
    /// The fields read so far: the fields this request takes.
    known: Vec<String>,
}

impl<'a> Fields<'a> {
    #[must_use]
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
            known: Vec::new(),
        }
    }

    fn fail<T>(&mut self, field: &str, message: impl Into<String>) -> Option<T> {
        self.errors.push(FieldError::new(field, message));
        None
    }

    /// The value of `field`, treating JSON `null` as absent; `field` becomes a known field.
    fn present(&mut self, field: &str) -> Option<&'a Value> {
        if !self.known.iter().any(|k| k == field) {
            self.known.push(field.to_string());
        }
        self.object.get(field).filter(|v| !v.is_null())
    }

    /// A required, non-blank string of at most `max_chars` characters.
    pub fn text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        if self.present(field).is_none() {
            return self.fail(field, "is required");
        }
        self.optional_text(field, max_chars)
    }

    /// An optional string; if present it must be non-blank and at most `max_chars` characters.
    pub fn optional_text(&mut self, field: &str, max_chars: usize) -> Option<String> {
        let value = self.present(field)?;
        let Some(text) = value.as_str() else {
            return self.fail(field, "must be a string");
        };
        if is_blank(text) {
            return self.fail(field, "must not be blank");
        }
        if text.chars().count() > max_chars {
            return self.fail(field, format!("must be at most {max_chars} characters"));
        }
        Some(text.to_string())
    }

    /// An optional identifier: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    pub fn optional_id(&mut self, field: &str) -> Option<String> {
        let id = self.optional_text(field, 64)?;
        if is_identifier(&id) {
            Some(id)
        } else {
            self.fail(field, "must be 1 to 64 of the characters A-Z a-z 0-9 . _ -")
        }
    }

    /// A required identifier (see [`Fields::optional_id`]).
    pub fn id(&mut self, field: &str) -> Option<String> {
        if self.present(field).is_none() {
            return self.fail(field, "is required");
        }
        self.optional_id(field)
    }

    /// A required calendar date `YYYY-MM-DD`.
    pub fn date(&mut self, field: &str) -> Option<NaiveDate> {
        let Some(value) = self.present(field) else {
            return self.fail(field, "is required");
        };
        let parsed = value.as_str().and_then(parse_date);
        match parsed {
            Some(date) => Some(date),
            None => self.fail(field, "must be a date YYYY-MM-DD"),
        }
    }

    /// A required integer in `min..=max`.
    pub fn integer(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        if self.present(field).is_none() {
            return self.fail(field, "is required");
        }
        self.optional_integer(field, min, max)
    }

    /// An optional integer in `min..=max`.
    pub fn optional_integer(&mut self, field: &str, min: i64, max: i64) -> Option<i64> {
        let value = self.present(field)?;
        match integral(value) {
            Some(n) if (i128::from(min)..=i128::from(max)).contains(&n) => i64::try_from(n).ok(),
            Some(_) => self.fail(field, format!("must be between {min} and {max}")),
            None => self.fail(field, "must be an integer"),
        }
    }

    /// An optional string that must be one of `allowed`.
    pub fn optional_choice(
        &mut self,
        field: &str,
        allowed: &[&'static str],
    ) -> Option<&'static str> {
        let value = self.present(field)?;
        let found = value
            .as_str()
            .and_then(|s| allowed.iter().find(|a| **a == s));
        match found {
            Some(choice) => Some(choice),
            None => self.fail(field, format!("must be one of: {}", allowed.join(", "))),
        }
    }

    /// Record a failure found by a caller's own check.
    pub fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Ok` if every read succeeded and the body holds no field that was not read, else 400
    /// listing the invalid and the unknown fields.
    pub fn finish(mut self) -> Result<(), Problem> {
        let takes = if self.known.is_empty() {
            "this request takes no field".to_string()
        } else {
            format!("this request takes: {}", self.known.join(", "))
        };
        let unknown: Vec<FieldError> = self
            .object
            .keys()
            .filter(|key| !self.known.iter().any(|k| k == *key))
            .take(MAX_UNKNOWN_REPORTED)
            .map(|key| {
                FieldError::new(
                    key.as_str(),
                    format!("is not a field of this request ({takes})"),
                )
            })
            .collect();
        self.errors.extend(unknown);
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::invalid_fields(self.errors))
        }
    }
}

/// A serde `deserialize_with` for an `i64` field that takes what JSON Schema calls an integer: `2.0`
/// as well as `2` (serde alone refuses the first).
pub fn json_integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    let value = Value::deserialize(deserializer)?;
    integral(&value)
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("expected an integer, got {value}")))
}

/// The integer a JSON number stands for (JSON Schema counts `2.0` as an integer).
fn integral(value: &Value) -> Option<i128> {
    /// Beyond 2^53 a float no longer holds every integer exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if let Some(n) = value.as_i64() {
        return Some(i128::from(n));
    }
    if let Some(n) = value.as_u64() {
        return Some(i128::from(n));
    }
    let float = value.as_f64()?;
    #[allow(clippy::cast_possible_truncation)]
    let whole = (float.fract() == 0.0 && float.abs() < EXACT).then_some(float as i128);
    // An integral float too large to be exact is still an integer, just out of any range.
    whole.or_else(|| (float.fract() == 0.0).then_some(i128::MAX))
}

/// Only white space, as ECMAScript's `\s` (what a JSON Schema `pattern` of `\S` rejects).
#[must_use]
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(
            c,
            '\u{9}'..='\u{d}'
                | ' '
                | '\u{a0}'
                | '\u{1680}'
                | '\u{2000}'..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
        )
    })
}

/// 1 to 64 of `A-Z a-z 0-9 . _ -`: safe in stream names and URL paths.
#[must_use]
pub fn is_identifier(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Strict `YYYY-MM-DD`.
#[must_use]
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_invalid_field_is_reported_together() {
        let body =
            object(json!({"lodging_id": 7, "check_in": "2030-02-30", "guests": 0, "extra": true}));
        let mut fields = Fields::new(&body);
        assert_eq!(fields.id("lodging_id"), None);
        assert_eq!(fields.date("check_in"), None);
        assert_eq!(fields.date("check_out"), None);
        assert_eq!(fields.integer("guests", 1, 1000), None);
        let problem = fields.finish().expect_err("invalid");
        let named: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            named,
            ["lodging_id", "check_in", "check_out", "guests", "extra"]
        );
        assert_eq!(problem.status, 400);
        let extra = &problem.errors[4].message;
        assert!(
            extra.contains("not a field") && extra.contains("guests"),
            "{extra}"
        );
    }

    #[test]
    fn a_field_no_read_asked_for_is_refused_by_name() {
        let body = object(json!({"reason": "late", "rooms": 2}));
        let mut fields = Fields::new(&body);
        assert_eq!(fields.optional_text("reason", 10).as_deref(), Some("late"));
        let problem = fields.finish().expect_err("rooms is unknown");
        assert_eq!(problem.status, 400);
        assert_eq!(problem.errors.len(), 1);
        assert_eq!(problem.errors[0].field, "rooms");
        assert!(problem.detail.contains("rooms"), "{}", problem.detail);

        let empty = object(json!({"note": null}));
        let problem = Fields::new(&empty).finish().expect_err("takes nothing");
        assert_eq!(problem.errors[0].field, "note");
        assert!(Fields::new(&Map::new()).finish().is_ok());

        let many: Map<String, Value> = (0..500).map(|i| (format!("f{i}"), json!(i))).collect();
        let problem = Fields::new(&many).finish().expect_err("unknown");
        assert_eq!(problem.errors.len(), MAX_UNKNOWN_REPORTED);
    }

    #[test]
    fn valid_fields_read_as_typed_values() {
        let body = object(
            json!({"id": "lod-1", "day": "2030-01-05", "n": 3, "mode": "instant", "note": null}),
        );
        let mut fields = Fields::new(&body);
        assert_eq!(fields.id("id").as_deref(), Some("lod-1"));
        assert_eq!(fields.date("day"), NaiveDate::from_ymd_opt(2030, 1, 5));
        assert_eq!(fields.integer("n", 1, 5), Some(3));
        assert_eq!(
            fields.optional_choice("mode", &["manual", "instant"]),
            Some("instant")
        );
        assert_eq!(fields.optional_text("note", 10), None);
        assert_eq!(fields.integer("n", 1, 5), Some(3));
        assert!(fields.finish().is_ok());
    }

    #[test]
    fn dates_must_be_strict_iso() {
        assert!(parse_date("2030-1-5").is_none());
        assert!(parse_date("05/01/2030").is_none());
        assert!(parse_date("2030-13-01").is_none());
        assert!(parse_date("2030-12-31").is_some());
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse_object(b"").expect("empty is {}").is_empty());
        assert_eq!(parse_object(b"[1]").expect_err("array").status, 400);
        assert!(parse_object(b"{\"a\":")
            .expect_err("cut")
            .detail
            .contains("malformed JSON"));
        assert!(!is_identifier("*") && !is_identifier("") && is_identifier("seoul-01"));
        assert!(is_blank(" \u{feff}\u{3000}\n") && !is_blank(" x ") && !is_blank("\u{85}"));
    }
}
