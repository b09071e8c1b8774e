//! LodgingApproval (stream `lodging-{lodging_id}`): a lodging's listing, its approval desk and the
//! consistency boundary of its calendar. Invariant: for every night, the rooms of granted-and-not-
//! withdrawn stays <= the lodging's rooms. The listing lifecycle (submit, review, update, close)
//! is decided in `listing`.

mod desk;
mod listing;

use imbl::OrdMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::{impl_domain_event, local_date, Aggregate, ReservationId, Stay, Timestamp, Tz};

pub use listing::{ListingStatus, LodgingChanges, PLATFORM_FEE_BPS_DEFAULT};

use desk::{deny, grant, mark_paid, request_approval, withdraw};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// An admin approves or rejects each request.
    #[default]
    Manual,
    /// Requests are granted (or denied for lack of room) at once, with no admin step.
    Instant,
    /// The request holds its nights (or is denied for lack of room) and is charged first; only a
    /// paid request reaches the admin, who confirms or rejects (refunded) it.
    PayFirst,
}

impl ApprovalMode {
    pub const ALL: [Self; 3] = [Self::Manual, Self::Instant, Self::PayFirst];

    /// The API string (`manual`, `instant`, `pay_first`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Instant => "instant",
            Self::PayFirst => "pay_first",
        }
    }

    /// Parse the API string.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// A lodging as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LodgingProfile {
    pub lodging_id: String,
    pub name: String,
    pub nightly_rate: i64,
    pub currency: String,
    pub rooms: u32,
    pub max_guests: u32,
    pub approval_mode: ApprovalMode,
    pub admin_id: String,
    /// The IANA time zone the lodging's dates are read in ("today", check-in). Since schema
    /// version 2 of `LodgingRegistered`; version 1 reads as [`crate::WAVE1_TIMEZONE`].
    pub timezone: Tz,
    /// The platform's fee on this lodging's stays, in basis points (0..=10,000). Since version 3
    /// of `LodgingRegistered`; earlier ones read as [`PLATFORM_FEE_BPS_DEFAULT`].
    pub fee_bps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LodgingEvent {
    /// A platform admin registered an active lodging.
    LodgingRegistered(LodgingProfile),
    /// A host submitted a listing for the platform's review (`admin_id` is the host).
    ListingSubmitted(LodgingProfile),
    ListingApproved {
        fee_bps: u32,
        approved_by: String,
    },
    ListingRejected {
        reason: String,
        rejected_by: String,
    },
    LodgingUpdated(LodgingChanges),
    LodgingClosed {
        reason: String,
        closed_by: String,
    },
    ApprovalRequested {
        reservation_id: ReservationId,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: u32,
        /// Rooms taken every night (since version 2; version 1 reads as one).
        rooms: u32,
    },
    ApprovalGranted {
        reservation_id: ReservationId,
        granted_by: String,
    },
    ApprovalDenied {
        reason: String,
        reservation_id: ReservationId,
        denied_by: String,
    },
    ApprovalWithdrawn {
        reservation_id: ReservationId,
        reason: String,
    },
    /// A `pay_first` request holds its rooms from the request on (it is charged next).
    NightsHeld {
        reservation_id: ReservationId,
    },
    /// A held request was paid: it reaches the admin's desk.
    RequestPaid {
        reservation_id: ReservationId,
    },
}

impl_domain_event!(LodgingEvent {
    LodgingRegistered = 3,
    ListingSubmitted,
    ListingApproved,
    ListingRejected,
    LodgingUpdated,
    LodgingClosed,
    ApprovalRequested = 2,
    ApprovalGranted,
    ApprovalDenied,
    ApprovalWithdrawn,
    NightsHeld,
    RequestPaid,
} upcasters: LODGING_UPCASTERS);

/// `LodgingRegistered` v1 -> v2: the profile gains `timezone` (a lodging registered before lodgings
/// had one is in [`crate::WAVE1_TIMEZONE`]: the wave-1 platform served Korea); v2 -> v3: it gains
/// `fee_bps` (the platform default). `ApprovalRequested` v1 -> v2: one room.
const LODGING_UPCASTERS: &[crate::Upcaster] = &[
    crate::Upcaster {
        event_type: "LodgingRegistered",
        from: 1,
        step: registered_v1_to_v2,
    },
    crate::Upcaster {
        event_type: "LodgingRegistered",
        from: 2,
        step: registered_v2_to_v3,
    },
    crate::Upcaster {
        event_type: "ApprovalRequested",
        from: 1,
        step: requested_v1_to_v2,
    },
];

/// Add `field` with `value` to an object payload unless it is there.
pub(crate) fn with_default(
    mut payload: serde_json::Value,
    event_type: &str,
    field: &str,
    value: serde_json::Value,
) -> Result<serde_json::Value, String> {
    payload
        .as_object_mut()
        .ok_or_else(|| format!("{event_type} is not an object"))?
        .entry(field)
        .or_insert(value);
    Ok(payload)
}

