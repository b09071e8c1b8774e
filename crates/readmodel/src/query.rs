//! What the query API asks the views: filters, pages with opaque cursors, and dead letters.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ViewError;
use crate::views::{
    parse_reservation_status, ApprovalMode, ApprovalStatus, ListingStatus, PayoutStatus,
    ReservationStatus,
};

/// Largest page a store answers, whatever the caller asks for.
pub const MAX_PAGE: usize = 1000;

/// Which reservations to list (ReservationList), newest request first. Every condition given
/// must hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReservationFilter {
    /// Only this customer's reservations.
    pub customer_id: Option<String>,
    /// Only reservations of these lodgings (an admin's lodgings); `None` = every lodging,
    /// `Some(vec![])` = none.
    pub lodging_ids: Option<Vec<String>>,
    /// Only reservations of this lodging (combined with `lodging_ids` by AND).
    pub lodging_id: Option<String>,
    /// Only this `status` (`requested`, `confirmed`, ...).
    pub status: Option<String>,
    /// Only stays checking in on or after this date.
    pub check_in_from: Option<NaiveDate>,
    /// Only stays checking in on or before this date (inclusive).
    pub check_in_to: Option<NaiveDate>,
}

impl ReservationFilter {
    /// The lodgings the reservation must belong to: the intersection of `lodging_ids` and
    /// `lodging_id`. `None` = any lodging.
    #[must_use]
    pub fn lodgings(&self) -> Option<Vec<String>> {
        intersect(self.lodging_ids.as_ref(), self.lodging_id.as_ref())
    }

    /// The status filter, checked against the contract.
    pub fn parsed_status(&self) -> Result<Option<ReservationStatus>, ViewError> {
        self.status
            .as_deref()
            .map(|text| {
                parse_reservation_status(text).ok_or_else(|| {
                    ViewError::InvalidFilter(format!("unknown reservation status {text:?}"))
                })
            })
            .transpose()
    }
}

/// Which lodgings of the catalog to list, by lodging id. Every condition given must hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LodgingFilter {
    /// Only lodgings whose name contains this (case-insensitive for ASCII letters).
    pub name_contains: Option<String>,
    pub approval_mode: Option<ApprovalMode>,
    /// Only lodgings of this admin (`admin_id`: the host, or the admin named at registration).
    pub admin_id: Option<String>,
    /// Only lodgings whose listing is in this status; `None` = any.
    pub status: Option<ListingStatus>,
}

/// Which approval requests to list (ManagementList), oldest request first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only requests of these lodgings (an admin's lodgings); `None` = every lodging.
    pub lodging_ids: Option<Vec<String>>,
    /// Only requests of this lodging (combined with `lodging_ids` by AND).
    pub lodging_id: Option<String>,
    /// Only this `request_status` (`pending`, `approved`, ...).
    pub status: Option<String>,
}

impl RequestFilter {
    /// The status filter, checked against the contract.
    pub fn parsed_status(&self) -> Result<Option<ApprovalStatus>, ViewError> {
        self.status
            .as_deref()
            .map(|text| {
                ApprovalStatus::parse(text).ok_or_else(|| {
                    ViewError::InvalidFilter(format!("unknown request status {text:?}"))
                })
            })
            .transpose()
    }

    /// The lodgings the request must belong to: the intersection of `lodging_ids` and `lodging_id`.
    /// `None` = any lodging.
    #[must_use]
    pub fn lodgings(&self) -> Option<Vec<String>> {
        intersect(self.lodging_ids.as_ref(), self.lodging_id.as_ref())
    }
}

/// Which payouts to list (newest scheduled first) or sum up. Every condition given must hold (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayoutFilter {
    /// Only payouts of these lodgings (an admin's lodgings); `None` = every lodging,
    /// `Some(vec![])` = none.
    pub lodging_ids: Option<Vec<String>>,
    /// Only payouts of this lodging (combined with `lodging_ids` by AND).
    pub lodging_id: Option<String>,
    /// Only payouts to this host.
    pub host_id: Option<String>,
    /// Only this `status` (`scheduled`, `pending`, `sent`, `failed`).
    pub status: Option<String>,
}

impl PayoutFilter {
    /// The lodgings the payout must belong to: the intersection of `lodging_ids` and `lodging_id`.
    /// `None` = any lodging.
    #[must_use]
    pub fn lodgings(&self) -> Option<Vec<String>> {
        intersect(self.lodging_ids.as_ref(), self.lodging_id.as_ref())
    }

