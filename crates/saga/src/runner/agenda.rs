//! The coordinator's in-memory agenda: armed timers and refund retries by due time, mirroring what
//! is committed in the timer store, plus which of them are being handled right now.
//!
//! Every pending request has an armed timer (its approval deadline, a day away by default), so the
//! agenda grows with the pending work itself. Only the reservations with a timer due before the
//! agenda's `horizon` (a few minutes ahead) are kept whole: their timers in place in one map
//! (`Armed`) and in the due-time queue, about 125 bytes each by their layout. Every other
//! reservation is kept as a fingerprint of its timers (8 bytes and its id): enough to tell whether a
//! saga step changed them, so they are written only when they do, while the timers themselves stay
//! in the store. As the horizon moves on, the coordinator takes in from the store the reservations
//! that came near ([`Agenda::extend`]); a heap profile at 76,000 pending requests had the agenda at
//! 15.5 MiB before this split (docs/benchmarks.md, decision 0039).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use domain::saga::TimerKind;
use domain::{ReservationId, Timestamp};
use uuid::Uuid;

use super::lane::Job;
use crate::store::{ArmedTimer, RefundRetry};

/// Every kind of timer, in `TimerKind`'s order: [`Armed`] has one slot for each.
const KINDS: [TimerKind; 4] = TimerKind::ALL;

/// A map is shrunk when it uses less than a quarter of its room, and only past this room (a small
/// map is not worth re-hashing).
const SHRINK_FROM: usize = 4_096;

fn slot(kind: TimerKind) -> usize {
    match kind {
        TimerKind::ApprovalDeadline => 0,
        TimerKind::PaymentRetry => 1,
        TimerKind::CheckOut => 2,
        TimerKind::PayoutRetry => 3,
    }
}

/// A reservation's armed timers: the due time of each kind, if armed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct Armed([Option<Timestamp>; KINDS.len()]);

impl Armed {
    fn of(timers: &BTreeMap<TimerKind, Timestamp>) -> Self {
        let mut armed = Self::default();
        for (kind, due_at) in timers {
            armed.0[slot(*kind)] = Some(*due_at);
        }
        armed
    }

    fn timers(self) -> impl Iterator<Item = (TimerKind, Timestamp)> {
        KINDS
            .into_iter()
            .zip(self.0)
            .filter_map(|(kind, due_at)| due_at.map(|at| (kind, at)))
    }

    fn count(self) -> usize {
        self.0.iter().flatten().count()
    }

    fn is_empty(self) -> bool {
        self.count() == 0
    }

    fn earliest(self) -> Option<Timestamp> {
        self.0.iter().flatten().min().copied()
    }

    /// A 64-bit hash of the timers with their count in its low three bits (at most four timers):
    /// two different sets share one with a chance of one in 2^61.
    fn fingerprint(self) -> Fingerprint {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        Fingerprint((hasher.finish() & !0b111) | self.count() as u64)
    }
}

/// What the agenda keeps of a reservation whose timers are all due at or after its horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(u64);

impl Fingerprint {
    fn count(self) -> usize {
        (self.0 & 0b111) as usize
    }
}

fn shrink<V>(map: &mut HashMap<ReservationId, V>) {
    let room = map.capacity();
    if room > SHRINK_FROM && map.len() < room / 4 {
        map.shrink_to(map.len() * 2);
    }
}

#[derive(Debug)]
pub struct Agenda {
    /// The reservations with a timer due before `horizon`, whole, and their timers by due time.
    timers: HashMap<ReservationId, Armed>,
    timer_queue: BTreeSet<(Timestamp, ReservationId, TimerKind)>,
    /// The other reservations with armed timers, and how many timers they have in all.
    far: HashMap<ReservationId, Fingerprint>,
    far_timers: usize,
    horizon: Timestamp,
    firing: HashSet<ArmedTimer>,
    refunds: HashMap<Uuid, RefundRetry>,
    refund_queue: BTreeSet<(Timestamp, Uuid)>,
    refunding: HashSet<Uuid>,
}

