//! Leases in a MongoDB collection (`leases` in the views' database), for consumers whose instances run
//! on several hosts. A lease is a document `{_id: name, owner, expires_at, epoch}`.
//!
//! Taking or renewing is one `updateOne` with upsert whose filter matches only the owner's document or
//! an expired one; against a document another owner holds live, the upsert tries to insert a second
//! document with the same `_id` and fails with a duplicate-key error, which means "held". Time is the
//! server's (`$$NOW`), so the hosts' clocks do not matter; a holder still fences itself by its own
//! monotonic clock (`scale_out/group.rs`), which stops it before the server's expiry.

use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::{Client, Collection};

use super::{Lease, LeaseError, LeaseStore};

/// The collection, in the views' database.
pub const COLLECTION: &str = "leases";
/// MongoDB's duplicate-key error.
const DUPLICATE_KEY: i32 = 11000;

/// Leases in MongoDB (cheap to clone).
#[derive(Clone)]
pub struct MongoLeases {
    leases: Collection<Document>,
}

impl MongoLeases {
    /// Connect to `url` and keep leases in database `db_name`.
    pub async fn connect(url: &str, db_name: &str) -> Result<Self, LeaseError> {
        let client = Client::with_uri_str(url)
            .await
            .map_err(|e| mongo_error("MongoDB lease store: connecting", &e))?;
        let db = client.database(db_name);
        db.run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| mongo_error("MongoDB lease store: ping", &e))?;
        Ok(Self {
            leases: db.collection(COLLECTION),
        })
    }
}

/// `what` failed on MongoDB with `error`: a document that does not decode is corrupt, anything
/// else (connection, timeout, server selection, write concern) unavailable.
fn mongo_error(what: &str, error: &mongodb::error::Error) -> LeaseError {
    let message = format!("{what}: {error}");
    match error.kind.as_ref() {
        ErrorKind::BsonDeserialization(_) => LeaseError::Corrupt(message),
        _ => LeaseError::Unavailable(message),
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    matches!(
        error.kind.as_ref(),
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == DUPLICATE_KEY
    )
}

fn number(value: Option<&Bson>) -> i64 {
    match value {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        // Integral by construction (sums of integers).
        #[allow(clippy::cast_possible_truncation)]
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}

#[async_trait]
impl LeaseStore for MongoLeases {
    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, LeaseError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let filter = doc! {
            "_id": name,
            "$expr": { "$or": [
                { "$eq": ["$owner", owner] },
                { "$lt": ["$expires_at", "$$NOW"] },
            ] },
        };
        let update = vec![doc! { "$set": {
            "epoch": { "$cond": [
                { "$eq": ["$owner", owner] },
                "$epoch",
                { "$add": [{ "$ifNull": ["$epoch", 0_i64] }, 1_i64] },
            ] },
            "owner": owner,
            "expires_at": { "$add": ["$$NOW", ttl_ms] },
        } }];
        match self.leases.update_one(filter, update).upsert(true).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(mongo_error(&format!("acquiring lease {name}"), &e)),
        }
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool, LeaseError> {
        let deleted = self
            .leases
            .delete_one(doc! { "_id": name, "owner": owner })
            .await
            .map_err(|e| mongo_error(&format!("releasing lease {name}"), &e))?;
        Ok(deleted.deleted_count == 1)
    }

    async fn get(&self, name: &str) -> Result<Option<Lease>, LeaseError> {
        let found = self
            .leases
            .find_one(doc! { "_id": name })
            .await
            .map_err(|e| mongo_error(&format!("reading lease {name}"), &e))?;
        Ok(found.map(|d| Lease {
            name: name.to_owned(),
            owner: d.get_str("owner").unwrap_or_default().to_owned(),
            expires_at: d
                .get_datetime("expires_at")
                .map_or(0, |t| t.timestamp_millis()),
            epoch: number(d.get("epoch")),
        }))
    }

    async fn held_by_other(&self, name: &str, owner: &str) -> Result<bool, LeaseError> {
        let live = self
            .leases
            .count_documents(doc! {
                "_id": name,
                "owner": { "$ne": owner },
                "$expr": { "$gte": ["$expires_at", "$$NOW"] },
            })
            .await
            .map_err(|e| mongo_error(&format!("reading lease {name}"), &e))?;
        Ok(live > 0)
    }
}

#[cfg(test)]
mod tests {
    use readmodel::conformance::server::{Server, NOW_IN_QUERY_EXPR};

    use super::*;
    use crate::lease::conformance;

    /// The lease conformance cases on MongoDB, when `STAYLEDGER_MONGODB_URL` points at a server.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mongodb_lease_conformance() {
        let Some(url) = eventlog::conformance::server_url(
            "STAYLEDGER_MONGODB_URL",
            "MongoDB lease store conformance",
        ) else {
            return;
        };
        let store = MongoLeases::connect(&url, "stayledger_lease_tests")
            .await
            .expect("connect");
        let server = Server::at(&url).await;
        let prefix = format!("{}/", uuid::Uuid::new_v4().simple());
        conformance::one_live_owner_at_a_time(&store, &prefix).await;
        conformance::only_the_owner_releases(&store, &prefix).await;
        conformance::racing_takers_one_wins(&store, &prefix).await;
        if !server.skips_on_secantus("lease takeover after expiry", NOW_IN_QUERY_EXPR) {
            conformance::takeover_after_expiry(&store, &prefix).await;
        }
    }
}
