//! Money is conserved, as a property: over any run of one reservation (any approval mode, any
//! gateway answers to charges and payouts, cancellations, refunds, completions by the admin or at
//! check-out, platform retries, timers in any order), once everything due has happened:
//! - charged = refunded + fee + net paid out, to the minor unit, for a completed stay;
//! - charged = refunded for every other (a cancelled or refunded stay is never paid out);
//! - a stay is paid out at most once: one `PayoutSent`, and one payout in the gateway's ledger;
//! - fee = floor(gross x fee_bps / 10,000) at the lodging's rate.

mod support;

use domain::lodging::ApprovalMode;
use domain::payment::PaymentEvent;
use domain::payout::{split, PayoutCommand, PayoutEvent, PayoutStatus};
use domain::reservation::{ReservationCommand, ReservationStatus};
use proptest::prelude::*;
use support::world::{stay, Gateway, World};

#[derive(Debug, Clone)]
enum Op {
    AdminGrants,
    AdminDenies,
    /// Its customer cancels (a request, or a confirmed stay: full refund).
    CustomerCancels,
    /// Its admin cancels a confirmed stay (full refund).
    AdminCancels,
    /// Its admin completes the stay (refused before check-in).
    AdminCompletes,
    /// Time passes to check-in (so the admin may complete it).
    CheckInDay,
    /// The earliest armed timer fires.
    FireEarliest,
    /// A slow charge's answer arrives.
    ReleaseHeldCharge,
    /// The platform admin retries a deferred or failed payout.
    PlatformRetriesPayout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::AdminGrants),
        1 => Just(Op::AdminDenies),
        1 => Just(Op::CustomerCancels),
        1 => Just(Op::AdminCancels),
        1 => Just(Op::AdminCompletes),
        1 => Just(Op::CheckInDay),
        3 => Just(Op::FireEarliest),
        1 => Just(Op::ReleaseHeldCharge),
        1 => Just(Op::PlatformRetriesPayout),
    ]
}

fn gateway() -> impl Strategy<Value = Gateway> {
    prop_oneof![
        3 => Just(Gateway::Charges),
        1 => Just(Gateway::Overloaded),
        1 => Just(Gateway::CircuitOpen),
        1 => Just(Gateway::Declines),
        1 => Just(Gateway::Slow),
    ]
}

fn mode() -> impl Strategy<Value = ApprovalMode> {
    prop_oneof![
        Just(ApprovalMode::Manual),
        Just(ApprovalMode::Instant),
        Just(ApprovalMode::PayFirst),
    ]
}

fn apply(world: &mut World, op: &Op) {
    match op {
        Op::AdminGrants => {
            let _ = world.admin_grants();
        }
        Op::AdminDenies => {
            let _ = world.lodging(domain::lodging::LodgingCommand::Deny {
                reservation_id: world.reservation_id,
                stay: stay(),
                reason: "full".to_string(),
                denied_by: "admin".to_string(),
            });
        }
        Op::CustomerCancels | Op::AdminCancels => {
            let by = if matches!(op, Op::AdminCancels) {
                "admin"
            } else {
                "c1"
            };
            world.try_reservation(&ReservationCommand::Cancel {
                cancelled_by: by.to_string(),
                reason: "changed plans".to_string(),
                timezone: domain::Tz::UTC,
            });
        }
        Op::AdminCompletes => {
            world.try_reservation(&ReservationCommand::Complete {
                completed_by: "admin".to_string(),
            });
        }
        Op::CheckInDay => {
            let check_in = stay().check_in.and_hms_opt(0, 0, 0).expect("midnight");
            world.now = world.now.max(check_in.and_utc());
        }
        Op::FireEarliest => fire_earliest(world),
        Op::ReleaseHeldCharge if world.held_charge => world.release_held_charge(),
        Op::ReleaseHeldCharge => {}
        Op::PlatformRetriesPayout => {
            if matches!(
                world.payout.status,
                PayoutStatus::Deferred | PayoutStatus::Failed
            ) {
                world.payout(&PayoutCommand::Retry {
                    requested_by: "platform".to_string(),
                });
            }
        }
    }
    world.settle();
}

fn fire_earliest(world: &mut World) {
    let earliest = world
        .saga
        .timers
        .iter()
        .min_by_key(|(_, due)| **due)
        .map(|(timer, _)| *timer);
    if let Some(timer) = earliest {
        world.fire(timer);
    }
}

/// Everything due happens: slow answers arrive, timers fire, failed payouts are retried by the
/// platform (the gateway then pays: its scripts have run out).
fn run_out(world: &mut World) {
    for _ in 0..200 {
        world.settle();
        if world.held_charge {
            world.release_held_charge();
        } else if !world.saga.timers.is_empty() {
            fire_earliest(world);
        } else if world.payout.status == PayoutStatus::Failed {
            apply(world, &Op::PlatformRetriesPayout);
        } else {
            return;
        }
    }
    panic!("the run never came to rest: {:?}", world.saga);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn money_is_conserved_to_the_minor_unit_and_paid_out_once(
        mode in mode(),
        fee_bps in prop_oneof![Just(0_u32), Just(10_000_u32), 0_u32..=10_000],
        charges in proptest::collection::vec(gateway(), 0..6),
        payouts in proptest::collection::vec(gateway(), 0..8),
        ops in proptest::collection::vec(op(), 0..16),
    ) {
        let mut world = World::new(Some(mode), &charges);
        world.payout_gateway = payouts.into_iter().collect();
        // As the platform admin's approval of the listing would have set it.
        world.lodging.profile.as_mut().expect("registered").fee_bps = fee_bps;
        world.reserve();
        world.settle();
        for op in &ops {
            apply(&mut world, op);
        }
        run_out(&mut world);

        let charged: i64 = world.payment_events.iter().map(|e| match e {
            PaymentEvent::PaymentCompleted { amount, .. } => *amount,
            _ => 0,
        }).sum();
        let refunded: i64 = world.payment_events.iter().map(|e| match e {
            PaymentEvent::PaymentRefunded { amount, .. } => *amount,
            _ => 0,
        }).sum();
        let sent = world.payout_events.iter()
            .filter(|e| matches!(e, PayoutEvent::PayoutSent { .. })).count();
        let scheduled = world.payout_events.iter().find_map(|e| match e {
            PayoutEvent::PayoutScheduled { gross, fee_bps, fee, net, .. } => {
                Some((*gross, *fee_bps, *fee, *net))
            }
            _ => None,
        });
        prop_assert!(sent <= 1, "paid out {sent} times");
        prop_assert!(world.paid_out.len() <= 1, "{:?}", world.paid_out);
        if world.status() == ReservationStatus::Completed {
            let (gross, rate, fee, net) = scheduled.expect("a completed stay is scheduled a payout");
            prop_assert_eq!(rate, fee_bps);
            prop_assert_eq!(gross, charged - refunded);
            prop_assert_eq!(split(gross, rate), Some((fee, net)));
            prop_assert_eq!(sent, 1, "a completed stay is paid out");
            prop_assert_eq!(charged, refunded + fee + net);
            if net > 0 {
                let paid: Vec<i64> = world.paid_out.values().map(|(amount, _)| *amount).collect();
                prop_assert_eq!(paid, vec![net], "the gateway paid the net once");
            }
        } else {
            prop_assert_eq!(scheduled, None, "{:?} paid out", world.status());
            prop_assert!(world.paid_out.is_empty());
            prop_assert_eq!(charged, refunded, "{:?} kept money", world.status());
        }
        prop_assert!(world.saga.timers.is_empty(), "{:?}", world.saga.timers);
    }
}
