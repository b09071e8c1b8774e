//! The coordinator's in-memory agenda: armed timers and refund retries by due time, mirroring what
//! is committed in the timer store, plus which of them are being handled right now.
//!
//! It holds one entry per reservation with an armed timer: every pending request has one (its
//! approval deadline), so it grows with the pending work itself and is compact: a reservation's
//! timers are one due time per kind in place in the map (`Armed`, 24 bytes) rather than a
//! `BTreeMap` of their own (a B-tree node of about 200 bytes each), and the map gives its room back
//! once most of it is empty. About 125 bytes per armed reservation with the due-time queue (by
//! their layout), where a heap profile at 43,000 pending requests measured about 285 (issue 18).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use domain::saga::TimerKind;
use domain::{ReservationId, Timestamp};
use uuid::Uuid;

use super::lane::Job;
use crate::store::{ArmedTimer, RefundRetry};

/// Every kind of timer, in `TimerKind`'s order: [`Armed`] has one slot for each.
const KINDS: [TimerKind; 4] = TimerKind::ALL;

/// The map of armed reservations is shrunk when it uses less than a quarter of its room, and only
/// past this room (a small map is not worth re-hashing).
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

    fn is_empty(self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

#[derive(Debug, Default)]
pub struct Agenda {
    timers: HashMap<ReservationId, Armed>,
    timer_queue: BTreeSet<(Timestamp, ReservationId, TimerKind)>,
    firing: HashSet<ArmedTimer>,
    refunds: HashMap<Uuid, RefundRetry>,
    refund_queue: BTreeSet<(Timestamp, Uuid)>,
    refunding: HashSet<Uuid>,
}

impl Agenda {
    pub fn new(timers: &[ArmedTimer], refunds: Vec<RefundRetry>) -> Self {
        let mut agenda = Self::default();
        for timer in timers {
            let mut armed = agenda.timers_of(timer.reservation_id);
            armed.insert(timer.kind, timer.due_at);
            agenda.set_timers(timer.reservation_id, armed);
        }
        for refund in refunds {
            agenda.upsert_refund(refund);
        }
        agenda
    }

    /// The timers armed for one reservation.
    pub fn timers_of(&self, reservation_id: ReservationId) -> BTreeMap<TimerKind, Timestamp> {
        self.timers
            .get(&reservation_id)
            .map(|armed| armed.timers().collect())
            .unwrap_or_default()
    }

    /// Replace a reservation's armed timers.
    pub fn set_timers(
        &mut self,
        reservation_id: ReservationId,
        armed: BTreeMap<TimerKind, Timestamp>,
    ) {
        if let Some(old) = self.timers.remove(&reservation_id) {
            for (kind, due_at) in old.timers() {
                self.timer_queue.remove(&(due_at, reservation_id, kind));
            }
        }
        let armed = Armed::of(&armed);
        for (kind, due_at) in armed.timers() {
            self.timer_queue.insert((due_at, reservation_id, kind));
        }
        if armed.is_empty() {
            let room = self.timers.capacity();
            if room > SHRINK_FROM && self.timers.len() < room / 4 {
                self.timers.shrink_to(self.timers.len() * 2);
            }
        } else {
            self.timers.insert(reservation_id, armed);
        }
    }

    /// A timer's firing was handled: it is gone, whatever the saga reported.
    pub fn spend(&mut self, timer: ArmedTimer) {
        self.firing.remove(&timer);
        let mut armed = self.timers_of(timer.reservation_id);
        if armed.get(&timer.kind) == Some(&timer.due_at) {
            armed.remove(&timer.kind);
            self.set_timers(timer.reservation_id, armed);
        }
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
        self.timer_queue.len()
    }

    pub fn refunds_pending(&self) -> usize {
        self.refunds.len()
    }
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
        let mut agenda = Agenda::new(&[timer, later], vec![]);
        assert_eq!(agenda.next_due(), Some(timer.due_at));
        let jobs = agenda.take_due(now, 10);
        assert!(matches!(jobs.as_slice(), [Job::Timer(t)] if *t == timer));
        assert!(agenda.take_due(now, 10).is_empty(), "not handed out twice");
        assert_eq!(agenda.next_due(), Some(later.due_at));
        agenda.spend(timer);
        assert!(agenda.timers_of(rid).is_empty());
        assert_eq!(agenda.timers_armed(), 1);
    }

    #[test]
    fn replacing_timers_drops_the_old_ones() {
        let now = Utc::now();
        let rid = Uuid::from_u128(1);
        let mut agenda = Agenda::new(&[armed(rid, TimerKind::PaymentRetry, now)], vec![]);
        let rearmed = BTreeMap::from([(TimerKind::PaymentRetry, now + TimeDelta::hours(1))]);
        agenda.set_timers(rid, rearmed.clone());
        assert_eq!(agenda.timers_of(rid), rearmed);
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
        let mut agenda = Agenda::default();
        agenda.set_timers(rid, both.clone());
        assert_eq!(agenda.timers_of(rid), both);
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
        let mut agenda = Agenda::default();
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
        assert_eq!(agenda.timers_of(Uuid::from_u128(9)), due);
        assert!(agenda.timers_of(Uuid::from_u128(10)).is_empty());
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
        let mut agenda = Agenda::new(&[], vec![retry.clone()]);
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
}
