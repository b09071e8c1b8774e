//! The reservation saga's decisions (process manager; stream `saga-{reservation_id}`).
//!
//! Modelled as an aggregate whose command is "handle this trigger" (an event of another stream, or a
//! timer that fired) and whose events record what it handled, which actions it sent and which timers
//! it armed or cancelled. A trigger already handled decides nothing, so redelivery is harmless, and
//! the actions recorded for it can be re-sent after a crash (every action is idempotent).
//!
//! Here: the saga's inputs, actions, events and state, and its `Aggregate`; `react.rs`: the saga
//! table (what to do for each input); `money.rs` and `settlement.rs`: charges, refunds and payouts.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::lodging::{LodgingCommand, LodgingError, LodgingEvent};
use crate::payment::{PaymentCommand, PaymentEvent};
use crate::payout::{PayoutCommand, PayoutEvent};
use crate::reservation::{ReservationCommand, ReservationEvent, ReservationRequested};
use crate::{impl_domain_event, Aggregate, Timestamp};

mod money;
mod react;
mod settlement;
mod small_map;

use money::observe_payment;
pub use money::NO_CHARGE_REF;
pub use react::react;
use settlement::observe_payout;
pub use settlement::PayoutProgress;
pub use small_map::SmallMap;

/// Trigger id -> the actions sent for it.
pub type Handled = SmallMap<Uuid, Vec<SagaAction>>;
/// The saga's armed timers, each with when it is due.
pub type Timers = SmallMap<TimerKind, Timestamp>;

/// Durations the saga runs with (passed in with each trigger, so decisions stay pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaPolicy {
    /// An undecided request expires after this.
    pub approval_deadline: TimeDelta,
    /// First retry delay of a deferred payment; doubled each attempt.
    pub retry_base: TimeDelta,
    /// After this many charge attempts answered by the gateway (an open circuit's refusal is not
    /// one), the payment waits for its lodging's admin to retry it until `approval_deadline` has
    /// passed once more, then fails.
    pub max_payment_attempts: u32,
}

impl Default for SagaPolicy {
    fn default() -> Self {
        Self {
            approval_deadline: TimeDelta::hours(24),
            retry_base: TimeDelta::seconds(2),
            max_payment_attempts: 8,
        }
    }
}

/// Exponential backoff without jitter: `base * 2^(attempt-1)`, capped at one hour.
#[must_use]
pub fn retry_delay(base: TimeDelta, attempt: u32) -> TimeDelta {
    let factor = 1_i32 << attempt.saturating_sub(1).min(20);
    (base * factor).min(TimeDelta::hours(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    ApprovalDeadline,
    PaymentRetry,
    /// A confirmed stay's check-out ([`crate::check_out_moment`] where the lodging is).
    CheckOut,
    /// A deferred payout is sent again.
    PayoutRetry,
}

impl TimerKind {
    pub const ALL: [Self; 4] = [
        Self::ApprovalDeadline,
        Self::PaymentRetry,
        Self::CheckOut,
        Self::PayoutRetry,
    ];

    /// Its name in stores and trigger ids (as serialized).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApprovalDeadline => "approval_deadline",
            Self::PaymentRetry => "payment_retry",
            Self::CheckOut => "check_out",
            Self::PayoutRetry => "payout_retry",
        }
    }

    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// What the saga reacts to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaInput {
    Reservation(ReservationEvent),
    Lodging(LodgingEvent),
    Payment(PaymentEvent),
    Payout(PayoutEvent),
    Timer(TimerKind),
}

/// The saga's command: handle one trigger, identified by the triggering event's id (or the timer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaTrigger {
    pub trigger_id: Uuid,
    pub input: SagaInput,
    pub policy: SagaPolicy,
}

