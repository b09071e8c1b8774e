//! Payment (stream `payment-{reservation_id}`): the general domain in front of a third-party gateway.
//! Only an approved reservation's payment is ever requested; a charge that really happened is always
//! recorded, even after a void, so it can be refunded.

use serde::{Deserialize, Serialize};

use crate::{impl_domain_event, Aggregate, ReservationId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PaymentEvent {
    PaymentRequested {
        reservation_id: ReservationId,
        amount: i64,
        currency: String,
    },
    PaymentDeferred {
        reason: String,
        attempt: u32,
        retry_at: Timestamp,
    },
    PaymentCompleted {
        payment_id: String,
        gateway_ref: String,
        amount: i64,
    },
    PaymentFailed {
        reason: String,
    },
    PaymentRefunded {
        amount: i64,
        gateway_ref: String,
    },
    PaymentVoided {
        reason: String,
    },
    /// An admin asked for a deferred payment to be retried now.
    PaymentRetryRequested {
        requested_by: String,
    },
}

impl_domain_event!(PaymentEvent {
    PaymentRequested,
    PaymentDeferred,
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
    PaymentVoided,
    PaymentRetryRequested,
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCommand {
    Request {
        reservation_id: ReservationId,
        amount: i64,
        currency: String,
    },
    /// The gateway answered with an error or timed out: this attempt counts; try again at `retry_at`.
    Defer {
        reason: String,
        retry_at: Timestamp,
    },
    /// The gateway was not called (the circuit is open): try again at `retry_at`. Nothing reached
    /// the gateway, so no attempt is used up: the deferral keeps the attempt count it had.
    DeferUncounted {
        reason: String,
        retry_at: Timestamp,
    },
    Complete {
        payment_id: String,
        gateway_ref: String,
        amount: i64,
    },
    Fail {
        reason: String,
    },
    Refund {
        amount: i64,
        gateway_ref: String,
    },
    Void {
        reason: String,
    },
    RetryNow {
        requested_by: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    None,
    Requested,
    Deferred,
    Completed,
    Failed,
    Refunded,
    Voided,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub reservation_id: Option<ReservationId>,
    pub amount: i64,
    pub currency: String,
    pub status: PaymentStatus,
    /// Attempts the gateway answered with an error or a timeout so far (an open circuit's deferral
    /// does not count).
    pub attempts: u32,
    pub retry_at: Option<Timestamp>,
    pub payment_id: Option<String>,
    /// The gateway's charge reference, once charged.
    pub charge_ref: Option<String>,
    pub refunded_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("no payment was requested for this reservation")]
    NotRequested,
    #[error("the payment is not deferred")]
    NotDeferred,
    #[error("a retry of this payment is already under way")]
    RetryUnderWay,
    #[error("amount must not be negative")]
    NegativeAmount,
}

/// The Payment aggregate.
pub struct PaymentAggregate;

impl Aggregate for PaymentAggregate {
    const STREAM_PREFIX: &'static str = crate::StreamKind::Payment.prefix();
    type State = Payment;
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;

    fn decide(
        state: &Payment,
        command: &PaymentCommand,
        _now: Timestamp,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        use PaymentCommand as C;
        use PaymentEvent as E;
        use PaymentStatus as S;
        let open = matches!(state.status, S::Requested | S::Deferred);
        let events = match command {
            C::Request {
                reservation_id,
                amount,
                currency,
            } if state.status == S::None => {
                if *amount < 0 {
                    return Err(PaymentError::NegativeAmount);
                }
                vec![E::PaymentRequested {
                    reservation_id: *reservation_id,
                    amount: *amount,
                    currency: currency.clone(),
                }]
            }
            C::Request { .. } => vec![],
            _ if state.status == S::None => return Err(PaymentError::NotRequested),
            C::Defer { reason, retry_at } if open => vec![E::PaymentDeferred {
                reason: reason.clone(),
                attempt: state.attempts + 1,
                retry_at: *retry_at,
            }],
            C::DeferUncounted { reason, retry_at } if open => vec![E::PaymentDeferred {
                reason: reason.clone(),
                attempt: state.attempts,
                retry_at: *retry_at,
            }],
            C::Complete {
                payment_id,
                gateway_ref,
                amount,
            } if open || state.status == S::Voided => vec![E::PaymentCompleted {
                payment_id: payment_id.clone(),
                gateway_ref: gateway_ref.clone(),
                amount: *amount,
            }],
            C::Fail { reason } if open => vec![E::PaymentFailed {
                reason: reason.clone(),
            }],
            C::Refund {
                amount,
                gateway_ref,
            } if state.status == S::Completed => vec![E::PaymentRefunded {
                amount: *amount,
                gateway_ref: gateway_ref.clone(),
            }],
            C::Void { reason } if open => vec![E::PaymentVoided {
                reason: reason.clone(),
            }],
            C::RetryNow { requested_by } => {
                if state.status != S::Deferred {
                    return Err(PaymentError::NotDeferred);
                }
                // Asked already and not yet answered by the gateway: one attempt at a time.
                if state.retry_at.is_none() {
                    return Err(PaymentError::RetryUnderWay);
                }
                vec![E::PaymentRetryRequested {
                    requested_by: requested_by.clone(),
                }]
            }
            _ => vec![],
        };
        Ok(events)
    }

    fn evolve(mut state: Payment, event: &PaymentEvent) -> Payment {
        use PaymentEvent as E;
        use PaymentStatus as S;
        match event {
            E::PaymentRequested {
                reservation_id,
                amount,
                currency,
            } => {
                state.reservation_id = Some(*reservation_id);
                state.amount = *amount;
                state.currency.clone_from(currency);
                state.status = S::Requested;
            }
            E::PaymentDeferred {
                attempt, retry_at, ..
            } => {
                state.status = S::Deferred;
                state.attempts = *attempt;
                state.retry_at = Some(*retry_at);
            }
            E::PaymentCompleted {
                payment_id,
                gateway_ref,
                ..
            } => {
                state.status = S::Completed;
                state.payment_id = Some(payment_id.clone());
                state.charge_ref = Some(gateway_ref.clone());
                state.retry_at = None;
            }
            E::PaymentFailed { .. } => state.status = S::Failed,
            E::PaymentRefunded { amount, .. } => {
                state.status = S::Refunded;
                state.refunded_amount = Some(*amount);
            }
            E::PaymentVoided { .. } => state.status = S::Voided,
            E::PaymentRetryRequested { .. } => state.retry_at = None,
        }
        state
    }
}

#[cfg(test)]
mod tests;
