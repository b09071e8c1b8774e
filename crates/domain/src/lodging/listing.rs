//! The listing lifecycle of a lodging: registered active by the platform admin, or submitted by a
//! host and reviewed (approved with a fee, or rejected); updated and closed by its admin.
//!
//! Rules (ARCHITECTURE.md section 9, "Catalog lifecycle"): only a listing under review is approved
//! or rejected; fewer rooms are refused while a night from today on (in the lodging's time zone)
//! has more rooms booked; a closed lodging takes no new request, but the requests already made stay
//! decidable and its bookings are honoured. Rate changes apply to new requests only (a request
//! records its own amount).

use serde::{Deserialize, Serialize};

use super::{ApprovalMode, LodgingApproval, LodgingError, LodgingEvent, LodgingProfile};
use crate::{local_date, Timestamp, Tz};

/// The platform's fee when none is configured: 10 % (`serve --platform-fee-bps`).
pub const PLATFORM_FEE_BPS_DEFAULT: u32 = 1_000;

/// The most a fee can be: the whole amount.
const MAX_FEE_BPS: u32 = 10_000;

/// Where a lodging's listing stands in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    /// Submitted by a host, awaiting the platform admin.
    PendingReview,
    /// Bookable (a platform admin's registration is active at once).
    #[default]
    Active,
    Rejected,
    /// Takes no new request; what was requested or booked before stays.
    Closed,
}

impl ListingStatus {
    pub const ALL: [Self; 4] = [
        Self::PendingReview,
        Self::Active,
        Self::Rejected,
        Self::Closed,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingReview => "pending_review",
            Self::Active => "active",
            Self::Rejected => "rejected",
            Self::Closed => "closed",
        }
    }

    /// Parse the API string (`pending_review`, `active`, ...).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The fields an update changes (absent: unchanged), and who changed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LodgingChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nightly_rate: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_guests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_mode: Option<ApprovalMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<Tz>,
    pub updated_by: String,
}

impl LodgingChanges {
    /// `profile` with these changes made.
    #[must_use]
    pub fn applied_to(&self, profile: &LodgingProfile) -> LodgingProfile {
        let mut next = profile.clone();
        if let Some(name) = &self.name {
            next.name.clone_from(name);
        }
        next.nightly_rate = self.nightly_rate.unwrap_or(next.nightly_rate);
        next.rooms = self.rooms.unwrap_or(next.rooms);
        next.max_guests = self.max_guests.unwrap_or(next.max_guests);
        next.approval_mode = self.approval_mode.unwrap_or(next.approval_mode);
        next.timezone = self.timezone.unwrap_or(next.timezone);
        next
    }

