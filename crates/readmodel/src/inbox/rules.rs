//! The inbox's pure projection: from events in log order and what the store remembers of their
//! reservations ([`InboxSource`]), the entries they make and what is remembered after them.
//!
//! - Each status change of a reservation (`ReservationRequested`, `...Approved`, `...Paid`,
//!   `...PaymentPending`, `...Confirmed`, `...PaymentFailed`, `...Rejected`, `...Cancelled`,
//!   `...Expired`, `...Completed`) is an entry in its customer's inbox; an event that leaves the
//!   status as it was is none.
//! - A request reaching the desk (`ApprovalRequested`; `RequestPaid` for a `pay_first` one), a
//!   payment completed, and a cancellation are entries in the lodging's inbox.
//!
//! Exactly-once in effect: a reservation remembers the position of the last event that changed its
//! status, and an event at or before it makes nothing; an entry's id is its event's position and
//! kind, so the store writes a replayed desk entry once.

use std::collections::HashMap;

use chrono::NaiveDate;
use domain::lodging::LodgingEvent;
use domain::payment::PaymentEvent;
use domain::reservation::ReservationEvent;
use uuid::Uuid;

use super::{Desk, InboxEntry, NoticeKind, Tracked};
use crate::{AnyEvent, ApprovalMode, ReservationStatus, ViewError, ViewEvent};

/// Read access to what the store remembers of reservations and desks.
pub trait InboxSource {
    fn tracked(&mut self, reservation_id: Uuid) -> Result<Option<Tracked>, ViewError>;
    fn desk(&mut self, lodging_id: &str) -> Result<Option<Desk>, ViewError>;
}

/// What a batch changed: reservations and desks remembered anew, and new entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxChanges {
    pub tracked: Vec<Tracked>,
    pub desks: Vec<Desk>,
    pub entries: Vec<InboxEntry>,
}

/// The status a reservation event leaves its reservation in (`None`: not a status change).
fn status_after(event: &ReservationEvent) -> Option<ReservationStatus> {
    use ReservationEvent as E;
    use ReservationStatus as S;
    Some(match event {
        E::ReservationRequested(_) => S::Requested,
        E::ReservationApproved { .. } => S::Approved,
        E::ReservationRejected { .. } => S::Rejected,
        E::ReservationPaymentPending { .. } => S::PaymentPending,
        E::ReservationConfirmed { .. } => S::Confirmed,
        E::ReservationPaid { .. } => S::Paid,
        E::ReservationPaymentFailed { .. } => S::PaymentFailed,
        E::ReservationCancelled { .. } => S::Cancelled,
        E::ReservationExpired {} => S::Expired,
        E::ReservationCompleted { .. } => S::Completed,
        E::ReservationRefunded { .. } => return None,
    })
}

/// How a customer's entry words a status.
fn words(status: ReservationStatus) -> &'static str {
    use ReservationStatus as S;
    match status {
        S::Requested => "requested",
        S::Approved => "approved by the lodging",
        S::PaymentPending => "waiting for its payment",
        S::Paid => "paid; the lodging will confirm it",
        S::Confirmed => "confirmed",
        S::PaymentFailed => "not confirmed: the payment failed",
        S::Rejected => "rejected by the lodging",
        S::Cancelled => "cancelled",
        S::Expired => "expired: no decision in time",
        S::Completed => "completed",
    }
}

fn dates(check_in: NaiveDate, check_out: NaiveDate) -> String {
    format!("{check_in} to {check_out}")
}

