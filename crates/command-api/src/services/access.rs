//! Who may attempt which command: the one check of a caller's role, made before the command's input
//! is even read (so a caller who may not ask learns 403, not what was wrong with the body).
//!
//! A service method takes a [`Permitted`] of its own command, and a `Permitted<C>` is made only by
//! [`Invocation::permit`], so every entry (HTTP or not) passes the check, once. Whether the caller
//! owns the resource (their reservation, a lodging they manage) is checked by the service on it.

use std::marker::PhantomData;

use http_edge::{Principal, Role};
use serde::Serialize;

use super::Invocation;
use crate::error::CommandError;
use crate::input::{
    ApproveListing, ApproveRequest, CancelReservation, CancelStay, CloseLodging, CompleteStay,
    EraseCustomer, EraseMe, RecordProfile, RegisterLodging, RejectListing, RejectRequest,
    RequestReservation, RetryPayment, RetryPayout, SubmitListing, UpdateLodging,
};

/// The commands, for access checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    RegisterLodging,
    /// A host lists a lodging for review.
    SubmitListing,
    /// The platform admin approves or rejects a listing.
    ReviewListing,
    /// A lodging's admin updates or closes it.
    ManageLodging,
    RequestReservation,
    CancelReservation,
    DecideRequest,
    RetryPayment,
    /// The platform admin retries a host's payout.
    RetryPayout,
    /// A customer records their profile or erases their personal data.
    OwnProfile,
    /// The platform admin erases a customer's personal data.
    EraseCustomer,
}

/// A command's input, named by the operation its caller's role is checked against.
pub trait Command: Serialize + Send + Sync {
    const OPERATION: Operation;
}

impl Command for RegisterLodging {
    const OPERATION: Operation = Operation::RegisterLodging;
}

impl Command for SubmitListing {
    const OPERATION: Operation = Operation::SubmitListing;
}

impl Command for ApproveListing {
    const OPERATION: Operation = Operation::ReviewListing;
}

impl Command for RejectListing {
    const OPERATION: Operation = Operation::ReviewListing;
}

impl Command for UpdateLodging {
    const OPERATION: Operation = Operation::ManageLodging;
}

impl Command for CloseLodging {
    const OPERATION: Operation = Operation::ManageLodging;
}

impl Command for RequestReservation {
    const OPERATION: Operation = Operation::RequestReservation;
}

impl Command for CancelReservation {
    const OPERATION: Operation = Operation::CancelReservation;
}

impl Command for ApproveRequest {
    const OPERATION: Operation = Operation::DecideRequest;
}

impl Command for RejectRequest {
    const OPERATION: Operation = Operation::DecideRequest;
}

impl Command for CancelStay {
    const OPERATION: Operation = Operation::DecideRequest;
}

impl Command for CompleteStay {
    const OPERATION: Operation = Operation::DecideRequest;
}

impl Command for RetryPayment {
    const OPERATION: Operation = Operation::RetryPayment;
}

impl Command for RetryPayout {
    const OPERATION: Operation = Operation::RetryPayout;
}

impl Command for RecordProfile {
    const OPERATION: Operation = Operation::OwnProfile;
}

impl Command for EraseMe {
    const OPERATION: Operation = Operation::OwnProfile;
}

impl Command for EraseCustomer {
    const OPERATION: Operation = Operation::EraseCustomer;
}

/// An invocation whose caller's role may attempt command `C`.
#[derive(Debug, Clone)]
pub struct Permitted<C> {
    invocation: Invocation,
    command: PhantomData<fn() -> C>,
}

impl<C> Permitted<C> {
    #[must_use]
    pub fn invocation(&self) -> &Invocation {
        &self.invocation
    }
}

impl Invocation {
    /// 403 unless the caller's role may attempt command `C` at all.
    pub fn permit<C: Command>(self) -> Result<Permitted<C>, CommandError> {
        permit(&self.principal, C::OPERATION)?;
        Ok(Permitted {
            invocation: self,
            command: PhantomData,
        })
    }
}

