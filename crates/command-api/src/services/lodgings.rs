//! The catalog's commands: a platform admin registers an active lodging; any admin submits a
//! listing (as its host) that the platform admin approves (with a fee) or rejects; a lodging's
//! admin updates or closes it. Each forgets the catalog's cached entry of the lodging it changed.

use std::sync::Arc;

use domain::lodging::{LodgingAggregate, LodgingCommand, LodgingProfile};
use domain::Aggregate;
use uuid::Uuid;

use super::{replay, Accepted, Cause, CommandServices, Invocation, Permitted};
use crate::error::CommandError;
use crate::idempotency;
use crate::input::{
    ApproveListing, CloseLodging, RegisterLodging, RejectListing, SubmitListing, UpdateLodging,
};
use crate::store::execute;

/// What a catalog command answers (`status`) and the event that shows it was carried out.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    status: &'static str,
    event_type: &'static str,
}

const REGISTERED: Outcome = Outcome {
    status: "registered",
    event_type: "LodgingRegistered",
};
const SUBMITTED: Outcome = Outcome {
    status: "pending_review",
    event_type: "ListingSubmitted",
};

impl CommandServices {
    /// Record a new active lodging; 409 if its id is taken.
    pub async fn register_lodging(
        &self,
        caller: &Permitted<RegisterLodging>,
        input: RegisterLodging,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let profile = self.profile(invocation, &input, input.admin_id.clone(), input.fee_bps);
        self.idempotent(invocation, "register-lodging", &input, |cause| {
            let command = LodgingCommand::Register(profile.clone());
            self.open_once(invocation, profile, command, REGISTERED, cause)
        })
        .await
    }

    /// Record a host's listing, to be reviewed by the platform admin; 409 if its id is taken.
    pub async fn submit_listing(
        &self,
        caller: &Permitted<SubmitListing>,
        input: SubmitListing,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let host = Some(invocation.principal.sub.clone());
        let profile = self.profile(invocation, &input.0, host, None);
        self.idempotent(invocation, "submit-listing", &input, |cause| {
            let command = LodgingCommand::Submit(profile.clone());
            self.open_once(invocation, profile, command, SUBMITTED, cause)
        })
        .await
    }

    /// Approve a listing under review (with `fee_bps`, else the fee it was submitted with).
    pub async fn approve_listing(
        &self,
        caller: &Permitted<ApproveListing>,
        lodging_id: &str,
        input: ApproveListing,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("approve-listing:{lodging_id}");
        self.idempotent(invocation, &operation, &input, |cause| async move {
            let listing = self.existing(lodging_id).await?;
            let command = LodgingCommand::ApproveListing {
                fee_bps: input.fee_bps.unwrap_or(listing.profile.fee_bps),
                approved_by: invocation.principal.actor(),
            };
            let outcome = Outcome {
                status: "active",
                event_type: "ListingApproved",
            };
            self.on_lodging(invocation, lodging_id, &command, outcome, cause)
                .await
        })
        .await
    }

    /// Reject a listing under review.
    pub async fn reject_listing(
        &self,
        caller: &Permitted<RejectListing>,
        lodging_id: &str,
        input: RejectListing,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("reject-listing:{lodging_id}");
        let reason = input.reason.clone();
        self.idempotent(invocation, &operation, &input, |cause| async move {
            self.existing(lodging_id).await?;
            let command = LodgingCommand::RejectListing {
                reason,
                rejected_by: invocation.principal.actor(),
            };
            let outcome = Outcome {
                status: "rejected",
                event_type: "ListingRejected",
            };
            self.on_lodging(invocation, lodging_id, &command, outcome, cause)
                .await
        })
        .await
    }

    /// Change some of a lodging's fields (its admin); 409 if fewer rooms would overbook a night.
    pub async fn update_lodging(
        &self,
        caller: &Permitted<UpdateLodging>,
        lodging_id: &str,
        input: UpdateLodging,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("update-lodging:{lodging_id}");
        let changes = input.changes(invocation.principal.actor());
        self.idempotent(invocation, &operation, &input, |cause| async move {
            let listing = self.admin_of(invocation, lodging_id).await?;
            let command = LodgingCommand::Update(changes);
            let outcome = Outcome {
                status: listing.status.as_str(),
                event_type: "LodgingUpdated",
            };
            self.on_lodging(invocation, lodging_id, &command, outcome, cause)
                .await
        })
        .await
    }

