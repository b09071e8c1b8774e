//! The payment worker: turns the saga's `Charge` / `RefundCharge` actions into gateway calls and
//! records the outcome on the Payment aggregate.
//!
//! charge: ok -> `Complete`; declined -> `Fail`; unavailable (an error or a timeout: an attempt) ->
//! `Defer` with exponential backoff and jitter, and on the last attempt `Defer` until the approval
//! deadline has passed once more (the lodging's admin may retry it meanwhile; then the saga fails it);
//! circuit open (the gateway never called) -> `DeferUncounted`: an open circuit uses up no attempt.
//! refund: ok -> `Refund`; declined -> parked for operators; unavailable -> a durable refund retry.

use chrono::{TimeDelta, Utc};
use domain::payment::{PaymentCommand, PaymentStatus};
use domain::saga::retry_delay;
use domain::{Aggregate, ReservationId, Timestamp};
use eventlog::CommandContext;
use rand::Rng;
use uuid::Uuid;

use super::commands::{Commands, Outcome};
use super::ids::derived_id;
use super::retry::{pause, Stopped};
use super::WorkerParts;
use crate::gateway::GatewayError;
use crate::store::RefundRetry;

/// Where an action comes from: its reservation, trigger and stable id.
#[derive(Debug, Clone, Copy)]
pub struct ActionContext {
    pub reservation_id: ReservationId,
    /// Stable id of this action: the causation id of whatever it writes.
    pub action_id: Uuid,
    pub correlation_id: Uuid,
}

impl ActionContext {
    pub fn command_context(&self, actor: &str) -> CommandContext {
        CommandContext {
            correlation_id: self.correlation_id,
            causation_id: self.action_id,
            actor: actor.to_string(),
            now: Utc::now(),
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    Done,
    /// Rejected for good: recorded for operators, the saga goes on.
    Parked(String),
    /// The gateway could not refund yet: retry durably later.
    RefundDeferred(RefundRetry),
}

impl ActionOutcome {
    /// How a command the saga sent ended: a refusal or an unreadable stream is parked.
    pub fn of<A: Aggregate>(outcome: Outcome<A>) -> Self {
        match outcome {
            Outcome::Done(_) => Self::Done,
            Outcome::Rejected(error) => Self::Parked(error.to_string()),
            Outcome::Poison(error) => Self::Parked(error),
        }
    }
}

/// Execute `command` on the reservation's stream of `repository`, as `actor`, and say how it ended.
pub(super) async fn record<A: Aggregate>(
    commands: &Commands,
    repository: &eventlog::Repository<A>,
    cx: &ActionContext,
    command: &A::Command,
    actor: &str,
) -> Result<ActionOutcome, Stopped> {
    record_with(commands, repository, cx, command, actor, false).await
}

/// As [`record`]; `opens`: the command most likely opens its stream (a payment's request), so it is
/// decided without reading the stream first ([`Commands::execute_with`]). Sent again (a recorded
/// action after a crash), it finds the stream there: its events are deduplicated by their ids, or
/// the append conflicts and the command is decided again on the stream, as `record` would.
pub(super) async fn record_with<A: Aggregate>(
    commands: &Commands,
    repository: &eventlog::Repository<A>,
    cx: &ActionContext,
    command: &A::Command,
    actor: &str,
    opens: bool,
) -> Result<ActionOutcome, Stopped> {
    let id = cx.reservation_id.to_string();
    let ctx = cx.command_context(actor);
    let outcome = commands
        .execute_with(repository, &id, command, &ctx, opens)
        .await?;
    Ok(ActionOutcome::of(outcome))
}

/// A charge the saga asked for.
#[derive(Debug, Clone, Copy)]
pub struct ChargeOrder<'a> {
    pub idempotency_key: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub attempt: u32,
    pub last_attempt: bool,
}

const ACTOR: &str = "payment-worker";

/// A payment stream holds a handful of events; read at most this many.
const PAYMENT_STREAM_READ_LIMIT: usize = 10_000;

pub struct PaymentWorker {
    parts: WorkerParts,
}

/// `delay` plus a random 0..=25% of it.
pub(super) fn with_jitter(delay: TimeDelta) -> TimeDelta {
    let max = delay.num_milliseconds().max(0) / 4;
    delay + TimeDelta::milliseconds(rand::thread_rng().gen_range(0..=max))
}

impl PaymentWorker {
    pub fn new(parts: WorkerParts) -> Self {
        Self { parts }
    }

    /// Charge once per payment: a payment already settled, or an action whose outcome is already
    /// recorded, is not sent to the gateway again.
    pub async fn charge(
        &self,
        cx: &ActionContext,
        order: ChargeOrder<'_>,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.parts.commands;
        let payment = match c.load(&c.payments, &cx.reservation_id.to_string()).await? {
            Ok(payment) => payment,
            Err(poison) => return Ok(ActionOutcome::Parked(poison)),
        };
        let go = match payment.status {
            // No attempt has an outcome yet: this is the first charge.
            PaymentStatus::Requested => true,
            // A voided payment is still charged through if this attempt has no outcome: its charge
            // may have reached the gateway before a crash, and only asking again (same key, never
            // charged twice) tells; a charge found that way is then refunded.
            PaymentStatus::Deferred | PaymentStatus::Voided => !self.outcome_recorded(cx).await?,
            _ => false,
        };
        if !go {
            return Ok(ActionOutcome::Done);
        }
        let result = self
            .parts
            .gateway
            .charge(order.idempotency_key, order.amount, order.currency)
            .await;
        let command = self.charge_outcome(cx, &order, result);
        self.record(cx, &command).await
    }

