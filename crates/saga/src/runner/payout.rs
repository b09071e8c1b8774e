//! The payout worker: turns the saga's `SchedulePayout` and `PayOut` actions into the stay's one
//! payout (host and fee rate read off the lodging as it is at that moment) and a gateway payout call
//! (idempotent per stay), and records the outcome on the Payout aggregate.
//!
//! pay out: ok -> `RecordSent`; declined -> `Fail`; unavailable (an error or a timeout: an attempt) ->
//! `Defer` with exponential backoff and jitter (the saga fails it once the attempts are used up);
//! circuit open (the gateway never called) -> `DeferUncounted`: an open circuit uses up no attempt.
//! A net of zero (a 100% fee, a free stay) is recorded as sent without calling the gateway.

use chrono::Utc;
use domain::payout::{PayoutCommand, PayoutError, PayoutStatus, PayoutTerms};
use domain::saga::retry_delay;

use super::commands::Outcome;
use super::payment::{record, with_jitter, ActionContext, ActionOutcome};
use super::retry::Stopped;
use super::WorkerParts;
use crate::gateway::{GatewayError, PayoutReceipt};

const ACTOR: &str = "payout-worker";

/// The gateway reference of a payout of nothing, recorded without calling the gateway.
pub const NO_PAYOUT_REF: &str = "no-payout";

/// What the stay's one payout is known by at the gateway: a repeat is never paid twice.
#[must_use]
pub fn payout_key(cx: &ActionContext) -> String {
    format!("payout-{}", cx.reservation_id)
}

pub struct PayoutWorker {
    parts: WorkerParts,
}

impl PayoutWorker {
    pub fn new(parts: WorkerParts) -> Self {
        Self { parts }
    }

    /// Schedule the stay's payout at the lodging's host and fee rate of now. Scheduled already (an
    /// action sent again after a crash) is done.
    pub async fn schedule(
        &self,
        cx: &ActionContext,
        lodging_id: &str,
        gross: i64,
        currency: &str,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.parts.commands;
        let lodging = match c.load(&c.lodgings, lodging_id).await? {
            Ok(lodging) => lodging,
            Err(poison) => return Ok(ActionOutcome::Parked(poison)),
        };
        let Some(profile) = lodging.profile else {
            return Ok(ActionOutcome::Parked(format!(
                "no payout: lodging {lodging_id} is not registered"
            )));
        };
        let terms = PayoutTerms {
            reservation_id: cx.reservation_id,
            lodging_id: lodging_id.to_string(),
            host_id: profile.admin_id,
            gross,
            fee_bps: profile.fee_bps,
            currency: currency.to_string(),
        };
        let id = cx.reservation_id.to_string();
        let ctx = cx.command_context(ACTOR);
        let command = PayoutCommand::Schedule(terms);
        Ok(match c.execute(&c.payouts, &id, &command, &ctx).await? {
            Outcome::Done(_) | Outcome::Rejected(PayoutError::AlreadyScheduled) => {
                ActionOutcome::Done
            }
            outcome => ActionOutcome::of(outcome),
        })
    }

    /// Pay the scheduled net to the host, once: a payout sent or failed is not sent again.
    pub async fn pay_out(
        &self,
        cx: &ActionContext,
        attempt: u32,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.parts.commands;
        let id = cx.reservation_id.to_string();
        let payout = match c.load(&c.payouts, &id).await? {
            Ok(payout) => payout,
            Err(poison) => return Ok(ActionOutcome::Parked(poison)),
        };
        let open = matches!(
            payout.status,
            PayoutStatus::Scheduled | PayoutStatus::Deferred
        );
        let Some((terms, _fee, net)) = payout.scheduled.filter(|_| open) else {
            return Ok(ActionOutcome::Done);
        };
        let result = if net == 0 {
            Ok(PayoutReceipt {
                payout_ref: NO_PAYOUT_REF.to_string(),
            })
        } else {
            let key = payout_key(cx);
            self.parts
                .gateway
                .payout(&key, &terms.host_id, net, &terms.currency)
                .await
        };
        let command = self.outcome(attempt, result);
        self.record(cx, &command).await
    }

    fn outcome(&self, attempt: u32, result: Result<PayoutReceipt, GatewayError>) -> PayoutCommand {
        let retry_at =
            || Utc::now() + with_jitter(retry_delay(self.parts.policy.retry_base, attempt));
        match result {
            Ok(receipt) => {
                self.parts.status.count_payout_sent();
                PayoutCommand::RecordSent {
                    gateway_ref: receipt.payout_ref,
                }
            }
            Err(GatewayError::Declined(reason)) => {
                self.parts.status.count_payout_failed();
                PayoutCommand::Fail {
                    reason: format!("payout declined: {reason}"),
                }
            }
            Err(GatewayError::CircuitOpen) => {
                self.parts.status.count_payout_deferred();
                PayoutCommand::DeferUncounted {
                    reason: GatewayError::CircuitOpen.to_string(),
                    retry_at: retry_at(),
                }
            }
            Err(error) => {
                self.parts.status.count_payout_deferred();
                PayoutCommand::Defer {
                    reason: error.to_string(),
                    retry_at: retry_at(),
                }
            }
        }
    }

    async fn record(
        &self,
        cx: &ActionContext,
        command: &PayoutCommand,
    ) -> Result<ActionOutcome, Stopped> {
        let c = &self.parts.commands;
        record(c, &c.payouts, cx, command, ACTOR).await
    }
}
