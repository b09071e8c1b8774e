//! The view documents served by the query API: ReservationList (customer view), ManagementList
//! (admin view) and the lodging catalog. Field names and enum strings are the API contract.

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

fn platform_fee_default() -> u32 {
    domain::lodging::PLATFORM_FEE_BPS_DEFAULT
}

fn wave1_timezone() -> Tz {
    domain::WAVE1_TIMEZONE
}