    fn charge_outcome(
        &self,
        cx: &ActionContext,
        order: &ChargeOrder<'_>,
        result: Result<crate::gateway::ChargeReceipt, GatewayError>,
    ) -> PaymentCommand {
        match result {
            Ok(receipt) => {
                self.parts.status.count_charge_completed();
                PaymentCommand::Complete {
                    payment_id: derived_id(cx.action_id, "payment").to_string(),
                    gateway_ref: receipt.charge_ref,
                    amount: order.amount,
                }
            }
            Err(GatewayError::Declined(reason)) => {
                self.parts.status.count_charge_failed();
                PaymentCommand::Fail {
                    reason: format!("payment declined: {reason}"),
                }
            }
            Err(GatewayError::CircuitOpen) => {
                self.parts.status.count_charge_deferred();
                let delay = retry_delay(self.parts.policy.retry_base, order.attempt);
                PaymentCommand::DeferUncounted {
                    reason: GatewayError::CircuitOpen.to_string(),
                    retry_at: Utc::now() + with_jitter(delay),
                }
            }
            Err(error) if order.last_attempt => {
                self.parts.status.count_charge_deferred();
                let until = Utc::now() + self.parts.policy.approval_deadline;
                PaymentCommand::Defer {
                    reason: format!(
                        "payment attempts exhausted: {error}; the lodging's admin may retry it until {}",
                        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                    retry_at: until,
                }
            }
            Err(error) => {
                self.parts.status.count_charge_deferred();
                let delay = retry_delay(self.parts.policy.retry_base, order.attempt);
                PaymentCommand::Defer {
                    reason: error.to_string(),
                    retry_at: Utc::now() + with_jitter(delay),
                }
            }
        }
    }

    /// Refund a completed charge (a refunded payment is not refunded again).
    pub async fn refund(
        &self,
        cx: &ActionContext,
        charge_ref: &str,
        amount: i64,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.parts.commands;
        let payment = match c.load(&c.payments, &cx.reservation_id.to_string()).await? {
            Ok(payment) => payment,
            Err(poison) => return Ok(ActionOutcome::Parked(poison)),
        };
        if payment.status == PaymentStatus::Refunded {
            return Ok(ActionOutcome::Done);
        }
        let retry = RefundRetry {
            action_id: cx.action_id,
            reservation_id: cx.reservation_id,
            correlation_id: cx.correlation_id,
            charge_ref: charge_ref.to_string(),
            amount,
            attempt: 0,
            next_attempt_at: Utc::now(),
            last_error: String::new(),
        };
        self.attempt_refund(cx, retry).await
    }

    /// Try a refund the gateway could not take before.
    pub async fn retry_refund(&self, retry: RefundRetry) -> Result<ActionOutcome, Stopped> {
        let cx = ActionContext {
            reservation_id: retry.reservation_id,
            action_id: retry.action_id,
            correlation_id: retry.correlation_id,
        };
        self.attempt_refund(&cx, retry).await
    }

    async fn attempt_refund(
        &self,
        cx: &ActionContext,
        mut retry: RefundRetry,
    ) -> Result<ActionOutcome, Stopped> {
        retry.attempt += 1;
        match self
            .parts
            .gateway
            .refund(&retry.charge_ref, retry.amount)
            .await
        {
            Ok(receipt) => {
                self.parts.status.count_refund();
                let command = PaymentCommand::Refund {
                    amount: retry.amount,
                    gateway_ref: receipt.refund_ref,
                };
                self.record(cx, &command).await
            }
            Err(GatewayError::Declined(reason)) => {
                Ok(ActionOutcome::Parked(format!("refund declined: {reason}")))
            }
            Err(error) => {
                let delay = retry_delay(self.parts.policy.retry_base, retry.attempt);
                retry.next_attempt_at = next_attempt(Utc::now(), delay);
                retry.last_error = error.to_string();
                tracing::warn!(reservation_id = %cx.reservation_id, %error, attempt = retry.attempt, "refund deferred");
                Ok(ActionOutcome::RefundDeferred(retry))
            }
        }
    }

    async fn record(
        &self,
        cx: &ActionContext,
        command: &PaymentCommand,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.parts.commands;
        record(c, &c.payments, cx, command, ACTOR).await
    }

    /// Whether the payment stream already holds an event caused by this action.
    async fn outcome_recorded(&self, cx: &ActionContext) -> Result<bool, Stopped> {
        let stream = domain::payment::PaymentAggregate::stream_name(&cx.reservation_id.to_string());
        let mut attempt = 0;
        loop {
            match self
                .parts
                .commands
                .log
                .read_stream(&stream, 0, PAYMENT_STREAM_READ_LIMIT)
                .await
            {
                Ok(events) => {
                    return Ok(events
                        .iter()
                        .any(|event| event.metadata.causation_id == cx.action_id))
                }
                Err(error) => {
                    attempt += 1;
                    tracing::warn!(%error, %stream, attempt, "reading the payment stream failed, retrying");
                    let delay = self.parts.commands.backoff().delay(attempt);
                    pause(delay, self.parts.commands.shutdown()).await?;
                }
            }
        }
    }
}

fn next_attempt(now: Timestamp, delay: TimeDelta) -> Timestamp {
    now + with_jitter(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        let delay = TimeDelta::milliseconds(400);
        for _ in 0..200 {
            let jittered = with_jitter(delay);
            assert!(
                jittered >= delay && jittered <= TimeDelta::milliseconds(500),
                "{jittered}"
            );
        }
    }
}
