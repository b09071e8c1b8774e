//! The check that the sandbox ledger's charges (`GET /sandbox/charges`) show each reservation of a
//! test charged once. The ledger keeps one record per idempotency key whatever the saga does, so
//! counting records proves nothing: a record's `attempts` counts the charge requests that came with
//! its key, and its key must be one of the test's reservations (the saga's key is the reservation
//! id). Include with `#[path = "common/charges.rs"] mod charges;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Every charge is for one of `reservations` (by its idempotency key), one record per key, and its
/// charge was asked for exactly once. Returns the charges by key.
pub fn assert_charged_once<'a>(
    charges: &'a [Value],
    reservations: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<&'a str, &'a Value> {
    assert_charged_at_most(charges, reservations, 1)
}

/// [`assert_charged_once`] where a charge may have been asked for again with its key, up to
/// `max_attempts` times in all: after a crash between the gateway's answer and its record, or
/// after answers of an overloaded gateway (the ledger counts those too).
pub fn assert_charged_at_most<'a>(
    charges: &'a [Value],
    reservations: impl IntoIterator<Item = &'a str>,
    max_attempts: u64,
) -> BTreeMap<&'a str, &'a Value> {
    let known: BTreeSet<&str> = reservations.into_iter().collect();
    let mut by_key = BTreeMap::new();
    for charge in charges {
        let key = charge["idempotency_key"].as_str().unwrap_or_default();
        assert!(
            known.contains(key),
            "a charge for no reservation of this test: {charge}"
        );
        assert!(
            by_key.insert(key, charge).is_none(),
            "two records for {key}: {charges:?}"
        );
        let attempts = charge["attempts"].as_u64().unwrap_or(0);
        assert!(
            (1..=max_attempts).contains(&attempts),
            "{key} was asked for {attempts} times (at most {max_attempts}): {charge}"
        );
    }
    by_key
}
