//! One reservation's world for whole-flow tests: the saga's decisions wired to the aggregates in
//! memory (reservation, lodging, payment, payout), the way the `saga` crate runs them (every event
//! appended is fed back to the saga in log order; every action is executed in order), with a
//! scripted payment gateway whose payout ledger pays a key once, as a real gateway's does.

use std::collections::{BTreeMap, VecDeque};

use chrono::{NaiveDate, TimeZone, Utc};
use domain::lodging::{
    ApprovalMode, LodgingAggregate, LodgingApproval, LodgingCommand, LodgingError, LodgingEvent,
    LodgingProfile,
};
use domain::payment::{Payment, PaymentAggregate, PaymentCommand, PaymentEvent};
use domain::payout::{
    Payout, PayoutAggregate, PayoutCommand, PayoutEvent, PayoutStatus, PayoutTerms,
};
use domain::reservation::{
    LodgingTerms, Reservation, ReservationAggregate, ReservationCommand, ReservationStatus,
};
use domain::saga::SagaState;
use domain::saga::{
    reservation_fallback, retry_delay, ReservationSaga, SagaAction, SagaInput, SagaPolicy,
    SagaTrigger, TimerKind,
};
use domain::{Aggregate, ReservationId, Stay, Timestamp};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gateway {
    /// The call goes through (a charge taken, a payout paid).
    Charges,
    /// The gateway answers with an error (an attempt).
    Overloaded,
    /// The circuit breaker is open: the gateway is not called (no attempt).
    CircuitOpen,
    Declines,
    /// The charge is taken but its answer is held back until [`World::release_held_charge`].
    Slow,
}

pub struct World {
    pub now: Timestamp,
    pub policy: SagaPolicy,
    pub reservation_id: ReservationId,
    pub reservation: Reservation,
    pub lodging: LodgingApproval,
    pub lodging_events: Vec<LodgingEvent>,
    pub payment: Payment,
    pub payment_events: Vec<PaymentEvent>,
    pub payout: Payout,
    pub payout_events: Vec<PayoutEvent>,
    pub saga: SagaState,
    pub log: VecDeque<SagaInput>,
    pub triggers: u128,
    /// What the gateway does with each charge, in turn (then it takes them).
    pub gateway: VecDeque<Gateway>,
    /// What the gateway does with each payout call, in turn (then it pays them).
    pub payout_gateway: VecDeque<Gateway>,
    /// The gateway's payout ledger: amount paid per idempotency key, and calls per key.
    pub paid_out: BTreeMap<String, (i64, u32)>,
    pub held_charge: bool,
}

pub fn stay() -> Stay {
    Stay {
        rooms: 1,
        check_in: NaiveDate::from_ymd_opt(2030, 6, 10).expect("date"),
        check_out: NaiveDate::from_ymd_opt(2030, 6, 12).expect("date"),
        guests: 2,
    }
}

pub fn profile(mode: ApprovalMode) -> LodgingProfile {
    LodgingProfile {
        fee_bps: 1_000,
        lodging_id: "l1".to_string(),
        name: "Inn".to_string(),
        nightly_rate: 150,
        currency: "EUR".to_string(),
        rooms: 1,
        max_guests: 2,
        approval_mode: mode,
        admin_id: "admin".to_string(),
        timezone: domain::Tz::UTC,
    }
}

impl World {
    pub fn new(mode: Option<ApprovalMode>, gateway: &[Gateway]) -> Self {
        let mut world = Self {
            now: Utc
                .with_ymd_and_hms(2030, 6, 1, 10, 0, 0)
                .single()
                .expect("instant"),
            policy: SagaPolicy {
                max_payment_attempts: 3,
                ..SagaPolicy::default()
            },
            reservation_id: Uuid::from_u128(7),
            reservation: Reservation::default(),
            lodging: LodgingApproval::default(),
            lodging_events: Vec::new(),
            payment: Payment::default(),
            payment_events: Vec::new(),
            payout: Payout::default(),
            payout_events: Vec::new(),
            saga: SagaState::default(),
            log: VecDeque::new(),
            triggers: 0,
            gateway: gateway.iter().copied().collect(),
            payout_gateway: VecDeque::new(),
            paid_out: BTreeMap::new(),
            held_charge: false,
        };
        if let Some(mode) = mode {
            world
                .lodging(LodgingCommand::Register(profile(mode)))
                .expect("valid profile");
            world.log.clear();
        }
        world
    }

