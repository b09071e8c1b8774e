//! Per-customer data keys for crypto-shredding.
//!
//! A customer's personal fields (name, email, phone) are kept in events only sealed under that
//! customer's own data key ([`seal`], [`open`]: AES-256-GCM, bound to customer and field). The
//! keys live here, in a key store outside the event log ([`KeyStore`]: [`SqliteKeyStore`] in
//! the data dir, [`MongoKeyStore`] in distributed mode). Erasure destroys the key, so the
//! ciphertext left in the append-only log can never be read again, and no new key is ever made
//! for that customer.
//!
//! This crate owns the sealed-text format, the data keys and their stores, and the
//! [`conformance`] suite every key store passes. It must not hold or log personal data itself
//! (it seals and opens what callers hand it and keeps nothing), must not know the event log or
//! the views, and must never print a key: [`DataKey`] is wiped on drop and debug-prints redacted.

pub mod cipher;
pub mod conformance;
mod mongo;
mod sqlite;
mod store;

pub use cipher::{open, seal, CipherError, DataKey};
pub use mongo::MongoKeyStore;
pub use sqlite::SqliteKeyStore;
pub use store::{KeyState, KeyStore, KeyStoreError};
