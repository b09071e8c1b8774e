//! Sending the saga's recorded actions: aggregate commands go through the repositories, charges and
//! refunds through the payment worker, payouts through the payout worker. Every action is idempotent: its causation id is stable.

use std::sync::Arc;

use domain::lodging::LodgingCommand;
use domain::payment::PaymentCommand;
use domain::reservation::ReservationCommand;
use domain::saga::{reservation_fallback, SagaAction};

use super::commands::{Commands, Outcome};
use super::ids::derived_id;
use super::payment::{
    record, record_with, ActionContext, ActionOutcome, ChargeOrder, PaymentWorker,
};
use super::payout::PayoutWorker;
use super::retry::Stopped;

const ACTOR: &str = "saga";

/// Performs one saga action at a time.
pub struct Actions {
    commands: Arc<Commands>,
    payments: PaymentWorker,
    payouts: PayoutWorker,
}

impl Actions {
    pub fn new(commands: Arc<Commands>, payments: PaymentWorker, payouts: PayoutWorker) -> Self {
        Self {
            commands,
            payments,
            payouts,
        }
    }

    pub fn payments(&self) -> &PaymentWorker {
        &self.payments
    }

    pub async fn perform(
        &self,
        cx: &ActionContext,
        action: &SagaAction,
    ) -> Result<ActionOutcome, Stopped> {
        match action {
            SagaAction::Reservation(command) => self.reservation(cx, command).await,
            SagaAction::Lodging {
                lodging_id,
                command,
            } => self.lodging(cx, lodging_id, command).await,
            SagaAction::Payment(command) => {
                let c = &self.commands;
                // A reservation's payment stream is opened by its request.
                let opens = matches!(command, PaymentCommand::Request { .. });
                record_with(c, &c.payments, cx, command, ACTOR, opens).await
            }
            SagaAction::Charge {
                idempotency_key,
                amount,
                currency,
                attempt,
                last_attempt,
            } => {
                let order = ChargeOrder {
                    idempotency_key,
                    amount: *amount,
                    currency,
                    attempt: *attempt,
                    last_attempt: *last_attempt,
                };
                self.payments.charge(cx, order).await
            }
            SagaAction::RefundCharge { charge_ref, amount } => {
                self.payments.refund(cx, charge_ref, *amount).await
            }
            SagaAction::SchedulePayout {
                lodging_id,
                gross,
                currency,
            } => {
                self.payouts
                    .schedule(cx, lodging_id, *gross, currency)
                    .await
            }
            SagaAction::Payout(command) => {
                let c = &self.commands;
                record(c, &c.payouts, cx, command, ACTOR).await
            }
            SagaAction::PayOut { attempt } => self.payouts.pay_out(cx, *attempt).await,
        }
    }

    async fn reservation(
        &self,
        cx: &ActionContext,
        command: &ReservationCommand,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.commands;
        record(c, &c.reservations, cx, command, ACTOR).await
    }

    /// A lodging that refuses with a business answer the saga can act on (e.g. it is not
    /// registered) gets the reservation its fallback (`domain::saga::reservation_fallback`).
    async fn lodging(
        &self,
        cx: &ActionContext,
        lodging_id: &str,
        command: &LodgingCommand,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.commands;
        let ctx = cx.command_context(ACTOR);
        let error = match c.execute(&c.lodgings, lodging_id, command, &ctx).await? {
            Outcome::Rejected(error) => error,
            outcome => return Ok(ActionOutcome::of(outcome)),
        };
        let Some(fallback) = reservation_fallback(&error) else {
            return Ok(ActionOutcome::Parked(error.to_string()));
        };
        let compensation = ActionContext {
            action_id: derived_id(cx.action_id, "fallback"),
            ..*cx
        };
        let why = match self.reservation(&compensation, &fallback).await? {
            ActionOutcome::Parked(failed) => format!("and the fallback failed: {failed}"),
            _ => format!("so the reservation got {fallback:?}"),
        };
        Ok(ActionOutcome::Parked(format!(
            "lodging {lodging_id}: {error}, {why}"
        )))
    }
}
