//! The typed inputs of the commands, read from JSON bodies with every field checked (400 with
//! `errors: [{field, message}]` when a field is missing, of the wrong type or out of range, or
//! not a field of the request). Each `parse` is where its request's fields are declared: the
//! fields it reads are the ones the body may hold (adding a field is the one line that reads it).
//! Rules that need more than one field or stored data (dates ordered, lodging known...) are the
//! domain's and answer 422.

use domain::lodging::ApprovalMode;
use domain::{Stay, Tz};
use serde::Serialize;
use serde_json::{Map, Value};

use http_edge::body::Fields;
use http_edge::limits::{self, MAX_TEXT_CHARS};
use http_edge::Problem;

/// `POST /lodgings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterLodging {
    /// `None`: the id is generated (from the Idempotency-Key when one is given).
    pub lodging_id: Option<String>,
    pub name: String,
    pub nightly_rate: i64,
    pub currency: String,
    pub rooms: u32,
    pub max_guests: u32,
    pub approval_mode: ApprovalMode,
    /// `None`: the registering admin.
    pub admin_id: Option<String>,
    /// An IANA time zone name; `None`: the service's default (`--default-timezone`).
    pub timezone: Option<Tz>,
}

/// `POST /reservations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestReservation {
    pub lodging_id: String,
    pub stay: Stay,
}

/// `POST /reservations/{id}/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelReservation {
    pub reason: String,
}

/// `POST /management/requests/{id}/approve` (the body, if any, carries nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApproveRequest;

/// `POST /payments/{id}/retry` (the body, if any, carries nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetryPayment;

/// `POST /management/requests/{id}/reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectRequest {
    pub reason: String,
}

fn to_u32(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

impl RegisterLodging {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        use limits::{
            DEFAULT_CURRENCY, DEFAULT_MAX_GUESTS, MAX_GUESTS, MAX_NAME_CHARS, MAX_NIGHTLY_RATE,
            MAX_ROOMS,
        };
        let mut f = Fields::new(body);
        let lodging_id = f.optional_id("lodging_id");
        let name = f.text("name", MAX_NAME_CHARS);
        let nightly_rate = f.integer("nightly_rate", 0, MAX_NIGHTLY_RATE);
        let currency = f.optional_text("currency", 3);
        if let Some(code) = &currency {
            if !limits::is_currency(code) {
                f.reject(
                    "currency",
                    "must be an active ISO 4217 currency code, e.g. KRW",
                );
            }
        }
        let rooms = f.integer("rooms", 1, MAX_ROOMS);
        let max_guests = f.optional_integer("max_guests", 1, MAX_GUESTS);
        let approval_mode = match f.optional_choice("approval_mode", &["manual", "instant"]) {
            Some("instant") => ApprovalMode::Instant,
            _ => ApprovalMode::Manual,
        };
        let admin_id = f.optional_id("admin_id");
        let timezone = f.optional_text("timezone", 64).and_then(|name| {
            let zone = name.parse::<Tz>().ok();
            if zone.is_none() {
                f.reject(
                    "timezone",
                    "must be an IANA time zone name, e.g. Asia/Seoul",
                );
            }
            zone
        });
        f.finish()?;
        let (Some(name), Some(nightly_rate), Some(rooms)) = (name, nightly_rate, rooms) else {
            return Err(Problem::bad_request("invalid request fields"));
        };
        Ok(Self {
            lodging_id,
            name: name.trim().to_string(),
            nightly_rate,
            currency: currency.unwrap_or_else(|| DEFAULT_CURRENCY.to_string()),
            rooms: to_u32(rooms),
            max_guests: max_guests.map_or(DEFAULT_MAX_GUESTS, to_u32),
            approval_mode,
            admin_id,
            timezone,
        })
    }
}

impl ApproveRequest {
    /// The body carries no field (`{}` or empty).
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        Fields::new(body).finish().map(|()| Self)
    }
}

impl RetryPayment {
    /// The body carries no field (`{}` or empty).
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        Fields::new(body).finish().map(|()| Self)
    }
}

