//! The MongoDB key store (`mongodb` 3.x), for distributed mode: collection `customer_keys`, one
//! document per customer, `{_id: customer_id, key: Binary, created_at}`; erasure removes `key`
//! and sets `destroyed_at`, and the document stays as a tombstone, so no key is made again.
//!
//! A key is created by an upsert with `$setOnInsert` and then read back, so racing writers (in
//! any process) all end up with the first key stored. Two upserts racing on a new `_id` may see a
//! duplicate-key error: another writer created the document, so it too is read back.
//!
//! Writes use majority write concern and reads majority read concern: a key is only handed out
//! once a failover cannot roll it back, so nothing is sealed under a key that could be lost, and
//! a destroy is acknowledged only once it survives a failover too.
//!
//! Shredding on MongoDB is as good as the deployment: `$unset` removes the key from the document,
//! but the storage engine rewrites its files lazily, a replica set's oplog keeps the insert that
//! carried the key until it rolls over, and backups keep what they copied. Bound the oplog window
//! and backup retention by the erasure deadline, and keep the data files on encrypted storage.

use async_trait::async_trait;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, DateTime, Document};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::{CollectionOptions, ReadConcern, WriteConcern};
use mongodb::{Collection, Database};
use zeroize::Zeroize;

use crate::cipher::DataKey;
use crate::store::{for_writing, state_of};
use crate::{KeyState, KeyStore, KeyStoreError};

/// The collection holding the keys.
const COLLECTION: &str = "customer_keys";
const DUPLICATE_KEY: i32 = 11000;
/// Upserts tried before giving up on a key that other writers keep racing for.
const ATTEMPTS: usize = 3;

/// Data keys in a MongoDB collection. Clones share the client's connection pool.
#[derive(Debug, Clone)]
pub struct MongoKeyStore {
    keys: Collection<Document>,
}

impl MongoKeyStore {
    /// The key store in `db` (collection [`COLLECTION`]; `_id` is its only index).
    #[must_use]
    pub fn new(db: Database) -> Self {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(WriteConcern::majority())
            .build();
        Self {
            keys: db.collection_with_options(COLLECTION, options),
        }
    }

    async fn read(&self, customer_id: &str) -> Result<KeyState, KeyStoreError> {
        let found = self
            .keys
            .find_one(doc! { "_id": customer_id })
            .await
            .map_err(unavailable)?;
        let Some(mut document) = found else {
            return Ok(KeyState::Missing);
        };
        let destroyed = document.contains_key("destroyed_at");
        match document.remove("key") {
            None => state_of(customer_id, None, destroyed),
            Some(Bson::Binary(mut binary)) if binary.subtype == BinarySubtype::Generic => {
                let state = state_of(customer_id, Some(&binary.bytes), destroyed);
                binary.bytes.zeroize();
                state
            }
            Some(other) => Err(KeyStoreError::Corrupt(format!(
                "key of customer {customer_id} is stored as {:?}, not generic binary",
                other.element_type()
            ))),
        }
    }

    /// Store a new key unless the customer has a document already (a key or a tombstone).
    async fn insert_if_absent(&self, customer_id: &str) -> Result<(), KeyStoreError> {
        let key = DataKey::generate();
        let binary = Binary {
            subtype: BinarySubtype::Generic,
            bytes: key.as_bytes().to_vec(),
        };
        let update = doc! {
            "$setOnInsert": { "key": binary, "created_at": DateTime::now() },
        };
        let inserted = self
            .keys
            .update_one(doc! { "_id": customer_id }, update)
            .upsert(true)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate_key(&error) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Remove the key, or leave a tombstone for a customer without one; keeps the first
    /// destruction time. `false` if a racing upsert created the document first.
    async fn try_destroy(&self, customer_id: &str) -> Result<bool, KeyStoreError> {
        let now = DateTime::now();
        let update = doc! {
            "$unset": { "key": "" },
            "$min": { "destroyed_at": now },
            "$setOnInsert": { "created_at": now },
        };
        let destroyed = self
            .keys
            .update_one(doc! { "_id": customer_id }, update)
            .upsert(true)
            .await;
        match destroyed {
            Ok(_) => Ok(true),
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(unavailable(error)),
        }
    }
}

#[async_trait]
impl KeyStore for MongoKeyStore {
    async fn key_for_writing(&self, customer_id: &str) -> Result<DataKey, KeyStoreError> {
        for _ in 0..ATTEMPTS {
            match self.read(customer_id).await? {
                KeyState::Missing => self.insert_if_absent(customer_id).await?,
                known => return for_writing(known),
            }
        }
        for_writing(self.read(customer_id).await?)
    }

    async fn key(&self, customer_id: &str) -> Result<KeyState, KeyStoreError> {
        self.read(customer_id).await
    }

    async fn destroy(&self, customer_id: &str) -> Result<(), KeyStoreError> {
        for _ in 0..ATTEMPTS {
            if self.try_destroy(customer_id).await? {
                return Ok(());
            }
        }
        Err(KeyStoreError::Unavailable(format!(
            "destroying the key of customer {customer_id} kept racing its creation"
        )))
    }
}

fn is_duplicate_key(error: &Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code == DUPLICATE_KEY,
        ErrorKind::Command(failure) => failure.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// Everything the driver reports is the store being unreachable or refusing: retryable.
fn unavailable(error: Error) -> KeyStoreError {
    KeyStoreError::Unavailable(format!("MongoDB: {error}"))
}
