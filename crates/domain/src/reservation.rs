//! Reservation (stream `reservation-{reservation_id}`): the core domain.
//!
//! status: `requested -> approved -> (payment_pending) -> confirmed -> completed`; on a `pay_first`
//! lodging `requested -> (payment_pending) -> paid -> confirmed -> completed`; or `rejected`,
//! `expired`, `payment_failed`, `cancelled`. Commands replayed by the saga are no-ops, never errors.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{
    impl_domain_event, local_date, Aggregate, ReservationId, RoomLimits, Stay, StayError,
    Timestamp, Tz,
};

/// What the reservation needs to know about the lodging, looked up before deciding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LodgingTerms {
    pub lodging_id: String,
    pub nightly_rate: i64,
    pub currency: String,
    pub max_guests: u32,
    /// The lodging's rooms: a request takes at most all of them.
    pub rooms: u32,
    /// The lodging's time zone: "in the past" is read in it.
    pub timezone: Tz,
}

/// The facts recorded when a stay is requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationRequested {
    pub reservation_id: ReservationId,
    pub customer_id: String,
    pub lodging_id: String,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub guests: u32,
    /// Rooms taken every night (since version 2; version 1 reads as one).
    pub rooms: u32,
    pub nights: u32,
    /// nights x nightly rate x rooms.
    pub total_amount: i64,
    pub currency: String,
    /// The lodging's time zone when the stay was requested: its dates (check-in, check-out) are
    /// read there. Since version 3; earlier ones read as [`crate::WAVE1_TIMEZONE`].
    pub timezone: Tz,
}

