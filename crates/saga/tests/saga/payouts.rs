//! Payouts through the real runner and the real sandbox: a completed stay pays its host what was
//! paid less the lodging's fee, once, under the key `payout-{reservation_id}`; an unavailable
//! gateway defers it until it pays; attempts used up fail it, and the platform admin's retry sends
//! it again.

use chrono::TimeDelta;
use domain::lodging::ApprovalMode;
use domain::payout::PayoutCommand;
use domain::reservation::{LodgingTerms, ReservationCommand};
use domain::saga::SagaPolicy;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::world::{eventually, fast_policy, platform_admin, World, NIGHTLY_RATE};

/// A one-night stay checking in today where the lodging is (Seoul), so its admin may complete it.
async fn stay_from_today(world: &World, lodging_id: &str) -> Uuid {
    let today = domain::local_date(chrono::Utc::now(), domain::Tz::Asia__Seoul);
    let rid = Uuid::new_v4();
    let request = ReservationCommand::Request {
        reservation_id: rid,
        customer_id: "customer-1".to_string(),
        lodging: LodgingTerms {
            lodging_id: lodging_id.to_string(),
            nightly_rate: NIGHTLY_RATE,
            currency: "KRW".to_string(),
            max_guests: 4,
            rooms: 1,
            timezone: domain::Tz::Asia__Seoul,
        },
        stay: domain::Stay {
            check_in: today,
            check_out: today + TimeDelta::days(1),
            guests: 2,
            rooms: 1,
        },
    };
    world.reservation_command(rid, &request).await;
    rid
}

/// Requested on an instant lodging, confirmed, then completed by its admin.
async fn completed_stay(world: &World) -> Uuid {
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = stay_from_today(world, &lodging).await;
    world.wait_for_status(rid, "confirmed").await;
    let complete = ReservationCommand::Complete {
        completed_by: "admin-1".to_string(),
    };
    world.reservation_command(rid, &complete).await;
    rid
}

/// `GET /sandbox/payouts` over HTTP, those of `rid`.
async fn sandbox_payouts(world: &World, rid: Uuid) -> Vec<Value> {
    let all: Vec<Value> = world
        .http
        .get(format!("{}/payouts", world.sandbox_url))
        .bearer_auth(platform_admin())
        .send()
        .await
        .expect("sandbox reachable")
        .json()
        .await
        .expect("payouts json");
    let key = format!("payout-{rid}");
    all.into_iter()
        .filter(|p| p["idempotency_key"] == key.as_str())
        .collect()
}

async fn wait_for_payout_event(world: &World, rid: Uuid, event_type: &str) -> Vec<String> {
    eventually(&format!("{event_type} on payout-{rid}"), || async {
        let types = world.event_types(&format!("payout-{rid}")).await;
        types.iter().any(|t| t == event_type).then_some(types)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_stay_pays_its_host_what_was_paid_less_the_fee_once() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let rid = completed_stay(&world).await;
    let types = wait_for_payout_event(&world, rid, "PayoutSent").await;
    assert_eq!(types, ["PayoutScheduled", "PayoutSent"]);

    // One night at NIGHTLY_RATE, the lodging's fee 10% (1,000 basis points).
    let scheduled = &world.stream(&format!("payout-{rid}")).await[0];
    let (gross, fee, net) = (
        NIGHTLY_RATE,
        NIGHTLY_RATE / 10,
        NIGHTLY_RATE - NIGHTLY_RATE / 10,
    );
    assert_eq!(
        (
            &scheduled.data["gross"],
            &scheduled.data["fee"],
            &scheduled.data["net"]
        ),
        (&json!(gross), &json!(fee), &json!(net))
    );
    assert_eq!(scheduled.data["host_id"], "admin-1");
    let paid = sandbox_payouts(&world, rid).await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(
        (&paid[0]["payee"], &paid[0]["amount"], &paid[0]["attempts"]),
        (&json!("admin-1"), &json!(net), &json!(1))
    );
    eventually("the payout counted", || async {
        (runner.status.snapshot().payouts_sent == 1).then_some(())
    })
    .await;
    world.settle(&runner).await;
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_gateway_defers_the_payout_until_it_pays() {
    let world = World::new().await;
    let runner = world.start(fast_policy(), "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = stay_from_today(&world, &lodging).await;
    world.wait_for_status(rid, "confirmed").await;
    world.configure_sandbox(json!({"overloaded": true})).await;
    world
        .reservation_command(
            rid,
            &ReservationCommand::Complete {
                completed_by: "admin-1".to_string(),
            },
        )
        .await;
    wait_for_payout_event(&world, rid, "PayoutDeferred").await;
    assert!(sandbox_payouts(&world, rid).await.is_empty());
    world.configure_sandbox(json!({"overloaded": false})).await;
    let types = wait_for_payout_event(&world, rid, "PayoutSent").await;
    assert_eq!(types.iter().filter(|t| *t == "PayoutSent").count(), 1);
    assert_eq!(sandbox_payouts(&world, rid).await.len(), 1);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_out_of_attempts_fails_and_the_platform_admin_s_retry_pays_it() {
    let world = World::new().await;
    let policy = SagaPolicy {
        max_payment_attempts: 2,
        ..fast_policy()
    };
    let runner = world.start(policy, "saga.db");
    let lodging = world.register_lodging(1, ApprovalMode::Instant).await;
    let rid = stay_from_today(&world, &lodging).await;
    world.wait_for_status(rid, "confirmed").await;
    world.configure_sandbox(json!({"overloaded": true})).await;
    world
        .reservation_command(
            rid,
            &ReservationCommand::Complete {
                completed_by: "admin-1".to_string(),
            },
        )
        .await;
    let types = wait_for_payout_event(&world, rid, "PayoutFailed").await;
    assert_eq!(
        types,
        [
            "PayoutScheduled",
            "PayoutDeferred",
            "PayoutDeferred",
            "PayoutFailed"
        ]
    );
    world.configure_sandbox(json!({"overloaded": false})).await;
    world
        .payout_command(
            rid,
            &PayoutCommand::Retry {
                requested_by: "root".to_string(),
            },
        )
        .await;
    wait_for_payout_event(&world, rid, "PayoutSent").await;
    assert_eq!(sandbox_payouts(&world, rid).await.len(), 1);
    runner.stop().await;
}