    /// The status filter, checked against the contract (`none` is no payout's status).
    pub fn parsed_status(&self) -> Result<Option<PayoutStatus>, ViewError> {
        self.status
            .as_deref()
            .map(|text| {
                PayoutStatus::parse_of_payout(text).ok_or_else(|| {
                    ViewError::InvalidFilter(format!("unknown payout status {text:?}"))
                })
            })
            .transpose()
    }
}

/// A scope of lodgings (`None` = all) narrowed to one asked-for lodging.
fn intersect(scope: Option<&Vec<String>>, asked: Option<&String>) -> Option<Vec<String>> {
    match (scope, asked) {
        (None, None) => None,
        (Some(ids), None) => Some(ids.clone()),
        (None, Some(id)) => Some(vec![id.clone()]),
        (Some(ids), Some(id)) => Some(ids.iter().filter(|i| *i == id).cloned().collect()),
    }
}

/// A page request: at most `limit` items (clamped to 1..=[`MAX_PAGE`]) after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// The `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl PageRequest {
    #[must_use]
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }

    /// The limit a store applies.
    #[must_use]
    pub fn clamped_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// One page of a list; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// An event a projector could not handle, parked so the projection goes on (R8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub position: u64,
    pub event_id: Uuid,
    pub stream: String,
    pub event_type: String,
    pub error: String,
}

/// Which list a cursor belongs to, so a cursor of one list is refused by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorKind {
    Reservations,
    Requests,
    Lodgings,
    Payouts,
    Inbox,
    Deliveries,
}

impl CursorKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Reservations => "r",
            Self::Requests => "q",
            Self::Lodgings => "l",
            Self::Payouts => "p",
            Self::Inbox => "n",
            Self::Deliveries => "w",
        }
    }
}

/// Encode a sort key as an opaque cursor.
pub(crate) fn encode_cursor(kind: CursorKind, key: &str) -> String {
    hex::encode(format!("{}:{key}", kind.tag()))
}

/// Decode a cursor handed out by [`encode_cursor`] for the same list: hex (either case) of the list's
/// tag, `:` and a key of the list's shape (the OpenAPI document publishes the same grammar).
pub(crate) fn decode_cursor(kind: CursorKind, cursor: &str) -> Result<String, ViewError> {
    let bad = || ViewError::BadCursor(format!("{cursor:?} is not a cursor of this list"));
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (tag, key) = text.split_once(':').ok_or_else(bad)?;
    if tag != kind.tag() || !kind.takes(key) {
        return Err(bad());
    }
    Ok(key.to_string())
}

impl CursorKind {
    /// Whether `key` has the shape of this list's sort keys: a log position (1-19 digits) or a
    /// lodging id (up to 64 of `A-Za-z0-9._-`, or empty).
    fn takes(self, key: &str) -> bool {
        match self {
            Self::Reservations
            | Self::Requests
            | Self::Payouts
            | Self::Inbox
            | Self::Deliveries => {
                (1..=19).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_digit())
            }
            Self::Lodgings => {
                key.len() <= 64
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            }
        }
    }
}

/// The cursor of a page of webhook deliveries (`GET /webhooks/{id}/deliveries`) after `seq`.
#[must_use]
pub fn encode_delivery_cursor(seq: u64) -> String {
    encode_seq_cursor(CursorKind::Deliveries, seq)
}

/// The `seq` a cursor of [`encode_delivery_cursor`] stands for (`BadCursor` otherwise).
pub fn decode_delivery_cursor(cursor: &str) -> Result<u64, ViewError> {
    decode_seq_cursor(CursorKind::Deliveries, cursor)
}

/// Encode a numeric sort key (a log position) as a cursor.
pub(crate) fn encode_seq_cursor(kind: CursorKind, seq: u64) -> String {
    encode_cursor(kind, &seq.to_string())
}

