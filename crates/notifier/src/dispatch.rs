//! The dispatcher: follows the inbox's status changes (in `seq` order, under the webhook store's
//! own cursor) and queues one delivery per subscription that takes each change. A batch's
//! deliveries and the cursor move in one write, and a delivery's id follows from its subscription
//! and `seq`, so a crash or a second dispatcher queues nothing twice.
//!
//! A delivery's body is built here, once: the change (`id` = the event's id, `type`, `status`,
//! `position`, ...) and `data`, the reservation's ReservationList document as the views have it
//! (at that change or a later one; the dispatcher waits until the views have reached the change).
//! Only entries at or below the inbox's checkpoint are taken: below it, no entry is still to come.
//! No personal data goes into a body (no guest name), so stored deliveries hold none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use readmodel::inbox::{InboxEntry, InboxStore};
use readmodel::{ReservationView, ViewError, ViewStore, MAX_PAGE};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::model::{event_type, Delivery, DeliveryState, Subscription};
use crate::store::WebhookStore;
use crate::wakeups::Wakeups;

/// Inbox entries read per batch.
const BATCH: usize = 1_000;
/// How often an idle dispatcher looks for new entries.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// Lodgings whose host the dispatcher remembers at most.
const MAX_HOSTS: usize = 10_000;
/// How often a cursor that moved without queuing anything is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Where the dispatcher reads and writes.
#[derive(Clone)]
pub struct Dispatcher {
    pub inbox: Arc<dyn InboxStore>,
    pub views: Arc<dyn ViewStore>,
    /// The views' checkpoint name: entries past it wait until the views have them.
    pub views_checkpoint: String,
    /// The inbox's (merged) checkpoint name: with the notifier in shards, entries past it may
    /// still have earlier ones to come from a shard behind, so they wait.
    pub inbox_checkpoint: String,
    pub store: Arc<dyn WebhookStore>,
    /// Wakes the senders of the subscriptions a batch queued deliveries for.
    pub wakeups: Arc<Wakeups>,
    /// The host (`admin_id`) of each lodging read so far: it never changes once a lodging has one.
    pub hosts: Hosts,
    /// The inbox's applied position, where this process builds the inbox: an idle dispatcher with
    /// subscriptions wakes as soon as it moves instead of at its next poll (which still runs, for
    /// other writers, and is all there is while no subscription is kept).
    pub inbox_moved: Option<tokio::sync::watch::Receiver<u64>>,
}

/// A batch read and built, not yet queued.
pub struct Batch {
    /// The cursor once it is queued.
    pub next: u64,
    pub deliveries: Vec<Delivery>,
    /// Whether any subscription was kept when it was read: without one, nothing is to be delivered
    /// soon, and the inbox's moves do not wake the dispatcher (under load they come hundreds of
    /// times a second, each costing a batch's reads).
    pub subscribed: bool,
}