    pub fn reserve(&mut self) {
        let command = ReservationCommand::Request {
            reservation_id: self.reservation_id,
            customer_id: "c1".to_string(),
            lodging: LodgingTerms {
                lodging_id: "l1".to_string(),
                nightly_rate: 150,
                currency: "EUR".to_string(),
                max_guests: 2,
                rooms: 2,
                timezone: domain::Tz::UTC,
            },
            stay: stay(),
        };
        self.reservation(&command);
    }

    pub fn reservation(&mut self, command: &ReservationCommand) {
        let events = ReservationAggregate::decide(&self.reservation, command, self.now)
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        self.reservation = ReservationAggregate::fold(self.reservation.clone(), &events);
        self.log
            .extend(events.into_iter().map(SagaInput::Reservation));
    }

    pub fn lodging(&mut self, command: LodgingCommand) -> Result<(), LodgingError> {
        let events = LodgingAggregate::decide(&self.lodging, &command, self.now)?;
        self.lodging = LodgingAggregate::fold(self.lodging.clone(), &events);
        self.lodging_events.extend(events.iter().cloned());
        self.log.extend(events.into_iter().map(SagaInput::Lodging));
        Ok(())
    }

    pub fn payment(&mut self, command: &PaymentCommand) {
        let events = PaymentAggregate::decide(&self.payment, command, self.now)
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        self.payment = PaymentAggregate::fold(self.payment.clone(), &events);
        self.payment_events.extend(events.iter().cloned());
        self.log.extend(events.into_iter().map(SagaInput::Payment));
    }

    pub fn admin_grants(&mut self) -> Result<(), LodgingError> {
        self.lodging(LodgingCommand::Grant {
            reservation_id: self.reservation_id,
            stay: stay(),
            granted_by: "admin".to_string(),
        })
    }

    pub fn execute(&mut self, action: SagaAction) {
        match action {
            SagaAction::Reservation(command) => self.reservation(&command),
            SagaAction::Lodging { command, .. } => match self.lodging(command) {
                Ok(()) => {}
                // The runner's rule: an unknown lodging rejects the reservation.
                Err(error) => {
                    let fallback =
                        reservation_fallback(&error).unwrap_or_else(|| panic!("lodging: {error}"));
                    self.reservation(&fallback);
                }
            },
            SagaAction::Payment(command) => self.payment(&command),
            SagaAction::Charge {
                amount,
                attempt,
                last_attempt,
                ..
            } => {
                assert_eq!(amount, 300);
                self.charge(attempt, last_attempt);
            }
            SagaAction::RefundCharge { charge_ref, amount } => {
                assert_eq!(Some(&charge_ref), self.payment.charge_ref.as_ref());
                self.payment(&PaymentCommand::Refund {
                    amount,
                    gateway_ref: format!("re-{charge_ref}"),
                });
            }
            SagaAction::SchedulePayout {
                lodging_id,
                gross,
                currency,
            } => {
                // As the payout worker does: the host and the rate of the lodging as it is now.
                let profile = self.lodging.profile.clone().expect("a registered lodging");
                self.payout(&PayoutCommand::Schedule(PayoutTerms {
                    reservation_id: self.reservation_id,
                    lodging_id,
                    host_id: profile.admin_id,
                    gross,
                    fee_bps: profile.fee_bps,
                    currency,
                }));
            }
            SagaAction::Payout(command) => self.payout(&command),
            SagaAction::PayOut { attempt } => self.pay_out(attempt),
        }
    }

    pub fn payout(&mut self, command: &PayoutCommand) {
        let events = PayoutAggregate::decide(&self.payout, command, self.now)
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        self.payout = PayoutAggregate::fold(self.payout.clone(), &events);
        self.payout_events.extend(events.iter().cloned());
        self.log.extend(events.into_iter().map(SagaInput::Payout));
    }

    /// The payout worker's call: only an open payout is sent; a net of zero without the gateway.
    fn pay_out(&mut self, attempt: u32) {
        let open = matches!(
            self.payout.status,
            PayoutStatus::Scheduled | PayoutStatus::Deferred
        );
        let Some((terms, _, net)) = self.payout.scheduled.clone().filter(|_| open) else {
            return;
        };
        let retry_at = self.now + retry_delay(self.policy.retry_base, attempt);
        let command = match self.payout_gateway.pop_front().unwrap_or(Gateway::Charges) {
            _ if net == 0 => PayoutCommand::RecordSent {
                gateway_ref: "no-payout".to_string(),
            },
            // `Slow` is a charge's script; a payout answers at once.
            Gateway::Charges | Gateway::Slow => {
                let key = format!("payout-{}", terms.reservation_id);
                let paid = self.paid_out.entry(key.clone()).or_insert((net, 0));
                paid.1 += 1;
                PayoutCommand::RecordSent { gateway_ref: key }
            }
            Gateway::Declines => PayoutCommand::Fail {
                reason: "payout declined".to_string(),
            },
            Gateway::Overloaded => PayoutCommand::Defer {
                reason: "gateway unavailable".to_string(),
                retry_at,
            },
            Gateway::CircuitOpen => PayoutCommand::DeferUncounted {
                reason: "circuit open".to_string(),
                retry_at,
            },
        };
        self.payout(&command);
    }

