//! The projection's working set: the documents a batch read (loaded once from the [`ViewSource`])
//! and changed, with the position guard and change detection every update goes through.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use chrono::{NaiveDate, TimeDelta};
use domain::stay::MAX_NIGHTS;
use domain::Stay;
use uuid::Uuid;

use super::{CalendarNight, Changes, Stored, ViewSource};
use crate::{
    ApprovalStatus, CustomerView, LodgingView, ManagementView, PayoutView, ReservationView,
    ViewError, ViewEvent,
};

/// A document that remembers the last event that changed it.
pub(super) trait Document: Clone + PartialEq {
    fn position(&self) -> u64;
    /// Record that `event` changed it.
    fn stamp(&mut self, event: &ViewEvent);
}

impl Document for ReservationView {
    fn position(&self) -> u64 {
        self.position
    }
    fn stamp(&mut self, event: &ViewEvent) {
        self.position = event.position;
        self.updated_at = event.recorded_at;
    }
}

impl Document for ManagementView {
    fn position(&self) -> u64 {
        self.position
    }
    fn stamp(&mut self, event: &ViewEvent) {
        self.position = event.position;
    }
}

impl Document for LodgingView {
    fn position(&self) -> u64 {
        self.position
    }
    fn stamp(&mut self, event: &ViewEvent) {
        self.position = event.position;
    }
}

impl Document for PayoutView {
    fn position(&self) -> u64 {
        self.position
    }
    fn stamp(&mut self, event: &ViewEvent) {
        self.position = event.position;
    }
}

impl Document for CustomerView {
    fn position(&self) -> u64 {
        self.position
    }
    fn stamp(&mut self, event: &ViewEvent) {
        self.position = event.position;
    }
}

impl Document for CalendarNight {
    fn position(&self) -> u64 {
        self.position
    }
    fn stamp(&mut self, event: &ViewEvent) {
        self.position = event.position;
    }
}

impl<T: Document> Document for Stored<T> {
    fn position(&self) -> u64 {
        self.view.position()
    }
    fn stamp(&mut self, event: &ViewEvent) {
        self.view.stamp(event);
    }
}

/// A cached document (`None`: it does not exist) and whether the batch changed it.
struct Slot<T> {
    value: Option<T>,
    dirty: bool,
}

impl<T: Document> Slot<T> {
    fn clean(value: Option<T>) -> Self {
        Self {
            value,
            dirty: false,
        }
    }

    /// Apply `change` if the document exists and `event` is after the last event that changed it.
    /// Returns whether the document changed.
    fn update(&mut self, event: &ViewEvent, change: impl FnOnce(&mut T)) -> bool {
        let Some(doc) = self.value.as_mut() else {
            return false;
        };
        if event.position <= doc.position() {
            return false;
        }
        let before = doc.clone();
        change(doc);
        if *doc == before {
            return false;
        }
        doc.stamp(event);
        self.dirty = true;
        true
    }

    /// Create the document unless it exists. Returns whether it was created.
    fn create(&mut self, doc: T) -> bool {
        if self.value.is_some() {
            return false;
        }
        self.value = Some(doc);
        self.dirty = true;
        true
    }
}

/// The cached slot of `key`, loading it with `load` on first use.
fn slot<K: Hash + Eq, T: Document>(
    map: &mut HashMap<K, Slot<T>>,
    key: K,
    load: impl FnOnce() -> Result<Option<T>, ViewError>,
) -> Result<&mut Slot<T>, ViewError> {
    Ok(match map.entry(key) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => entry.insert(Slot::clean(load()?)),
    })
}

/// [`slot`] for documents keyed by name: looked up by `&str`, so a cached one costs no allocation.
fn named_slot<'m, T: Document>(
    map: &'m mut HashMap<String, Slot<T>>,
    name: &str,
    load: impl FnOnce() -> Result<Option<T>, ViewError>,
) -> Result<&'m mut Slot<T>, ViewError> {
    if !map.contains_key(name) {
        map.insert(name.to_string(), Slot::clean(load()?));
    }
    map.get_mut(name)
        .ok_or_else(|| ViewError::Corrupt(format!("{name} not cached")))
}

fn dirty<T>(map: impl IntoIterator<Item = Slot<T>>) -> Vec<T> {
    map.into_iter()
        .filter(|slot| slot.dirty)
        .filter_map(|slot| slot.value)
        .collect()
}

