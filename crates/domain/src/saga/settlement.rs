//! The saga's settlement rows: a completed stay's payout is scheduled (gross = what the customer
//! paid and was not refunded), sent through the gateway's payout call, retried on the charges'
//! policy (an open circuit's refusal uses up no attempt), failed once the attempts are used up, and
//! tried again, a fresh round of attempts, when the platform admin asks. `react` and `observe`
//! (`super`) call these.

use serde::{Deserialize, Serialize};

use super::{PaymentProgress, Reaction, SagaAction, SagaPolicy, SagaStage, SagaState, TimerKind};
use crate::payout::{PayoutCommand, PayoutEvent};

/// Where the stay's payout is, as the saga knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PayoutProgress {
    #[default]
    None,
    /// The saga asked for it (`SchedulePayout`); its `PayoutScheduled` is not seen yet.
    Requested,
    Scheduled,
    Deferred,
    Sent,
    Failed,
}

/// On `ReservationCompleted`: schedule the stay's one payout, of what was paid (a refunded or
/// never-paid stay is not paid out; a cancelled one never completes).
pub(super) fn schedule_on_completion(state: &SagaState) -> Option<SagaAction> {
    let reservation = state.reservation.as_ref()?;
    let completing = matches!(state.stage, SagaStage::Confirmed | SagaStage::Completed);
    if !completing || state.cancelled || state.payout != PayoutProgress::None {
        return None;
    }
    let PaymentProgress::Completed { amount, .. } = &state.payment else {
        return None;
    };
    Some(SagaAction::SchedulePayout {
        lodging_id: reservation.lodging_id.clone(),
        gross: *amount,
        currency: reservation.currency.clone(),
    })
}

/// The saga's answer to its payout's own events.
pub(super) fn react_payout(
    state: &SagaState,
    event: &PayoutEvent,
    policy: &SagaPolicy,
    r: &mut Reaction,
) {
    use PayoutEvent as E;
    use PayoutProgress as P;
    match event {
        E::PayoutScheduled { .. } if state.payout == P::Requested => {
            r.actions.push(SagaAction::PayOut { attempt: 1 });
        }
        E::PayoutDeferred {
            attempt, retry_at, ..
        } if matches!(state.payout, P::Scheduled | P::Deferred) => {
            // Only the gateway's answers count: an open circuit's refusal leaves `attempt` as it was.
            let counted = *attempt > state.payout_attempts;
            let used = attempt.saturating_sub(state.payout_round_start);
            if counted && used >= policy.max_payment_attempts {
                r.actions.push(SagaAction::Payout(PayoutCommand::Fail {
                    reason: format!(
                        "payout attempts exhausted ({used} answered by the gateway); the platform admin may retry it"
                    ),
                }));
                r.cancel.push(TimerKind::PayoutRetry);
            } else {
                r.arm.push((TimerKind::PayoutRetry, *retry_at));
            }
        }
        E::PayoutRetryRequested { .. } => {
            r.actions.push(SagaAction::PayOut {
                attempt: state.payout_attempts + 1,
            });
            r.cancel.push(TimerKind::PayoutRetry);
        }
        E::PayoutSent { .. } | E::PayoutFailed { .. } => r.cancel.push(TimerKind::PayoutRetry),
        _ => {}
    }
}

/// The payout retry timer fired: send it again, once per timer.
pub(super) fn retry_payout(state: &SagaState) -> Option<SagaAction> {
    let armed = state.timers.contains_key(&TimerKind::PayoutRetry);
    (armed && state.payout == PayoutProgress::Deferred).then_some(SagaAction::PayOut {
        attempt: state.payout_attempts + 1,
    })
}

/// What the saga learns from its payout's events.
pub(super) fn observe_payout(mut state: SagaState, event: &PayoutEvent) -> SagaState {
    use PayoutEvent as E;
    use PayoutProgress as P;
    match event {
        E::PayoutScheduled { .. } => state.payout = P::Scheduled,
        E::PayoutDeferred { attempt, .. } => {
            state.payout = P::Deferred;
            state.payout_attempts = *attempt;
        }
        E::PayoutSent { .. } => state.payout = P::Sent,
        E::PayoutFailed { .. } => state.payout = P::Failed,
        E::PayoutRetryRequested { .. } => {
            state.payout = P::Scheduled;
            state.payout_round_start = state.payout_attempts;
        }
    }
    state
}
