//! How payout events change the payouts view (one row per stay's payout) and the ReservationList's
//! `payout_status`: scheduled -> `scheduled`, deferred -> `pending`, sent -> `sent` (with the
//! gateway's reference and when), failed -> `failed`, retried by the platform -> `scheduled` again.

use domain::payout::PayoutEvent;
use uuid::Uuid;

use super::{Projection, ViewSource};
use crate::{PayoutStatus, PayoutView, ViewError, ViewEvent};

/// The status an event leaves a payout in.
fn status_after(event: &PayoutEvent) -> PayoutStatus {
    use PayoutEvent as E;
    match event {
        E::PayoutScheduled { .. } | E::PayoutRetryRequested { .. } => PayoutStatus::Scheduled,
        E::PayoutDeferred { .. } => PayoutStatus::Pending,
        E::PayoutSent { .. } => PayoutStatus::Sent,
        E::PayoutFailed { .. } => PayoutStatus::Failed,
    }
}

impl<S: ViewSource> Projection<'_, S> {
    pub(super) fn on_payout(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        inner: &PayoutEvent,
    ) -> Result<(), ViewError> {
        let status = status_after(inner);
        match inner {
            PayoutEvent::PayoutScheduled { .. } => self.on_scheduled(event, id, inner)?,
            PayoutEvent::PayoutSent { gateway_ref } => {
                self.update_payout(event, id, |row| {
                    row.status = status;
                    row.gateway_ref = Some(gateway_ref.clone());
                    row.sent_at = Some(event.recorded_at);
                })?;
            }
            _ => {
                self.update_payout(event, id, |row| row.status = status)?;
            }
        }
        self.update_reservation(event, id, |view| view.payout_status = status)?;
        Ok(())
    }

    fn on_scheduled(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        scheduled: &PayoutEvent,
    ) -> Result<(), ViewError> {
        let PayoutEvent::PayoutScheduled {
            reservation_id,
            lodging_id,
            host_id,
            gross,
            fee,
            net,
            currency,
            ..
        } = scheduled
        else {
            return Ok(());
        };
        if *reservation_id != id {
            return Err(ViewError::Unprocessable {
                position: event.position,
                reason: format!("PayoutScheduled for {reservation_id} in the stream of {id}"),
            });
        }
        let row = PayoutView {
            reservation_id: id,
            lodging_id: lodging_id.clone(),
            host_id: host_id.clone(),
            gross: *gross,
            fee: *fee,
            net: *net,
            currency: currency.clone(),
            status: PayoutStatus::Scheduled,
            gateway_ref: None,
            scheduled_at: event.recorded_at,
            sent_at: None,
            position: event.position,
        };
        self.create_payout(event, row)?;
        Ok(())
    }
}
