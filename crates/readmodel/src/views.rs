//! The view documents served by the query API: ReservationList (customer view), ManagementList
//! (admin view), the lodging catalog, the payouts to hosts, and customers' contact details (sealed).
//! Field names and enum strings are the API contract.

use chrono::{DateTime, NaiveDate, Utc};
use domain::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use domain::lodging::{ApprovalMode, ListingStatus};
pub use domain::reservation::ReservationStatus;

/// Where a request stands at the lodging's approval desk (ReservationList `approval_status`,
/// ManagementList `request_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    /// A `pay_first` request holds its rooms at the desk while it is paid and decided (the
    /// ReservationList's word for it; the ManagementList shows a paid one as pending).
    Held,
    Approved,
    Rejected,
    Withdrawn,
    Expired,
    /// The approved stay was completed (checked out): the ManagementList's last word on it.
    Completed,
}

impl ApprovalStatus {
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Held,
        Self::Approved,
        Self::Completed,
        Self::Rejected,
        Self::Withdrawn,
        Self::Expired,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Held => "held",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
            Self::Completed => "completed",
        }
    }

    /// Parse the API string (`pending`, `approved`, ...).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Where the payment of a reservation stands, as customers and admins see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    None,
    Requested,
    /// Deferred: the gateway was overloaded or failing, a retry is scheduled.
    Pending,
    Completed,
    Failed,
    Refunded,
    Voided,
}

/// Whether money is owed back to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    None,
    Pending,
    Refunded,
}

/// Where the payout of a stay to its host stands (ReservationList `payout_status`, a payout's
/// `status`, which is never `none`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// No payout scheduled (every stay until it completes).
    #[default]
    None,
    /// Scheduled, or tried again at the platform's request: the worker sends it.
    Scheduled,
    /// Deferred: the gateway was down or refused for now, a retry is due.
    Pending,
    Sent,
    Failed,
}

impl PayoutStatus {
    /// The statuses a payout may be in (and be filtered by).
    pub const OF_PAYOUTS: [Self; 4] = [Self::Scheduled, Self::Pending, Self::Sent, Self::Failed];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Scheduled => "scheduled",
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// Parse the status of a payout (`scheduled`, `pending`, `sent`, `failed`; not `none`).
    #[must_use]
    pub fn parse_of_payout(text: &str) -> Option<Self> {
        Self::OF_PAYOUTS.into_iter().find(|s| s.as_str() == text)
    }
}

/// Every reservation status string of the API, for filter validation.
pub const RESERVATION_STATUSES: [ReservationStatus; 10] = [
    ReservationStatus::Requested,
    ReservationStatus::Approved,
    ReservationStatus::PaymentPending,
    ReservationStatus::Paid,
    ReservationStatus::Completed,
    ReservationStatus::Confirmed,
    ReservationStatus::Rejected,
    ReservationStatus::Cancelled,
    ReservationStatus::Expired,
    ReservationStatus::PaymentFailed,
];

/// Parse a reservation status string of the API (`requested`, `payment_pending`, ...).
#[must_use]
pub fn parse_reservation_status(text: &str) -> Option<ReservationStatus> {
    RESERVATION_STATUSES
        .into_iter()
        .find(|s| s.as_str() == text)
}

/// ReservationList: one document per reservation, what its customer polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationView {
    pub reservation_id: Uuid,
    pub customer_id: String,
    pub lodging_id: String,
    /// `None` only if the lodging was unknown to the views when the stay was requested.
    pub lodging_name: Option<String>,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
    /// Rooms taken every night (documents stored before stays took several read as one).
    #[serde(default = "domain::one_room")]
    pub rooms: u32,
    pub nights: u32,
    pub total_amount: i64,
    pub currency: String,
    pub status: ReservationStatus,
    pub approval_status: ApprovalStatus,
    pub payment_status: PaymentStatus,
    pub refund_status: RefundStatus,
    /// Where the host's payout of the stay stands (documents stored before payouts read `none`).
    #[serde(default)]
    pub payout_status: PayoutStatus,
    pub status_reason: Option<String>,
    /// When the stay was requested (the event's `recorded_at`).
    pub requested_at: DateTime<Utc>,
    /// `recorded_at` of the last event that changed this document.
    pub updated_at: DateTime<Utc>,
    /// Global log position of the last event that changed this document.
    pub position: u64,
}

/// ManagementList: one document per approval request, what a lodging's admin reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagementView {
    pub reservation_id: Uuid,
    pub lodging_id: String,
    pub customer_id: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
    #[serde(default = "domain::one_room")]
    pub rooms: u32,
    pub request_status: ApprovalStatus,
    /// Pending request: would approving it now fit the calendar (a free room every night).
    /// Approved (or completed) request: `true` (its rooms are its own). Any other: `false`.
    pub available: bool,
    pub payment_status: PaymentStatus,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub position: u64,
}