impl ReservationRequested {
    #[must_use]
    pub fn stay(&self) -> Stay {
        Stay {
            check_in: self.check_in,
            check_out: self.check_out,
            guests: self.guests,
            rooms: self.rooms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReservationEvent {
    ReservationRequested(ReservationRequested),
    ReservationApproved {
        approved_by: String,
    },
    ReservationRejected {
        reason: String,
    },
    ReservationPaymentPending {
        reason: String,
        retry_at: Timestamp,
    },
    ReservationConfirmed {
        payment_id: String,
        amount: i64,
    },
    /// Paid before its lodging's decision (`pay_first`).
    ReservationPaid {
        payment_id: String,
        amount: i64,
    },
    ReservationPaymentFailed {
        reason: String,
    },
    ReservationCancelled {
        cancelled_by: String,
        reason: String,
        refund_due: i64,
    },
    ReservationRefunded {
        amount: i64,
    },
    ReservationExpired {},
    /// The stay ended: at check-out (by the saga's timer), or by its lodging's admin from check-in on.
    ReservationCompleted {
        completed_by: String,
    },
}

impl_domain_event!(ReservationEvent {
    ReservationRequested = 3,
    ReservationApproved,
    ReservationRejected,
    ReservationPaymentPending,
    ReservationConfirmed,
    ReservationPaymentFailed,
    ReservationCancelled,
    ReservationRefunded,
    ReservationExpired,
    ReservationPaid,
    ReservationCompleted,
} upcasters: RESERVATION_UPCASTERS);

/// `ReservationRequested` v1 -> v2: one room; v2 -> v3: the lodging's time zone (requests made
/// before were made of lodgings that read as the wave-1 zone, or, in wave-2 builds before this
/// version, of lodgings whose zone the request did not record: the wave-1 zone is assumed).
const RESERVATION_UPCASTERS: &[crate::Upcaster] = &[
    crate::Upcaster {
        event_type: "ReservationRequested",
        from: 1,
        step: requested_v1_to_v2,
    },
    crate::Upcaster {
        event_type: "ReservationRequested",
        from: 2,
        step: requested_v2_to_v3,
    },
];

fn requested_v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    crate::lodging::with_default(payload, "ReservationRequested v1", "rooms", 1.into())
}

pub(crate) fn requested_v2_to_v3(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    let zone = crate::WAVE1_TIMEZONE.name().into();
    crate::lodging::with_default(payload, "ReservationRequested v2", "timezone", zone)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationCommand {
    /// A customer requests a stay; the lodging's terms were looked up first.
    Request {
        reservation_id: ReservationId,
        customer_id: String,
        lodging: LodgingTerms,
        stay: Stay,
    },
    RecordApproval {
        approved_by: String,
    },
    Reject {
        reason: String,
    },
    RecordPaymentPending {
        reason: String,
        retry_at: Timestamp,
    },
    Confirm {
        payment_id: String,
        amount: i64,
    },
    /// A `pay_first` request was charged before its lodging decides it.
    RecordPayment {
        payment_id: String,
        amount: i64,
    },
    RecordPaymentFailure {
        reason: String,
    },
    /// A customer withdraws a request not yet confirmed (at any time) or cancels a confirmed stay
    /// (before check-in, in the lodging's `timezone`, looked up before deciding).
    Cancel {
        cancelled_by: String,
        reason: String,
        timezone: Tz,
    },
    /// The lodging's admin cancels a confirmed stay, on or after check-in too: refunded in full.
    CancelAsAdmin {
        cancelled_by: String,
        reason: String,
    },
    RecordRefund {
        amount: i64,
    },
    Expire,
    /// End a confirmed stay: its lodging's admin from check-in on, the saga at check-out.
    Complete {
        completed_by: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    #[default]
    Requested,
    Approved,
    PaymentPending,
    Confirmed,
    Rejected,
    Cancelled,
    Expired,
    PaymentFailed,
    /// Paid, awaiting its lodging's decision (`pay_first`).
    Paid,
    /// The stay ended (checked out).
    Completed,
}

impl ReservationStatus {
    /// No further business step can follow (a confirmed stay can still be cancelled).
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Rejected
                | Self::Cancelled
                | Self::Expired
                | Self::PaymentFailed
                | Self::Completed
        )
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::PaymentPending => "payment_pending",
            Self::Confirmed => "confirmed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::PaymentFailed => "payment_failed",
            Self::Paid => "paid",
            Self::Completed => "completed",
        }
    }
}

/// Reservation state. `details` is `None` until the stay is requested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub details: Option<ReservationRequested>,
    pub status: ReservationStatus,
    pub status_reason: Option<String>,
    pub paid_amount: Option<i64>,
    pub payment_id: Option<String>,
    pub refund_due: i64,
    pub refunded_amount: Option<i64>,
    pub retry_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    #[error("reservation not found")]
    NotFound,
    #[error("reservation already exists with other details")]
    AlreadyRequested,
    #[error(transparent)]
    InvalidStay(#[from] StayError),
    #[error("the total amount overflows")]
    AmountOverflow,
    #[error("reservation is already {}", .0.as_str())]
    AlreadyFinal(ReservationStatus),
    #[error("a confirmed stay cannot be cancelled on or after check-in ({check_in})")]
    CheckedIn { check_in: NaiveDate },
    #[error("only a confirmed stay is cancelled or completed by its lodging; this one is {}", .0.as_str())]
    NotConfirmed(ReservationStatus),
    #[error("a stay is completed on or after its check-in ({check_in})")]
    NotCheckedIn { check_in: NaiveDate },
}

/// The Reservation aggregate.
pub struct ReservationAggregate;

impl Aggregate for ReservationAggregate {
    const STREAM_PREFIX: &'static str = crate::StreamKind::Reservation.prefix();
    type State = Reservation;
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Error = ReservationError;