/// Applies events to documents read from a [`ViewSource`], collecting what changed.
pub struct Projection<'s, S: ViewSource> {
    source: &'s mut S,
    reservations: HashMap<Uuid, Slot<Stored<ReservationView>>>,
    requests: HashMap<Uuid, Slot<Stored<ManagementView>>>,
    lodgings: HashMap<String, Slot<LodgingView>>,
    /// Nights by lodging (looked up by `&str`, so a lookup allocates nothing).
    calendar: HashMap<String, HashMap<NaiveDate, Slot<CalendarNight>>>,
    payouts: HashMap<Uuid, Slot<Stored<PayoutView>>>,
    customers: HashMap<String, Slot<CustomerView>>,
    /// Cached pending requests per lodging; complete for the check-in ranges in `pending_loaded`.
    pending: HashMap<String, HashSet<Uuid>>,
    pending_loaded: HashMap<String, HashSet<(NaiveDate, NaiveDate)>>,
}

impl<'s, S: ViewSource> Projection<'s, S> {
    pub fn new(source: &'s mut S) -> Self {
        Self {
            source,
            reservations: HashMap::new(),
            requests: HashMap::new(),
            lodgings: HashMap::new(),
            calendar: HashMap::new(),
            payouts: HashMap::new(),
            customers: HashMap::new(),
            pending: HashMap::new(),
            pending_loaded: HashMap::new(),
        }
    }

    /// The documents changed so far.
    #[must_use]
    pub fn into_changes(self) -> Changes {
        Changes {
            reservations: dirty(self.reservations.into_values()),
            requests: dirty(self.requests.into_values()),
            lodgings: dirty(self.lodgings.into_values()),
            calendar: dirty(self.calendar.into_values().flat_map(HashMap::into_values)),
            payouts: dirty(self.payouts.into_values()),
            customers: dirty(self.customers.into_values()),
        }
    }

    /// The document of reservation `id` as the batch has it so far (`None`: not read or made yet,
    /// or it does not exist).
    pub(super) fn cached_reservation(&self, id: Uuid) -> Option<&ReservationView> {
        let slot = self.reservations.get(&id)?;
        slot.value.as_ref().map(|stored| &stored.view)
    }

    pub(super) fn reservation(&mut self, id: Uuid) -> Result<Option<&ReservationView>, ViewError> {
        let source = &mut self.source;
        let slot = slot(&mut self.reservations, id, || source.reservation(id))?;
        Ok(slot.value.as_ref().map(|stored| &stored.view))
    }

    pub(super) fn request(&mut self, id: Uuid) -> Result<Option<&ManagementView>, ViewError> {
        self.request_slot(id)?;
        Ok(self
            .requests
            .get(&id)
            .and_then(|s| s.value.as_ref())
            .map(|s| &s.view))
    }

    pub(super) fn lodging(&mut self, lodging_id: &str) -> Result<Option<&LodgingView>, ViewError> {
        Ok(self.lodging_slot(lodging_id)?.value.as_ref())
    }

    fn lodging_slot(&mut self, lodging_id: &str) -> Result<&mut Slot<LodgingView>, ViewError> {
        let source = &mut self.source;
        named_slot(&mut self.lodgings, lodging_id, || {
            source.lodging(lodging_id)
        })
    }

    /// Add a lodging to the catalog unless it is there.
    pub(super) fn create_lodging(&mut self, view: LodgingView) -> Result<bool, ViewError> {
        let lodging_id = view.lodging_id.clone();
        Ok(self.lodging_slot(&lodging_id)?.create(view))
    }

    /// Change lodging `lodging_id` with `change` (a no-op if it does not exist or already reflects
    /// `event`). Returns whether it changed.
    pub(super) fn update_lodging(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        change: impl FnOnce(&mut LodgingView),
    ) -> Result<bool, ViewError> {
        Ok(self.lodging_slot(lodging_id)?.update(event, change))
    }

    fn customer_slot(&mut self, customer_id: &str) -> Result<&mut Slot<CustomerView>, ViewError> {
        let source = &mut self.source;
        named_slot(&mut self.customers, customer_id, || {
            source.customer(customer_id)
        })
    }

    /// Add a customer's contact details unless they are there.
    pub(super) fn create_customer(&mut self, view: CustomerView) -> Result<bool, ViewError> {
        let customer_id = view.customer_id.clone();
        Ok(self.customer_slot(&customer_id)?.create(view))
    }

    /// Change customer `customer_id` with `change` (a no-op if absent or already at `event`).
    pub(super) fn update_customer(
        &mut self,
        event: &ViewEvent,
        customer_id: &str,
        change: impl FnOnce(&mut CustomerView),
    ) -> Result<bool, ViewError> {
        Ok(self.customer_slot(customer_id)?.update(event, change))
    }

