//! Sharding the projector: `count` projectors read the whole log and each applies only the events
//! of the lodgings it owns (`fnv1a64(lodging_id) % count == index`), so every view document (a
//! lodging's catalog entry and calendar, its ManagementList requests, its reservations'
//! ReservationList documents; a customer's contact details, split by the customer id's hash) is
//! written by exactly one shard. Events it does not own are masked
//! as [`AnyEvent::Other`] at the same position: they only move this shard's checkpoint.
//!
//! A `reservation-{id}`, `payment-{id}` or `payout-{id}` stream does not name its lodging (but for
//! its first event, `PayoutScheduled`): every shard learns it from the reservation's
//! `ReservationRequested` (the first event of its stream, which every shard sees) and keeps it in a
//! bounded cache; after a restart or an eviction it is read back from the
//! shared view store (the reservation's or its request's document). When neither document exists,
//! the event is not this shard's: had it been, this shard would have written the document when it
//! applied the `ReservationRequested`, which precedes it in the log.
//!
//! The views' own checkpoint ([`crate::PROJECTOR_ID`], which `min_position` waits and `/readyz`
//! read) is the lowest checkpoint of the shards: [`merge_checkpoints`] moves it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::payout::PayoutEvent;
use domain::reservation::ReservationEvent;
use domain::StreamId;
use eventlog::{Partition, PartitionError, RawRecordedEvent, Recorded};
use readmodel::{AnyEvent, ProjectionTarget, ViewError, ViewEvent, ViewStore, Views};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::sink::{decode_all_raw, Halt, Item, RetryPolicy};
use crate::{ProjectorStatus, PROJECTOR_ID};

/// Reservations whose shard is remembered per cache generation (two generations are kept: at
/// most `2 * OWNERSHIP_CACHE` entries of ~40 bytes, about 20 MiB). Older ones are read back from
/// the view store on their next event.
pub const OWNERSHIP_CACHE: usize = 1 << 18;

/// The stream name of the marker event that moves the merged checkpoint.
const MERGE_STREAM: &str = "$projector-shards";

/// One slice of the views: the lodgings with `fnv1a64(lodging_id) % count == index`.
pub type ProjectorShard = Partition;

/// A bad shard index or count.
pub type ShardError = PartitionError;

/// What a [`ProjectorShard`] means for the views: the lodgings it writes and its checkpoint.
pub trait ViewShard {
    /// The checkpoint name of this shard: `views` for the only one, else `views-{i}-of-{n}`.
    fn checkpoint_id(self) -> String;
    /// Whether this shard writes the documents of `lodging_id`.
    fn owns_lodging(self, lodging_id: &str) -> bool;
    /// Whether this shard writes the contact details of `customer_id` (split by the same hash).
    fn owns_customer(self, customer_id: &str) -> bool;
}

impl ViewShard for Partition {
    fn checkpoint_id(self) -> String {
        shard_checkpoint(PROJECTOR_ID, self)
    }

    fn owns_lodging(self, lodging_id: &str) -> bool {
        self.holds(lodging_hash(lodging_id))
    }

    fn owns_customer(self, customer_id: &str) -> bool {
        self.holds(lodging_hash(customer_id))
    }
}

