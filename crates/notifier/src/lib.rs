//! Notifications that leave stayledger: signed webhooks. The inbox (`readmodel::inbox`) is the
//! record of every status change; the dispatcher follows it under its own cursor and queues one
//! delivery per subscription that takes the change; one sender per subscription sends them in
//! order, signed, retrying with backoff and jitter, and parks what the policy gives up on.
//!
//! - [`model`]: subscriptions, deliveries, who follows what;
//! - [`store`]: the port ([`WebhookStore`]), [`sqlite`] and [`mongo`] adapters, [`conformance`];
//! - [`signature`]: `Stayledger-Signature`; [`guard`]: which targets may be called;
//! - [`policy`]: retries and parking; [`dispatch`]: inbox -> deliveries; [`sender`]: deliveries ->
//!   receivers; [`routes`]: `/webhooks`.

pub mod conformance;
pub mod dispatch;
mod group_commit;
pub mod guard;
pub mod model;
pub mod mongo;
pub mod parts;
pub mod policy;
pub mod routes;
pub mod sender;
pub mod signature;
pub mod sqlite;
mod sqlite_schema;
pub mod store;
pub mod wakeups;

pub use model::{Delivery, DeliveryState, Owner, OwnerRole, Redrive, Subscription};
pub use mongo::MongoWebhooks;
pub use parts::WebhookParts;
pub use sqlite::SqliteWebhooks;
pub use store::WebhookStore;
pub use wakeups::Wakeups;