    pub(super) fn create_reservation(
        &mut self,
        event: &ViewEvent,
        view: ReservationView,
    ) -> Result<bool, ViewError> {
        let id = view.reservation_id;
        let source = &mut self.source;
        let slot = slot(&mut self.reservations, id, || source.reservation(id))?;
        Ok(slot.create(Stored {
            seq: event.position,
            view,
        }))
    }

    /// Change reservation `id` with `change` (a no-op if it does not exist or already reflects `event`).
    pub(super) fn update_reservation(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        change: impl FnOnce(&mut ReservationView),
    ) -> Result<bool, ViewError> {
        let source = &mut self.source;
        let slot = slot(&mut self.reservations, id, || source.reservation(id))?;
        Ok(slot.update(event, |stored| change(&mut stored.view)))
    }

    /// Add the payout of reservation `view.reservation_id` unless it exists; its list position is
    /// `event`'s.
    pub(super) fn create_payout(
        &mut self,
        event: &ViewEvent,
        view: PayoutView,
    ) -> Result<bool, ViewError> {
        let id = view.reservation_id;
        let source = &mut self.source;
        let slot = slot(&mut self.payouts, id, || source.payout(id))?;
        Ok(slot.create(Stored {
            seq: event.position,
            view,
        }))
    }

    /// Change the payout of reservation `id` with `change` (a no-op if it does not exist or already
    /// reflects `event`).
    pub(super) fn update_payout(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        change: impl FnOnce(&mut PayoutView),
    ) -> Result<bool, ViewError> {
        let source = &mut self.source;
        let slot = slot(&mut self.payouts, id, || source.payout(id))?;
        Ok(slot.update(event, |stored| change(&mut stored.view)))
    }

    pub(super) fn create_request(
        &mut self,
        event: &ViewEvent,
        view: ManagementView,
    ) -> Result<bool, ViewError> {
        let id = view.reservation_id;
        let created = self.request_slot(id)?.create(Stored {
            seq: event.position,
            view,
        });
        self.index_pending(id);
        Ok(created)
    }

    /// Change request `id` with `change` (a no-op if it does not exist or already reflects `event`).
    pub(super) fn update_request(
        &mut self,
        event: &ViewEvent,
        id: Uuid,
        change: impl FnOnce(&mut ManagementView),
    ) -> Result<bool, ViewError> {
        let changed = self
            .request_slot(id)?
            .update(event, |stored| change(&mut stored.view));
        self.index_pending(id);
        Ok(changed)
    }

    fn request_slot(&mut self, id: Uuid) -> Result<&mut Slot<Stored<ManagementView>>, ViewError> {
        if !self.requests.contains_key(&id) {
            let loaded = self.source.request(id)?;
            self.requests.insert(id, Slot::clean(loaded));
            self.index_pending(id);
        }
        slot(&mut self.requests, id, || Ok(None))
    }

