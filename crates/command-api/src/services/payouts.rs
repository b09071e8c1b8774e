//! The platform admin's command on payouts: try a deferred or failed payout again now (the saga
//! then sends it, a fresh round of attempts). 409 (`payout-not-retryable`) unless the stay's payout
//! is pending (deferred) or failed.

use domain::payout::{PayoutAggregate, PayoutCommand};
use domain::{Aggregate, ReservationId};

use super::{replay, Accepted, Cause, CommandServices, Invocation, Permitted};
use crate::error::CommandError;
use crate::input::RetryPayout;
use crate::store::execute;

impl CommandServices {
    pub async fn retry_payout(
        &self,
        caller: &Permitted<RetryPayout>,
        reservation_id: ReservationId,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("retry-payout:{reservation_id}");
        self.idempotent(invocation, &operation, &RetryPayout, |cause| {
            self.retry_payout_once(invocation, reservation_id, cause)
        })
        .await
    }

    async fn retry_payout_once(
        &self,
        invocation: &Invocation,
        reservation_id: ReservationId,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let id = reservation_id.to_string();
        // A request repeated with its Idempotency-Key answers as the first did, even though the
        // payout is no longer retryable once the first retry was recorded.
        let written = self
            .written_by(&PayoutAggregate::stream_name(&id), cause)
            .await?;
        let earlier = replay(&written, (&id, "retry_requested"), |e| {
            e.event_type == "PayoutRetryRequested"
        })?;
        if let Some(answer) = earlier {
            return Ok(answer);
        }
        let command = PayoutCommand::Retry {
            requested_by: invocation.principal.actor(),
        };
        let ctx = self.context(invocation, reservation_id, cause);
        let executed = execute(&self.store.payouts, &id, &command, &ctx).await?;
        let position = executed.outcome.map_or(0, |o| o.position);
        Ok(Accepted::new(id, "retry_requested", position))
    }
}
