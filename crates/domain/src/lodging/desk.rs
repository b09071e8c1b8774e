//! The desk's decisions on requests: record one (holding its nights on a `pay_first` lodging, or
//! granting or denying it at once on an `instant` one), an admin's grant or denial, a withdrawal, and
//! a held request's payment. The aggregate (`super`) routes commands here and evolves the events.

use chrono::NaiveDate;

use super::{
    ApprovalMode, ListingStatus, LodgingApproval, LodgingError, LodgingEvent, LodgingProfile,
    RequestStatus,
};
use crate::{ReservationId, Stay};

fn requested_event(reservation_id: ReservationId, stay: &Stay) -> LodgingEvent {
    LodgingEvent::ApprovalRequested {
        reservation_id,
        check_in: stay.check_in,
        check_out: stay.check_out,
        guests: stay.guests,
        rooms: stay.rooms,
    }
}

pub(super) fn request_approval(
    state: &LodgingApproval,
    profile: &LodgingProfile,
    reservation_id: ReservationId,
    stay: &Stay,
) -> Vec<LodgingEvent> {
    if state.requests.contains_key(&reservation_id) {
        return vec![];
    }
    let mut events = vec![requested_event(reservation_id, stay)];
    if !matches!(state.status, ListingStatus::Active | ListingStatus::Closed) {
        // Only an active lodging takes requests (a closed one still decides those made before).
        events.push(LodgingEvent::ApprovalDenied {
            reason: format!("the lodging is {}", state.status.as_str()),
            reservation_id,
            denied_by: "platform".to_string(),
        });
        return events;
    }
    let no_room = |night: NaiveDate, by: &str| LodgingEvent::ApprovalDenied {
        reason: format!("no free room on {night}"),
        reservation_id,
        denied_by: by.to_string(),
    };
    match profile.approval_mode {
        ApprovalMode::Manual => {}
        ApprovalMode::Instant => events.push(match state.first_full_night(stay) {
            None => LodgingEvent::ApprovalGranted {
                reservation_id,
                granted_by: "instant".to_string(),
            },
            Some(night) => no_room(night, "instant"),
        }),
        // Held before any charge, so a paid request always has its rooms; no room, no charge.
        ApprovalMode::PayFirst => events.push(match state.first_full_night(stay) {
            None => LodgingEvent::NightsHeld { reservation_id },
            Some(night) => no_room(night, "pay_first"),
        }),
    }
    events
}

/// The request's status; an unknown request is treated as pending (the admin may decide first).
fn pending_or_decided(
    state: &LodgingApproval,
    reservation_id: ReservationId,
) -> Result<bool, LodgingError> {
    match state.requests.get(&reservation_id).map(|r| r.status) {
        None => Ok(false),
        Some(RequestStatus::Pending) => Ok(true),
        Some(status) => Err(LodgingError::AlreadyDecided { status }),
    }
}

/// On a `pay_first` desk an admin decides paid requests only: a held request before its
/// payment, or one the desk has not seen yet, is not theirs to decide.
fn require_paid(
    state: &LodgingApproval,
    reservation_id: ReservationId,
) -> Result<(), LodgingError> {
    let pay_first = state
        .profile
        .as_ref()
        .is_some_and(|p| p.approval_mode == ApprovalMode::PayFirst);
    match state.requests.get(&reservation_id) {
        Some(request) if request.held && !request.paid => Err(LodgingError::NotPaid),
        None if pay_first => Err(LodgingError::NotPaid),
        _ => Ok(()),
    }
}

pub(super) fn grant(
    state: &LodgingApproval,
    reservation_id: ReservationId,
    stay: &Stay,
    granted_by: &str,
) -> Result<Vec<LodgingEvent>, LodgingError> {
    let known = pending_or_decided(state, reservation_id)?;
    require_paid(state, reservation_id)?;
    let request = state.requests.get(&reservation_id);
    let stay = request.map_or(*stay, |r| r.stay);
    // A held request's rooms are its own already.
    let held = request.is_some_and(|r| r.held);
    if let Some(night) = state.first_full_night(&stay).filter(|_| !held) {
        return Err(LodgingError::NoRoom { night });
    }
    let mut events = Vec::with_capacity(2);
    if !known {
        events.push(requested_event(reservation_id, &stay));
    }
    events.push(LodgingEvent::ApprovalGranted {
        reservation_id,
        granted_by: granted_by.to_string(),
    });
    Ok(events)
}

pub(super) fn deny(
    state: &LodgingApproval,
    reservation_id: ReservationId,
    stay: &Stay,
    reason: &str,
    denied_by: &str,
) -> Result<Vec<LodgingEvent>, LodgingError> {
    let known = pending_or_decided(state, reservation_id)?;
    require_paid(state, reservation_id)?;
    let mut events = Vec::with_capacity(2);
    if !known {
        events.push(requested_event(reservation_id, stay));
    }
    events.push(LodgingEvent::ApprovalDenied {
        reason: reason.to_string(),
        reservation_id,
        denied_by: denied_by.to_string(),
    });
    Ok(events)
}

pub(super) fn withdraw(
    state: &LodgingApproval,
    reservation_id: ReservationId,
    reason: &str,
) -> Vec<LodgingEvent> {
    match state.requests.get(&reservation_id).map(|r| r.status) {
        Some(RequestStatus::Pending | RequestStatus::Granted) => {
            vec![LodgingEvent::ApprovalWithdrawn {
                reservation_id,
                reason: reason.to_string(),
            }]
        }
        _ => vec![],
    }
}

/// Record a held request's payment once, while it is pending.
pub(super) fn mark_paid(
    state: &LodgingApproval,
    reservation_id: ReservationId,
) -> Vec<LodgingEvent> {
    match state.requests.get(&reservation_id) {
        Some(r) if r.held && !r.paid && r.status == RequestStatus::Pending => {
            vec![LodgingEvent::RequestPaid { reservation_id }]
        }
        _ => vec![],
    }
}