/// Once `inbox` has moved since it was last seen; never without one (or once its sender is gone).
async fn moved(inbox: Option<&mut tokio::sync::watch::Receiver<u64>>) {
    if let Some(inbox) = inbox {
        if inbox.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// The end of a batch's write: the cursor it saved.
async fn finish(write: tokio::task::JoinHandle<Result<u64, ViewError>>) -> Result<u64, ViewError> {
    write
        .await
        .map_err(|e| ViewError::Unavailable(format!("queuing deliveries: {e}")))?
}

/// The hosts of lodgings as the dispatcher read them.
#[derive(Clone, Default)]
pub struct Hosts(Arc<Mutex<HashMap<String, String>>>);

impl Hosts {
    fn get(&self, lodging_id: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(lodging_id)
            .cloned()
    }

    fn remember(&self, lodging_id: &str, host: &str) {
        let mut hosts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hosts.len() >= MAX_HOSTS {
            hosts.clear();
        }
        hosts.insert(lodging_id.to_string(), host.to_string());
    }
}

/// The body of a delivery of `entry` (with the reservation's document, if the views have it).
fn body(entry: &InboxEntry, document: Option<&readmodel::ReservationView>) -> String {
    json!({
        "id": entry.event_id,
        "type": event_type(entry.status),
        "reservation_id": entry.reservation_id,
        "lodging_id": entry.lodging_id,
        "status": entry.status,
        "occurred_at": entry.created_at,
        "position": entry.position,
        "data": document,
    })
    .to_string()
}

impl Dispatcher {
    /// The catalog admin of each lodging, as the views have it (read once, then remembered).
    async fn admins(
        &self,
        entries: &[InboxEntry],
    ) -> Result<HashMap<String, Option<String>>, ViewError> {
        let mut admins = HashMap::new();
        for entry in entries {
            if admins.contains_key(&entry.lodging_id) {
                continue;
            }
            let admin = match self.hosts.get(&entry.lodging_id) {
                Some(host) => Some(host),
                None => {
                    let admin = self.views.lodging(&entry.lodging_id).await?;
                    let admin = admin.map(|l| l.admin_id);
                    if let Some(host) = &admin {
                        self.hosts.remember(&entry.lodging_id, host);
                    }
                    admin
                }
            };
            admins.insert(entry.lodging_id.clone(), admin);
        }
        Ok(admins)
    }

    /// The ReservationList documents of the reservations of `entries`, read together.
    async fn documents(
        &self,
        entries: &[&InboxEntry],
    ) -> Result<HashMap<Uuid, ReservationView>, ViewError> {
        let mut ids: Vec<Uuid> = entries.iter().map(|e| e.reservation_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut documents = HashMap::new();
        for ids in ids.chunks(MAX_PAGE) {
            for view in self.views.reservations_by_id(ids).await? {
                documents.insert(view.reservation_id, view);
            }
        }
        Ok(documents)
    }

    /// The deliveries `entries` make for `subscriptions`.
    async fn deliveries(
        &self,
        entries: &[InboxEntry],
        subscriptions: &[Subscription],
    ) -> Result<Vec<Delivery>, ViewError> {
        let admins = self.admins(entries).await?;
        let taken: Vec<(&InboxEntry, String, Vec<&Subscription>)> = entries
            .iter()
            .filter_map(|entry| {
                let kind = event_type(entry.status);
                let admin = admins.get(&entry.lodging_id).cloned().flatten();
                let takers: Vec<&Subscription> = subscriptions
                    .iter()
                    .filter(|s| entry.position > s.from_position && s.takes(&kind))
                    .filter(|s| {
                        s.owner
                            .follows(&entry.recipient, &entry.lodging_id, admin.as_deref())
                    })
                    .collect();
                (!takers.is_empty()).then_some((entry, kind, takers))
            })
            .collect();
        let documents = self
            .documents(&taken.iter().map(|t| t.0).collect::<Vec<_>>())
            .await?;
        let mut out = Vec::new();
        for (entry, kind, takers) in taken {
            let body = body(entry, documents.get(&entry.reservation_id));
            let now = Utc::now();
            out.extend(takers.into_iter().map(|s| Delivery {
                delivery_id: Delivery::id_for(s.id, entry.seq()),
                subscription_id: s.id,
                seq: entry.seq(),
                event_id: entry.event_id,
                event_type: kind.clone(),
                reservation_id: entry.reservation_id,
                position: entry.position,
                body: body.clone(),
                state: DeliveryState::Pending,
                attempts: 0,
                last_status_code: None,
                last_error: None,
                queued_at: now,
                first_attempt_at: None,
                next_attempt_at: Some(now),
                settled_at: None,
            }));
        }
        Ok(out)
    }

    /// One batch after `cursor`, read and built but not queued: the cursor after it and its
    /// deliveries (to be saved with that cursor). Below the settled position (both checkpoints),
    /// every entry has come, so once a read returns fewer than a batch - or no subscription is
    /// kept - the cursor jumps to the last `seq` that position can have. The settled position is
    /// read before the subscriptions: a subscription made after that read starts at a log head at
    /// or above it.
    pub async fn prepare(&self, cursor: u64) -> Result<Batch, ViewError> {
        let views_at = self.views.checkpoint(&self.views_checkpoint).await?;
        let inbox_at = self.inbox.checkpoint(&self.inbox_checkpoint).await?;
        let settled = views_at.min(inbox_at);
        let all_settled = settled.saturating_mul(4).saturating_add(3);
        let subscriptions = self.store.subscriptions().await?;
        if subscriptions.is_empty() {
            return Ok(Batch {
                next: cursor.max(all_settled),
                deliveries: Vec::new(),
                subscribed: false,
            });
        }
        // Only entries at or below the settled position are read: past it, the views may not have
        // their documents yet, and under load (views behind the inbox) a batch read there was
        // mostly parsed and dropped, again at each look.
        let entries = self
            .inbox
            .status_changes_after(cursor, all_settled, BATCH)
            .await?;
        let complete = entries.len() < BATCH;
        let next = match entries.last().map(InboxEntry::seq) {
            _ if complete => cursor.max(all_settled),
            Some(last) => last,
            None => cursor,
        };
        let deliveries = self.deliveries(&entries, &subscriptions).await?;
        Ok(Batch {
            next,
            deliveries,
            subscribed: true,
        })
    }

    /// Queue `batch`'s deliveries with its cursor, in one write, and wake the senders.
    async fn queue(&self, batch: &Batch) -> Result<(), ViewError> {
        self.store.enqueue(&batch.deliveries, batch.next).await?;
        self.wakeups
            .queued(batch.deliveries.iter().map(|d| d.subscription_id));
        Ok(())
    }

    /// The stored cursor, waiting while the store is unavailable; `None` on shutdown.
    async fn start(&self, shutdown: &CancellationToken) -> Option<u64> {
        loop {
            match self.store.cursor().await {
                Ok(cursor) => return Some(cursor),
                Err(e) => {
                    http_edge::error_throttled!(cause = %e, "webhook dispatcher: store failure");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(IDLE_POLL * 10) => {}
            }
        }
    }

    /// Run until `shutdown`: batch after batch, polling when idle, backing off on store errors.
    /// A batch's write runs while the next batch is read and built (behind a burst, the
    /// dispatcher spent about half of each batch waiting for its write); writes go one at a time,
    /// in order, and a failed one sends the reading back to the last cursor saved. The cursor is
    /// saved with each batch that queued deliveries, else at most every [`SAVE_EVERY`] (a restart
    /// reads again at most that much: queuing is idempotent).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let Some(mut cursor) = self.start(&shutdown).await else {
            return;
        };
        let mut saved = (cursor, tokio::time::Instant::now());
        let mut writing: Option<tokio::task::JoinHandle<Result<u64, ViewError>>> = None;
        let mut failures = 0u32;
        let mut subscribed = true;
        while !shutdown.is_cancelled() {
            let prepared = self.prepare(cursor).await;
            let written = match writing.take() {
                Some(write) => finish(write)
                    .await
                    .map(|at| saved = (at, tokio::time::Instant::now())),
                None => Ok(()),
            };
            let pause = match prepared.and_then(|batch| written.map(|()| batch)) {
                Ok(batch) => {
                    failures = 0;
                    subscribed = batch.subscribed;
                    let moved = batch.next > cursor;
                    cursor = batch.next;
                    if !batch.deliveries.is_empty() {
                        let this = self.clone();
                        writing = Some(tokio::spawn(async move {
                            this.queue(&batch).await.map(|()| batch.next)
                        }));
                    } else if cursor > saved.0 && saved.1.elapsed() >= SAVE_EVERY {
                        self.save(cursor).await;
                        saved = (cursor, tokio::time::Instant::now());
                    }
                    if moved {
                        continue;
                    }
                    IDLE_POLL
                }
                Err(e) => {
                    cursor = saved.0;
                    failures = failures.saturating_add(1);
                    http_edge::error_throttled!(cause = %e, "webhook dispatcher: store failure");
                    Duration::from_millis(100u64 << failures.min(6))
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
                () = moved(self.inbox_moved.as_mut()), if failures == 0 && subscribed => {}
            }
        }
        if let Some(write) = writing.take() {
            match finish(write).await {
                Ok(at) => saved.0 = at,
                Err(e) => {
                    http_edge::error_throttled!(cause = %e, "webhook dispatcher: store failure");
                    return;
                }
            }
        }
        if cursor > saved.0 {
            self.save(cursor).await;
        }
    }

    async fn save(&self, cursor: u64) {
        if let Err(e) = self.store.enqueue(&[], cursor).await {
            http_edge::error_throttled!(cause = %e, "webhook dispatcher: saving its cursor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::moved;

    /// Whether `wake` is still waiting after a while.
    async fn still(wake: impl std::future::Future<Output = ()>) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(20), wake)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn an_idle_dispatcher_wakes_when_the_inbox_moves_and_only_then() {
        let (inbox, mut seen) = tokio::sync::watch::channel(0u64);
        assert!(
            still(moved(None)).await,
            "without a watch: only the poll wakes it"
        );
        assert!(still(moved(Some(&mut seen))).await, "unmoved: it sleeps");
        inbox.send_replace(7);
        assert!(!still(moved(Some(&mut seen))).await, "moved: it wakes");
        assert!(still(moved(Some(&mut seen))).await, "seen: it sleeps again");
        drop(inbox);
        assert!(
            still(moved(Some(&mut seen))).await,
            "the inbox gone: back to polling"
        );
    }
}