/// The message of an entry about `stay`.
fn message(kind: NoticeKind, stay: &Tracked, paid_first: bool) -> String {
    let at = format!(
        "{}, {}",
        stay.lodging_id,
        dates(stay.check_in, stay.check_out)
    );
    match kind {
        NoticeKind::StatusChanged => format!("Your stay at {at} is {}.", words(stay.status)),
        NoticeKind::NewRequest if paid_first => format!(
            "New paid request for {at}, {} room(s): confirm or reject it.",
            stay.rooms
        ),
        NoticeKind::NewRequest => format!("New request for {at}, {} room(s).", stay.rooms),
        NoticeKind::PaymentReceived => format!("Payment received for {at}."),
        NoticeKind::Cancelled => format!("Cancelled: {at}."),
    }
}

/// Applies events, caching what it read.
struct Inbox<'s, S: InboxSource> {
    source: &'s mut S,
    tracked: HashMap<Uuid, (Option<Tracked>, bool)>,
    desks: HashMap<String, (Option<Desk>, bool)>,
    entries: Vec<InboxEntry>,
}

impl<S: InboxSource> Inbox<'_, S> {
    fn tracked(&mut self, id: Uuid) -> Result<Option<Tracked>, ViewError> {
        if let Some((tracked, _)) = self.tracked.get(&id) {
            return Ok(tracked.clone());
        }
        let loaded = self.source.tracked(id)?;
        self.tracked.insert(id, (loaded.clone(), false));
        Ok(loaded)
    }

    fn desk(&mut self, lodging_id: &str) -> Result<Option<Desk>, ViewError> {
        if let Some((desk, _)) = self.desks.get(lodging_id) {
            return Ok(desk.clone());
        }
        let loaded = self.source.desk(lodging_id)?;
        self.desks
            .insert(lodging_id.to_string(), (loaded.clone(), false));
        Ok(loaded)
    }

    /// Remember the approval mode of `lodging_id` as of `event`.
    fn set_mode(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        approval_mode: ApprovalMode,
    ) -> Result<(), ViewError> {
        let known = self.desk(lodging_id)?;
        if known
            .as_ref()
            .is_some_and(|d| event.position <= d.position || d.approval_mode == approval_mode)
        {
            return Ok(());
        }
        let desk = Desk {
            lodging_id: lodging_id.to_string(),
            approval_mode,
            position: event.position,
        };
        self.desks
            .insert(lodging_id.to_string(), (Some(desk), true));
        Ok(())
    }

    fn remember(&mut self, tracked: Tracked) {
        self.tracked
            .insert(tracked.reservation_id, (Some(tracked), true));
    }

    fn notify(&mut self, event: &ViewEvent, kind: NoticeKind, stay: &Tracked, paid_first: bool) {
        let recipient = match kind.audience() {
            super::Audience::Customer => stay.customer_id.clone(),
            super::Audience::Lodging => stay.lodging_id.clone(),
        };
        self.entries.push(InboxEntry {
            id: format!("{}-{}", event.position, kind.as_str()),
            audience: kind.audience(),
            recipient,
            reservation_id: stay.reservation_id,
            lodging_id: stay.lodging_id.clone(),
            kind,
            status: stay.status,
            message: message(kind, stay, paid_first),
            created_at: event.recorded_at,
            position: event.position,
            event_id: event.event_id,
        });
    }

    fn apply(&mut self, event: &ViewEvent) -> Result<(), ViewError> {
        match &event.event {
            AnyEvent::Reservation {
                reservation_id,
                event: inner,
            } => self.on_reservation(event, *reservation_id, inner),
            AnyEvent::Lodging {
                lodging_id,
                event: inner,
            } => match inner {
                LodgingEvent::LodgingRegistered(profile)
                | LodgingEvent::ListingSubmitted(profile) => {
                    self.set_mode(event, lodging_id, profile.approval_mode)
                }
                LodgingEvent::LodgingUpdated(changes) => match changes.approval_mode {
                    Some(mode) => self.set_mode(event, lodging_id, mode),
                    None => Ok(()),
                },
                // A `pay_first` request reaches the desk once paid (`RequestPaid`), not now.
                LodgingEvent::ApprovalRequested { reservation_id, .. } => {
                    let mode = self.desk(lodging_id)?.map(|d| d.approval_mode);
                    if mode == Some(ApprovalMode::PayFirst) {
                        return Ok(());
                    }
                    self.on_desk(event, *reservation_id, NoticeKind::NewRequest, false)
                }
                LodgingEvent::RequestPaid { reservation_id } => {
                    self.on_desk(event, *reservation_id, NoticeKind::NewRequest, true)
                }
                _ => Ok(()),
            },
            AnyEvent::Payment {
                reservation_id,
                event: PaymentEvent::PaymentCompleted { .. },
            } => self.on_desk(event, *reservation_id, NoticeKind::PaymentReceived, false),
            _ => Ok(()),
        }
    }

    fn on_reservation(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        inner: &ReservationEvent,
    ) -> Result<(), ViewError> {
        let Some(status) = status_after(inner) else {
            return Ok(());
        };
        let stay = match (self.tracked(id)?, inner) {
            (None, ReservationEvent::ReservationRequested(details)) => Tracked {
                reservation_id: id,
                customer_id: details.customer_id.clone(),
                lodging_id: details.lodging_id.clone(),
                check_in: details.check_in,
                check_out: details.check_out,
                rooms: details.rooms,
                status,
                position: event.position,
            },
            (Some(known), _) if event.position > known.position && known.status != status => {
                Tracked {
                    status,
                    position: event.position,
                    ..known
                }
            }
            _ => return Ok(()),
        };
        self.remember(stay.clone());
        self.notify(event, NoticeKind::StatusChanged, &stay, false);
        if status == ReservationStatus::Cancelled {
            self.notify(event, NoticeKind::Cancelled, &stay, false);
        }
        Ok(())
    }

    /// An entry for the lodging's desk about reservation `id` (once per event).
    fn on_desk(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        kind: NoticeKind,
        paid_first: bool,
    ) -> Result<(), ViewError> {
        // Nothing is remembered anew: the entry's id (its event's position and kind) keeps a
        // replayed event from writing it twice.
        let Some(stay) = self.tracked(id)? else {
            return Ok(());
        };
        if event.position <= stay.position {
            return Ok(());
        }
        self.notify(event, kind, &stay, paid_first);
        Ok(())
    }
}