    /// Only the changes that differ from `profile` (none left: nothing to record).
    fn against(&self, profile: &LodgingProfile) -> Self {
        fn differs<T: PartialEq + Clone>(new: Option<&T>, old: &T) -> Option<T> {
            new.filter(|value| *value != old).cloned()
        }
        Self {
            name: differs(self.name.as_ref(), &profile.name),
            nightly_rate: differs(self.nightly_rate.as_ref(), &profile.nightly_rate),
            rooms: differs(self.rooms.as_ref(), &profile.rooms),
            max_guests: differs(self.max_guests.as_ref(), &profile.max_guests),
            approval_mode: differs(self.approval_mode.as_ref(), &profile.approval_mode),
            timezone: differs(self.timezone.as_ref(), &profile.timezone),
            updated_by: self.updated_by.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.nightly_rate.is_none()
            && self.rooms.is_none()
            && self.max_guests.is_none()
            && self.approval_mode.is_none()
            && self.timezone.is_none()
    }
}

/// Register an active lodging, or submit a listing (`review`).
pub(super) fn register(
    state: &LodgingApproval,
    profile: &LodgingProfile,
    review: bool,
) -> Result<Vec<LodgingEvent>, LodgingError> {
    if state.profile.is_some() {
        return Err(LodgingError::AlreadyRegistered);
    }
    if profile.lodging_id.trim().is_empty() {
        return Err(invalid("lodging_id", "must not be empty"));
    }
    validate(profile)?;
    Ok(vec![if review {
        LodgingEvent::ListingSubmitted(profile.clone())
    } else {
        LodgingEvent::LodgingRegistered(profile.clone())
    }])
}

fn invalid(field: &'static str, reason: &str) -> LodgingError {
    LodgingError::InvalidProfile {
        field,
        reason: reason.to_string(),
    }
}

/// The rules of a profile's fields, at registration and after every update.
fn validate(profile: &LodgingProfile) -> Result<(), LodgingError> {
    if profile.name.trim().is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    // A stay is never free: a zero rate would send zero charges to the payment gateway.
    if profile.nightly_rate < 1 {
        return Err(invalid(
            "nightly_rate",
            "must be at least 1 (a stay is never free)",
        ));
    }
    if profile.rooms == 0 {
        return Err(invalid("rooms", "must be at least 1"));
    }
    if profile.max_guests == 0 {
        return Err(invalid("max_guests", "must be at least 1"));
    }
    validate_fee(profile.fee_bps)
}

fn validate_fee(fee_bps: u32) -> Result<(), LodgingError> {
    if fee_bps > MAX_FEE_BPS {
        return Err(invalid(
            "fee_bps",
            "must be at most 10000 (the whole amount)",
        ));
    }
    Ok(())
}

fn require(
    state: &LodgingApproval,
    allowed: &[ListingStatus],
    expected: &'static str,
) -> Result<(), LodgingError> {
    if allowed.contains(&state.status) {
        Ok(())
    } else {
        Err(LodgingError::WrongListingStatus {
            status: state.status,
            expected,
        })
    }
}

pub(super) fn approve(
    state: &LodgingApproval,
    fee_bps: u32,
    approved_by: &str,
) -> Result<Vec<LodgingEvent>, LodgingError> {
    require(state, &[ListingStatus::PendingReview], "pending_review")?;
    validate_fee(fee_bps)?;
    Ok(vec![LodgingEvent::ListingApproved {
        fee_bps,
        approved_by: approved_by.to_string(),
    }])
}

pub(super) fn reject(
    state: &LodgingApproval,
    reason: &str,
    rejected_by: &str,
) -> Result<Vec<LodgingEvent>, LodgingError> {
    require(state, &[ListingStatus::PendingReview], "pending_review")?;
    Ok(vec![LodgingEvent::ListingRejected {
        reason: reason.to_string(),
        rejected_by: rejected_by.to_string(),
    }])
}

/// Change what differs; fewer rooms only if no night from today on has more booked.
pub(super) fn update(
    state: &LodgingApproval,
    profile: &LodgingProfile,
    changes: &LodgingChanges,
    now: Timestamp,
) -> Result<Vec<LodgingEvent>, LodgingError> {
    let expected = "pending_review or active";
    require(
        state,
        &[ListingStatus::PendingReview, ListingStatus::Active],
        expected,
    )?;
    let changes = changes.against(profile);
    if changes.is_empty() {
        return Ok(vec![]);
    }
    let next = changes.applied_to(profile);
    validate(&next)?;
    if next.rooms < profile.rooms {
        // Held rooms count: a paid `pay_first` request is never turned away.
        let today = local_date(now, profile.timezone);
        let overbooked = state
            .booked
            .keys()
            .chain(state.held.keys())
            .filter(|night| **night >= today)
            .map(|night| (*night, state.taken(*night)))
            .filter(|(_, taken)| *taken > next.rooms)
            .min();
        if let Some((night, booked)) = overbooked {
            return Err(LodgingError::WouldOverbook { night, booked });
        }
    }
    Ok(vec![LodgingEvent::LodgingUpdated(changes)])
}

/// Close an active (or still reviewed) lodging; closing a closed one again records nothing.
pub(super) fn close(
    state: &LodgingApproval,
    reason: &str,
    closed_by: &str,
) -> Result<Vec<LodgingEvent>, LodgingError> {
    if state.status == ListingStatus::Closed {
        return Ok(vec![]);
    }
    require(
        state,
        &[ListingStatus::PendingReview, ListingStatus::Active],
        "pending_review or active",
    )?;
    Ok(vec![LodgingEvent::LodgingClosed {
        reason: reason.to_string(),
        closed_by: closed_by.to_string(),
    }])
}

/// How the listing events change the state (the desk's events are evolved by the aggregate).
pub(super) fn evolve(state: &mut LodgingApproval, event: &LodgingEvent) {
    use LodgingEvent as E;
    match event {
        E::LodgingRegistered(profile) => {
            state.profile = Some(profile.clone());
            state.status = ListingStatus::Active;
        }
        E::ListingSubmitted(profile) => {
            state.profile = Some(profile.clone());
            state.status = ListingStatus::PendingReview;
        }
        E::ListingApproved { fee_bps, .. } => {
            if let Some(profile) = &mut state.profile {
                profile.fee_bps = *fee_bps;
            }
            state.status = ListingStatus::Active;
        }
        E::ListingRejected { .. } => state.status = ListingStatus::Rejected,
        E::LodgingUpdated(changes) => {
            state.profile = state.profile.as_ref().map(|p| changes.applied_to(p));
        }
        E::LodgingClosed { .. } => state.status = ListingStatus::Closed,
        E::ApprovalRequested { .. }
        | E::ApprovalGranted { .. }
        | E::ApprovalDenied { .. }
        | E::ApprovalWithdrawn { .. }
        | E::NightsHeld { .. }
        | E::RequestPaid { .. } => {}
    }
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
