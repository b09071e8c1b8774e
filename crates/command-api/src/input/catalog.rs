//! The inputs of the catalog's commands: register a lodging (platform admin), submit a listing
//! (any admin, the host), review it, update and close a lodging (its admin).

use domain::lodging::{ApprovalMode, LodgingChanges};
use domain::Tz;
use serde::Serialize;
use serde_json::{Map, Value};

use http_edge::body::Fields;
use http_edge::limits::{self, MAX_TEXT_CHARS};
use http_edge::Problem;

use super::to_u32;

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
    /// `None`: the platform's default (`--platform-fee-bps`).
    pub fee_bps: Option<u32>,
}

/// `POST /listings`: a lodging as a host submits it (no `admin_id`: the host is the caller; no
/// `fee_bps`: the platform sets it on approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmitListing(pub RegisterLodging);

/// `POST /listings/{id}/approve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApproveListing {
    pub fee_bps: Option<u32>,
}

/// `POST /listings/{id}/reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectListing {
    pub reason: String,
}

/// `PATCH /lodgings/{id}`: at least one of the fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateLodging {
    pub name: Option<String>,
    pub nightly_rate: Option<i64>,
    pub rooms: Option<u32>,
    pub max_guests: Option<u32>,
    pub approval_mode: Option<ApprovalMode>,
    pub timezone: Option<Tz>,
}

/// `POST /lodgings/{id}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloseLodging {
    pub reason: String,
}

const APPROVAL_MODES: [&str; 3] = ["manual", "instant", "pay_first"];

fn approval_mode(f: &mut Fields<'_>) -> Option<ApprovalMode> {
    f.optional_choice("approval_mode", &APPROVAL_MODES)
        .and_then(ApprovalMode::parse)
}

fn timezone(f: &mut Fields<'_>) -> Option<Tz> {
    let name = f.optional_text("timezone", 64)?;
    let zone = name.parse::<Tz>().ok();
    if zone.is_none() {
        f.reject(
            "timezone",
            "must be an IANA time zone name, e.g. Asia/Seoul",
        );
    }
    zone
}

fn fee_bps(f: &mut Fields<'_>) -> Option<u32> {
    f.optional_integer("fee_bps", 0, 10_000).map(to_u32)
}

impl RegisterLodging {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        Self::parse_as(body, false)
    }

    /// The fields of a lodging; a listing (`listing`) takes neither `admin_id` nor `fee_bps`.
    fn parse_as(body: &Map<String, Value>, listing: bool) -> Result<Self, Problem> {
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
        let approval_mode = approval_mode(&mut f);
        let (admin_id, fee_bps) = if listing {
            (None, None)
        } else {
            (f.optional_id("admin_id"), fee_bps(&mut f))
        };
        let timezone = timezone(&mut f);
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
            approval_mode: approval_mode.unwrap_or_default(),
            admin_id,
            timezone,
            fee_bps,
        })
    }
}

impl SubmitListing {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        RegisterLodging::parse_as(body, true).map(Self)
    }
}

impl ApproveListing {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        let mut f = Fields::new(body);
        let fee_bps = fee_bps(&mut f);
        f.finish()?;
        Ok(Self { fee_bps })
    }
}

/// A required, non-blank `reason`.
fn reason(body: &Map<String, Value>) -> Result<String, Problem> {
    let mut f = Fields::new(body);
    let reason = f.text("reason", MAX_TEXT_CHARS);
    f.finish()?;
    reason.ok_or_else(|| Problem::bad_request("invalid request fields"))
}

impl RejectListing {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        reason(body).map(|reason| Self { reason })
    }
}

impl CloseLodging {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        reason(body).map(|reason| Self { reason })
    }
}