/// Whether `event` can change the inbox: the events [`project_inbox`] reads (an adapter may leave
/// the others out of what it hands over, as long as its checkpoint still moves past them).
#[must_use]
pub fn concerns(event: &ViewEvent) -> bool {
    match &event.event {
        AnyEvent::Reservation { event, .. } => status_after(event).is_some(),
        AnyEvent::Lodging { event, .. } => matches!(
            event,
            LodgingEvent::LodgingRegistered(_)
                | LodgingEvent::ListingSubmitted(_)
                | LodgingEvent::LodgingUpdated(_)
                | LodgingEvent::ApprovalRequested { .. }
                | LodgingEvent::RequestPaid { .. }
        ),
        AnyEvent::Payment { event, .. } => matches!(event, PaymentEvent::PaymentCompleted { .. }),
        _ => false,
    }
}

/// Apply `events` (in log order) over `source`: what changed.
pub fn project_inbox<S: InboxSource>(
    source: &mut S,
    events: &[ViewEvent],
) -> Result<InboxChanges, ViewError> {
    let mut inbox = Inbox {
        source,
        tracked: HashMap::new(),
        desks: HashMap::new(),
        entries: Vec::new(),
    };
    for event in events {
        inbox.apply(event)?;
    }
    let tracked = inbox
        .tracked
        .into_values()
        .filter_map(|(tracked, dirty)| tracked.filter(|_| dirty))
        .collect();
    let desks = inbox
        .desks
        .into_values()
        .filter_map(|(desk, dirty)| desk.filter(|_| dirty))
        .collect();
    Ok(InboxChanges {
        tracked,
        desks,
        entries: inbox.entries,
    })
}