    /// Close a lodging to new requests (its admin); what was requested or booked stays.
    pub async fn close_lodging(
        &self,
        caller: &Permitted<CloseLodging>,
        lodging_id: &str,
        input: CloseLodging,
    ) -> Result<Accepted, CommandError> {
        let invocation = caller.invocation();
        let operation = format!("close-lodging:{lodging_id}");
        let reason = input.reason.clone();
        self.idempotent(invocation, &operation, &input, |cause| async move {
            self.admin_of(invocation, lodging_id).await?;
            let command = LodgingCommand::Close {
                reason,
                closed_by: invocation.principal.actor(),
            };
            let outcome = Outcome {
                status: "closed",
                event_type: "LodgingClosed",
            };
            self.on_lodging(invocation, lodging_id, &command, outcome, cause)
                .await
        })
        .await
    }

    /// The profile `input` describes, administered by `admin_id` (else the caller), with `fee_bps`
    /// (else the platform's) and the service's time zone unless it names one.
    fn profile(
        &self,
        invocation: &Invocation,
        input: &RegisterLodging,
        admin_id: Option<String>,
        fee_bps: Option<u32>,
    ) -> LodgingProfile {
        let lodging_id = match (&input.lodging_id, &invocation.idempotency_key) {
            (Some(id), _) => id.clone(),
            (None, Some(key)) => {
                idempotency::lodging_id(&invocation.principal.sub, key).to_string()
            }
            (None, None) => Uuid::new_v4().to_string(),
        };
        LodgingProfile {
            lodging_id,
            name: input.name.clone(),
            nightly_rate: input.nightly_rate,
            currency: input.currency.clone(),
            rooms: input.rooms,
            max_guests: input.max_guests,
            approval_mode: input.approval_mode,
            admin_id: admin_id.unwrap_or_else(|| invocation.principal.sub.clone()),
            timezone: input.timezone.unwrap_or(self.default_timezone),
            fee_bps: fee_bps.unwrap_or(self.platform_fee_bps),
        }
    }

    /// The lodging `lodging_id`; 404 if there is none.
    async fn existing(
        &self,
        lodging_id: &str,
    ) -> Result<Arc<crate::catalog::Listing>, CommandError> {
        self.catalog
            .listing(lodging_id)
            .await?
            .ok_or_else(|| CommandError::NotFound(format!("no lodging {lodging_id}")))
    }

    /// Open the stream of a new lodging; a keyed repeat of the same registration answers the first.
    async fn open_once(
        &self,
        invocation: &Invocation,
        profile: LodgingProfile,
        command: LodgingCommand,
        outcome: Outcome,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let id = profile.lodging_id.clone();
        let ctx = self.context(invocation, cause.id, cause);
        let result = execute(&self.store.lodgings, &id, &command, &ctx).await;
        self.catalog.forget(&id);
        match result {
            Ok(executed) => {
                let position = executed.outcome.map_or(0, |o| o.position);
                Ok(Accepted::new(id, outcome.status, position))
            }
            Err(error @ CommandError::WrongState { .. }) if cause.keyed => {
                let stream = LodgingAggregate::stream_name(&id);
                let first = self.store.log.read_stream(&stream, 0, 1).await?;
                let written: Vec<_> = first
                    .into_iter()
                    .filter(|e| e.metadata.causation_id == cause.id)
                    .collect();
                let expected = serde_json::to_value(&profile).unwrap_or_default();
                let replayed = replay(&written, (&id, outcome.status), |event| {
                    event.event_type == outcome.event_type && event.data == expected
                })?;
                replayed.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Run a catalog `command` on an existing lodging; a keyed repeat whose first attempt was
    /// carried out answers as the first did.
    async fn on_lodging(
        &self,
        invocation: &Invocation,
        lodging_id: &str,
        command: &LodgingCommand,
        outcome: Outcome,
        cause: Cause,
    ) -> Result<Accepted, CommandError> {
        let ctx = self.context(invocation, cause.id, cause);
        let result = execute(&self.store.lodgings, lodging_id, command, &ctx).await;
        self.catalog.forget(lodging_id);
        match result {
            Ok(executed) => {
                let position = executed.outcome.map_or(0, |o| o.position);
                Ok(Accepted::new(lodging_id, outcome.status, position))
            }
            Err(error @ CommandError::WrongState { .. }) if cause.keyed => {
                let stream = LodgingAggregate::stream_name(lodging_id);
                let written = self.written_by(&stream, cause).await?;
                let replayed = replay(&written, (lodging_id, outcome.status), |event| {
                    event.event_type == outcome.event_type
                })?;
                replayed.ok_or(error)
            }
            Err(error) => Err(error),
        }
    }
}
