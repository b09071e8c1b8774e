//! The one conformance suite every [`KeyStore`] adapter passes (run from
//! `crates/keys/tests/conformance.rs` against SQLite, and against MongoDB when
//! `STAYLEDGER_MONGODB_URL` is set). Each check takes a source of fresh, empty backing stores.
//!
//! This is test support: a failed check panics with what differed.

mod lifecycle;
mod races;

use std::sync::Arc;

use async_trait::async_trait;

pub use lifecycle::{
    destroy_is_final_and_idempotent, destroying_a_missing_key_leaves_a_tombstone,
    first_use_creates_the_key_once, keys_differ_between_customers,
    sealed_fields_open_only_while_the_key_lives,
};
pub use races::{concurrent_first_use_agrees_on_one_key, destroy_racing_first_use_ends_erased};

use crate::{DataKey, KeyState, KeyStore};

/// Hands out fresh, empty backing stores of the adapter under test.
#[async_trait]
pub trait FreshKeyStores: Send + Sync {
    /// Two store instances, each with its own connection, over one new, empty backing store
    /// (one file, one database): what two processes sharing a store see.
    async fn fresh_pair(&self) -> [Arc<dyn KeyStore>; 2];
}

/// Run every check.
pub async fn run_all(stores: &dyn FreshKeyStores) {
    first_use_creates_the_key_once(stores).await;
    keys_differ_between_customers(stores).await;
    destroy_is_final_and_idempotent(stores).await;
    destroying_a_missing_key_leaves_a_tombstone(stores).await;
    sealed_fields_open_only_while_the_key_lives(stores).await;
    concurrent_first_use_agrees_on_one_key(stores).await;
    destroy_racing_first_use_ends_erased(stores).await;
}

async fn writing(store: &dyn KeyStore, customer_id: &str) -> DataKey {
    store
        .key_for_writing(customer_id)
        .await
        .unwrap_or_else(|e| panic!("key for writing {customer_id}: {e}"))
}

async fn state(store: &dyn KeyStore, customer_id: &str) -> KeyState {
    store
        .key(customer_id)
        .await
        .unwrap_or_else(|e| panic!("key of {customer_id}: {e}"))
}

async fn destroy(store: &dyn KeyStore, customer_id: &str) {
    store
        .destroy(customer_id)
        .await
        .unwrap_or_else(|e| panic!("destroy key of {customer_id}: {e}"));
}