    /// Keep the pending index in step with the cached request `id`.
    fn index_pending(&mut self, id: Uuid) {
        let Some(view) = self
            .requests
            .get(&id)
            .and_then(|s| s.value.as_ref())
            .map(|s| &s.view)
        else {
            return;
        };
        let set = self.pending.entry(view.lodging_id.clone()).or_default();
        if view.request_status == ApprovalStatus::Pending {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// Ids of the pending requests of `lodging_id` whose stay overlaps `from..to`. Only those are
    /// read from the store: a stay is at most [`MAX_NIGHTS`] nights, so they check in between
    /// `from - MAX_NIGHTS` and the night before `to`.
    pub(super) fn pending_overlapping(
        &mut self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Uuid>, ViewError> {
        let (first, last) = check_in_range(from, to);
        if first > last {
            return Ok(Vec::new());
        }
        let loaded = match self.pending_loaded.get_mut(lodging_id) {
            Some(ranges) => ranges.insert((first, last)),
            None => {
                let ranges = HashSet::from([(first, last)]);
                self.pending_loaded.insert(lodging_id.to_string(), ranges);
                true
            }
        };
        if loaded {
            for stored in self.source.pending_requests(lodging_id, first, last)? {
                let id = stored.view.reservation_id;
                if let Entry::Vacant(entry) = self.requests.entry(id) {
                    entry.insert(Slot::clean(Some(stored)));
                    self.index_pending(id);
                }
            }
        }
        let Some(ids) = self.pending.get(lodging_id) else {
            return Ok(Vec::new());
        };
        let mut overlapping: Vec<Uuid> = ids
            .iter()
            .copied()
            .filter(|id| {
                let view = self.requests.get(id).and_then(|s| s.value.as_ref());
                view.is_some_and(|s| s.view.check_in < to && s.view.check_out > from)
            })
            .collect();
        overlapping.sort_unstable();
        Ok(overlapping)
    }

    fn night_slot(
        &mut self,
        lodging_id: &str,
        night: NaiveDate,
    ) -> Option<&mut Slot<CalendarNight>> {
        self.calendar.get_mut(lodging_id)?.get_mut(&night)
    }

    /// Make sure every night of `stay` is cached.
    fn load_nights(&mut self, lodging_id: &str, stay: &Stay) -> Result<(), ViewError> {
        if let Some(nights) = self.calendar.get(lodging_id) {
            if stay.each_night().all(|night| nights.contains_key(&night)) {
                return Ok(());
            }
        }
        let stored = self
            .source
            .calendar(lodging_id, stay.check_in, stay.check_out)?;
        let nights = self.calendar.entry(lodging_id.to_string()).or_default();
        for night in stored {
            nights
                .entry(night.night)
                .or_insert_with(|| Slot::clean(Some(night)));
        }
        for night in stay.each_night() {
            nights.entry(night).or_insert_with(|| {
                Slot::clean(Some(CalendarNight {
                    lodging_id: lodging_id.to_string(),
                    night,
                    booked: 0,
                    held: 0,
                    position: 0,
                }))
            });
        }
        Ok(())
    }

    /// Add `booked` x and `held` x the stay's rooms (each 1, -1 or 0) on every night of `stay`
    /// (never below zero). Returns the nights `first..end` spanning those whose free rooms moved
    /// across what a request may take: only the pending requests on them can change `available`.
    pub(super) fn book(
        &mut self,
        event: &ViewEvent,
        lodging_id: &str,
        stay: &Stay,
        (booked, held): (i64, i64),
    ) -> Result<Option<(NaiveDate, NaiveDate)>, ViewError> {
        let (rooms, reach) = self
            .lodging(lodging_id)?
            .map_or((0, 1), |l| (l.rooms, l.max_request_rooms));
        self.load_nights(lodging_id, stay)?;
        let add = |count: u32, sign: i64| {
            let next = i64::from(count).saturating_add(sign * i64::from(stay.rooms));
            u32::try_from(next.max(0)).unwrap_or(u32::MAX)
        };
        let mut turned: Option<(NaiveDate, NaiveDate)> = None;
        for night in stay.each_night() {
            let Some(slot) = self.night_slot(lodging_id, night) else {
                continue;
            };
            let free = |slot: &Slot<CalendarNight>| {
                rooms.saturating_sub(slot.value.as_ref().map_or(0, CalendarNight::taken))
            };
            let free_before = free(slot);
            slot.update(event, |n| {
                n.booked = add(n.booked, booked);
                n.held = add(n.held, held);
            });
            let free_after = free(slot);
            // A pending request of r rooms fits this night or not as free >= r: it changes only
            // for r between the two counts, and no request took more than `reach` rooms.
            if free_before != free_after && free_before.min(free_after) < reach {
                let end = night.succ_opt().unwrap_or(night);
                turned = Some(turned.map_or((night, end), |(first, _)| (first, end)));
            }
        }
        Ok(turned)
    }

    /// Would `stay` fit the calendar of `lodging_id` now: its rooms free on every night.
    pub(super) fn fits(&mut self, lodging_id: &str, stay: &Stay) -> Result<bool, ViewError> {
        let rooms = self.lodging(lodging_id)?.map_or(0, |l| l.rooms);
        self.load_nights(lodging_id, stay)?;
        let nights = self.calendar.get(lodging_id);
        Ok(stay.each_night().all(|night| {
            let taken = nights
                .and_then(|nights| nights.get(&night))
                .and_then(|s| s.value.as_ref());
            u64::from(taken.map_or(0, CalendarNight::taken)) + u64::from(stay.rooms)
                <= u64::from(rooms)
        }))
    }
}

/// The check-in dates (inclusive) of stays that can overlap `from..to`, kept within years
/// 0..=9999 (the dates a request can carry).
fn check_in_range(from: NaiveDate, to: NaiveDate) -> (NaiveDate, NaiveDate) {
    let earliest = NaiveDate::from_ymd_opt(0, 1, 1).unwrap_or(NaiveDate::MIN);
    let latest = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    let back = TimeDelta::days(i64::from(MAX_NIGHTS));
    let first = from.checked_sub_signed(back).unwrap_or(NaiveDate::MIN);
    let last = to.pred_opt().unwrap_or(NaiveDate::MIN);
    (first.clamp(earliest, latest), last.clamp(earliest, latest))
}
