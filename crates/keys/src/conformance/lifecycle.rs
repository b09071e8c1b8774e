//! One customer's key from first use to erasure, seen through both instances.

use super::{destroy, state, writing, FreshKeyStores};
use crate::{open, seal, KeyState, KeyStoreError};

/// `key()` is `Missing` until first use; first use creates the key and later uses return it.
pub async fn first_use_creates_the_key_once(stores: &dyn FreshKeyStores) {
    let [store, other] = stores.fresh_pair().await;
    assert_eq!(state(&*store, "c-1").await, KeyState::Missing);
    assert_eq!(state(&*other, "c-1").await, KeyState::Missing);
    let key = writing(&*store, "c-1").await;
    assert_eq!(writing(&*store, "c-1").await, key, "same key again");
    assert_eq!(writing(&*other, "c-1").await, key, "same key elsewhere");
    assert_eq!(state(&*store, "c-1").await, KeyState::Active(key.clone()));
    assert_eq!(state(&*other, "c-1").await, KeyState::Active(key));
    assert_eq!(
        state(&*store, "c-2").await,
        KeyState::Missing,
        "others untouched"
    );
}

/// Every customer gets a key of their own.
pub async fn keys_differ_between_customers(stores: &dyn FreshKeyStores) {
    let [store, other] = stores.fresh_pair().await;
    let mut keys = Vec::new();
    for n in 0..12 {
        let id = format!("customer-{n}");
        let on = if n % 2 == 0 { &store } else { &other };
        keys.push(writing(&**on, &id).await);
    }
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b, "two customers share a key");
        }
    }
}

/// Destroying is final: `key()` reads `Destroyed`, writing is `Erased`, and destroying again
/// changes nothing; other customers keep their keys.
pub async fn destroy_is_final_and_idempotent(stores: &dyn FreshKeyStores) {
    let [store, other] = stores.fresh_pair().await;
    writing(&*store, "erased").await;
    let kept = writing(&*store, "kept").await;
    destroy(&*store, "erased").await;
    for on in [&store, &other] {
        assert_eq!(state(&**on, "erased").await, KeyState::Destroyed);
        assert_eq!(
            on.key_for_writing("erased").await,
            Err(KeyStoreError::Erased),
            "no new key after erasure"
        );
    }
    destroy(&*store, "erased").await;
    destroy(&*other, "erased").await;
    assert_eq!(state(&*other, "erased").await, KeyState::Destroyed);
    assert_eq!(
        store.key_for_writing("erased").await,
        Err(KeyStoreError::Erased)
    );
    assert_eq!(state(&*other, "kept").await, KeyState::Active(kept.clone()));
    assert_eq!(writing(&*other, "kept").await, kept);
}

/// Erasing a customer who never had a key records them as erased all the same.
pub async fn destroying_a_missing_key_leaves_a_tombstone(stores: &dyn FreshKeyStores) {
    let [store, other] = stores.fresh_pair().await;
    destroy(&*store, "never-sealed").await;
    assert_eq!(state(&*other, "never-sealed").await, KeyState::Destroyed);
    assert_eq!(
        other.key_for_writing("never-sealed").await,
        Err(KeyStoreError::Erased)
    );
    destroy(&*other, "never-sealed").await;
    assert_eq!(state(&*store, "never-sealed").await, KeyState::Destroyed);
}

/// What one instance sealed the other opens, until the key is destroyed.
pub async fn sealed_fields_open_only_while_the_key_lives(stores: &dyn FreshKeyStores) {
    let [store, other] = stores.fresh_pair().await;
    let sealed = seal(
        &writing(&*store, "c-9").await,
        "c-9",
        "name",
        "Ada Lovelace",
    );
    let KeyState::Active(key) = state(&*other, "c-9").await else {
        panic!("the key of c-9 is not active");
    };
    assert_eq!(
        open(&key, "c-9", "name", &sealed).as_deref(),
        Ok("Ada Lovelace")
    );
    destroy(&*other, "c-9").await;
    assert_eq!(state(&*store, "c-9").await, KeyState::Destroyed);
}