/// What the saga asks others to do. Every action is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaAction {
    Reservation(ReservationCommand),
    Lodging {
        lodging_id: String,
        command: LodgingCommand,
    },
    Payment(PaymentCommand),
    /// The payment worker charges the gateway (idempotent per key), then records the outcome.
    Charge {
        idempotency_key: String,
        amount: i64,
        currency: String,
        attempt: u32,
        /// No retry after this one: a deferral becomes a failure.
        last_attempt: bool,
    },
    /// The payment worker refunds a completed charge, then records the refund.
    RefundCharge {
        charge_ref: String,
        amount: i64,
    },
    /// Schedule the stay's payout: the runner reads the host and the fee rate off the lodging as it
    /// is at that moment, and sends `PayoutCommand::Schedule`.
    SchedulePayout {
        lodging_id: String,
        gross: i64,
        currency: String,
    },
    Payout(PayoutCommand),
    /// The payout worker pays the scheduled net to the host through the gateway (idempotent per
    /// stay), then records the outcome.
    PayOut {
        attempt: u32,
    },
}

// The small variants are the timers' own events of streams written before version 4, only read;
// boxing the record every trigger writes would cost an allocation per record instead.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SagaEvent {
    /// One trigger handled: the actions sent for it, then the timers it cancelled and those it
    /// armed (in that order), all in one record since version 4.
    SagaEventHandled {
        trigger_id: Uuid,
        input: SagaInput,
        actions: Vec<SagaAction>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cancelled: Vec<TimerKind>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        armed: Vec<TimerArmed>,
    },
    /// A timer armed by the trigger recorded just before: written up to `SagaEventHandled` v3,
    /// still read (a stream written then holds them).
    SagaTimerArmed { timer: TimerKind, due_at: Timestamp },
    /// A timer cancelled by the trigger recorded just before: as `SagaTimerArmed`.
    SagaTimerCancelled { timer: TimerKind },
}

/// A timer a trigger armed, and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerArmed {
    pub timer: TimerKind,
    pub due_at: Timestamp,
}

impl_domain_event!(SagaEvent {
    SagaEventHandled = 4,
    SagaTimerArmed,
    SagaTimerCancelled,
} upcasters: SAGA_UPCASTERS);

/// `SagaEventHandled` v1 -> v2: the event it handled is read at its own current version; a v1
/// record carries a `ReservationRequested` or `ApprovalRequested` from before stays took `rooms`.
/// v2 -> v3: an embedded `ReservationRequested` gains the lodging's time zone (as that event's own
/// v2 -> v3 step does). v3 -> v4: unchanged; a v3 record's timers are the `SagaTimerCancelled` and
/// `SagaTimerArmed` events after it, so it cancels and arms none itself (the fields' default).
const SAGA_UPCASTERS: &[crate::Upcaster] = &[
    crate::Upcaster {
        event_type: "SagaEventHandled",
        from: 1,
        step: handled_v1_to_v2,
    },
    crate::Upcaster {
        event_type: "SagaEventHandled",
        from: 2,
        step: handled_v2_to_v3,
    },
    crate::Upcaster {
        event_type: "SagaEventHandled",
        from: 3,
        step: Ok,
    },
];

fn handled_v2_to_v3(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
    let Some(handled) = payload
        .get_mut("input")
        .and_then(|input| input.get_mut("reservation"))
    else {
        return Ok(payload);
    };
    if handled["type"] == "ReservationRequested" {
        let data = handled["data"].take();
        handled["data"] = crate::reservation::requested_v2_to_v3(data)?;
    }
    Ok(payload)
}

