//! Payout (stream `payout-{reservation_id}`): paying a host what a completed stay earned, less the
//! platform's fee: fee = floor(gross x fee_bps / 10,000), net = gross - fee, to the minor unit. One
//! stream per reservation, so one payout per stay; scheduled once, sent at most once. The gateway's
//! payout call is retried (deferrals) like a charge: an open circuit's refusal uses up no attempt.

use serde::{Deserialize, Serialize};

use crate::{impl_domain_event, Aggregate, ReservationId, Timestamp};

/// Basis points in a whole.
pub const BPS: u32 = 10_000;

/// The platform's fee and the host's net share of `gross` at `fee_bps`; `None` for a negative
/// gross or a fee above 100%.
#[must_use]
pub fn split(gross: i64, fee_bps: u32) -> Option<(i64, i64)> {
    if gross < 0 || fee_bps > BPS {
        return None;
    }
    let fee = i64::try_from(i128::from(gross) * i128::from(fee_bps) / i128::from(BPS)).ok()?;
    Some((fee, gross - fee))
}

/// What a payout is for, as the saga knows it when the stay completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutTerms {
    pub reservation_id: ReservationId,
    pub lodging_id: String,
    pub host_id: String,
    /// What the customer paid, less what was refunded.
    pub gross: i64,
    pub fee_bps: u32,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PayoutEvent {
    PayoutScheduled {
        reservation_id: ReservationId,
        lodging_id: String,
        host_id: String,
        gross: i64,
        /// The rate the fee was taken at (the lodging's at completion).
        fee_bps: u32,
        fee: i64,
        net: i64,
        currency: String,
    },
    PayoutDeferred {
        reason: String,
        attempt: u32,
        retry_at: Timestamp,
    },
    PayoutSent {
        gateway_ref: String,
    },
    PayoutFailed {
        reason: String,
    },
    /// The platform admin asked for a deferred or failed payout to be tried again now.
    PayoutRetryRequested {
        requested_by: String,
    },
}

impl_domain_event!(PayoutEvent {
    PayoutScheduled,
    PayoutDeferred,
    PayoutSent,
    PayoutFailed,
    PayoutRetryRequested,
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayoutCommand {
    Schedule(PayoutTerms),
    /// The gateway answered with an error or timed out: this attempt counts.
    Defer {
        reason: String,
        retry_at: Timestamp,
    },
    /// The gateway was not called (the circuit is open): no attempt used up.
    DeferUncounted {
        reason: String,
        retry_at: Timestamp,
    },
    RecordSent {
        gateway_ref: String,
    },
    Fail {
        reason: String,
    },
    Retry {
        requested_by: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    #[default]
    None,
    Scheduled,
    Deferred,
    Sent,
    Failed,
}

impl PayoutStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Scheduled => "scheduled",
            Self::Deferred => "deferred",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// `(terms, fee, net)` once scheduled.
    pub scheduled: Option<(PayoutTerms, i64, i64)>,
    pub status: PayoutStatus,
    /// Attempts the gateway answered with an error or a timeout.
    pub attempts: u32,
    pub retry_at: Option<Timestamp>,
    pub gateway_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutError {
    #[error("invalid payout: {0}")]
    InvalidTerms(String),
    #[error("a payout of other terms is already scheduled for this stay")]
    AlreadyScheduled,
    #[error("no payout is scheduled for this stay")]
    NotScheduled,
    #[error("the payout is {}: only a deferred or failed one is retried", .0.as_str())]
    NotRetryable(PayoutStatus),
}

/// The Payout aggregate.
pub struct PayoutAggregate;

impl Aggregate for PayoutAggregate {
    const STREAM_PREFIX: &'static str = crate::StreamKind::Payout.prefix();
    type State = Payout;
    type Command = PayoutCommand;
    type Event = PayoutEvent;
    type Error = PayoutError;

    fn decide(
        state: &Payout,
        command: &PayoutCommand,
        _now: Timestamp,
    ) -> Result<Vec<PayoutEvent>, PayoutError> {
        use PayoutCommand as C;
        use PayoutEvent as E;
        use PayoutStatus as S;
        let open = matches!(state.status, S::Scheduled | S::Deferred);
        let events = match command {
            C::Schedule(terms) => return schedule(state, terms),
            _ if state.status == S::None => return Err(PayoutError::NotScheduled),
            C::Defer { reason, retry_at } if open => vec![E::PayoutDeferred {
                reason: reason.clone(),
                attempt: state.attempts + 1,
                retry_at: *retry_at,
            }],
            C::DeferUncounted { reason, retry_at } if open => vec![E::PayoutDeferred {
                reason: reason.clone(),
                attempt: state.attempts,
                retry_at: *retry_at,
            }],
            C::RecordSent { gateway_ref } if open => vec![E::PayoutSent {
                gateway_ref: gateway_ref.clone(),
            }],
            C::Fail { reason } if open => vec![E::PayoutFailed {
                reason: reason.clone(),
            }],
            C::Retry { requested_by } => {
                if !matches!(state.status, S::Deferred | S::Failed) {
                    return Err(PayoutError::NotRetryable(state.status));
                }
                vec![E::PayoutRetryRequested {
                    requested_by: requested_by.clone(),
                }]
            }
            // A replay, or an answer overtaken by another: nothing changes.
            _ => vec![],
        };
        Ok(events)
    }

    fn evolve(mut state: Payout, event: &PayoutEvent) -> Payout {
        use PayoutEvent as E;
        use PayoutStatus as S;
        match event {
            E::PayoutScheduled {
                reservation_id,
                lodging_id,
                host_id,
                gross,
                fee_bps,
                fee,
                net,
                currency,
            } => {
                let terms = PayoutTerms {
                    reservation_id: *reservation_id,
                    lodging_id: lodging_id.clone(),
                    host_id: host_id.clone(),
                    gross: *gross,
                    fee_bps: *fee_bps,
                    currency: currency.clone(),
                };
                state.scheduled = Some((terms, *fee, *net));
                state.status = S::Scheduled;
            }
            E::PayoutDeferred {
                attempt, retry_at, ..
            } => {
                state.status = S::Deferred;
                state.attempts = *attempt;
                state.retry_at = Some(*retry_at);
            }
            E::PayoutSent { gateway_ref } => {
                state.status = S::Sent;
                state.gateway_ref = Some(gateway_ref.clone());
                state.retry_at = None;
            }
            E::PayoutFailed { .. } => {
                state.status = S::Failed;
                state.retry_at = None;
            }
            // Tried again from scratch: a failed payout is open again, a deferred one now.
            E::PayoutRetryRequested { .. } => {
                state.status = S::Scheduled;
                state.retry_at = None;
            }
        }
        state
    }
}

fn schedule(state: &Payout, terms: &PayoutTerms) -> Result<Vec<PayoutEvent>, PayoutError> {
    let (fee, net) = split(terms.gross, terms.fee_bps).ok_or_else(|| {
        PayoutError::InvalidTerms(format!(
            "gross {} at {} basis points",
            terms.gross, terms.fee_bps
        ))
    })?;
    if let Some((scheduled, ..)) = &state.scheduled {
        return if scheduled == terms {
            Ok(vec![])
        } else {
            Err(PayoutError::AlreadyScheduled)
        };
    }
    Ok(vec![PayoutEvent::PayoutScheduled {
        reservation_id: terms.reservation_id,
        lodging_id: terms.lodging_id.clone(),
        host_id: terms.host_id.clone(),
        gross: terms.gross,
        fee_bps: terms.fee_bps,
        fee,
        net,
        currency: terms.currency.clone(),
    }])
}

#[cfg(test)]
mod tests;
