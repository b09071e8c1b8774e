//! Register a lodging (platform admins only).

use std::sync::Arc;

use domain::lodging::{LodgingAggregate, LodgingCommand, LodgingProfile};
use domain::Aggregate;
use uuid::Uuid;

use super::{replay, Accepted, Cause, CommandServices, Invocation, Permitted};
use crate::error::CommandError;
use crate::idempotency;
use crate::input::RegisterLodging;
use crate::store::execute;

impl CommandServices {
    /// Record a new lodging; 409 if its id is taken.
    pub async fn register_lodging(
        &self,
        caller: &Permitted<RegisterLodging>,
        input: RegisterLodging,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let lodging_id = match (&input.lodging_id, &invocation.idempotency_key) {
            (Some(id), _) => id.clone(),
            (None, Some(key)) => {
                idempotency::lodging_id(&invocation.principal.sub, key).to_string()
            }
            (None, None) => Uuid::new_v4().to_string(),
        };
        let profile = LodgingProfile {
            lodging_id,
            name: input.name.clone(),
            nightly_rate: input.nightly_rate,
            currency: input.currency.clone(),
            rooms: input.rooms,
            max_guests: input.max_guests,
            approval_mode: input.approval_mode,
            admin_id: input
                .admin_id
                .clone()
                .unwrap_or_else(|| invocation.principal.sub.clone()),
            timezone: input.timezone.unwrap_or(self.default_timezone),
        };
        self.idempotent(invocation, "register-lodging", &input, |cause| {
            self.register_once(invocation, profile, cause)
        })
        .await
    }

    async fn register_once(
        &self,
        invocation: &Invocation,
        profile: LodgingProfile,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let id = profile.lodging_id.clone();
        let command = LodgingCommand::Register(profile.clone());
        let ctx = self.context(invocation, cause.id, cause);
        let result = execute(&self.store.lodgings, &id, &command, &ctx).await;
        match result {
            Ok(executed) => {
                self.catalog.remember(Arc::new(profile));
                let position = executed.outcome.map_or(0, |o| o.position);
                Ok(Accepted::new(id, "registered", position))
            }
            Err(error @ CommandError::WrongState { .. }) if cause.keyed => {
                let stream = LodgingAggregate::stream_name(&id);
                let first = self.store.log.read_stream(&stream, 0, 1).await?;
                let written: Vec<_> = first
                    .into_iter()
                    .filter(|e| e.metadata.causation_id == cause.id)
                    .collect();
                let expected = serde_json::to_value(&profile).unwrap_or_default();
                let replayed = replay(&written, (&id, "registered"), |event| {
                    event.event_type == "LodgingRegistered" && event.data == expected
                })?;
                replayed.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }
}