/// The stable hash shards split lodgings by: 64-bit FNV-1a of the id's UTF-8 bytes (the same in
/// every process and release, unlike std's randomized hasher).
#[must_use]
pub fn lodging_hash(lodging_id: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    lodging_id.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// The checkpoint name of `shard` of the consumer whose whole checkpoint is `base`: `base` for
/// the only shard, else `{base}-{i}-of-{n}` (the views' shards: `views-0-of-4`, the notifier's:
/// `notifier-0-of-4`).
#[must_use]
pub fn shard_checkpoint(base: &str, shard: ProjectorShard) -> String {
    if shard == ProjectorShard::ALL {
        base.to_string()
    } else {
        format!("{base}-{}-of-{}", shard.index(), shard.count())
    }
}

/// Move the views checkpoint ([`PROJECTOR_ID`]) up to the lowest checkpoint of the `count`
/// shards: every event up to it is applied by its owner. Never moves it back. Returns it.
pub async fn merge_checkpoints(store: &Arc<dyn ViewStore>, count: u32) -> Result<u64, ViewError> {
    merge_checkpoints_of(&Views(Arc::clone(store)), PROJECTOR_ID, count).await
}

/// [`merge_checkpoints`] for any target: move `base` up to the lowest of its `count` shards'.
pub async fn merge_checkpoints_of(
    store: &dyn ProjectionTarget,
    base: &str,
    count: u32,
) -> Result<u64, ViewError> {
    let mut lowest = u64::MAX;
    for index in 0..count.max(1) {
        let shard = ProjectorShard::new(index, count).map_err(|e| ViewError::Unprocessable {
            position: 0,
            reason: e.to_string(),
        })?;
        lowest = lowest.min(store.checkpoint(&shard_checkpoint(base, shard)).await?);
    }
    let current = store.checkpoint(base).await?;
    if lowest <= current {
        return Ok(current);
    }
    let marker = ViewEvent {
        position: lowest,
        stream: MERGE_STREAM.to_string(),
        version: 0,
        event_id: Uuid::nil(),
        recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        event: AnyEvent::Other,
    };
    store.apply(base, &[marker]).await?;
    Ok(lowest)
}

/// Where a shard starts: its own checkpoint, or, on its first start, its target's whole
/// checkpoint `base` (set by an unsharded consumer or merged from another shard count):
/// everything up to it is applied, and documents skip the events they already reflect.
pub(crate) async fn start_position(
    store: &dyn ProjectionTarget,
    id: &str,
    base: &str,
    shard: ProjectorShard,
) -> Result<u64, ViewError> {
    let own = store.checkpoint(id).await?;
    if own > 0 || shard == ProjectorShard::ALL || id == base {
        return Ok(own);
    }
    store.checkpoint(base).await
}

/// Who writes the documents of an event's reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Us,
    Other,
    /// No shard has a document of it (yet).
    Unknown,
}

/// Decides, event by event, what a shard applies.
pub(crate) struct Ownership {
    shard: ProjectorShard,
    store: Arc<dyn ProjectionTarget>,
    retry: RetryPolicy,
    status: ProjectorStatus,
    /// Reservation -> owned by this shard; `previous` is the older generation.
    current: HashMap<Uuid, bool>,
    previous: HashMap<Uuid, bool>,
}

impl Ownership {
    pub(crate) fn new(
        shard: ProjectorShard,
        store: Arc<dyn ProjectionTarget>,
        retry: RetryPolicy,
        status: ProjectorStatus,
    ) -> Self {
        Self {
            shard,
            store,
            retry,
            status,
            current: HashMap::new(),
            previous: HashMap::new(),
        }
    }

