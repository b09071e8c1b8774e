//! Consumer groups (competing consumers): the store spreads the global log over the live members of a
//! named group, every event of one correlation id to the same member, keeps what each member has
//! acknowledged, and gives what a member leaves unacknowledged (it disconnected, or it died) to the
//! members that are still there.
//!
//! On EventStoreDB this is a persistent subscription to `$all` with the `PinnedByCorrelation`
//! consumer strategy (the adapter writes our correlation id as `$correlationId` in every event's
//! metadata, which is what that strategy hashes). Delivery is at least once: a member must handle a
//! redelivered event (`retries > 0`, or after another member left) idempotently, and acknowledge an
//! event only once what it did with it is durable.

mod local;

pub use local::LocalGroups;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{LogError, Position, RawRecordedEvent};

/// One event handed to a member.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDelivery {
    pub event: RawRecordedEvent,
    /// How many times the store had handed this event out before (to this or another member).
    pub retries: u32,
}

/// What a member says about a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Handled: never deliver it again.
    Ack(Uuid),
    /// Cannot be handled: keep it aside (the store's parked messages), never deliver it again.
    Park { event_id: Uuid, reason: String },
}

/// Settles a member's deliveries (cheap to clone). Sending never blocks; settlements of a member that
/// has left are dropped (the store hands its unsettled events to another member).
#[derive(Debug, Clone)]
pub struct GroupAcks {
    tx: mpsc::UnboundedSender<Settlement>,
}

impl GroupAcks {
    /// Acks that go to `tx`, for an adapter that settles them in its own task.
    #[must_use]
    pub fn new(tx: mpsc::UnboundedSender<Settlement>) -> Self {
        Self { tx }
    }

    pub fn ack(&self, event_id: Uuid) {
        let _ = self.tx.send(Settlement::Ack(event_id));
    }

    pub fn park(&self, event_id: Uuid, reason: impl Into<String>) {
        let _ = self.tx.send(Settlement::Park {
            event_id,
            reason: reason.into(),
        });
    }
}

/// A member's share of the group's events. An `Err` item means the membership ended (the connection
/// dropped): the stream ends after it, and the member joins again. Dropping the member leaves the
/// group.
pub struct GroupMember {
    pub deliveries: BoxStream<'static, Result<GroupDelivery, LogError>>,
    pub acks: GroupAcks,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember").finish_non_exhaustive()
    }
}

/// Stores that run consumer groups server-side.
#[async_trait]
pub trait ConsumerGroups: Send + Sync + 'static {
    /// Join `group` as `member`. A group that does not exist yet is created to hand out the events
    /// after position `after` (0: from the beginning of the log); an existing one goes on from what
    /// its members settled.
    async fn join(
        &self,
        group: &str,
        member: &str,
        after: Position,
    ) -> Result<GroupMember, LogError>;
}
