//! Why a command failed, in three kinds kept apart up to the edge: a rejection of the request
//! (4xx: not allowed, unknown, invalid, business rule, wrong state), a concurrency conflict that
//! outlived its retries (409), and an infrastructure failure (503/500, details logged, never sent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::lodging::LodgingError;
use domain::payment::PaymentError;
use domain::payout::PayoutError;
use domain::reservation::ReservationError;
use domain::StayError;
use eventlog::LogError;

use http_edge::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// 400/413: the request itself is malformed (body, header, path).
    #[error("{0}")]
    Request(Problem),
    /// 401: no valid principal (only from callers outside HTTP; the extractor answers first).
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: wrong role, or not the caller's reservation or lodging.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such reservation.
    #[error("{0}")]
    NotFound(String),
    /// 400: malformed fields.
    #[error("invalid request fields")]
    Invalid(Vec<FieldError>),
    /// 422: a business rule refused the request.
    #[error("{detail}")]
    Rejected {
        slug: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 409: the resource is in the wrong state (decided, terminal, no room...).
    #[error("{detail}")]
    WrongState { slug: &'static str, detail: String },
    /// 409: the stream kept moving under us; every retry lost the race.
    #[error("stream {stream} is busy; retry the request")]
    Contention { stream: String },
    /// 503 or 500: the store failed.
    #[error(transparent)]
    Store(#[from] LogError),
    /// 500: stored data could not be read back.
    #[error("{0}")]
    Internal(String),
}

impl CommandError {
    pub(crate) fn wrong_state(slug: &'static str, detail: impl Into<String>) -> Self {
        Self::WrongState {
            slug,
            detail: detail.into(),
        }
    }

    pub(crate) fn rejected(
        slug: &'static str,
        detail: impl Into<String>,
        errors: Vec<FieldError>,
    ) -> Self {
        Self::Rejected {
            slug,
            detail: detail.into(),
            errors,
        }
    }

    /// 422: the Idempotency-Key was first used with a different request.
    pub(crate) fn key_reused() -> Self {
        Self::rejected(
            "idempotency-key-reused",
            "this Idempotency-Key was already used with a different request",
            vec![],
        )
    }

    /// The problem document a client sees; 5xx causes are logged here and left out.
    #[must_use]
    pub fn to_problem(&self) -> Problem {
        match self {
            Self::Request(problem) => problem.clone(),
            Self::Unauthenticated(detail) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            }
            Self::Forbidden(detail) => Problem::forbidden(detail),
            Self::NotFound(detail) => Problem::not_found(detail),
            Self::Invalid(errors) => Problem::invalid_fields(errors.clone()),
            Self::Rejected {
                slug,
                detail,
                errors,
            } => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, slug, detail)
                .with_errors(errors.clone()),
            Self::WrongState { slug, detail } => Problem::new(StatusCode::CONFLICT, slug, detail),
            Self::Contention { .. } => {
                Problem::new(StatusCode::CONFLICT, "contention", self.to_string())
            }
            Self::Store(LogError::Unavailable(cause)) => {
                http_edge::error_throttled!(%cause, "event store unavailable");
                Problem::unavailable()
            }
            Self::Store(LogError::Corrupt(cause)) => {
                http_edge::error_throttled!(%cause, "event store corrupt");
                Problem::internal()
            }
            Self::Internal(cause) => {
                http_edge::error_throttled!(%cause, "internal error");
                Problem::internal()
            }
        }
    }
}

impl From<Problem> for CommandError {
    fn from(problem: Problem) -> Self {
        Self::Request(problem)
    }
}

impl IntoResponse for CommandError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// The field a stay rule is about.
fn stay_field(error: &StayError) -> &'static str {
    match error {
        StayError::CheckOutNotAfterCheckIn { .. } | StayError::TooManyNights { .. } => "check_out",
        StayError::InThePast { .. } => "check_in",
        StayError::NoGuests | StayError::TooManyGuests { .. } => "guests",
        StayError::NoRooms | StayError::TooManyRooms { .. } => "rooms",
    }
}

