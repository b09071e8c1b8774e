//! Checking that a stored payload is JSON without building it: [`RawRecordedEvent`]s keep the text,
//! yet must fail to read exactly where parsing it into a `serde_json::Value` would.
//!
//! [`RawRecordedEvent`]: crate::RawRecordedEvent

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Check that `text` is JSON that `serde_json::Value` accepts, failing with the error parsing it
/// would give. Unlike `serde::de::IgnoredAny` (which skips numbers and strings unchecked), every
/// number and string is read as a `Value` reads it, so out-of-range numbers and lone surrogates
/// are refused, and nesting is limited the same way. One oddity is not followed: with serde_json's
/// `raw_value` feature on (it is in this build), a `Value` refuses an object whose first key is
/// serde_json's private token `$serde_json::private::RawValue` unless its value is a string of
/// JSON; this accepts it. Payloads are domain events, whose keys are field names and ids.
pub(crate) fn check(text: &str) -> serde_json::Result<()> {
    serde_json::from_str::<AnyJson>(text).map(|AnyJson| ())
}

/// Any JSON value, read and dropped.
struct AnyJson;

impl<'de> Deserialize<'de> for AnyJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyJson)
    }
}

impl<'de> Visitor<'de> for AnyJson {
    type Value = AnyJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self, A::Error> {
        while items.next_element::<AnyJson>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self, A::Error> {
        while entries.next_key::<AnyJson>()?.is_some() {
            entries.next_value::<AnyJson>()?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    /// What parsing into a `Value` says of `text`: `Ok` or the error's message.
    fn as_value(text: &str) -> Result<(), String> {
        serde_json::from_str::<serde_json::Value>(text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_and_refuses_what_a_value_does_with_the_same_error() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let cases = [
            r#"{"reservation_id":"0b7c","nights":2,"total":-240000,"rate":1.5e3,"ok":true,"note":null}"#,
            r#"{"actions":[{"type":"Send","data":{"to":"lodging"}}],"timers":[]}"#,
            r#"{"text":"é \"x\" \u00e9 \ud83d\ude00 \n"}"#,
            r#"{"a":1,"a":2}"#,
            "18446744073709551616",
            "1e-400",
            "  [1, 2]  ",
            "1e400",
            "-1e400",
            r#""\ud800""#,
            r#""\x""#,
            "\"a\u{1}b\"",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{1:2}"#,
            "{} x",
            "nul",
            "",
            r#"{"a":"#,
            &deep(128),
            &deep(129),
        ];
        for text in cases {
            let checked = check(text).map_err(|e| e.to_string());
            assert_eq!(checked, as_value(text), "on {text:?}");
        }
        assert!(as_value("1e400").is_err() && as_value(&deep(129)).is_err());
    }
}