/// The lodging catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LodgingView {
    pub lodging_id: String,
    pub name: String,
    pub nightly_rate: i64,
    pub currency: String,
    pub rooms: u32,
    pub max_guests: u32,
    pub approval_mode: ApprovalMode,
    pub admin_id: String,
    /// The IANA time zone its dates are read in. Documents stored before lodgings had one were
    /// projected from lodgings that read as the wave-1 zone.
    #[serde(default = "wave1_timezone")]
    pub timezone: Tz,
    /// The platform's fee on its stays, in basis points.
    #[serde(default = "platform_fee_default")]
    pub fee_bps: u32,
    /// Where its listing stands (documents stored before listings were all active).
    #[serde(default)]
    pub status: ListingStatus,
    /// The most rooms any request to it took (stored, not served): a night whose free rooms stay at
    /// or above it cannot change whether a pending request fits.
    #[serde(default = "domain::one_room")]
    pub max_request_rooms: u32,
    pub position: u64,
}

/// A payout to a host: one per completed stay (stream `payout-{reservation_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutView {
    pub reservation_id: Uuid,
    pub lodging_id: String,
    /// Who is paid: the lodging's admin when the stay completed.
    pub host_id: String,
    /// What the customer paid for the stay, less refunds.
    pub gross: i64,
    /// The platform's fee.
    pub fee: i64,
    /// What the host is paid: `gross - fee`.
    pub net: i64,
    pub currency: String,
    /// Scheduled, pending, sent or failed (never `none`).
    pub status: PayoutStatus,
    /// The gateway's reference of the payout, once sent.
    pub gateway_ref: Option<String>,
    /// When the payout was scheduled (the `recorded_at` of `PayoutScheduled`).
    pub scheduled_at: DateTime<Utc>,
    /// When it was sent (the `recorded_at` of `PayoutSent`).
    pub sent_at: Option<DateTime<Utc>>,
    /// Global log position of the last event that changed it.
    pub position: u64,
}

/// A customer's contact details as the views keep them (stream `customer-{customer_id}`): the
/// fields the lodging's admin sees on a request (`guest_name`, `guest_phone`), **sealed** as in the
/// log. The query side opens them with the customer's data key at each read, so no view holds
/// plaintext; `CustomerErased` scrubs them (and the destroyed key would leave them unreadable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerView {
    pub customer_id: String,
    /// The sealed name (`keys::seal` text), `None` without a profile or after erasure.
    pub name: Option<String>,
    /// The sealed phone, likewise.
    pub phone: Option<String>,
    pub erased: bool,
    /// Global log position of the last event that changed it.
    pub position: u64,
}

/// The sums of the payouts in one currency (`GET /payouts/summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutTotals {
    pub currency: String,
    /// How many payouts.
    pub count: u64,
    pub gross: i64,
    pub fee: i64,
    pub net: i64,
}

fn platform_fee_default() -> u32 {
    domain::lodging::PLATFORM_FEE_BPS_DEFAULT
}

fn wave1_timezone() -> Tz {
    domain::WAVE1_TIMEZONE
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ReservationList document as stored before payouts (wave 1 fields, `rooms`, no
    /// `payout_status`).
    pub(crate) fn stored_before_payouts() -> serde_json::Value {
        serde_json::json!({
            "reservation_id": "0190f0a2-0000-7000-8000-000000000001", "customer_id": "c-1",
            "lodging_id": "seoul-1", "lodging_name": "Stay seoul-1", "check_in": "2030-02-01",
            "check_out": "2030-02-03", "guests": 2, "rooms": 1, "nights": 2, "total_amount": 200000,
            "currency": "KRW", "status": "confirmed", "approval_status": "approved",
            "payment_status": "completed", "refund_status": "none", "status_reason": null,
            "requested_at": "2030-01-01T00:00:03Z", "updated_at": "2030-01-01T00:00:09Z",
            "position": 9,
        })
    }

    #[test]
    fn documents_stored_before_payouts_read_payout_status_none() {
        let view: ReservationView =
            serde_json::from_value(stored_before_payouts()).expect("an old document reads");
        assert_eq!(view.payout_status, PayoutStatus::None);
        let written = serde_json::to_value(&view).expect("serialize");
        assert_eq!(written["payout_status"], "none");
    }

    #[test]
    fn payout_statuses_read_only_what_a_payout_can_be() {
        for status in PayoutStatus::OF_PAYOUTS {
            assert_eq!(PayoutStatus::parse_of_payout(status.as_str()), Some(status));
            let text = serde_json::to_value(status).expect("serialize");
            assert_eq!(text, status.as_str());
        }
        assert_eq!(PayoutStatus::parse_of_payout("none"), None);
        assert_eq!(PayoutStatus::default().as_str(), "none");
    }
}