fn handled_v1_to_v2(mut payload: serde_json::Value) -> Result<serde_json::Value, String> {
    let input = payload
        .get_mut("input")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| "SagaEventHandled v1 without an input".to_string())?;
    for (context, event_type) in [
        ("reservation", "ReservationRequested"),
        ("lodging", "ApprovalRequested"),
    ] {
        let Some(handled) = input.get_mut(context) else {
            continue;
        };
        if handled["type"] == event_type {
            let data = handled["data"].take();
            handled["data"] = crate::lodging::with_default(data, event_type, "rooms", 1.into())?;
        }
    }
    Ok(payload)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SagaStage {
    #[default]
    NotStarted,
    AwaitingApproval,
    AwaitingPayment,
    /// `pay_first`: paid, awaiting the lodging's decision.
    Paid,
    Confirmed,
    Rejected,
    Expired,
    PaymentFailed,
    Cancelled,
    /// The stay ended (at check-out, or its admin completed it).
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentProgress {
    #[default]
    None,
    Requested,
    Deferred {
        attempt: u32,
    },
    Completed {
        charge_ref: String,
        amount: i64,
    },
    Failed,
    Refunded,
    Voided,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaState {
    pub reservation: Option<ReservationRequested>,
    pub stage: SagaStage,
    pub cancelled: bool,
    pub payment: PaymentProgress,
    /// Charge attempts so far: charges sent, less those the open circuit kept from the gateway (a
    /// deferral sets it to the payment's own count).
    pub charge_attempts: u32,
    /// The last deferral was an answer of the gateway (not a refusal of the open circuit): with the
    /// attempts used up, its retry time is the end of the wait for the admin's retry.
    #[serde(default)]
    pub last_deferral_counted: bool,
    pub timers: Timers,
    /// The lodging held the request's nights: it is charged first and decided once paid.
    #[serde(default)]
    pub pay_first: bool,
    /// The completed payment's id (a `pay_first` confirmation carries it).
    #[serde(default)]
    pub payment_id: Option<String>,
    #[serde(default)]
    pub payout: PayoutProgress,
    /// Payout attempts the gateway answered (the payout's own count).
    #[serde(default)]
    pub payout_attempts: u32,
    /// `payout_attempts` when the platform admin last asked for a retry: a new round starts there.
    #[serde(default)]
    pub payout_round_start: u32,
    /// Every trigger handled, with the actions sent for it.
    pub handled: Handled,
}

impl SagaState {
    /// The stage is final and nothing is left to refund.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.has_ended() && !matches!(self.payment, PaymentProgress::Completed { .. })
    }

    /// The request was cancelled, rejected, expired or its payment failed: a charge completing
    /// from now on is refunded, never kept.
    #[must_use]
    pub fn has_ended(&self) -> bool {
        self.cancelled
            || matches!(
                self.stage,
                SagaStage::Rejected | SagaStage::Expired | SagaStage::PaymentFailed
            )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SagaError {}

/// The reservation saga as an aggregate over its own stream.
pub struct ReservationSaga;

impl Aggregate for ReservationSaga {
    const STREAM_PREFIX: &'static str = crate::StreamKind::Saga.prefix();
    type State = SagaState;
    type Command = SagaTrigger;
    type Event = SagaEvent;
    type Error = SagaError;

    fn decide(
        state: &SagaState,
        trigger: &SagaTrigger,
        now: Timestamp,
    ) -> Result<Vec<SagaEvent>, SagaError> {
        if state.handled.contains_key(&trigger.trigger_id) {
            return Ok(vec![]);
        }
        let reaction = react(state, &trigger.input, &trigger.policy, now);
        Ok(vec![SagaEvent::SagaEventHandled {
            trigger_id: trigger.trigger_id,
            input: trigger.input.clone(),
            actions: reaction.actions,
            cancelled: reaction
                .cancel
                .into_iter()
                .filter(|timer| state.timers.contains_key(timer))
                .collect(),
            armed: reaction
                .arm
                .into_iter()
                .map(|(timer, due_at)| TimerArmed { timer, due_at })
                .collect(),
        }])
    }

    fn evolve(mut state: SagaState, event: &SagaEvent) -> SagaState {
        match event {
            SagaEvent::SagaEventHandled {
                trigger_id,
                input,
                actions,
                cancelled,
                armed,
            } => {
                state = observe(state, input);
                state.charge_attempts += u32::try_from(
                    actions
                        .iter()
                        .filter(|a| matches!(a, SagaAction::Charge { .. }))
                        .count(),
                )
                .unwrap_or(0);
                if actions
                    .iter()
                    .any(|a| matches!(a, SagaAction::SchedulePayout { .. }))
                {
                    state.payout = PayoutProgress::Requested;
                }
                state.handled.insert(*trigger_id, actions.clone());
                for timer in cancelled {
                    state.timers.remove(timer);
                }
                for TimerArmed { timer, due_at } in armed {
                    state.timers.insert(*timer, *due_at);
                }
            }
            SagaEvent::SagaTimerArmed { timer, due_at } => {
                state.timers.insert(*timer, *due_at);
            }
            SagaEvent::SagaTimerCancelled { timer } => {
                state.timers.remove(timer);
            }
        }
        state
    }
}

/// The commands to send and the timers to arm or cancel in answer to one input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    pub actions: Vec<SagaAction>,
    pub arm: Vec<(TimerKind, Timestamp)>,
    pub cancel: Vec<TimerKind>,
}

/// Whether the saga table (docs/architecture.md) has a row for this input: the events it
/// leaves out are the saga's own echoes (its commands' results), which neither trigger an action
/// nor change the saga's state in any stage, so the saga runner does not record them (a write per
/// event saved). `concerns_tests` holds [`react`] to that.
#[must_use]
pub fn concerns(input: &SagaInput) -> bool {
    !matches!(
        input,
        SagaInput::Reservation(
            ReservationEvent::ReservationApproved { .. }
                | ReservationEvent::ReservationPaymentPending { .. }
                | ReservationEvent::ReservationConfirmed { .. }
                | ReservationEvent::ReservationRefunded { .. }
                | ReservationEvent::ReservationPaid { .. }
        ) | SagaInput::Lodging(
            LodgingEvent::ApprovalRequested { .. }
                | LodgingEvent::ApprovalWithdrawn { .. }
                | LodgingEvent::RequestPaid { .. }
        )
    )
}

/// The table's "unknown lodging -> reject reservation": what the saga's runner sends to the
/// Reservation when the lodging refuses a forwarded command with `error`. `None` when the error is
/// not a business answer the saga can act on (the runner retries or dead-letters it).
#[must_use]
pub fn reservation_fallback(error: &LodgingError) -> Option<ReservationCommand> {
    match error {
        LodgingError::NotRegistered => Some(ReservationCommand::Reject {
            reason: "unknown lodging".to_string(),
        }),
        _ => None,
    }
}

/// Update what the saga knows from an input it handled.
fn observe(mut state: SagaState, input: &SagaInput) -> SagaState {
    use SagaStage as S;
    let ours = state.reservation.as_ref().map(|r| r.reservation_id);
    match input {
        SagaInput::Reservation(ReservationEvent::ReservationRequested(requested))
            if state.reservation.is_none() =>
        {
            state.reservation = Some(requested.clone());
            state.stage = S::AwaitingApproval;
        }
        SagaInput::Reservation(ReservationEvent::ReservationCancelled { .. }) => {
            state.cancelled = true;
            state.stage = S::Cancelled;
        }
        SagaInput::Reservation(ReservationEvent::ReservationExpired {})
        | SagaInput::Timer(TimerKind::ApprovalDeadline)
            if state.stage == S::AwaitingApproval
                || (state.pay_first && matches!(state.stage, S::AwaitingPayment | S::Paid)) =>
        {
            state.stage = S::Expired;
        }
        // A lodging decision about another reservation changes nothing (as in `react`).
        SagaInput::Lodging(event) if event.reservation_id() != ours => {}
        SagaInput::Lodging(LodgingEvent::NightsHeld { .. })
            if state.stage == S::AwaitingApproval =>
        {
            state.pay_first = true;
            state.stage = S::AwaitingPayment;
        }
        SagaInput::Lodging(LodgingEvent::ApprovalGranted { .. }) if state.stage == S::Paid => {
            state.stage = S::Confirmed;
        }
        SagaInput::Reservation(ReservationEvent::ReservationCompleted { .. })
        | SagaInput::Timer(TimerKind::CheckOut)
            if state.stage == S::Confirmed && !state.cancelled =>
        {
            state.stage = S::Completed;
        }
        SagaInput::Reservation(ReservationEvent::ReservationRejected { .. })
        | SagaInput::Lodging(LodgingEvent::ApprovalDenied { .. })
            if state.stage == S::Paid =>
        {
            state.stage = S::Rejected;
        }
        SagaInput::Reservation(ReservationEvent::ReservationRejected { .. })
        | SagaInput::Lodging(LodgingEvent::ApprovalDenied { .. })
            if state.stage == S::AwaitingApproval =>
        {
            state.stage = S::Rejected;
        }
        SagaInput::Lodging(LodgingEvent::ApprovalGranted { .. })
            if state.stage == S::AwaitingApproval =>
        {
            state.stage = S::AwaitingPayment;
        }
        SagaInput::Payment(event) => state = observe_payment(state, event),
        SagaInput::Payout(event) => state = observe_payout(state, event),
        _ => {}
    }
    if let SagaInput::Timer(timer) = input {
        state.timers.remove(timer);
    }
    state
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod concerns_tests;