/// Whether `principal`'s role may attempt `operation` at all (ownership is checked on the resource).
fn permit(principal: &Principal, operation: Operation) -> Result<(), CommandError> {
    let (allowed, rule) = match operation {
        Operation::RegisterLodging => (
            principal.is_platform_admin(),
            "only a platform admin (lodgings claim `*`) registers lodgings",
        ),
        Operation::SubmitListing => (
            principal.role == Role::Admin,
            "only an admin (the host) submits a listing",
        ),
        Operation::ReviewListing => (
            principal.is_platform_admin(),
            "only a platform admin (lodgings claim `*`) reviews listings",
        ),
        Operation::ManageLodging => (
            principal.role == Role::Admin,
            "only the lodging's admin updates or closes it",
        ),
        Operation::RequestReservation => (
            principal.role == Role::Customer,
            "only customers request reservations",
        ),
        Operation::CancelReservation => (
            principal.role == Role::Customer,
            "only the customer who made a reservation cancels it",
        ),
        Operation::DecideRequest => (
            principal.role == Role::Admin,
            "only the lodging's admin decides requests",
        ),
        Operation::RetryPayment => (
            principal.role == Role::Admin,
            "only the lodging's admin retries payments",
        ),
        Operation::RetryPayout => (
            principal.is_platform_admin(),
            "only the platform admin (lodgings claim `*`) retries payouts",
        ),
        Operation::OwnProfile => (
            principal.role == Role::Customer,
            "only a customer has a profile of their own",
        ),
        Operation::EraseCustomer => (
            principal.is_platform_admin(),
            "only the platform admin (lodgings claim `*`) erases a customer",
        ),
    };
    if allowed {
        Ok(())
    } else {
        Err(CommandError::Forbidden(rule.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn invocation(role: Role, lodgings: &[&str]) -> Invocation {
        Invocation {
            principal: Principal {
                sub: "s-1".into(),
                role,
                lodgings: lodgings.iter().map(|l| (*l).to_string()).collect(),
            },
            request_id: Uuid::new_v4(),
            idempotency_key: None,
        }
    }

    #[test]
    fn each_role_is_permitted_only_its_commands() {
        let customer = || invocation(Role::Customer, &[]);
        let admin = || invocation(Role::Admin, &["l-1"]);
        let root = || invocation(Role::Admin, &["*"]);
        let auditor = || invocation(Role::Auditor, &["*"]);
        assert!(customer().permit::<RequestReservation>().is_ok());
        assert!(customer().permit::<CancelReservation>().is_ok());
        assert!(customer().permit::<ApproveRequest>().is_err());
        assert!(admin().permit::<RejectRequest>().is_ok());
        assert!(admin().permit::<RetryPayment>().is_ok());
        assert!(admin().permit::<RegisterLodging>().is_err());
        assert!(admin().permit::<RequestReservation>().is_err());
        assert!(root().permit::<RegisterLodging>().is_ok());
        assert!(admin().permit::<SubmitListing>().is_ok());
        assert!(admin().permit::<UpdateLodging>().is_ok());
        assert!(admin().permit::<ApproveListing>().is_err());
        assert!(root().permit::<RejectListing>().is_ok());
        assert!(customer().permit::<SubmitListing>().is_err());
        assert!(customer().permit::<CloseLodging>().is_err());
        for denied in [
            auditor().permit::<RegisterLodging>().map(|_| ()),
            auditor().permit::<RequestReservation>().map(|_| ()),
            auditor().permit::<CancelReservation>().map(|_| ()),
            auditor().permit::<ApproveRequest>().map(|_| ()),
            auditor().permit::<RetryPayment>().map(|_| ()),
            auditor().permit::<SubmitListing>().map(|_| ()),
            auditor().permit::<ApproveListing>().map(|_| ()),
            auditor().permit::<UpdateLodging>().map(|_| ()),
        ] {
            assert!(matches!(denied, Err(CommandError::Forbidden(_))));
        }
    }
}