    /// The decoded items of a batch, the events of other shards masked (see [`Self::mask`]).
    pub(crate) async fn mask_decoded(
        &mut self,
        decoded: Decoded,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Item>, Halt> {
        match decoded.headers {
            None => Ok(decoded.items),
            Some(headers) => self.mask(&headers, decoded.items, shutdown).await,
        }
    }

    /// `items` (decoded from the events of `batch`, in the same order) with the events of other
    /// shards masked: each replaced by a no-op at its position. A view store that is down while a
    /// lodging is looked up is waited for.
    async fn mask(
        &mut self,
        batch: &[Recorded<()>],
        items: Vec<Item>,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Item>, Halt> {
        if self.current.len() >= OWNERSHIP_CACHE {
            self.previous = std::mem::take(&mut self.current);
        }
        let mut masked = Vec::with_capacity(items.len());
        for (recorded, item) in batch.iter().zip(items) {
            if self.owns_patiently(recorded, &item, shutdown).await? {
                masked.push(item);
            } else {
                masked.push(Item::View {
                    view: skipped(recorded),
                    event_type: recorded.event_type.clone(),
                });
            }
        }
        Ok(masked)
    }

    async fn owns_patiently(
        &mut self,
        recorded: &Recorded<()>,
        item: &Item,
        shutdown: &CancellationToken,
    ) -> Result<bool, Halt> {
        let mut attempt = 0_u32;
        loop {
            match self.owns(recorded, item).await {
                Ok(owned) => return Ok(owned),
                Err(error) if error.is_transient() => {
                    self.status.record_error(&error);
                    tracing::warn!(%error, attempt, "reading a reservation's lodging failed; retrying");
                }
                Err(error) => return Err(Halt::Failed(error)),
            }
            attempt = attempt.saturating_add(1);
            let pause = backoff(self.retry, attempt);
            tokio::select! {
                () = shutdown.cancelled() => return Err(Halt::Shutdown),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn owns(&mut self, recorded: &Recorded<()>, item: &Item) -> Result<bool, ViewError> {
        let view = match item {
            Item::View { view, .. } => view,
            // A poison event is parked by the shard of its stream, or by shard 0 if that is unknown.
            Item::Poison(_) => {
                return Ok(match self.owner_of_stream(&recorded.stream).await? {
                    Owner::Us => true,
                    Owner::Other => false,
                    Owner::Unknown => self.shard.index() == 0,
                })
            }
        };
        Ok(match &view.event {
            AnyEvent::Lodging { lodging_id, .. } => self.shard.owns_lodging(lodging_id),
            AnyEvent::Reservation {
                reservation_id,
                event: ReservationEvent::ReservationRequested(details),
            } => {
                let owned = self.shard.owns_lodging(&details.lodging_id);
                self.remember(*reservation_id, owned);
                owned
            }
            AnyEvent::Payout {
                reservation_id,
                event: PayoutEvent::PayoutScheduled { lodging_id, .. },
            } => {
                let owned = self.shard.owns_lodging(lodging_id);
                self.remember(*reservation_id, owned);
                owned
            }
            AnyEvent::Reservation { reservation_id, .. }
            | AnyEvent::Payment { reservation_id, .. }
            | AnyEvent::Payout { reservation_id, .. } => {
                self.owner_of_reservation(*reservation_id).await? == Owner::Us
            }
            AnyEvent::Customer { customer_id, .. } => self.shard.owns_customer(customer_id),
            // No view reads them; every shard moves its checkpoint past them.
            AnyEvent::Saga | AnyEvent::Other => true,
        })
    }

    async fn owner_of_stream(&mut self, stream: &str) -> Result<Owner, ViewError> {
        let owner = match stream.parse::<StreamId>() {
            Ok(StreamId::Lodging(id)) => self.owner(self.shard.owns_lodging(&id)),
            Ok(
                StreamId::Reservation(reservation_id)
                | StreamId::Payment(reservation_id)
                | StreamId::Payout(reservation_id),
            ) => self.owner_of_reservation(reservation_id).await?,
            Ok(StreamId::Saga(_) | StreamId::Customer(_)) | Err(_) => Owner::Unknown,
        };
        Ok(owner)
    }

    async fn owner_of_reservation(&mut self, id: Uuid) -> Result<Owner, ViewError> {
        if let Some(owned) = self.current.get(&id).copied() {
            return Ok(self.owner(owned));
        }
        if let Some(owned) = self.previous.remove(&id) {
            self.current.insert(id, owned);
            return Ok(self.owner(owned));
        }
        let Some(lodging) = self.store.lodging_of(id).await? else {
            return Ok(Owner::Unknown);
        };
        let owned = self.shard.owns_lodging(&lodging);
        self.remember(id, owned);
        Ok(self.owner(owned))
    }

    fn owner(&self, owned: bool) -> Owner {
        if owned {
            Owner::Us
        } else {
            Owner::Other
        }
    }

    fn remember(&mut self, id: Uuid, owned: bool) {
        self.current.insert(id, owned);
    }
}

/// A batch read from the log and decoded, ready for [`Ownership::mask_decoded`].
pub(crate) struct Decoded {
    /// What masking needs of each event (only when sharded).
    headers: Option<Vec<Recorded<()>>>,
    items: Vec<Item>,
}

impl Decoded {
    pub(crate) fn new(batch: Vec<RawRecordedEvent>, shard: ProjectorShard) -> Self {
        let headers = (shard != ProjectorShard::ALL)
            .then(|| batch.iter().map(Recorded::without_data).collect());
        Self {
            headers,
            items: decode_all_raw(batch),
        }
    }

    /// How many events the batch holds.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Append `next`, the batch read right after this one (same shard).
    pub(crate) fn extend(&mut self, next: Decoded) {
        self.items.extend(next.items);
        if let (Some(headers), Some(more)) = (&mut self.headers, next.headers) {
            headers.extend(more);
        }
    }
}

/// An event of another shard, as this shard passes it on: no view changes, the checkpoint moves.
fn skipped(recorded: &Recorded<()>) -> ViewEvent {
    ViewEvent {
        position: recorded.position,
        stream: recorded.stream.clone(),
        version: recorded.version,
        event_id: recorded.event_id,
        recorded_at: recorded.recorded_at,
        event: AnyEvent::Other,
    }
}

fn backoff(retry: RetryPolicy, attempt: u32) -> Duration {
    let factor = 1_u32 << attempt.saturating_sub(1).min(16);
    retry.base.saturating_mul(factor).min(retry.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_lodgings_between_them() {
        assert!(ProjectorShard::new(2, 2).is_err());
        assert!(ProjectorShard::new(0, 0).is_err());
        let shards: Vec<_> = (0..3)
            .map(|i| ProjectorShard::new(i, 3).expect("valid"))
            .collect();
        let mut per_shard = [0_u32; 3];
        for n in 0..300 {
            let lodging = format!("lodging-{n}");
            let owners: Vec<_> = shards.iter().filter(|s| s.owns_lodging(&lodging)).collect();
            assert_eq!(owners.len(), 1, "{lodging}");
            per_shard[owners[0].index() as usize] += 1;
            assert!(ProjectorShard::ALL.owns_lodging(&lodging));
            let customer = format!("customer-{n}");
            let owners = shards.iter().filter(|s| s.owns_customer(&customer)).count();
            assert_eq!(owners, 1, "{customer}");
        }
        assert!(per_shard.iter().all(|n| *n > 50), "{per_shard:?}");
    }

    #[test]
    fn the_hash_is_fnv1a_and_stable() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(lodging_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(lodging_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(lodging_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    /// Batches read while the last one was applied are joined into one transaction; a sharded
    /// batch keeps what masking needs of each event beside its decoded item, in order.
    #[test]
    fn joined_batches_keep_every_event_with_its_header_in_order() {
        let event = |position: u64| RawRecordedEvent {
            event_id: uuid::Uuid::from_u128(u128::from(position)),
            stream: format!("saga-{position}"),
            version: 0,
            position,
            event_type: "Unknown".into(),
            schema_version: 1,
            data: "{}".into(),
            metadata: eventlog::EventMetadata {
                correlation_id: uuid::Uuid::nil(),
                causation_id: uuid::Uuid::nil(),
                actor: "test".into(),
            },
            recorded_at: chrono::Utc::now(),
            hash: String::new(),
        };
        let batch = |range: std::ops::Range<u64>| range.map(event).collect::<Vec<_>>();
        let position = |item: &Item| match item {
            Item::View { view, .. } => view.position,
            Item::Poison(dead) => dead.position,
        };
        let shard = ProjectorShard::new(1, 2).expect("valid");
        for shard in [ProjectorShard::ALL, shard] {
            let mut joined = Decoded::new(batch(1..4), shard);
            joined.extend(Decoded::new(batch(4..6), shard));
            joined.extend(Decoded::new(batch(6..7), shard));
            assert_eq!(joined.len(), 6);
            let items: Vec<u64> = joined.items.iter().map(position).collect();
            assert_eq!(items, (1..7).collect::<Vec<_>>());
            if let Some(headers) = &joined.headers {
                let headers: Vec<u64> = headers.iter().map(|h| h.position).collect();
                assert_eq!(headers, items);
            }
            assert_eq!(joined.headers.is_some(), shard != ProjectorShard::ALL);
        }
    }

    #[test]
    fn checkpoint_names() {
        assert_eq!(ProjectorShard::ALL.checkpoint_id(), "views");
        let shard = ProjectorShard::new(1, 4).expect("valid");
        assert_eq!(shard.checkpoint_id(), "views-1-of-4");
    }
}