fn registered_v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    let zone = crate::WAVE1_TIMEZONE.name().into();
    with_default(payload, "LodgingRegistered v1", "timezone", zone)
}

fn registered_v2_to_v3(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    let fee = PLATFORM_FEE_BPS_DEFAULT.into();
    with_default(payload, "LodgingRegistered v2", "fee_bps", fee)
}

fn requested_v1_to_v2(payload: serde_json::Value) -> Result<serde_json::Value, String> {
    with_default(payload, "ApprovalRequested v1", "rooms", 1.into())
}

impl LodgingEvent {
    /// The reservation this event is about, if any.
    #[must_use]
    pub fn reservation_id(&self) -> Option<ReservationId> {
        match self {
            Self::LodgingRegistered(_)
            | Self::ListingSubmitted(_)
            | Self::ListingApproved { .. }
            | Self::ListingRejected { .. }
            | Self::LodgingUpdated(_)
            | Self::LodgingClosed { .. } => None,
            Self::ApprovalRequested { reservation_id, .. }
            | Self::ApprovalGranted { reservation_id, .. }
            | Self::ApprovalDenied { reservation_id, .. }
            | Self::ApprovalWithdrawn { reservation_id, .. }
            | Self::NightsHeld { reservation_id }
            | Self::RequestPaid { reservation_id } => Some(*reservation_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LodgingCommand {
    /// A platform admin registers an active lodging.
    Register(LodgingProfile),
    /// A host submits a listing for review.
    Submit(LodgingProfile),
    ApproveListing {
        fee_bps: u32,
        approved_by: String,
    },
    RejectListing {
        reason: String,
        rejected_by: String,
    },
    /// Its admin changes some of name, rate, rooms, max guests, approval mode, time zone.
    Update(LodgingChanges),
    Close {
        reason: String,
        closed_by: String,
    },
    /// The saga forwards a reservation's request (a no-op if the request is already known).
    RequestApproval {
        reservation_id: ReservationId,
        stay: Stay,
    },
    /// An admin approves. The stay is carried so an admin may decide before the saga forwards.
    Grant {
        reservation_id: ReservationId,
        stay: Stay,
        granted_by: String,
    },
    Deny {
        reservation_id: ReservationId,
        stay: Stay,
        reason: String,
        denied_by: String,
    },
    /// Cancel, payment failed or expiry: the rooms are free again.
    Withdraw {
        reservation_id: ReservationId,
        reason: String,
    },
    /// The saga saw a held request's payment complete.
    MarkPaid {
        reservation_id: ReservationId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Granted,
    Denied,
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub stay: Stay,
    pub status: RequestStatus,
    /// A `pay_first` request: it holds its rooms while pending. (Written only when set, so other
    /// desks' snapshots read as they always did.)
    #[serde(default, skip_serializing_if = "is_false")]
    pub held: bool,
    /// A held request was paid (only then may its admin decide it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub paid: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

/// LodgingApproval state: the profile and listing status, the requests still relevant, and booked
/// rooms per night.
///
/// The maps are persistent (`imbl`, B-trees sharing their nodes): a desk holds every request for a
/// future stay, and the repository copies the state it decides a batch on out of its cache, which
/// for `std`'s maps meant copying (and later freeing) every request each time (~10% of the CPU
/// under `stayledger bench` B2). They serialize as `std`'s maps do (ordered JSON objects).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LodgingApproval {
    pub profile: Option<LodgingProfile>,
    /// Meaningful once `profile` is set (snapshots from before listings read as active).
    #[serde(default)]
    pub status: ListingStatus,
    pub requests: OrdMap<ReservationId, ApprovalRequest>,
    /// Granted-and-not-withdrawn stays per night.
    pub booked: OrdMap<NaiveDate, u32>,
    /// Rooms held per night by pending `pay_first` requests (snapshots from before read as none).
    #[serde(default, skip_serializing_if = "OrdMap::is_empty")]
    pub held: OrdMap<NaiveDate, u32>,
    /// The day of the last compaction, as long as nothing it would drop came in since: every
    /// request ends after it and every booked night is on or after it, so compacting again that
    /// day (on every command of a busy desk) has nothing to drop and skips the scan. Not part of
    /// the state's value: not persisted, not compared.
    #[serde(skip)]
    compacted_on: Option<NaiveDate>,
}

impl PartialEq for LodgingApproval {
    fn eq(&self, other: &Self) -> bool {
        self.profile == other.profile
            && self.status == other.status
            && self.requests == other.requests
            && self.booked == other.booked
            && self.held == other.held
    }
}

impl Eq for LodgingApproval {}

impl LodgingApproval {
    /// Rooms taken on `night`: booked, or held by a `pay_first` request.
    #[must_use]
    pub fn taken(&self, night: NaiveDate) -> u32 {
        let count = |map: &OrdMap<NaiveDate, u32>| map.get(&night).copied().unwrap_or(0);
        count(&self.booked).saturating_add(count(&self.held))
    }

    /// The first night of `stay` without `stay.rooms` free rooms (booked and held rooms are not
    /// free), if any.
    #[must_use]
    pub fn first_full_night(&self, stay: &Stay) -> Option<NaiveDate> {
        let rooms = self.profile.as_ref().map_or(0, |p| p.rooms);
        stay.each_night()
            .find(|night| u64::from(self.taken(*night)) + u64::from(stay.rooms) > u64::from(rooms))
    }

    /// Book (`sign` = 1) or release (-1) the stay's rooms on each of its nights.
    fn book(&mut self, stay: &Stay, sign: i64) {
        if sign > 0 && self.compacted_on.is_some_and(|day| stay.check_in < day) {
            self.compacted_on = None;
        }
        add_rooms(&mut self.booked, stay, sign);
    }

    /// Hold (`sign` = 1) or release (-1) the stay's rooms on each of its nights.
    fn hold(&mut self, stay: &Stay, sign: i64) {
        if sign > 0 && self.compacted_on.is_some_and(|day| stay.check_in < day) {
            self.compacted_on = None;
        }
        add_rooms(&mut self.held, stay, sign);
    }
}

/// Add `sign` x the stay's rooms to each of its nights in `nights` (never below zero; a night at
/// zero is removed).
fn add_rooms(nights: &mut OrdMap<NaiveDate, u32>, stay: &Stay, sign: i64) {
    let delta = sign * i64::from(stay.rooms);
    for night in stay.each_night() {
        let entry = nights.entry(night).or_insert(0);
        let next = i64::from(*entry) + delta;
        *entry = u32::try_from(next.max(0)).unwrap_or(0);
        if *entry == 0 {
            nights.remove(&night);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LodgingError {
    #[error("lodging is not registered")]
    NotRegistered,
    #[error("lodging is already registered")]
    AlreadyRegistered,
    #[error("invalid lodging: {field} {reason}")]
    InvalidProfile { field: &'static str, reason: String },
    #[error("no free room on {night}")]
    NoRoom { night: NaiveDate },
    #[error("request was already {}", match .status { RequestStatus::Pending => "pending", RequestStatus::Granted => "approved", RequestStatus::Denied => "rejected", RequestStatus::Withdrawn => "withdrawn" })]
    AlreadyDecided { status: RequestStatus },
    #[error("the listing is {}, not {expected}", .status.as_str())]
    WrongListingStatus {
        status: ListingStatus,
        expected: &'static str,
    },
    #[error("{booked} rooms are booked on {night}: the lodging cannot have fewer")]
    WouldOverbook { night: NaiveDate, booked: u32 },
    #[error("the request is not paid yet: a pay-first lodging decides paid requests only")]
    NotPaid,
}

/// The LodgingApproval aggregate.
pub struct LodgingAggregate;

impl Aggregate for LodgingAggregate {
    const STREAM_PREFIX: &'static str = crate::StreamKind::Lodging.prefix();
    type State = LodgingApproval;
    type Command = LodgingCommand;
    type Event = LodgingEvent;
    type Error = LodgingError;

    fn decide(
        state: &LodgingApproval,
        command: &LodgingCommand,
        now: Timestamp,
    ) -> Result<Vec<LodgingEvent>, LodgingError> {
        use LodgingCommand as C;
        match command {
            C::Register(profile) => return listing::register(state, profile, false),
            C::Submit(profile) => return listing::register(state, profile, true),
            _ => {}
        }
        let Some(profile) = &state.profile else {
            return Err(LodgingError::NotRegistered);
        };
        match command {
            C::Register(_) | C::Submit(_) => Err(LodgingError::AlreadyRegistered),
            C::ApproveListing {
                fee_bps,
                approved_by,
            } => listing::approve(state, *fee_bps, approved_by),
            C::RejectListing {
                reason,
                rejected_by,
            } => listing::reject(state, reason, rejected_by),
            C::Update(changes) => listing::update(state, profile, changes, now),
            C::Close { reason, closed_by } => listing::close(state, reason, closed_by),
            C::RequestApproval {
                reservation_id,
                stay,
            } => Ok(request_approval(state, profile, *reservation_id, stay)),
            C::Grant {
                reservation_id,
                stay,
                granted_by,
            } => grant(state, *reservation_id, stay, granted_by),
            C::Deny {
                reservation_id,
                stay,
                reason,
                denied_by,
            } => deny(state, *reservation_id, stay, reason, denied_by),
            C::Withdraw {
                reservation_id,
                reason,
            } => Ok(withdraw(state, *reservation_id, reason)),
            C::MarkPaid { reservation_id } => Ok(mark_paid(state, *reservation_id)),
        }
    }

    fn evolve(mut state: LodgingApproval, event: &LodgingEvent) -> LodgingApproval {
        use LodgingEvent as E;
        match event {
            E::LodgingRegistered(_)
            | E::ListingSubmitted(_)
            | E::ListingApproved { .. }
            | E::ListingRejected { .. }
            | E::LodgingUpdated(_)
            | E::LodgingClosed { .. } => listing::evolve(&mut state, event),
            E::ApprovalRequested {
                reservation_id,
                check_in,
                check_out,
                guests,
                rooms,
            } => {
                let stay = Stay {
                    check_in: *check_in,
                    check_out: *check_out,
                    guests: *guests,
                    rooms: *rooms,
                };
                if state.compacted_on.is_some_and(|day| *check_out <= day) {
                    state.compacted_on = None;
                }
                state
                    .requests
                    .entry(*reservation_id)
                    .or_insert(ApprovalRequest {
                        stay,
                        status: RequestStatus::Pending,
                        held: false,
                        paid: false,
                    });
            }
            E::ApprovalGranted { reservation_id, .. } => {
                if let Some(stay) = state.settle(*reservation_id, RequestStatus::Granted) {
                    state.book(&stay, 1);
                }
            }
            E::ApprovalDenied { reservation_id, .. } => {
                state.settle(*reservation_id, RequestStatus::Denied);
            }
            E::ApprovalWithdrawn { reservation_id, .. } => {
                if let Some(request) = state.requests.get_mut(reservation_id) {
                    let was_granted = request.status == RequestStatus::Granted;
                    let was_pending = request.status == RequestStatus::Pending;
                    request.status = RequestStatus::Withdrawn;
                    let (stay, held) = (request.stay, request.held);
                    if was_granted {
                        state.book(&stay, -1);
                    } else if was_pending && held {
                        state.hold(&stay, -1);
                    }
                }
            }
            E::NightsHeld { reservation_id } => {
                if let Some(request) = state.requests.get_mut(reservation_id) {
                    if request.status == RequestStatus::Pending && !request.held {
                        request.held = true;
                        let stay = request.stay;
                        state.hold(&stay, 1);
                    }
                }
            }
            E::RequestPaid { reservation_id } => {
                if let Some(request) = state.requests.get_mut(reservation_id) {
                    request.paid = true;
                }
            }
        }
        state
    }

    /// A desk's snapshot holds every live request and booked night.
    fn snapshot_weight(state: &LodgingApproval) -> u64 {
        (state.requests.len() + state.booked.len() + state.held.len()) as u64
    }

    /// Keep only nights from today on, and requests whose stay has not ended ("today" where the
    /// lodging is: west of UTC, the UTC date is already tomorrow while tonight's rooms are taken).
    fn compact(mut state: LodgingApproval, now: Timestamp) -> LodgingApproval {
        let Some(zone) = state.profile.as_ref().map(|p| p.timezone) else {
            return state; // nothing is booked before registration
        };
        let today = local_date(now, zone);
        if state.compacted_on.is_some_and(|day| day >= today) {
            return state; // nothing ends before `day`, nor before today
        }
        state.booked = from_day(state.booked, today);
        state.held = from_day(state.held, today);
        // Found by a scan (cheap: no copy, no allocation while nothing has ended), removed one by one.
        let ended: Vec<ReservationId> = state
            .requests
            .iter()
            .filter(|(_, request)| request.stay.check_out <= today)
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            state.requests.remove(&id);
        }
        state.compacted_on = Some(today);
        state
    }
}

/// The nights of `nights` from `today` on.
fn from_day(nights: OrdMap<NaiveDate, u32>, today: NaiveDate) -> OrdMap<NaiveDate, u32> {
    if nights.get_min().is_none_or(|(night, _)| *night >= today) {
        return nights;
    }
    let (_, on_today, mut kept) = nights.split_lookup(&today);
    if let Some(rooms) = on_today {
        kept.insert(today, rooms);
    }
    kept
}

impl LodgingApproval {
    /// Move a pending request to `outcome`, releasing what it held; its stay if it was pending.
    fn settle(&mut self, reservation_id: ReservationId, outcome: RequestStatus) -> Option<Stay> {
        let request = self.requests.get_mut(&reservation_id)?;
        if request.status != RequestStatus::Pending {
            return None;
        }
        request.status = outcome;
        let (stay, held) = (request.stay, request.held);
        if held {
            self.hold(&stay, -1);
        }
        Some(stay)
    }
}

#[cfg(test)]
mod tests;
