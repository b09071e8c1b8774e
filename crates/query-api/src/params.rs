//! Query-string parameters, each checked (400 naming the parameter when malformed or out of
//! range). Which parameters a route takes at all is `crate::route_params`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use http_edge::body::{is_identifier, parse_date};
use http_edge::Problem;
use readmodel::PageRequest;

use crate::error::QueryError;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;
pub const DEFAULT_WAIT_MS: u64 = 5_000;
pub const MAX_WAIT_MS: u64 = 30_000;
const MAX_CURSOR_LEN: usize = 1_024;
/// Longest customer id a filter takes (a token's `sub`).
const MAX_CUSTOMER_ID_CHARS: usize = 256;

/// The query string of a request, as name -> value (`route_params` has refused repeated names).
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = QueryError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(map)| Self(map))
            .map_err(|e| Problem::bad_request(format!("malformed query string: {e}")).into())
    }
}

/// Read-your-writes: wait until the views reflect `min_position`, for at most `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinPosition {
    pub position: u64,
    pub wait: Duration,
}

impl Params {
    #[must_use]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    }

    /// The value as given (possibly empty).
    #[must_use]
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A non-empty text value.
    #[must_use]
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// An unsigned integer in `min..=max`.
    /// Present but empty is invalid.
    pub fn number(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, QueryError> {
        let Some(text) = self.0.get(name) else {
            return Ok(None);
        };
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<u64>() {
            Ok(n) if digits && (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(QueryError::parameter(
                name,
                format!("must be an integer from {min} to {max}"),
            )),
        }
    }

    /// An identifier (a lodging id: 1 to 64 of `A-Z a-z 0-9 . _ -`); present but empty is invalid.
    pub fn identifier(&self, name: &str) -> Result<Option<String>, QueryError> {
        match self.raw(name) {
            None => Ok(None),
            Some(text) if is_identifier(text) => Ok(Some(text.to_string())),
            Some(_) => Err(QueryError::parameter(
                name,
                "must be 1 to 64 of the characters A-Z a-z 0-9 . _ -",
            )),
        }
    }

    /// A customer id (a token's `sub`: any non-blank text up to 256 characters).
    pub fn customer_id(&self, name: &str) -> Result<Option<String>, QueryError> {
        match self.raw(name) {
            None => Ok(None),
            Some(text)
                if !text.trim().is_empty() && text.chars().count() <= MAX_CUSTOMER_ID_CHARS =>
            {
                Ok(Some(text.to_string()))
            }
            Some(_) => Err(QueryError::parameter(
                name,
                format!(
                    "must be a customer id: non-blank, at most {MAX_CUSTOMER_ID_CHARS} characters"
                ),
            )),
        }
    }

    /// A calendar date `YYYY-MM-DD`; present but empty is invalid.
    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, QueryError> {
        match self.raw(name) {
            None => Ok(None),
            Some(text) => parse_date(text)
                .map(Some)
                .ok_or_else(|| QueryError::parameter(name, "must be a date YYYY-MM-DD")),
        }
    }

    /// An RFC 3339 timestamp; present but empty is invalid.
    pub fn timestamp(&self, name: &str) -> Result<Option<DateTime<Utc>>, QueryError> {
        let Some(text) = self.raw(name) else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| {
                QueryError::parameter(
                    name,
                    "must be an RFC 3339 timestamp, e.g. 2030-01-02T03:04:05Z",
                )
            })
    }

    /// `limit` (1..=500, default 50).
    pub fn limit(&self) -> Result<u64, QueryError> {
        Ok(self.number("limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT))
    }

    /// `cursor`, as handed out in a previous page's `next_cursor`.
    pub fn cursor(&self) -> Result<Option<String>, QueryError> {
        match self.text("cursor") {
            Some(cursor) if cursor.len() > MAX_CURSOR_LEN => Err(QueryError::parameter(
                "cursor",
                "is not a cursor of this list",
            )),
            other => Ok(other.map(str::to_string)),
        }
    }

    /// `limit` and `cursor` as a view-store page request.
    pub fn page(&self) -> Result<PageRequest, QueryError> {
        let limit = usize::try_from(self.limit()?).unwrap_or(usize::MAX);
        Ok(PageRequest {
            limit,
            cursor: self.cursor()?,
        })
    }

    /// `min_position` and `wait_ms` (0..=30000, default 5000).
    pub fn min_position(&self) -> Result<Option<MinPosition>, QueryError> {
        let wait_ms = self
            .number("wait_ms", 0, MAX_WAIT_MS)?
            .unwrap_or(DEFAULT_WAIT_MS);
        let position = self.number("min_position", 0, u64::MAX)?;
        Ok(position.map(|position| MinPosition {
            position,
            wait: Duration::from_millis(wait_ms),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_refuse_out_of_range() {
        assert_eq!(Params::default().limit().ok(), Some(50));
        assert_eq!(
            Params::from_pairs(&[("limit", "500")]).limit().ok(),
            Some(500)
        );
        for bad in ["0", "501", "-1", "ten", "1.5", "", "+5"] {
            let error = Params::from_pairs(&[("limit", bad)])
                .limit()
                .expect_err(bad);
            assert_eq!(error.to_problem().errors[0].field, "limit");
        }
    }

    #[test]
    fn min_position_waits_default_five_seconds_at_most_thirty() {
        let params = Params::from_pairs(&[("min_position", "12")]);
        let wanted = params.min_position().expect("valid").expect("present");
        assert_eq!((wanted.position, wanted.wait), (12, Duration::from_secs(5)));
        assert!(
            Params::from_pairs(&[("min_position", "1"), ("wait_ms", "30001")])
                .min_position()
                .is_err()
        );
        assert!(Params::from_pairs(&[("min_position", "x")])
            .min_position()
            .is_err());
        assert_eq!(Params::default().min_position().ok(), Some(None));
    }

    #[test]
    fn filters_read_ids_and_dates_strictly() {
        let params = Params::from_pairs(&[
            ("lodging_id", "seoul-1"),
            ("customer_id", "c 1"),
            ("check_in_from", "2030-01-05"),
        ]);
        assert_eq!(
            params.identifier("lodging_id").ok().flatten().as_deref(),
            Some("seoul-1")
        );
        assert_eq!(
            params.customer_id("customer_id").ok().flatten().as_deref(),
            Some("c 1")
        );
        assert_eq!(
            params.date("check_in_from").ok().flatten(),
            NaiveDate::from_ymd_opt(2030, 1, 5)
        );
        for (name, bad) in [
            ("lodging_id", ""),
            ("lodging_id", "a/b"),
            ("customer_id", " "),
        ] {
            let params = Params::from_pairs(&[(name, bad)]);
            let read = if name == "lodging_id" {
                params.identifier(name)
            } else {
                params.customer_id(name)
            };
            assert_eq!(read.expect_err(bad).to_problem().errors[0].field, name);
        }
        for bad in ["", "2030-1-5", "2030-02-30"] {
            let params = Params::from_pairs(&[("check_in_to", bad)]);
            assert!(params.date("check_in_to").is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let at = Params::from_pairs(&[("as_of_time", "2030-01-02T03:04:05+09:00")])
            .timestamp("as_of_time");
        assert_eq!(
            at.ok().flatten().map(|t| t.to_rfc3339()),
            Some("2030-01-01T18:04:05+00:00".into())
        );
        assert!(Params::from_pairs(&[("as_of_time", "")])
            .timestamp("as_of_time")
            .is_err());
        assert!(Params::from_pairs(&[("as_of_time", "yesterday")])
            .timestamp("as_of_time")
            .is_err());
    }
}
