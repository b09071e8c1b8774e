//! The typed inputs of the commands, read from JSON bodies with every field checked (400 with
//! `errors: [{field, message}]` when a field is missing, of the wrong type or out of range, or
//! not a field of the request). Each `parse` is where its request's fields are declared: the
//! fields it reads are the ones the body may hold (adding a field is the one line that reads it).
//! Rules that need more than one field or stored data (dates ordered, lodging known...) are the
//! domain's and answer 422.

mod catalog;
mod customer;

use domain::Stay;
use serde::Serialize;
use serde_json::{Map, Value};

use http_edge::body::Fields;
use http_edge::limits::{self, MAX_TEXT_CHARS};
use http_edge::Problem;

pub use catalog::{
    ApproveListing, CloseLodging, RegisterLodging, RejectListing, SubmitListing, UpdateLodging,
};
pub use customer::{EraseCustomer, EraseMe, RecordProfile};

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

/// `POST /payouts/{id}/retry`: the platform admin tries a deferred or failed payout again (the body,
/// if any, carries nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetryPayout;

impl RetryPayout {
    /// The body carries no field (`{}` or empty).
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        Fields::new(body).finish().map(|()| Self)
    }
}

/// `POST /management/requests/{id}/complete` (the body, if any, carries nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompleteStay;

/// `POST /management/requests/{id}/cancel`: its admin cancels a confirmed stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CancelStay {
    pub reason: String,
}

impl CancelStay {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        RejectRequest::parse(body).map(|r| Self { reason: r.reason })
    }
}

/// `POST /management/requests/{id}/reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectRequest {
    pub reason: String,
}

pub(crate) fn to_u32(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
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

impl CompleteStay {
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
        let rooms = f.optional_integer("rooms", 1, limits::MAX_ROOMS);
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
                rooms: rooms.map_or(1, to_u32),
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
    fn reservation_needs_every_field() {
        let bad =
            RequestReservation::parse(&object(json!({"guests": "two"}))).expect_err("invalid");
        assert_eq!(bad.errors.len(), 4);
        let ok = RequestReservation::parse(&object(json!({
            "lodging_id": "l-1", "check_in": "2030-01-01", "check_out": "2030-01-03", "guests": 2
        })))
        .expect("valid");
        assert_eq!((ok.stay.nights(), ok.stay.rooms), (2, 1));
        let seats = RequestReservation::parse(&object(json!({
            "lodging_id": "l-1", "check_in": "2030-01-01", "check_out": "2030-01-02", "guests": 3,
            "rooms": 3
        })))
        .expect("valid");
        assert_eq!(seats.stay.rooms, 3);
        let none = RequestReservation::parse(&object(json!({
            "lodging_id": "l-1", "check_in": "2030-01-01", "check_out": "2030-01-02", "guests": 1,
            "rooms": 0
        })))
        .expect_err("no room");
        assert_eq!(none.errors[0].field, "rooms");
    }

    #[test]
    fn every_body_refuses_fields_it_does_not_take() {
        let stay = json!({
            "lodging_id": "l-1", "check_in": "2030-01-01", "check_out": "2030-01-03", "guests": 2,
            "pets": 2
        });
        let lodging = json!({"name": "Hanok", "nightly_rate": 1, "rooms": 3, "rate": 5});
        let refused: Vec<(Problem, &str)> = vec![
            (
                RequestReservation::parse(&object(stay)).expect_err("pets"),
                "pets",
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
