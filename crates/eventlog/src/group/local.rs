//! Consumer groups held in this process, over any [`EventLog`]: the reference implementation of the
//! port, for a store with no server to keep groups (the embedded log) and for tests. It follows the
//! behaviour of EventStoreDB's `PinnedByCorrelation` strategy: each correlation id hashes to one of
//! [`BUCKETS`] buckets; a bucket is given, at its first event, to the member holding the fewest; a
//! member that leaves (drops its deliveries) has its buckets freed and its unsettled events handed
//! out again, `retries` counted.
//!
//! What it does not do: keep the group across a restart of the process (the group starts again from
//! the beginning of the log, like a group created afresh), or span processes. Parked events are kept
//! in memory ([`LocalGroups::parked`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use uuid::Uuid;

use super::{ConsumerGroups, GroupAcks, GroupDelivery, GroupMember, Settlement};
use crate::{EventLog, LogError, Position, RawRecordedEvent};

/// Buckets correlation ids are hashed to (as on EventStoreDB, where it is 1,024).
const BUCKETS: u64 = 1024;

type Sender = mpsc::UnboundedSender<Result<GroupDelivery, LogError>>;

/// Consumer groups over `log`, held in this process.
pub struct LocalGroups {
    log: Arc<dyn EventLog>,
    groups: Mutex<HashMap<String, Arc<Group>>>,
}

struct Group {
    state: Mutex<GroupState>,
}

#[derive(Default)]
struct GroupState {
    members: BTreeMap<u64, Sender>,
    next_member: u64,
    /// Bucket -> member holding it.
    buckets: HashMap<u64, u64>,
    /// Handed out (or waiting for a member), not settled yet, by position.
    unsettled: BTreeMap<Position, Unsettled>,
    positions: HashMap<Uuid, Position>,
    parked: Vec<(RawRecordedEvent, String)>,
}

struct Unsettled {
    event: RawRecordedEvent,
    /// Times handed out before the current one.
    retries: u32,
    handed_out: bool,
    /// The member it is handed to; `None` while it waits for one.
    member: Option<u64>,
}

impl LocalGroups {
    #[must_use]
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            log,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Events members of `group` parked, with the reason given.
    #[must_use]
    pub fn parked(&self, group: &str) -> Vec<(RawRecordedEvent, String)> {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups
            .get(group)
            .map(|g| g.lock().parked.clone())
            .unwrap_or_default()
    }

    /// How many events of `group` are handed out (or waiting for a member) and not settled yet.
    #[must_use]
    pub fn unsettled(&self, group: &str) -> usize {
        let groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.get(group).map_or(0, |g| g.lock().unsettled.len())
    }

    /// The group, created (and fed from the log after `after`) on first use.
    fn group(&self, name: &str, after: Position) -> Arc<Group> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(group) = groups.get(name) {
            return Arc::clone(group);
        }
        let group = Arc::new(Group {
            state: Mutex::new(GroupState::default()),
        });
        groups.insert(name.to_owned(), Arc::clone(&group));
        tokio::spawn(feed(Arc::clone(&self.log), after, Arc::downgrade(&group)));
        group
    }
}

#[async_trait]
impl ConsumerGroups for LocalGroups {
    async fn join(
        &self,
        group: &str,
        member: &str,
        after: Position,
    ) -> Result<GroupMember, LogError> {
        let group = self.group(group, after);
        let (tx, rx) = mpsc::unbounded_channel();
        let id = group.lock().join(tx.clone());
        tracing::debug!(member, id, "joined a local consumer group");
        let (settle, mut settlements) = mpsc::unbounded_channel();
        let weak = Arc::downgrade(&group);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    settlement = settlements.recv() => match (settlement, weak.upgrade()) {
                        (Some(settlement), Some(group)) => group.lock().settle(settlement),
                        _ => break,
                    },
                    () = tx.closed() => break,
                }
            }
            if let Some(group) = weak.upgrade() {
                group.lock().leave(id);
            }
        });
        Ok(GroupMember {
            deliveries: UnboundedReceiverStream::new(rx).boxed(),
            acks: GroupAcks::new(settle),
        })
    }
}

impl Group {
    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Read the log after `after` into the group, for as long as the group exists.
async fn feed(log: Arc<dyn EventLog>, after: Position, group: std::sync::Weak<Group>) {
    let mut events = log.subscribe(after + 1);
    while let Some(item) = events.next().await {
        let Some(group) = group.upgrade() else {
            return;
        };
        match item {
            Ok(event) => group.lock().arrive(event),
            Err(error) => tracing::warn!(%error, "local consumer group: reading the log failed"),
        }
    }
}

impl GroupState {
    fn join(&mut self, tx: Sender) -> u64 {
        let id = self.next_member;
        self.next_member += 1;
        self.members.insert(id, tx);
        // Events nobody held (no member was there) go to the members now.
        let waiting: Vec<Position> = self
            .unsettled
            .iter()
            .filter(|(_, u)| u.member.is_none())
            .map(|(p, _)| *p)
            .collect();
        for position in waiting {
            self.hand_out(position);
        }
        id
    }

    fn arrive(&mut self, event: RawRecordedEvent) {
        let position = event.position;
        self.positions.insert(event.event_id, position);
        self.unsettled.insert(
            position,
            Unsettled {
                event,
                retries: 0,
                handed_out: false,
                member: None,
            },
        );
        self.hand_out(position);
    }

    /// Give the event at `position` to its bucket's member (taking the bucket if it is free).
    fn hand_out(&mut self, position: Position) {
        let Some(unsettled) = self.unsettled.get(&position) else {
            return;
        };
        let bucket = unsettled.event.metadata.correlation_id.as_u64_pair().1 % BUCKETS;
        let member = match self.buckets.get(&bucket) {
            Some(member) => *member,
            None => {
                let mut held: BTreeMap<u64, usize> = self.members.keys().map(|m| (*m, 0)).collect();
                for holder in self.buckets.values() {
                    *held.entry(*holder).or_default() += 1;
                }
                let Some((member, _)) = held.into_iter().min_by_key(|(m, n)| (*n, *m)) else {
                    return; // no member: it waits
                };
                self.buckets.insert(bucket, member);
                member
            }
        };
        let Some(unsettled) = self.unsettled.get_mut(&position) else {
            return;
        };
        if let Some(tx) = self.members.get(&member) {
            if unsettled.handed_out {
                unsettled.retries += 1;
            }
            unsettled.handed_out = true;
            unsettled.member = Some(member);
            let delivery = GroupDelivery {
                event: unsettled.event.clone(),
                retries: unsettled.retries,
            };
            let _ = tx.send(Ok(delivery));
        }
    }

    fn settle(&mut self, settlement: Settlement) {
        let (event_id, reason) = match settlement {
            Settlement::Ack(id) => (id, None),
            Settlement::Park { event_id, reason } => (event_id, Some(reason)),
        };
        let Some(position) = self.positions.remove(&event_id) else {
            return;
        };
        if let (Some(unsettled), Some(reason)) = (self.unsettled.remove(&position), reason) {
            self.parked.push((unsettled.event, reason));
        }
    }

    fn leave(&mut self, member: u64) {
        self.members.remove(&member);
        self.buckets.retain(|_, holder| *holder != member);
        let mut theirs = Vec::new();
        for (position, unsettled) in &mut self.unsettled {
            if unsettled.member == Some(member) {
                unsettled.member = None;
                theirs.push(*position);
            }
        }
        for position in theirs {
            self.hand_out(position);
        }
    }
}