impl Agenda {
    /// The agenda of `timers` (every timer in the store), keeping whole those due before `horizon`.
    pub fn new(horizon: Timestamp, timers: &[ArmedTimer], refunds: Vec<RefundRetry>) -> Self {
        let mut agenda = Self {
            timers: HashMap::new(),
            timer_queue: BTreeSet::new(),
            far: HashMap::new(),
            far_timers: 0,
            horizon,
            firing: HashSet::new(),
            refunds: HashMap::new(),
            refund_queue: BTreeSet::new(),
            refunding: HashSet::new(),
        };
        for (reservation_id, armed) in by_reservation(timers) {
            agenda.put(reservation_id, armed);
        }
        for refund in refunds {
            agenda.upsert_refund(refund);
        }
        agenda
    }

    /// Whether `timers` are what the agenda (and so the store) holds for a reservation.
    pub fn holds(
        &self,
        reservation_id: ReservationId,
        timers: &BTreeMap<TimerKind, Timestamp>,
    ) -> bool {
        let armed = Armed::of(timers);
        match (
            self.timers.get(&reservation_id),
            self.far.get(&reservation_id),
        ) {
            (Some(near), _) => *near == armed,
            (None, Some(far)) => *far == armed.fingerprint(),
            (None, None) => armed.is_empty(),
        }
    }

    /// The timers armed for one reservation, if the agenda keeps them whole: `None` for one kept
    /// as a fingerprint (none of its timers is due before the horizon).
    #[cfg(test)]
    fn timers_of(&self, reservation_id: ReservationId) -> Option<BTreeMap<TimerKind, Timestamp>> {
        match self.far.contains_key(&reservation_id) {
            true => None,
            false => Some(
                self.timers
                    .get(&reservation_id)
                    .map(|armed| armed.timers().collect())
                    .unwrap_or_default(),
            ),
        }
    }

    /// Replace a reservation's armed timers.
    pub fn set_timers(
        &mut self,
        reservation_id: ReservationId,
        armed: BTreeMap<TimerKind, Timestamp>,
    ) {
        self.remove(reservation_id);
        self.put(reservation_id, Armed::of(&armed));
    }

    fn remove(&mut self, reservation_id: ReservationId) {
        if let Some(old) = self.timers.remove(&reservation_id) {
            for (kind, due_at) in old.timers() {
                self.timer_queue.remove(&(due_at, reservation_id, kind));
            }
            shrink(&mut self.timers);
        }
        if let Some(old) = self.far.remove(&reservation_id) {
            self.far_timers -= old.count();
            shrink(&mut self.far);
        }
    }

    fn put(&mut self, reservation_id: ReservationId, armed: Armed) {
        match armed.earliest() {
            None => {}
            Some(earliest) if earliest < self.horizon => {
                for (kind, due_at) in armed.timers() {
                    self.timer_queue.insert((due_at, reservation_id, kind));
                }
                self.timers.insert(reservation_id, armed);
            }
            Some(_) => {
                self.far_timers += armed.count();
                self.far.insert(reservation_id, armed.fingerprint());
            }
        }
    }

    /// When the horizon should move on, if any reservation is kept beyond it: halfway through the
    /// span `ahead` it was set for, so a timer is taken in well before it is due.
    pub fn extend_at(&self, ahead: chrono::TimeDelta) -> Option<Timestamp> {
        (!self.far.is_empty())
            .then(|| self.horizon.checked_sub_signed(ahead / 2))
            .map(|at| at.unwrap_or(self.horizon))
    }

    /// Move the horizon on to `horizon`, taking in `armed`: the store's timers of the reservations
    /// with one due before it ([`crate::TimerStore::armed_before`]), read while every change to the
    /// timers was committed. What the agenda keeps whole already stays as it is.
    pub fn extend(&mut self, horizon: Timestamp, armed: &[ArmedTimer]) {
        if horizon <= self.horizon {
            return;
        }
        self.horizon = horizon;
        for (reservation_id, armed) in by_reservation(armed) {
            if self.timers.contains_key(&reservation_id) {
                continue;
            }
            self.remove(reservation_id);
            self.put(reservation_id, armed);
        }
    }

    /// A timer's firing was handled: it is gone, whatever the saga reported. The reservation's
    /// timers left, if it was still armed (they are to be written).
    pub fn spend(&mut self, timer: ArmedTimer) -> Option<BTreeMap<TimerKind, Timestamp>> {
        self.firing.remove(&timer);
        let mut armed = self.timers.get(&timer.reservation_id).copied()?;
        let slot = &mut armed.0[slot(timer.kind)];
        if *slot != Some(timer.due_at) {
            return None;
        }
        *slot = None;
        self.remove(timer.reservation_id);
        self.put(timer.reservation_id, armed);
        Some(armed.timers().collect())
    }