/// Decode a numeric sort key cursor.
pub(crate) fn decode_seq_cursor(kind: CursorKind, cursor: &str) -> Result<u64, ViewError> {
    decode_cursor(kind, cursor)?
        .parse()
        .map_err(|_| ViewError::BadCursor(format!("{cursor:?} is not a cursor of this list")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_lists() {
        let cursor = encode_seq_cursor(CursorKind::Reservations, 42);
        assert_eq!(decode_seq_cursor(CursorKind::Reservations, &cursor), Ok(42));
        assert!(matches!(
            decode_seq_cursor(CursorKind::Requests, &cursor),
            Err(ViewError::BadCursor(_))
        ));
        assert!(matches!(
            decode_seq_cursor(CursorKind::Reservations, "zz"),
            Err(ViewError::BadCursor(_))
        ));
        let lodging = encode_cursor(CursorKind::Lodgings, "seoul-1.a");
        assert_eq!(
            decode_cursor(CursorKind::Lodgings, &lodging),
            Ok("seoul-1.a".to_string())
        );
        assert_eq!(
            decode_cursor(CursorKind::Lodgings, &lodging.to_uppercase()),
            Ok("seoul-1.a".to_string())
        );
    }

    #[test]
    fn cursors_refuse_keys_of_another_shape() {
        for key in ["+5", "", "12345678901234567890", "1 2"] {
            let cursor = encode_cursor(CursorKind::Reservations, key);
            assert!(
                matches!(
                    decode_seq_cursor(CursorKind::Reservations, &cursor),
                    Err(ViewError::BadCursor(_))
                ),
                "{key:?}"
            );
        }
        for key in ["a:b", "a\nb", &"x".repeat(65)] {
            let cursor = encode_cursor(CursorKind::Lodgings, key);
            assert!(
                matches!(
                    decode_cursor(CursorKind::Lodgings, &cursor),
                    Err(ViewError::BadCursor(_))
                ),
                "{key:?}"
            );
        }
    }

    #[test]
    fn request_filter_intersects_lodgings() {
        let filter = RequestFilter {
            lodging_ids: Some(vec!["a".into(), "b".into()]),
            lodging_id: Some("c".into()),
            status: None,
        };
        assert_eq!(filter.lodgings(), Some(vec![]));
        let filter = RequestFilter {
            lodging_id: Some("b".into()),
            ..filter
        };
        assert_eq!(filter.lodgings(), Some(vec!["b".to_string()]));
    }

    #[test]
    fn reservation_filter_intersects_lodgings() {
        let scoped = ReservationFilter {
            lodging_ids: Some(vec!["a".into(), "b".into()]),
            lodging_id: Some("c".into()),
            ..ReservationFilter::default()
        };
        assert_eq!(scoped.lodgings(), Some(vec![]));
        let asked = ReservationFilter {
            lodging_id: Some("b".into()),
            ..scoped.clone()
        };
        assert_eq!(asked.lodgings(), Some(vec!["b".to_string()]));
        assert_eq!(ReservationFilter::default().lodgings(), None);
    }

    #[test]
    fn payout_filter_intersects_lodgings_and_reads_payout_statuses() {
        let filter = PayoutFilter {
            lodging_ids: Some(vec!["a".into(), "b".into()]),
            lodging_id: Some("b".into()),
            status: Some("pending".into()),
            ..PayoutFilter::default()
        };
        assert_eq!(filter.lodgings(), Some(vec!["b".to_string()]));
        assert_eq!(filter.parsed_status(), Ok(Some(PayoutStatus::Pending)));
        for bad in ["none", "deferred", "SENT", ""] {
            let filter = PayoutFilter {
                status: Some(bad.into()),
                ..PayoutFilter::default()
            };
            assert!(
                matches!(filter.parsed_status(), Err(ViewError::InvalidFilter(_))),
                "{bad:?}"
            );
        }
        let cursor = encode_seq_cursor(CursorKind::Payouts, 9);
        assert_eq!(decode_seq_cursor(CursorKind::Payouts, &cursor), Ok(9));
        assert!(decode_seq_cursor(CursorKind::Reservations, &cursor).is_err());
    }

    #[test]
    fn unknown_status_is_an_invalid_filter() {
        let filter = ReservationFilter {
            status: Some("lost".into()),
            ..ReservationFilter::default()
        };
        assert!(matches!(
            filter.parsed_status(),
            Err(ViewError::InvalidFilter(_))
        ));
        let filter = ReservationFilter {
            status: Some("payment_pending".into()),
            ..ReservationFilter::default()
        };
        assert_eq!(
            filter.parsed_status(),
            Ok(Some(ReservationStatus::PaymentPending))
        );
    }
}