    fn decide(
        state: &Reservation,
        command: &ReservationCommand,
        now: Timestamp,
    ) -> Result<Vec<ReservationEvent>, ReservationError> {
        use ReservationCommand as C;
        use ReservationEvent as E;
        use ReservationStatus as S;
        let status = state.status;
        let events = match command {
            C::Request {
                reservation_id,
                customer_id,
                lodging,
                stay,
            } => return request(state, *reservation_id, customer_id, lodging, stay, now),
            _ if state.details.is_none() => return Err(ReservationError::NotFound),
            C::RecordApproval { approved_by } if status == S::Requested => {
                vec![E::ReservationApproved {
                    approved_by: approved_by.clone(),
                }]
            }
            // A paid request is rejected too (`pay_first`; the saga refunds it).
            C::Reject { reason } if matches!(status, S::Requested | S::Paid) => {
                vec![E::ReservationRejected {
                    reason: reason.clone(),
                }]
            }
            // Before approval only on a `pay_first` lodging (the saga charges those first).
            C::RecordPaymentPending { reason, retry_at }
                if matches!(status, S::Requested | S::Approved)
                    || (status == S::PaymentPending && state.retry_at != Some(*retry_at)) =>
            {
                vec![E::ReservationPaymentPending {
                    reason: reason.clone(),
                    retry_at: *retry_at,
                }]
            }
            C::Confirm { payment_id, amount }
                if matches!(status, S::Approved | S::PaymentPending | S::Paid) =>
            {
                vec![E::ReservationConfirmed {
                    payment_id: payment_id.clone(),
                    amount: *amount,
                }]
            }
            C::RecordPayment { payment_id, amount }
                if matches!(status, S::Requested | S::PaymentPending) =>
            {
                vec![E::ReservationPaid {
                    payment_id: payment_id.clone(),
                    amount: *amount,
                }]
            }
            C::RecordPaymentFailure { reason }
                if matches!(status, S::Requested | S::Approved | S::PaymentPending) =>
            {
                vec![E::ReservationPaymentFailed {
                    reason: reason.clone(),
                }]
            }
            C::Cancel {
                cancelled_by,
                reason,
                timezone,
            } => cancel(state, cancelled_by, reason, now, *timezone)?,
            C::CancelAsAdmin {
                cancelled_by,
                reason,
            } => {
                if status != S::Confirmed {
                    return Err(ReservationError::NotConfirmed(status));
                }
                vec![E::ReservationCancelled {
                    cancelled_by: cancelled_by.clone(),
                    reason: reason.clone(),
                    refund_due: state.paid_amount.unwrap_or(0),
                }]
            }
            // Also when nothing was due at cancellation: a charge that landed after it is refunded
            // too; a paid request rejected or expired (`pay_first`) is refunded.
            C::RecordRefund { amount }
                if matches!(status, S::Cancelled | S::Rejected | S::Expired)
                    && state.refunded_amount.is_none() =>
            {
                vec![E::ReservationRefunded { amount: *amount }]
            }
            C::Expire if matches!(status, S::Requested | S::PaymentPending | S::Paid) => {
                vec![E::ReservationExpired {}]
            }
            C::Complete { completed_by } => return complete(state, completed_by, now),
            // Anything else is a replay or a step overtaken by another: a no-op.
            _ => vec![],
        };
        Ok(events)
    }