    pub fn upsert_refund(&mut self, retry: RefundRetry) {
        self.settle_refund(retry.action_id);
        self.refund_queue
            .insert((retry.next_attempt_at, retry.action_id));
        self.refunds.insert(retry.action_id, retry);
    }

    pub fn settle_refund(&mut self, action_id: Uuid) {
        if let Some(old) = self.refunds.remove(&action_id) {
            self.refund_queue.remove(&(old.next_attempt_at, action_id));
        }
    }

    /// A refund retry was handled (it is settled or re-scheduled by its completion).
    pub fn refund_tried(&mut self, action_id: Uuid) {
        self.refunding.remove(&action_id);
    }

    /// The earliest due time of anything not being handled already.
    pub fn next_due(&self) -> Option<Timestamp> {
        let timer = self
            .timer_queue
            .iter()
            .find(|(due_at, rid, kind)| !self.firing.contains(&armed(*rid, *kind, *due_at)))
            .map(|(due_at, ..)| *due_at);
        let refund = self
            .refund_queue
            .iter()
            .find(|(_, id)| !self.refunding.contains(id))
            .map(|(at, _)| *at);
        timer.into_iter().chain(refund).min()
    }

    /// Up to `limit` jobs due at `now`, marked as being handled.
    pub fn take_due(&mut self, now: Timestamp, limit: usize) -> Vec<Job> {
        let timers: Vec<ArmedTimer> = self
            .timer_queue
            .iter()
            .take_while(|(due_at, ..)| *due_at <= now)
            .map(|(due_at, rid, kind)| armed(*rid, *kind, *due_at))
            .filter(|timer| !self.firing.contains(timer))
            .take(limit)
            .collect();
        let refunds: Vec<RefundRetry> = self
            .refund_queue
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter(|(_, id)| !self.refunding.contains(id))
            .filter_map(|(_, id)| self.refunds.get(id).cloned())
            .take(limit.saturating_sub(timers.len()))
            .collect();
        self.firing.extend(timers.iter().copied());
        self.refunding.extend(refunds.iter().map(|r| r.action_id));
        let timers = timers.into_iter().map(Job::Timer);
        timers.chain(refunds.into_iter().map(Job::Refund)).collect()
    }

    pub fn timers_armed(&self) -> usize {
        self.timer_queue.len() + self.far_timers
    }

    pub fn refunds_pending(&self) -> usize {
        self.refunds.len()
    }
}

/// `timers` gathered by reservation.
fn by_reservation(timers: &[ArmedTimer]) -> HashMap<ReservationId, Armed> {
    let mut armed: HashMap<ReservationId, Armed> = HashMap::new();
    for timer in timers {
        armed.entry(timer.reservation_id).or_default().0[slot(timer.kind)] = Some(timer.due_at);
    }
    armed
}