impl RequestReservation {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        let mut f = Fields::new(body);
        let lodging_id = f.id("lodging_id");
        let check_in = f.date("check_in");
        let check_out = f.date("check_out");
        let guests = f.integer("guests", 1, limits::MAX_GUESTS);
        f.finish()?;
        let (Some(lodging_id), Some(check_in), Some(check_out), Some(guests)) =
            (lodging_id, check_in, check_out, guests)
        else {
            return Err(Problem::bad_request("invalid request fields"));
        };
        Ok(Self {
            lodging_id,
            stay: Stay {
                check_in,
                check_out,
                guests: to_u32(guests),
            },
        })
    }
}

impl CancelReservation {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        let mut f = Fields::new(body);
        let reason = f.optional_text("reason", MAX_TEXT_CHARS);
        f.finish()?;
        Ok(Self {
            reason: reason.unwrap_or_else(|| "cancelled by the customer".to_string()),
        })
    }
}

impl RejectRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        let mut f = Fields::new(body);
        let reason = f.text("reason", MAX_TEXT_CHARS);
        f.finish()?;
        reason
            .map(|reason| Self { reason })
            .ok_or_else(|| Problem::bad_request("invalid request fields"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn lodging_defaults_apply_and_bad_fields_are_named() {
        let ok = RegisterLodging::parse(&object(
            json!({"name": "Hanok", "nightly_rate": 120000, "rooms": 3}),
        ));
        let ok = ok.expect("valid");
        assert_eq!(
            (ok.currency.as_str(), ok.max_guests, ok.approval_mode),
            ("KRW", 2, ApprovalMode::Manual)
        );
        let bad = RegisterLodging::parse(&object(json!({
            "lodging_id": "bad id*", "name": "", "nightly_rate": -1, "rooms": 0, "currency": "won",
            "approval_mode": "maybe"
        })))
        .expect_err("invalid");
        let named: Vec<&str> = bad.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            named,
            [
                "lodging_id",
                "name",
                "nightly_rate",
                "currency",
                "rooms",
                "approval_mode"
            ]
        );
    }

    #[test]
    fn reservation_needs_every_field() {
        let bad =
            RequestReservation::parse(&object(json!({"guests": "two"}))).expect_err("invalid");
        assert_eq!(bad.errors.len(), 4);
        let ok = RequestReservation::parse(&object(json!({
            "lodging_id": "l-1", "check_in": "2030-01-01", "check_out": "2030-01-03", "guests": 2
        })))
        .expect("valid");
        assert_eq!(ok.stay.nights(), 2);
    }

    #[test]
    fn every_body_refuses_fields_it_does_not_take() {
        let stay = json!({
            "lodging_id": "l-1", "check_in": "2030-01-01", "check_out": "2030-01-03", "guests": 2,
            "rooms": 2
        });
        let lodging = json!({"name": "Hanok", "nightly_rate": 1, "rooms": 3, "rate": 5});
        let refused: Vec<(Problem, &str)> = vec![
            (
                RequestReservation::parse(&object(stay)).expect_err("rooms"),
                "rooms",
            ),
            (
                RegisterLodging::parse(&object(lodging)).expect_err("rate"),
                "rate",
            ),
            (
                CancelReservation::parse(&object(json!({"why": "x"}))).expect_err("why"),
                "why",
            ),
            (
                RejectRequest::parse(&object(json!({"reason": "full", "note": 1})))
                    .expect_err("note"),
                "note",
            ),
            (
                ApproveRequest::parse(&object(json!({"reason": "ok"}))).expect_err("reason"),
                "reason",
            ),
            (
                RetryPayment::parse(&object(json!({"now": true}))).expect_err("now"),
                "now",
            ),
        ];
        for (problem, field) in refused {
            let named: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!((problem.status, named), (400, vec![field]));
        }
        assert!(ApproveRequest::parse(&Map::new()).is_ok());
        assert!(RetryPayment::parse(&Map::new()).is_ok());
    }

    #[test]
    fn reject_needs_a_reason_and_cancel_has_a_default() {
        assert_eq!(
            RejectRequest::parse(&Map::new())
                .expect_err("missing")
                .status,
            400
        );
        assert!(!CancelReservation::parse(&Map::new())
            .expect("default")
            .reason
            .is_empty());
    }
}