    pub fn charge(&mut self, attempt: u32, last_attempt: bool) {
        let complete = PaymentCommand::Complete {
            payment_id: "p1".to_string(),
            gateway_ref: "ch-1".to_string(),
            amount: 300,
        };
        match self.gateway.pop_front().unwrap_or(Gateway::Charges) {
            Gateway::Charges => self.payment(&complete),
            Gateway::Declines => self.payment(&PaymentCommand::Fail {
                reason: "declined".to_string(),
            }),
            // As the payment worker does: the last attempt waits for the admin's retry until the
            // approval deadline has passed once more.
            Gateway::Overloaded if last_attempt => self.payment(&PaymentCommand::Defer {
                reason: "gateway unavailable, attempts exhausted".to_string(),
                retry_at: self.now + self.policy.approval_deadline,
            }),
            Gateway::Overloaded => self.payment(&PaymentCommand::Defer {
                reason: "gateway unavailable".to_string(),
                retry_at: self.now + retry_delay(self.policy.retry_base, attempt),
            }),
            Gateway::CircuitOpen => self.payment(&PaymentCommand::DeferUncounted {
                reason: "circuit open".to_string(),
                retry_at: self.now + retry_delay(self.policy.retry_base, attempt),
            }),
            Gateway::Slow => self.held_charge = true,
        }
    }

    pub fn release_held_charge(&mut self) {
        assert!(std::mem::take(&mut self.held_charge), "a charge was held");
        self.payment(&PaymentCommand::Complete {
            payment_id: "p1".to_string(),
            gateway_ref: "ch-1".to_string(),
            amount: 300,
        });
    }

    /// The saga handles one input: its decisions are recorded, and the actions to send returned.
    pub fn handle(&mut self, input: SagaInput) -> Vec<SagaAction> {
        self.triggers += 1;
        let trigger = SagaTrigger {
            trigger_id: Uuid::from_u128(self.triggers),
            input,
            policy: self.policy,
        };
        let Ok(events) = ReservationSaga::decide(&self.saga, &trigger, self.now);
        self.saga = ReservationSaga::fold(self.saga.clone(), &events);
        self.saga
            .handled
            .get(&trigger.trigger_id)
            .cloned()
            .expect("the trigger was just handled")
    }

    /// Feed every event appended so far to the saga, and execute its actions, until quiet.
    pub fn settle(&mut self) {
        while let Some(input) = self.log.pop_front() {
            for action in self.handle(input) {
                self.execute(action);
            }
        }
    }

    /// The timer fires when due; its trigger is then handled like any other.
    pub fn fire(&mut self, timer: TimerKind) {
        let due = *self.saga.timers.get(&timer).expect("the timer is armed");
        self.now = self.now.max(due);
        self.log.push_back(SagaInput::Timer(timer));
        self.settle();
    }

    /// The one timer of a confirmed stay: its check-out.
    pub fn only_check_out_armed(&self) -> bool {
        self.saga.timers.keys().eq([TimerKind::CheckOut].iter())
    }

    pub fn status(&self) -> ReservationStatus {
        self.reservation.status
    }

    pub fn completed_charges(&self) -> usize {
        self.payment_events
            .iter()
            .filter(|e| matches!(e, PaymentEvent::PaymentCompleted { .. }))
            .count()
    }

    /// `command` on the reservation if it takes it now (a user's try); whether it did.
    pub fn try_reservation(&mut self, command: &ReservationCommand) -> bool {
        let taken = ReservationAggregate::decide(&self.reservation, command, self.now).is_ok();
        if taken {
            self.reservation(command);
        }
        taken
    }

    pub fn cancel(&mut self) {
        self.reservation(&ReservationCommand::Cancel {
            cancelled_by: "c1".to_string(),
            reason: "changed plans".to_string(),
            timezone: domain::Tz::UTC,
        });
    }
}