impl From<ReservationError> for CommandError {
    fn from(error: ReservationError) -> Self {
        let detail = error.to_string();
        match error {
            ReservationError::NotFound => Self::NotFound(detail),
            ReservationError::AlreadyRequested => Self::key_reused(),
            ReservationError::InvalidStay(stay) => {
                let field = FieldError::new(stay_field(&stay), &detail);
                Self::rejected("invalid-stay", detail, vec![field])
            }
            ReservationError::AmountOverflow => Self::rejected("amount-overflow", detail, vec![]),
            ReservationError::AlreadyFinal(_) => Self::wrong_state("reservation-final", detail),
            ReservationError::CheckedIn { .. } => Self::wrong_state("checked-in", detail),
            ReservationError::NotConfirmed(_) => Self::wrong_state("not-confirmed", detail),
            ReservationError::NotCheckedIn { .. } => Self::wrong_state("not-checked-in", detail),
        }
    }
}

impl From<LodgingError> for CommandError {
    fn from(error: LodgingError) -> Self {
        let detail = error.to_string();
        match error {
            LodgingError::NotRegistered => Self::wrong_state("lodging-not-registered", detail),
            LodgingError::AlreadyRegistered => Self::wrong_state("lodging-exists", detail),
            LodgingError::InvalidProfile { field, reason } => Self::rejected(
                "invalid-lodging",
                detail,
                vec![FieldError::new(field, reason)],
            ),
            LodgingError::NoRoom { .. } => Self::wrong_state("no-room", detail),
            LodgingError::AlreadyDecided { .. } => Self::wrong_state("already-decided", detail),
            LodgingError::WrongListingStatus { .. } => {
                Self::wrong_state("wrong-listing-status", detail)
            }
            LodgingError::WouldOverbook { .. } => Self::wrong_state("would-overbook", detail),
            LodgingError::NotPaid => Self::wrong_state("not-paid", detail),
        }
    }
}

impl From<PaymentError> for CommandError {
    fn from(error: PaymentError) -> Self {
        let detail = error.to_string();
        match error {
            PaymentError::NotRequested | PaymentError::NotDeferred => {
                Self::wrong_state("payment-not-deferred", detail)
            }
            PaymentError::RetryUnderWay => Self::wrong_state("payment-retry-under-way", detail),
            PaymentError::NegativeAmount => Self::rejected("invalid-amount", detail, vec![]),
        }
    }
}

impl From<PayoutError> for CommandError {
    fn from(error: PayoutError) -> Self {
        let detail = error.to_string();
        match error {
            PayoutError::NotScheduled | PayoutError::NotRetryable(_) => {
                Self::wrong_state("payout-not-retryable", detail)
            }
            PayoutError::AlreadyScheduled => Self::wrong_state("payout-exists", detail),
            PayoutError::InvalidTerms(_) => Self::rejected("invalid-payout", detail, vec![]),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn kinds_map_to_their_status_codes() {
        let night = NaiveDate::from_ymd_opt(2030, 1, 2).unwrap_or_default();
        let no_room = CommandError::from(LodgingError::NoRoom { night }).to_problem();
        assert_eq!(
            (no_room.status, no_room.detail.contains("2030-01-02")),
            (409, true)
        );
        let past =
            CommandError::from(ReservationError::InvalidStay(StayError::NoGuests)).to_problem();
        assert_eq!(
            (past.status, past.errors[0].field.as_str()),
            (422, "guests")
        );
        let busy = CommandError::Contention {
            stream: "lodging-x".into(),
        }
        .to_problem();
        assert_eq!(busy.status, 409);
        let down =
            CommandError::Store(LogError::Unavailable("disk on fire at /secret/path".into()))
                .to_problem();
        assert_eq!(down.status, 503);
        assert!(
            !down.detail.contains("/secret/path"),
            "5xx details are never sent"
        );
        let corrupt = CommandError::Store(LogError::Corrupt("bad row".into())).to_problem();
        assert_eq!(
            (corrupt.status, corrupt.detail.contains("bad row")),
            (500, false)
        );
    }
}