fn armed(reservation_id: ReservationId, kind: TimerKind, due_at: Timestamp) -> ArmedTimer {
    ArmedTimer {
        reservation_id,
        kind,
        due_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, Utc};

    /// An agenda keeping whole what is due within the next hour.
    fn hour_ahead(timers: &[ArmedTimer], refunds: Vec<RefundRetry>) -> Agenda {
        Agenda::new(Utc::now() + TimeDelta::hours(1), timers, refunds)
    }

    fn whole(agenda: &Agenda, rid: ReservationId) -> BTreeMap<TimerKind, Timestamp> {
        agenda.timers_of(rid).expect("kept whole")
    }

    #[test]
    fn due_timers_are_handed_out_once_until_spent() {
        let now = Utc::now();
        let rid = Uuid::from_u128(1);
        let timer = armed(
            rid,
            TimerKind::ApprovalDeadline,
            now - TimeDelta::seconds(1),
        );
        let later = armed(
            Uuid::from_u128(2),
            TimerKind::PaymentRetry,
            now + TimeDelta::hours(1),
        );
        let mut agenda = hour_ahead(&[timer, later], vec![]);
        assert_eq!(agenda.next_due(), Some(timer.due_at));
        let jobs = agenda.take_due(now, 10);
        assert!(matches!(jobs.as_slice(), [Job::Timer(t)] if *t == timer));
        assert!(agenda.take_due(now, 10).is_empty(), "not handed out twice");
        assert_eq!(agenda.next_due(), Some(later.due_at));
        assert_eq!(agenda.spend(timer), Some(BTreeMap::new()));
        assert!(whole(&agenda, rid).is_empty());
        assert_eq!(agenda.spend(timer), None, "spent once");
        assert_eq!(agenda.timers_armed(), 1);
    }

    #[test]
    fn replacing_timers_drops_the_old_ones() {
        let now = Utc::now();
        let rid = Uuid::from_u128(1);
        let mut agenda = hour_ahead(&[armed(rid, TimerKind::PaymentRetry, now)], vec![]);
        let rearmed = BTreeMap::from([(TimerKind::PaymentRetry, now + TimeDelta::hours(1))]);
        agenda.set_timers(rid, rearmed.clone());
        assert_eq!(whole(&agenda, rid), rearmed);
        assert!(agenda.holds(rid, &rearmed));
        assert!(agenda.take_due(now, 10).is_empty());
        agenda.set_timers(rid, BTreeMap::new());
        assert_eq!(agenda.next_due(), None);
    }

    #[test]
    fn a_reservation_s_timers_are_kept_in_place() {
        // The map's slot (key and value): what each pending reservation costs beyond the queue
        // (four kinds of 12 bytes each: deadline, payment retry, check-out, payout retry).
        assert_eq!(std::mem::size_of::<Armed>(), 48);
        assert!(std::mem::size_of::<(ReservationId, Armed)>() <= 64);
        let now = Utc::now();
        let rid = Uuid::from_u128(1);
        let both = BTreeMap::from([
            (TimerKind::ApprovalDeadline, now + TimeDelta::hours(2)),
            (TimerKind::PaymentRetry, now + TimeDelta::minutes(1)),
        ]);
        let mut agenda = hour_ahead(&[], vec![]);
        agenda.set_timers(rid, both.clone());
        assert_eq!(whole(&agenda, rid), both);
        assert_eq!(agenda.timers_armed(), 2);
        assert_eq!(agenda.next_due(), Some(now + TimeDelta::minutes(1)));
        let jobs = agenda.take_due(now + TimeDelta::hours(3), 10);
        let kinds: Vec<TimerKind> = jobs
            .iter()
            .filter_map(|job| match job {
                Job::Timer(timer) => Some(timer.kind),
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [TimerKind::PaymentRetry, TimerKind::ApprovalDeadline],
            "by due time"
        );
    }

    #[test]
    fn the_map_gives_its_room_back_once_mostly_empty() {
        let now = Utc::now();
        let due = BTreeMap::from([(TimerKind::ApprovalDeadline, now)]);
        let mut agenda = hour_ahead(&[], vec![]);
        for n in 0..20_000 {
            agenda.set_timers(Uuid::from_u128(n), due.clone());
        }
        let full = agenda.timers.capacity();
        for n in 10..20_000 {
            agenda.set_timers(Uuid::from_u128(n), BTreeMap::new());
        }
        assert!(
            agenda.timers.capacity() <= SHRINK_FROM,
            "{} of {full}",
            agenda.timers.capacity()
        );
        assert_eq!(agenda.timers_armed(), 10);
        assert_eq!(whole(&agenda, Uuid::from_u128(9)), due);
        assert!(whole(&agenda, Uuid::from_u128(10)).is_empty());
        assert_eq!(agenda.take_due(now, 100).len(), 10);
    }

    #[test]
    fn refund_retries_are_rescheduled_and_settled() {
        let now = Utc::now();
        let retry = RefundRetry {
            action_id: Uuid::from_u128(3),
            reservation_id: Uuid::from_u128(1),
            correlation_id: Uuid::from_u128(1),
            charge_ref: "ch_1".into(),
            amount: 10,
            attempt: 1,
            next_attempt_at: now,
            last_error: "down".into(),
        };
        let mut agenda = hour_ahead(&[], vec![retry.clone()]);
        assert_eq!(agenda.take_due(now, 10).len(), 1);
        agenda.refund_tried(retry.action_id);
        let later = RefundRetry {
            next_attempt_at: now + TimeDelta::minutes(1),
            attempt: 2,
            ..retry
        };
        agenda.upsert_refund(later.clone());
        assert!(agenda.take_due(now, 10).is_empty());
        assert_eq!(agenda.next_due(), Some(later.next_attempt_at));
        agenda.settle_refund(later.action_id);
        assert_eq!((agenda.refunds_pending(), agenda.next_due()), (0, None));
    }

    #[test]
    fn timers_beyond_the_horizon_are_kept_as_a_fingerprint_until_taken_in() {
        let now = Utc::now();
        let day = now + TimeDelta::days(1);
        let (far, mixed) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let deadline = BTreeMap::from([(TimerKind::ApprovalDeadline, day)]);
        let mut agenda = hour_ahead(&[armed(far, TimerKind::ApprovalDeadline, day)], vec![]);
        assert_eq!(agenda.timers_of(far), None, "not kept whole");
        assert!(agenda.holds(far, &deadline));
        let moved = BTreeMap::from([(TimerKind::ApprovalDeadline, day + TimeDelta::seconds(1))]);
        assert!(!agenda.holds(far, &moved), "a moved deadline is a change");
        assert!(!agenda.holds(far, &BTreeMap::new()), "so is none");
        assert_eq!((agenda.timers_armed(), agenda.next_due()), (1, None));

        // A reservation with one timer near is kept whole, its deadline a day away included.
        let retry = now + TimeDelta::minutes(1);
        let both = BTreeMap::from([
            (TimerKind::ApprovalDeadline, day),
            (TimerKind::PaymentRetry, retry),
        ]);
        agenda.set_timers(mixed, both.clone());
        assert_eq!(agenda.timers_of(mixed), Some(both));
        assert_eq!((agenda.timers_armed(), agenda.next_due()), (3, Some(retry)));
        // Its retry spent, what is left is the deadline, now beyond the horizon: still written.
        let spent = armed(mixed, TimerKind::PaymentRetry, retry);
        assert_eq!(agenda.take_due(retry, 10).len(), 1);
        assert_eq!(agenda.spend(spent), Some(deadline.clone()));
        assert_eq!(agenda.timers_of(mixed), None);
        assert!(agenda.holds(mixed, &deadline));

        // The horizon moves on halfway, and takes in what the store says came near.
        let ahead = TimeDelta::hours(1);
        let extend_at = agenda.extend_at(ahead).expect("kept beyond");
        assert!(extend_at < now + ahead && extend_at > now, "{extend_at}");
        let stored = [armed(far, TimerKind::ApprovalDeadline, day)];
        agenda.extend(day + TimeDelta::seconds(1), &stored);
        assert_eq!(agenda.timers_of(far), Some(deadline));
        assert_eq!(
            agenda.timers_of(mixed),
            None,
            "not in the store's answer: unchanged"
        );
        assert_eq!((agenda.timers_armed(), agenda.next_due()), (2, Some(day)));
        assert_eq!(agenda.take_due(day, 10).len(), 1);
        agenda.set_timers(mixed, BTreeMap::new());
        assert_eq!((agenda.timers_armed(), agenda.extend_at(ahead)), (1, None));
    }

    #[test]
    fn what_is_kept_whole_is_not_replaced_by_the_store_s_older_answer() {
        let now = Utc::now();
        let rid = Uuid::from_u128(1);
        let soon = BTreeMap::from([(TimerKind::PaymentRetry, now + TimeDelta::minutes(1))]);
        let mut agenda = hour_ahead(&[], vec![]);
        agenda.set_timers(rid, soon.clone());
        agenda.extend(
            now + TimeDelta::hours(2),
            &[armed(rid, TimerKind::CheckOut, now)],
        );
        assert_eq!(agenda.timers_of(rid), Some(soon));
        assert_eq!(agenda.timers_armed(), 1);
    }

    #[test]
    fn a_far_reservation_costs_its_id_and_a_fingerprint() {
        assert!(std::mem::size_of::<(ReservationId, Fingerprint)>() <= 24);
        let at = Utc::now() + TimeDelta::days(1);
        let deadline = BTreeMap::from([(TimerKind::ApprovalDeadline, at)]);
        let mut agenda = hour_ahead(&[], vec![]);
        for n in 0..10_000 {
            agenda.set_timers(Uuid::from_u128(n), deadline.clone());
        }
        assert_eq!((agenda.timers.len(), agenda.far.len()), (0, 10_000));
        assert!(
            agenda.timer_queue.is_empty(),
            "nothing in the due-time queue"
        );
        assert_eq!(agenda.timers_armed(), 10_000);
    }
}
