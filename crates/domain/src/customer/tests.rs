//! Given/when/then tests of the Customer aggregate: only sealed fields are recorded, a new
//! profile replaces the last, erasure is final and idempotent.

use super::*;
use crate::harness::{assert_round_trip, given};

type Cu = CustomerAggregate;
use CustomerCommand as C;
use CustomerEvent as E;

fn sealed(n: u8) -> SealedProfile {
    SealedProfile {
        name: format!("v1:name-{n}"),
        email: format!("v1:email-{n}"),
        phone: format!("v1:phone-{n}"),
    }
}

fn erased() -> CustomerEvent {
    E::CustomerErased {
        erased_by: "customer-1".to_string(),
        reason: "asked to be forgotten".to_string(),
    }
}

fn erase() -> CustomerCommand {
    C::Erase {
        erased_by: "customer-1".to_string(),
        reason: "asked to be forgotten".to_string(),
    }
}

#[test]
fn a_sealed_profile_is_recorded_and_a_new_one_replaces_it() {
    let state = given::<Cu>([])
        .when(C::RecordProfile(sealed(1)))
        .then([E::CustomerProfileRecorded { profile: sealed(1) }]);
    assert_eq!(state.profile, Some(sealed(1)));
    let state = given::<Cu>([E::CustomerProfileRecorded { profile: sealed(1) }])
        .when(C::RecordProfile(sealed(2)))
        .then([E::CustomerProfileRecorded { profile: sealed(2) }]);
    assert_eq!(state.profile, Some(sealed(2)));
}

#[test]
fn a_field_in_plaintext_is_refused() {
    let mut plain = sealed(1);
    plain.phone = "010-1234-5678".to_string();
    given::<Cu>([])
        .when(C::RecordProfile(plain))
        .then_err(CustomerError::NotSealed("phone"));
}

#[test]
fn erasure_is_final_and_idempotent() {
    let state = given::<Cu>([E::CustomerProfileRecorded { profile: sealed(1) }])
        .when(erase())
        .then([erased()]);
    assert!(state.erased);
    assert_eq!(
        state.profile, None,
        "nothing of the profile is kept in state"
    );
    given::<Cu>([erased()]).when(erase()).then_nothing();
    given::<Cu>([erased()])
        .when(C::RecordProfile(sealed(2)))
        .then_err(CustomerError::Erased);
}

#[test]
fn a_customer_without_a_profile_may_be_erased() {
    given::<Cu>([]).when(erase()).then([erased()]);
}

#[test]
fn events_round_trip() {
    assert_round_trip(&E::CustomerProfileRecorded { profile: sealed(3) });
    assert_round_trip(&erased());
}
