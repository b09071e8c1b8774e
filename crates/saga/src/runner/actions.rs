//! Sending the saga's recorded actions: aggregate commands go through the repositories, charges and
//! refunds through the payment worker. Every action is idempotent: its causation id is stable.

use std::sync::Arc;

use domain::lodging::{LodgingCommand, LodgingError};
use domain::reservation::ReservationCommand;
use domain::saga::SagaAction;

use super::commands::{Commands, Outcome};
use super::ids::derived_id;
use super::payment::{ActionContext, ActionOutcome, ChargeOrder, PaymentWorker};
use super::retry::Stopped;

const ACTOR: &str = "saga";

/// Performs one saga action at a time.
pub struct Actions {
    commands: Arc<Commands>,
    payments: PaymentWorker,
}

fn settle<A: domain::Aggregate>(outcome: Outcome<A>) -> ActionOutcome {
    match outcome {
        Outcome::Done(_) => ActionOutcome::Done,
        Outcome::Rejected(error) => ActionOutcome::Parked(error.to_string()),
        Outcome::Poison(error) => ActionOutcome::Parked(error),
    }
}

impl Actions {
    pub fn new(commands: Arc<Commands>, payments: PaymentWorker) -> Self {
        Self { commands, payments }
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
                let (c, id) = (&self.commands, cx.reservation_id.to_string());
                let ctx = cx.command_context(ACTOR);
                Ok(settle(c.execute(&c.payments, &id, command, &ctx).await?))
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
        }
    }

    async fn reservation(
        &self,
        cx: &ActionContext,
        command: &ReservationCommand,
    ) -> Result<ActionOutcome, Stopped> {
        let (c, id) = (&self.commands, cx.reservation_id.to_string());
        let ctx = cx.command_context(ACTOR);
        Ok(settle(
            c.execute(&c.reservations, &id, command, &ctx).await?,
        ))
    }

    /// A request for an unknown lodging cannot be approved by anyone: reject the reservation.
    async fn lodging(
        &self,
        cx: &ActionContext,
        lodging_id: &str,
        command: &LodgingCommand,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.commands;
        let ctx = cx.command_context(ACTOR);
        let outcome = c.execute(&c.lodgings, lodging_id, command, &ctx).await?;
        match (outcome, command) {
            (
                Outcome::Rejected(LodgingError::NotRegistered),
                LodgingCommand::RequestApproval { .. },
            ) => {
                let reject = ReservationCommand::Reject {
                    reason: "unknown lodging".to_string(),
                };
                let compensation = ActionContext {
                    action_id: derived_id(cx.action_id, "compensation"),
                    ..*cx
                };
                let rejected = self.reservation(&compensation, &reject).await?;
                Ok(ActionOutcome::Parked(match rejected {
                    ActionOutcome::Parked(why) => format!(
                        "unknown lodging {lodging_id}; rejecting the reservation failed: {why}"
                    ),
                    _ => format!("unknown lodging {lodging_id}: reservation rejected"),
                }))
            }
            (outcome, _) => Ok(settle(outcome)),
        }
    }
}