impl UpdateLodging {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Problem> {
        use limits::{MAX_GUESTS, MAX_NAME_CHARS, MAX_NIGHTLY_RATE, MAX_ROOMS};
        let mut f = Fields::new(body);
        // A change names only what changes: null is not "unchanged", it is refused.
        for (field, value) in body {
            if value.is_null() {
                f.reject(field, "must not be null (leave the field out to keep it)");
            }
        }
        let name = f.optional_text("name", MAX_NAME_CHARS);
        if name.as_deref().is_some_and(http_edge::body::is_blank) {
            f.reject("name", "must not be blank");
        }
        let nightly_rate = f.optional_integer("nightly_rate", 1, MAX_NIGHTLY_RATE);
        let rooms = f.optional_integer("rooms", 1, MAX_ROOMS).map(to_u32);
        let max_guests = f.optional_integer("max_guests", 1, MAX_GUESTS).map(to_u32);
        let approval_mode = approval_mode(&mut f);
        let timezone = timezone(&mut f);
        f.finish()?;
        let update = Self {
            name: name.map(|n| n.trim().to_string()),
            nightly_rate,
            rooms,
            max_guests,
            approval_mode,
            timezone,
        };
        if update == Self::nothing() {
            return Err(Problem::bad_request(
                "nothing to change: give at least one of name, nightly_rate, rooms, max_guests, \
                 approval_mode, timezone",
            ));
        }
        Ok(update)
    }

    fn nothing() -> Self {
        Self {
            name: None,
            nightly_rate: None,
            rooms: None,
            max_guests: None,
            approval_mode: None,
            timezone: None,
        }
    }

    /// The domain's changes, made by `updated_by`.
    #[must_use]
    pub fn changes(&self, updated_by: String) -> LodgingChanges {
        LodgingChanges {
            name: self.name.clone(),
            nightly_rate: self.nightly_rate,
            rooms: self.rooms,
            max_guests: self.max_guests,
            approval_mode: self.approval_mode,
            timezone: self.timezone,
            updated_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn fields(problem: &Problem) -> Vec<&str> {
        problem.errors.iter().map(|e| e.field.as_str()).collect()
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
        assert_eq!(ok.fee_bps, None);
        let bad = RegisterLodging::parse(&object(json!({
            "lodging_id": "bad id*", "name": "", "nightly_rate": -1, "rooms": 0, "currency": "won",
            "approval_mode": "maybe", "fee_bps": 10_001
        })))
        .expect_err("invalid");
        assert_eq!(
            fields(&bad),
            [
                "lodging_id",
                "name",
                "nightly_rate",
                "currency",
                "rooms",
                "approval_mode",
                "fee_bps"
            ]
        );
    }

    #[test]
    fn a_listing_names_neither_its_admin_nor_its_fee() {
        let body = json!({"name": "Car", "nightly_rate": 1, "rooms": 2, "timezone": "UTC"});
        let listing = SubmitListing::parse(&object(body)).expect("valid");
        assert_eq!(listing.0.timezone, Some(Tz::UTC));
        for field in ["admin_id", "fee_bps"] {
            let mut body = object(json!({"name": "Car", "nightly_rate": 1, "rooms": 2}));
            body.insert(field.to_string(), json!("x"));
            let refused = SubmitListing::parse(&body).expect_err(field);
            assert_eq!(fields(&refused), [field]);
        }
    }

    #[test]
    fn an_update_takes_at_least_one_known_field() {
        let none = UpdateLodging::parse(&Map::new()).expect_err("empty");
        assert_eq!(none.status, 400);
        let rooms = UpdateLodging::parse(&object(json!({"rooms": 4}))).expect("rooms");
        assert_eq!(rooms.rooms, Some(4));
        let null =
            UpdateLodging::parse(&object(json!({"rooms": 4, "name": null}))).expect_err("null");
        assert_eq!(fields(&null), ["name"]);
        let bad = UpdateLodging::parse(&object(json!({
            "name": "  ", "nightly_rate": 0, "timezone": "Mars/Base", "admin_id": "x"
        })))
        .expect_err("bad");
        assert_eq!(
            fields(&bad),
            ["name", "nightly_rate", "timezone", "admin_id"]
        );
    }

    #[test]
    fn review_and_close_bodies() {
        assert_eq!(
            ApproveListing::parse(&Map::new()).expect("no fee"),
            ApproveListing { fee_bps: None }
        );
        let fee = ApproveListing::parse(&object(json!({"fee_bps": 250}))).expect("fee");
        assert_eq!(fee.fee_bps, Some(250));
        assert!(RejectListing::parse(&Map::new()).is_err());
        assert!(CloseLodging::parse(&object(json!({"reason": "sold"}))).is_ok());
    }
}
