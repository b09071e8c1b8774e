//! The key store port: one data key per customer, kept outside the event log, created on first
//! use and destroyed for good on erasure.

use async_trait::async_trait;

use crate::cipher::DataKey;

/// Where a customer's key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The key, to seal and open the customer's fields.
    Active(DataKey),
    /// The customer was erased: their sealed fields can never be opened again.
    Destroyed,
    /// No key was ever made: the customer has sealed nothing yet.
    Missing,
}

/// Why the key store did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    /// The customer was erased; no key is made for them again.
    #[error("the customer was erased: their key is destroyed")]
    Erased,
    /// The store is down or refused for now: retry later.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// The store holds something that is not a valid key record.
    #[error("key store corrupt: {0}")]
    Corrupt(String),
}

/// The per-customer data keys. Every adapter passes [`crate::conformance`].
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The customer's key, creating it on first use; `Err(Erased)` once destroyed (erasure is
    /// final: no new key is ever made for that customer). Callers racing on a new customer,
    /// through any number of store instances over one backing store, all get the same key.
    async fn key_for_writing(&self, customer_id: &str) -> Result<DataKey, KeyStoreError>;

    /// The key if it exists: `Active(key)` | `Destroyed` | `Missing`. Never creates one.
    async fn key(&self, customer_id: &str) -> Result<KeyState, KeyStoreError>;

    /// Destroy the key (idempotent; destroying a missing key records the customer as erased
    /// too). Once this returns `Ok`, the key bytes are gone from the store.
    async fn destroy(&self, customer_id: &str) -> Result<(), KeyStoreError>;
}

/// The state a stored record stands for: `key` present and not destroyed is `Active`, no key
/// but a destruction time is `Destroyed`; anything else is corrupt.
pub(crate) fn state_of(
    customer_id: &str,
    key: Option<&[u8]>,
    destroyed: bool,
) -> Result<KeyState, KeyStoreError> {
    match (key, destroyed) {
        (Some(bytes), false) => DataKey::from_slice(bytes)
            .map(KeyState::Active)
            .map_err(|e| KeyStoreError::Corrupt(format!("key of customer {customer_id}: {e}"))),
        (None, true) => Ok(KeyState::Destroyed),
        (Some(_), true) => Err(KeyStoreError::Corrupt(format!(
            "customer {customer_id} is destroyed but still has a key"
        ))),
        (None, false) => Err(KeyStoreError::Corrupt(format!(
            "customer {customer_id} has neither a key nor a destruction time"
        ))),
    }
}

/// What writing needs from the state read back after an insert-if-absent: the key, or `Erased`.
pub(crate) fn for_writing(state: KeyState) -> Result<DataKey, KeyStoreError> {
    match state {
        KeyState::Active(key) => Ok(key),
        KeyState::Destroyed => Err(KeyStoreError::Erased),
        KeyState::Missing => Err(KeyStoreError::Unavailable(
            "the new key is not readable yet".into(),
        )),
    }
}
