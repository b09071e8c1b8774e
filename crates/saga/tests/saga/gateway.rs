//! The HTTP gateway client behind the circuit breaker, against the real sandbox (R3): charges,
//! refunds and payouts.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use domain::lodging::ApprovalMode;
use domain::saga::SagaPolicy;
use saga::{BreakerGateway, BreakerPolicy, CircuitState, GatewayError, PaymentGateway, SagaConfig};
use serde_json::json;

use crate::world::{eventually, fast_policy, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_refuses_without_calling_and_a_probe_closes_it() {
    let world = World::new().await;
    let gateway = BreakerGateway::new(
        world.http_gateway(),
        BreakerPolicy {
            failure_threshold: 2,
            cool_down: Duration::from_millis(150),
        },
    );
    world.configure_sandbox(json!({"overloaded": true})).await;
    for _ in 0..2 {
        let error = gateway.charge("key-1", 1_000, "KRW").await.unwrap_err();
        assert!(matches!(error, GatewayError::Unavailable(_)), "{error}");
    }
    assert_eq!(gateway.circuit_state(), Some(CircuitState::Open));
    assert_eq!(
        gateway.charge("key-1", 1_000, "KRW").await,
        Err(GatewayError::CircuitOpen)
    );

    world.configure_sandbox(json!({"overloaded": false})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gateway.circuit_state(), Some(CircuitState::HalfOpen));
    let receipt = gateway
        .charge("key-1", 1_000, "KRW")
        .await
        .expect("the probe passes");
    assert_eq!(gateway.circuit_state(), Some(CircuitState::Closed));
    let charges = world.charges().await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].charge_ref, receipt.charge_ref);
    assert_eq!(
        charges[0].attempts, 3,
        "the refused call never reached the gateway"
    );
    assert_eq!(gateway.breaker().times_opened(), 1);
    assert_eq!(gateway.breaker().calls_refused(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_and_a_refund_answer_through_the_client() {
    let world = World::new().await;
    let gateway = world.http_gateway();
    world.configure_sandbox(json!({"decline_rate": 1.0})).await;
    let declined = gateway.charge("k", 500, "KRW").await.unwrap_err();
    assert!(
        matches!(declined, GatewayError::Declined(ref why) if why.contains("declined")),
        "{declined}"
    );
    world.configure_sandbox(json!({"decline_rate": 0.0})).await;
    let charge = gateway.charge("k", 500, "KRW").await.expect("charged");
    let refund = gateway
        .refund(&charge.charge_ref, 500)
        .await
        .expect("refunded");
    let again = gateway
        .refund(&charge.charge_ref, 500)
        .await
        .expect("same refund");
    assert_eq!(refund, again);
    let unknown = gateway.refund("ch_unknown", 1).await.unwrap_err();
    assert!(matches!(unknown, GatewayError::Declined(_)), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_gateway_defers_then_confirms_with_one_charge() {
    let world = World::new().await;
    world.configure_sandbox(json!({"overloaded": true})).await;
    let breaker = BreakerPolicy {
        failure_threshold: 2,
        cool_down: Duration::from_millis(600),
    };
    let gateway = Arc::new(BreakerGateway::new(world.http_gateway(), breaker));
    let policy = SagaPolicy {
        retry_base: TimeDelta::milliseconds(50),
        ..fast_policy()
    };
    let runner = world.start_with(policy, "saga.db", gateway.clone(), SagaConfig::default());
    let lodging = world.register_lodging(3, ApprovalMode::Instant).await;
    let rid = world.request_stay(&lodging).await;

    let pending = world.wait_for_status(rid, "payment_pending").await;
    assert!(pending.retry_at.is_some());
    eventually(
        "the circuit to open and defer a payment without calling",
        || async {
            let payment = world.stream(&format!("payment-{rid}")).await;
            payment
                .iter()
                .any(|e| {
                    e.event_type == "PaymentDeferred"
                        && e.data["reason"]
                            .as_str()
                            .is_some_and(|r| r.contains("circuit is open"))
                })
                .then_some(())
        },
    )
    .await;
    assert!(runner.status.snapshot().charges_deferred >= 2);
    world.configure_sandbox(json!({"overloaded": false})).await;

    let confirmed = world.wait_for_status(rid, "confirmed").await;
    assert_eq!(confirmed.paid_amount, Some(100_000));
    let charges = world.charges_for(rid).await;
    assert_eq!(charges.len(), 1, "charged exactly once: {charges:?}");
    assert!(charges[0].attempts > 1, "{charges:?}");
    let deferrals = world.event_types(&format!("payment-{rid}")).await;
    assert!(
        deferrals.iter().filter(|t| *t == "PaymentDeferred").count() >= 2,
        "{deferrals:?}"
    );
    assert_eq!(gateway.circuit_state(), Some(CircuitState::Closed));
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_through_the_client_is_paid_once() {
    let world = World::new().await;
    let gateway = world.http_gateway();
    world.configure_sandbox(json!({"decline_rate": 1.0})).await;
    let paid = gateway
        .payout("po-1", "host-1", 9_000, "KRW")
        .await
        .expect("paid, never declined");
    assert!(paid.payout_ref.starts_with("po_"), "{paid:?}");
    let again = gateway
        .payout("po-1", "host-1", 9_000, "KRW")
        .await
        .expect("the first payout");
    assert_eq!(again, paid);
    let reused = gateway
        .payout("po-1", "host-1", 1, "KRW")
        .await
        .unwrap_err();
    assert!(matches!(reused, GatewayError::Declined(_)), "{reused}");
    let payouts = world.sandbox.payouts();
    assert_eq!(payouts.len(), 1);
    assert_eq!(
        (payouts[0].payout_ref.as_str(), payouts[0].attempts),
        (paid.payout_ref.as_str(), 3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payouts_go_through_the_breaker() {
    let world = World::new().await;
    let gateway = BreakerGateway::new(
        world.http_gateway(),
        BreakerPolicy {
            failure_threshold: 1,
            cool_down: Duration::from_millis(150),
        },
    );
    world.configure_sandbox(json!({"overloaded": true})).await;
    let error = gateway
        .payout("po-1", "host-1", 500, "KRW")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unavailable(_)), "{error}");
    assert_eq!(
        gateway.payout("po-1", "host-1", 500, "KRW").await,
        Err(GatewayError::CircuitOpen)
    );
    world.configure_sandbox(json!({"overloaded": false})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let paid = gateway
        .payout("po-1", "host-1", 500, "KRW")
        .await
        .expect("the probe pays");
    assert_eq!(gateway.circuit_state(), Some(CircuitState::Closed));
    let payouts = world.sandbox.payouts();
    assert_eq!(payouts.len(), 1);
    assert_eq!(payouts[0].payout_ref, paid.payout_ref);
    assert_eq!(
        payouts[0].attempts, 2,
        "the refused call never reached the gateway"
    );
    assert_eq!(gateway.breaker().calls_refused(), 1);
}
