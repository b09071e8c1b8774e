//! The inbox (`GET /me/notifications`): one entry per status change of a customer's reservation,
//! and per new request, payment and cancellation on a lodging's desk, in log order. Built by its
//! own consumer of the log (the notifier, checkpoint [`NOTIFIER_ID`]) into an [`InboxStore`]: a
//! [`ProjectionTarget`] of its own, so the views' rebuild does not carry it.
//!
//! Like the views: a pure projection ([`rules`]) over what the store remembers of each reservation
//! ([`Tracked`]); the adapters load and save. Every entry's id follows from the position of the
//! event that made it and its kind, so a replay writes nothing twice and a rebuild equals the live
//! inbox. Messages hold no personal data (lodging ids and dates only).

pub mod rules;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{ApprovalMode, Page, PageRequest, ProjectionTarget, ReservationStatus, ViewError};

pub use crate::mongo::MongoInbox;
pub use crate::sqlite::SqliteInbox;

/// The checkpoint name of the notifier (the inbox's consumer of the log).
pub const NOTIFIER_ID: &str = "notifier";

/// Whose inbox an entry is in: a customer's, or the desk of a lodging (its admins').
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Customer,
    Lodging,
}

impl Audience {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Lodging => "lodging",
        }
    }
}

/// What an entry tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The customer's reservation changed status.
    StatusChanged,
    /// A request reached the lodging's desk (a `pay_first` one once paid).
    NewRequest,
    /// A stay at the lodging was paid.
    PaymentReceived,
    /// A stay at the lodging was cancelled.
    Cancelled,
}

impl NoticeKind {
    /// The inbox it goes to.
    #[must_use]
    pub fn audience(self) -> Audience {
        match self {
            Self::StatusChanged => Audience::Customer,
            Self::NewRequest | Self::PaymentReceived | Self::Cancelled => Audience::Lodging,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StatusChanged => "status_changed",
            Self::NewRequest => "new_request",
            Self::PaymentReceived => "payment_received",
            Self::Cancelled => "cancelled",
        }
    }

    fn code(self) -> u64 {
        match self {
            Self::StatusChanged => 0,
            Self::NewRequest => 1,
            Self::PaymentReceived => 2,
            Self::Cancelled => 3,
        }
    }
}

/// One inbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// `{position}-{kind}`: one event makes at most one entry of a kind.
    pub id: String,
    pub audience: Audience,
    /// The customer id or the lodging id, by `audience`.
    pub recipient: String,
    pub reservation_id: Uuid,
    pub lodging_id: String,
    pub kind: NoticeKind,
    /// The reservation's status once the event happened.
    pub status: ReservationStatus,
    pub message: String,
    /// When the log recorded the event.
    pub created_at: DateTime<Utc>,
    pub position: u64,
    /// The id of the event that made it (a webhook's `id`).
    #[serde(default)]
    pub event_id: Uuid,
}

impl InboxEntry {
    /// The inbox's order (newest first = highest first): unique per entry.
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.position
            .saturating_mul(4)
            .saturating_add(self.kind.code())
    }
}

/// What the notifier remembers of a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    pub reservation_id: Uuid,
    pub customer_id: String,
    pub lodging_id: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub rooms: u32,
    pub status: ReservationStatus,
    /// Position of the last event that changed it.
    pub position: u64,
}

/// How a lodging's desk takes requests, as the notifier remembers it (a `pay_first` request
/// reaches the desk only once paid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desk {
    pub lodging_id: String,
    pub approval_mode: ApprovalMode,
    /// Position of the last event that changed it.
    pub position: u64,
}

/// Whose entries to list: a customer's, or those of some lodgings' desks (`None` = every lodging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxFilter {
    Customer(String),
    Lodgings(Option<Vec<String>>),
}

/// The inbox's store: the notifier projects into it, `GET /me/notifications` reads it. Every
/// adapter passes `conformance::inbox`.
#[async_trait]
pub trait InboxStore: ProjectionTarget {
    /// Entries that pass `filter`, newest first.
    async fn entries(
        &self,
        filter: &InboxFilter,
        page: &PageRequest,
    ) -> Result<Page<InboxEntry>, ViewError>;

    /// The customers' entries (one per status change of a reservation) with a `seq` above
    /// `after` and at most `through`, oldest first, at most `limit`: what the webhooks deliver, in
    /// log order. (`through` spares a reader that can take entries only up to a point, like the
    /// dispatcher behind the views, reading and parsing the ones past it, again at each look.)
    async fn status_changes_after(
        &self,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, ViewError>;
}
