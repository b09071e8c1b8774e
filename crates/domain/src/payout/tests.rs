//! Given/when/then tests of the Payout aggregate: the fee split to the minor unit, one schedule per
//! stay, deferrals that an open circuit does not count, sent once, failed, retried by the platform.

use super::*;
use crate::harness::{assert_round_trip, at, given};
use crate::DomainEvent;

type P = PayoutAggregate;
use PayoutCommand as C;
use PayoutEvent as E;

fn terms(gross: i64, fee_bps: u32) -> PayoutTerms {
    PayoutTerms {
        reservation_id: uuid::Uuid::from_u128(9),
        lodging_id: "rust-101".to_string(),
        host_id: "tutor-3".to_string(),
        gross,
        fee_bps,
        currency: "KRW".to_string(),
    }
}

fn scheduled(gross: i64, fee_bps: u32, fee: i64, net: i64) -> PayoutEvent {
    E::PayoutScheduled {
        reservation_id: uuid::Uuid::from_u128(9),
        lodging_id: "rust-101".to_string(),
        host_id: "tutor-3".to_string(),
        gross,
        fee_bps,
        fee,
        net,
        currency: "KRW".to_string(),
    }
}

fn deferred(attempt: u32) -> PayoutEvent {
    E::PayoutDeferred {
        reason: "gateway overloaded".to_string(),
        attempt,
        retry_at: at(2030, 6, 20, 12),
    }
}

fn defer() -> PayoutCommand {
    C::Defer {
        reason: "gateway overloaded".to_string(),
        retry_at: at(2030, 6, 20, 12),
    }
}

#[test]
fn the_fee_is_floored_to_the_minor_unit_and_the_rest_is_the_hosts() {
    assert_eq!(split(30_000, 1_500), Some((4_500, 25_500)));
    assert_eq!(split(999, 1_000), Some((99, 900)), "99.9 -> 99");
    assert_eq!(split(1, 9_999), Some((0, 1)));
    assert_eq!(split(0, 1_000), Some((0, 0)));
    assert_eq!(split(12_345, 0), Some((0, 12_345)));
    assert_eq!(split(12_345, BPS), Some((12_345, 0)));
    assert_eq!(split(i64::MAX, BPS), Some((i64::MAX, 0)), "no overflow");
    assert_eq!(split(-1, 1_000), None);
    assert_eq!(split(100, BPS + 1), None);
    for (gross, bps) in [(7, 3_333), (1_000_001, 1_234), (240_000, 800)] {
        let (fee, net) = split(gross, bps).expect("valid");
        assert_eq!(fee + net, gross, "conserved");
    }
}

#[test]
fn a_completed_stay_is_scheduled_once_with_its_fee_and_net() {
    let state = given::<P>([])
        .when(C::Schedule(terms(30_000, 1_500)))
        .then([scheduled(30_000, 1_500, 4_500, 25_500)]);
    assert_eq!(state.status, PayoutStatus::Scheduled);
    given::<P>([scheduled(30_000, 1_500, 4_500, 25_500)])
        .when(C::Schedule(terms(30_000, 1_500)))
        .then_nothing();
    given::<P>([scheduled(30_000, 1_500, 4_500, 25_500)])
        .when(C::Schedule(terms(40_000, 1_500)))
        .then_err(PayoutError::AlreadyScheduled);
    given::<P>([])
        .when(C::Schedule(terms(-5, 1_500)))
        .then_err(PayoutError::InvalidTerms(
            "gross -5 at 1500 basis points".to_string(),
        ));
}

#[test]
fn nothing_happens_to_a_payout_never_scheduled() {
    given::<P>([])
        .when(C::RecordSent {
            gateway_ref: "po_1".to_string(),
        })
        .then_err(PayoutError::NotScheduled);
}

#[test]
fn the_gateways_errors_count_as_attempts_an_open_circuit_does_not() {
    let state = given::<P>([scheduled(30_000, 1_500, 4_500, 25_500)])
        .when(defer())
        .then([deferred(1)]);
    assert_eq!(state.attempts, 1);
    given::<P>([scheduled(30_000, 1_500, 4_500, 25_500), deferred(1)])
        .when(C::DeferUncounted {
            reason: "gateway overloaded".to_string(),
            retry_at: at(2030, 6, 20, 12),
        })
        .then([deferred(1)]);
}

#[test]
fn a_payout_is_sent_once() {
    let sent = E::PayoutSent {
        gateway_ref: "po_1".to_string(),
    };
    let state = given::<P>([scheduled(30_000, 1_500, 4_500, 25_500), deferred(1)])
        .when(C::RecordSent {
            gateway_ref: "po_1".to_string(),
        })
        .then([sent.clone()]);
    assert_eq!(
        (state.status, state.gateway_ref.as_deref()),
        (PayoutStatus::Sent, Some("po_1"))
    );
    let history = [scheduled(30_000, 1_500, 4_500, 25_500), sent];
    given::<P>(history.clone())
        .when(C::RecordSent {
            gateway_ref: "po_2".to_string(),
        })
        .then_nothing();
    given::<P>(history.clone()).when(defer()).then_nothing();
    given::<P>(history)
        .when(C::Retry {
            requested_by: "admin:root".to_string(),
        })
        .then_err(PayoutError::NotRetryable(PayoutStatus::Sent));
}

#[test]
fn a_failed_payout_is_retried_by_the_platform_and_can_then_be_sent() {
    let failed = E::PayoutFailed {
        reason: "account closed".to_string(),
    };
    let retried = E::PayoutRetryRequested {
        requested_by: "admin:root".to_string(),
    };
    let state = given::<P>([scheduled(30_000, 1_500, 4_500, 25_500), failed.clone()])
        .when(C::Retry {
            requested_by: "admin:root".to_string(),
        })
        .then([retried.clone()]);
    assert_eq!(state.status, PayoutStatus::Scheduled);
    given::<P>([scheduled(30_000, 1_500, 4_500, 25_500), failed, retried])
        .when(C::RecordSent {
            gateway_ref: "po_9".to_string(),
        })
        .then([E::PayoutSent {
            gateway_ref: "po_9".to_string(),
        }]);
    given::<P>([scheduled(30_000, 1_500, 4_500, 25_500)])
        .when(C::Retry {
            requested_by: "admin:root".to_string(),
        })
        .then_err(PayoutError::NotRetryable(PayoutStatus::Scheduled));
}

#[test]
fn events_round_trip_and_the_stream_is_named_after_the_reservation() {
    for event in [
        scheduled(30_000, 1_500, 4_500, 25_500),
        deferred(2),
        E::PayoutSent {
            gateway_ref: "po_1".to_string(),
        },
        E::PayoutFailed {
            reason: "closed".to_string(),
        },
        E::PayoutRetryRequested {
            requested_by: "admin:root".to_string(),
        },
    ] {
        assert_round_trip(&event);
    }
    let id = uuid::Uuid::from_u128(9);
    assert_eq!(P::stream_name(&id.to_string()), format!("payout-{id}"));
    let decoded = crate::events::decode(
        &format!("payout-{id}"),
        "PayoutSent",
        E::PayoutSent {
            gateway_ref: "po_1".to_string(),
        }
        .schema_version(),
        crate::events::Payload::Parsed(&serde_json::json!({"gateway_ref": "po_1"})),
        crate::events::SagaPayloads::Skip,
    );
    assert_eq!(
        decoded,
        Ok(crate::events::Decoded::Payout {
            id,
            event: E::PayoutSent {
                gateway_ref: "po_1".to_string(),
            },
        })
    );
}