    fn evolve(mut state: Reservation, event: &ReservationEvent) -> Reservation {
        use ReservationEvent as E;
        use ReservationStatus as S;
        match event {
            E::ReservationRequested(details) => {
                state.details = Some(details.clone());
                state.status = S::Requested;
            }
            E::ReservationApproved { .. } => state.status = S::Approved,
            E::ReservationRejected { reason } => {
                state.status = S::Rejected;
                state.status_reason = Some(reason.clone());
            }
            E::ReservationPaymentPending { reason, retry_at } => {
                state.status = S::PaymentPending;
                state.status_reason = Some(reason.clone());
                state.retry_at = Some(*retry_at);
            }
            E::ReservationConfirmed { payment_id, amount } => {
                state.status = S::Confirmed;
                state.status_reason = None;
                state.payment_id = Some(payment_id.clone());
                state.paid_amount = Some(*amount);
            }
            E::ReservationPaid { payment_id, amount } => {
                state.status = S::Paid;
                state.status_reason = None;
                state.payment_id = Some(payment_id.clone());
                state.paid_amount = Some(*amount);
            }
            E::ReservationPaymentFailed { reason } => {
                state.status = S::PaymentFailed;
                state.status_reason = Some(reason.clone());
            }
            E::ReservationCancelled {
                reason, refund_due, ..
            } => {
                state.status = S::Cancelled;
                state.status_reason = Some(reason.clone());
                state.refund_due = *refund_due;
            }
            E::ReservationRefunded { amount } => state.refunded_amount = Some(*amount),
            E::ReservationExpired {} => {
                state.status = S::Expired;
                state.status_reason = Some("approval deadline passed".to_string());
            }
            E::ReservationCompleted { .. } => {
                state.status = S::Completed;
                state.status_reason = None;
            }
        }
        state
    }
}

fn request(
    state: &Reservation,
    reservation_id: ReservationId,
    customer_id: &str,
    lodging: &LodgingTerms,
    stay: &Stay,
    now: Timestamp,
) -> Result<Vec<ReservationEvent>, ReservationError> {
    if state.details.is_none() {
        let limits = RoomLimits {
            rooms: lodging.rooms,
            max_guests: lodging.max_guests,
        };
        stay.validate(local_date(now, lodging.timezone), limits)?;
    }
    let nights = stay.nights();
    let total_amount = lodging
        .nightly_rate
        .checked_mul(i64::from(nights))
        .and_then(|amount| amount.checked_mul(i64::from(stay.rooms)))
        .ok_or(ReservationError::AmountOverflow)?;
    let requested = ReservationRequested {
        reservation_id,
        customer_id: customer_id.to_string(),
        lodging_id: lodging.lodging_id.clone(),
        check_in: stay.check_in,
        check_out: stay.check_out,
        guests: stay.guests,
        rooms: stay.rooms,
        nights,
        total_amount,
        currency: lodging.currency.clone(),
        timezone: lodging.timezone,
    };
    match &state.details {
        // A repeat is the same customer asking the same stay of the same lodging: the amount is
        // what it was then, even if the lodging's rate changed since.
        Some(existing)
            if existing.customer_id == requested.customer_id
                && existing.lodging_id == requested.lodging_id
                && existing.stay() == *stay =>
        {
            Ok(vec![])
        }
        Some(_) => Err(ReservationError::AlreadyRequested),
        None => Ok(vec![ReservationEvent::ReservationRequested(requested)]),
    }
}

/// Complete a confirmed stay on or after its check-in day where the lodging is; again: a no-op.
fn complete(
    state: &Reservation,
    completed_by: &str,
    now: Timestamp,
) -> Result<Vec<ReservationEvent>, ReservationError> {
    let details = state.details.as_ref().ok_or(ReservationError::NotFound)?;
    match state.status {
        ReservationStatus::Completed => Ok(vec![]),
        ReservationStatus::Confirmed if local_date(now, details.timezone) < details.check_in => {
            Err(ReservationError::NotCheckedIn {
                check_in: details.check_in,
            })
        }
        ReservationStatus::Confirmed => Ok(vec![ReservationEvent::ReservationCompleted {
            completed_by: completed_by.to_string(),
        }]),
        other => Err(ReservationError::NotConfirmed(other)),
    }
}

/// A request not yet confirmed (requested, approved, payment pending, paid) may be withdrawn at any
/// time, its check-in day included; a confirmed stay only before its check-in day where the
/// lodging is. What was paid is due back.
fn cancel(
    state: &Reservation,
    cancelled_by: &str,
    reason: &str,
    now: Timestamp,
    timezone: Tz,
) -> Result<Vec<ReservationEvent>, ReservationError> {
    if state.status.is_terminal() {
        return Err(ReservationError::AlreadyFinal(state.status));
    }
    let Some(details) = &state.details else {
        return Err(ReservationError::NotFound);
    };
    let confirmed = state.status == ReservationStatus::Confirmed;
    if confirmed && local_date(now, timezone) >= details.check_in {
        return Err(ReservationError::CheckedIn {
            check_in: details.check_in,
        });
    }
    let refund_due = state.paid_amount.unwrap_or(0);
    Ok(vec![ReservationEvent::ReservationCancelled {
        cancelled_by: cancelled_by.to_string(),
        reason: reason.to_string(),
        refund_due,
    }])
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod wave2_tests;

#[cfg(test)]
mod completion_tests;
