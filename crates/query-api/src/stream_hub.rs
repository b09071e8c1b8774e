//! The one follower of the log behind every `GET /stream` of a process. Each live stream used to
//! follow the whole log itself and read the views at every reservation event, so a thousand
//! followers cost a thousand reads per event. The hub follows the log once, in batches, and makes a
//! frame of every version of a document a batch makes (`stream_frames.rs`: derived from the last
//! version it framed, held to the views). It then
//! hands each frame to the streams that may want it: a customer's streams get their own
//! reservations' frames only; admins' and auditors' streams get every frame and keep those they
//! may read.
//!
//! The hub starts with its first stream and stops when it has had none for [`LINGER`]. `covered`
//! says how far its frames go: it is raised before a batch's frames are handed out, and a stream
//! joins (registers) before it reads it, so every frame past what it read reaches the stream;
//! the stream takes the frames up to it from the hub's latest ones if they reach back to its
//! starting point, else makes them itself (a [`Framer`] over the log, as the hub does). A
//! stream whose queue is full (a slow client) is dropped from the hub, and then joins again and
//! catches up the same way, so it skips nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eventlog::RawRecordedEvent;
use futures::StreamExt;
use http_edge::{Principal, Role};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::QueryError;
use crate::state::QueryState;
use crate::stream_frames::{Frame, Framer};

/// How many events the hub (or a stream catching up) takes at once at most.
pub(crate) const BATCH: usize = 512;
/// How long the hub keeps following the log with no stream before it stops.
const LINGER: Duration = Duration::from_secs(30);
/// Frames a stream's queue holds by default before the hub drops the stream (it then catches up).
pub(crate) const QUEUE: usize = 4096;
/// The hub's latest frames kept for streams that join again or resume (about 1 KiB each).
const RECENT: usize = 10_000;

/// A stream's place in the hub: its queue of frames, and how far the hub had got when it joined
/// (the stream makes the frames up to there itself, or takes them from `recent`). Leaves the hub
/// when dropped.
pub(crate) struct Membership {
    hub: Arc<StreamHub>,
    id: u64,
    customer: Option<String>,
    pub covered: u64,
    /// The frames the hub made from the stream's starting point to `covered` (a customer's: their
    /// own), if the hub still keeps them all.
    pub recent: Option<Vec<Arc<Frame>>>,
    pub frames: mpsc::Receiver<Arc<Frame>>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(self.id, self.customer.as_deref());
    }
}

struct Member {
    id: u64,
    queue: mpsc::Sender<Arc<Frame>>,
}

#[derive(Default)]
struct Registry {
    running: bool,
    next_id: u64,
    /// A customer's streams, by customer.
    customers: HashMap<String, Vec<Member>>,
    /// Admins' and auditors' streams: every frame.
    everyone: Vec<Member>,
    members: usize,
    empty_since: Option<Instant>,
    /// Streams dropped for a full queue, since the process started.
    dropped: u64,
    recent: Recent,
}

/// The hub's latest frames, in log order: every frame the hub made from `from` to `covered`.
#[derive(Default)]
struct Recent {
    frames: std::collections::VecDeque<Arc<Frame>>,
    from: u64,
}

impl Recent {
    /// Keep no frame; the next ones begin at `from`.
    fn restart(&mut self, from: u64) {
        self.frames.clear();
        self.from = from;
    }

    fn push(&mut self, frame: &Arc<Frame>) {
        if self.frames.len() >= RECENT {
            if let Some(oldest) = self.frames.pop_front() {
                self.from = oldest.position.saturating_add(1);
            }
        }
        self.frames.push_back(Arc::clone(frame));
    }

    /// The frames from position `from` on (`customer`'s only, if given), if all are kept.
    fn since(&self, from: u64, customer: Option<&str>) -> Option<Vec<Arc<Frame>>> {
        if from < self.from {
            return None;
        }
        let start = self.frames.partition_point(|f| f.position < from);
        let theirs = |f: &&Arc<Frame>| customer.is_none_or(|c| f.view.customer_id == c);
        Some(self.frames.range(start..).filter(theirs).cloned().collect())
    }
}

impl Registry {
    /// Take stream `id` out; `false` if it was not in.
    fn remove(&mut self, id: u64, customer: Option<&str>) -> bool {
        let list = match customer {
            Some(customer) => self.customers.get_mut(customer),
            None => Some(&mut self.everyone),
        };
        let Some(list) = list else { return false };
        let before = list.len();
        list.retain(|m| m.id != id);
        let removed = list.len() < before;
        if removed {
            self.members -= 1;
        }
        if let Some(customer) = customer {
            if self.customers.get(customer).is_some_and(Vec::is_empty) {
                self.customers.remove(customer);
            }
        }
        if self.members == 0 {
            self.empty_since = Some(Instant::now());
        }
        removed
    }

    /// Hand `frame` to the streams that may want it; a stream whose queue is full or gone is
    /// dropped (a full one joins again and catches up).
    fn dispatch(&mut self, frame: &Arc<Frame>) {
        let mut dropped = Vec::new();
        let customer = frame.view.customer_id.as_str();
        let own = self.customers.get(customer).into_iter().flatten();
        for member in own
            .map(|m| (m, Some(customer)))
            .chain(self.everyone.iter().map(|m| (m, None)))
        {
            if member.0.queue.try_send(Arc::clone(frame)).is_err() {
                dropped.push((member.0.id, member.1.map(str::to_string)));
            }
        }
        for (id, customer) in dropped {
            if self.remove(id, customer.as_deref()) {
                self.dropped += 1;
            }
        }
    }
}

/// The hub of one process's live streams (see the module's comment).
pub struct StreamHub {
    registry: Mutex<Registry>,
    covered: AtomicU64,
    /// One start at a time.
    starting: tokio::sync::Mutex<()>,
    queue: usize,
}

impl std::fmt::Debug for StreamHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHub")
            .field("covered", &self.covered.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl StreamHub {
    /// A hub (not started) whose streams queue at most `queue` frames.
    #[must_use]
    pub fn new(queue: usize) -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
            covered: AtomicU64::new(0),
            starting: tokio::sync::Mutex::new(()),
            queue: queue.max(1),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Join the hub as `principal`'s stream, which has sent everything before position `from`,
    /// starting the hub if it is not running.
    pub(crate) async fn join(
        self: &Arc<Self>,
        state: &QueryState,
        principal: &Principal,
        from: u64,
    ) -> Result<Membership, QueryError> {
        let customer = (principal.role == Role::Customer).then(|| principal.sub.clone());
        let _one_start = self.starting.lock().await;
        loop {
            if let Some(membership) = self.enter(customer.clone(), from) {
                return Ok(membership);
            }
            let head = state.log.head_position().await?;
            {
                let mut registry = self.registry();
                self.covered.store(head, Ordering::SeqCst);
                registry.recent.restart(head.saturating_add(1));
                registry.running = true;
                registry.empty_since = Some(Instant::now());
            }
            tokio::spawn(run(Arc::clone(self), state.clone(), head.saturating_add(1)));
        }
    }

    /// Register a stream that has sent everything before `from`, if the hub is running.
    fn enter(self: &Arc<Self>, customer: Option<String>, from: u64) -> Option<Membership> {
        let (queue, frames) = mpsc::channel(self.queue);
        let mut registry = self.registry();
        if !registry.running {
            return None;
        }
        registry.next_id += 1;
        let id = registry.next_id;
        let member = Member { id, queue };
        match &customer {
            Some(customer) => registry
                .customers
                .entry(customer.clone())
                .or_default()
                .push(member),
            None => registry.everyone.push(member),
        }
        registry.members += 1;
        registry.empty_since = None;
        // `covered` and the kept frames move together, under this lock.
        let covered = self.covered.load(Ordering::SeqCst);
        let recent = registry.recent.since(from, customer.as_deref());
        drop(registry);
        Some(Membership {
            hub: Arc::clone(self),
            id,
            customer,
            covered,
            recent,
            frames,
        })
    }

    fn leave(&self, id: u64, customer: Option<&str>) {
        self.registry().remove(id, customer);
    }

    /// Streams dropped for a full queue so far (each then caught up from the log).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.registry().dropped
    }

    /// Stop if no stream has been here for [`LINGER`] (or `now`); `true` if stopped. Every stream
    /// still registered is dropped (it joins again, starting the hub anew).
    fn stop_if_idle(&self, now: bool) -> bool {
        let mut registry = self.registry();
        let idle = registry
            .empty_since
            .is_some_and(|since| since.elapsed() >= LINGER);
        if !(now || idle) {
            return false;
        }
        registry.running = false;
        registry.recent.restart(u64::MAX);
        registry.customers.clear();
        registry.everyone.clear();
        registry.members = 0;
        true
    }
}

/// The hub's loop: follow the log from `from`, a batch at a time.
async fn run(hub: Arc<StreamHub>, state: QueryState, from: u64) {
    let mut log = state.log.subscribe(from).ready_chunks(BATCH);
    let mut tick = tokio::time::interval(LINGER / 4);
    let mut framer = Framer::default();
    loop {
        let batch = tokio::select! {
            () = state.closing.cancelled() => {
                hub.stop_if_idle(true);
                return;
            }
            _ = tick.tick() => {
                if hub.stop_if_idle(false) {
                    return;
                }
                continue;
            }
            batch = log.next() => batch,
        };
        let batch: Result<Vec<RawRecordedEvent>, _> = batch.into_iter().flatten().collect();
        let batch = match batch {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => {
                tracing::warn!("the live streams' log subscription ended; they join again");
                hub.stop_if_idle(true);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "the live streams lost the log; they join again");
                hub.stop_if_idle(true);
                return;
            }
        };
        let end = batch.last().map_or(0, |e| e.position);
        {
            // No stream: nothing to make; one that joins from now on starts after this batch.
            let mut registry = hub.registry();
            if registry.members == 0 {
                hub.covered.store(end, Ordering::SeqCst);
                registry.recent.restart(end.saturating_add(1));
                framer.forget();
                continue;
            }
        }
        let began = Instant::now();
        let frames = match framer.frames(&state, &batch).await {
            Ok(frames) => frames,
            Err(error) => {
                tracing::warn!(%error, "the live streams could not read the views; they join again");
                hub.stop_if_idle(true);
                return;
            }
        };
        tracing::debug!(
            events = batch.len(),
            frames = frames.len(),
            ms = began.elapsed().as_millis(),
            "the live streams' hub made a batch's frames"
        );
        let mut registry = hub.registry();
        hub.covered.store(end, Ordering::SeqCst);
        for frame in &frames {
            registry.recent.push(frame);
            registry.dispatch(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use readmodel::ReservationView;
    use uuid::Uuid;

    use super::*;

    /// The customers among `frames`.
    fn customers(frames: &[Arc<Frame>]) -> HashSet<String> {
        frames.iter().map(|f| f.view.customer_id.clone()).collect()
    }

    fn frame(position: u64, customer: &str) -> Arc<Frame> {
        let view: ReservationView = serde_json::from_value(serde_json::json!({
            "reservation_id": Uuid::new_v4(),
            "customer_id": customer,
            "lodging_id": "inn",
            "lodging_name": null,
            "check_in": "2027-01-01",
            "check_out": "2027-01-02",
            "guests": 1,
            "rooms": 1,
            "nights": 1,
            "total_amount": 100,
            "currency": "KRW",
            "status": "requested",
            "approval_status": "pending",
            "payment_status": "none",
            "refund_status": "none",
            "status_reason": null,
            "requested_at": "2026-12-01T00:00:00Z",
            "updated_at": "2026-12-01T00:00:00Z",
            "position": position,
        }))
        .expect("a document");
        Arc::new(Frame {
            position,
            data: String::new(),
            view,
        })
    }

    fn running(queue: usize) -> Arc<StreamHub> {
        let hub = Arc::new(StreamHub::new(queue));
        hub.registry().running = true;
        hub
    }

    fn drain(membership: &mut Membership) -> Vec<Arc<Frame>> {
        std::iter::from_fn(|| membership.frames.try_recv().ok()).collect()
    }

    #[test]
    fn given_customers_and_an_auditor_when_frames_go_out_then_each_customer_gets_only_their_own() {
        let hub = running(16);
        let mut mina = hub.enter(Some("mina".into()), 0).expect("running");
        let mut joon = hub.enter(Some("joon".into()), 0).expect("running");
        let mut auditor = hub.enter(None, 0).expect("running");
        {
            let mut registry = hub.registry();
            for (position, customer) in [(3, "mina"), (5, "joon"), (8, "mina")] {
                registry.dispatch(&frame(position, customer));
            }
        }
        let mina = drain(&mut mina);
        assert_eq!(mina.iter().map(|f| f.position).collect::<Vec<_>>(), [3, 8]);
        assert_eq!(customers(&mina), HashSet::from(["mina".to_string()]));
        assert_eq!(drain(&mut joon).len(), 1);
        assert_eq!(drain(&mut auditor).len(), 3, "an auditor's stream gets all");
    }

    #[test]
    fn given_a_full_queue_when_a_frame_comes_then_the_stream_is_dropped_and_keeps_what_it_had() {
        let hub = running(2);
        let mut slow = hub.enter(Some("mina".into()), 0).expect("running");
        let mut other = hub.enter(Some("mina".into()), 0).expect("running");
        {
            let mut registry = hub.registry();
            registry.dispatch(&frame(1, "mina"));
            registry.dispatch(&frame(2, "mina"));
        }
        assert_eq!(drain(&mut other).len(), 2, "the other reads as it goes");
        hub.registry().dispatch(&frame(3, "mina"));
        assert_eq!(hub.registry().members, 1, "the slow one is out");
        assert_eq!(hub.dropped(), 1);
        assert_eq!(drain(&mut slow).len(), 2);
        assert!(
            matches!(
                slow.frames.try_recv(),
                Err(mpsc::error::TryRecvError::Disconnected)
            ),
            "its queue ends, so it joins again and catches up"
        );
        assert_eq!(drain(&mut other).len(), 1);
    }

    #[test]
    fn given_the_latest_frames_when_a_stream_joins_again_then_it_gets_those_it_lacks_if_all_kept() {
        let mut recent = Recent::default();
        recent.restart(1);
        for position in 1..=u64::try_from(RECENT).expect("small") + 2 {
            let customer = if position % 2 == 0 { "mina" } else { "joon" };
            recent.push(&frame(position, customer));
        }
        assert_eq!(recent.frames.len(), RECENT, "bounded");
        assert_eq!(recent.from, 3, "the two oldest are gone");
        assert!(
            recent.since(2, None).is_none(),
            "not all kept: from the log"
        );
        let mina = recent.since(9_990, Some("mina")).expect("kept");
        let positions: Vec<u64> = mina.iter().map(|f| f.position).collect();
        assert_eq!(positions.first(), Some(&9_990));
        assert!(
            positions.windows(2).all(|w| w[1] == w[0] + 2),
            "{positions:?}"
        );
        assert_eq!(customers(&mina), HashSet::from(["mina".to_string()]));
        assert_eq!(recent.since(3, None).map(|all| all.len()), Some(RECENT));
        recent.restart(50_000);
        assert_eq!(recent.since(49_999, None).map(|f| f.len()), None);
        assert_eq!(recent.since(50_000, None).map(|f| f.len()), Some(0));
    }

    #[test]
    fn given_streams_when_they_leave_or_the_hub_stops_then_none_is_kept() {
        let hub = running(4);
        let first = hub.enter(Some("mina".into()), 0).expect("running");
        let second = hub.enter(None, 0).expect("running");
        assert_eq!(first.covered, 0);
        drop(first);
        assert!(hub.registry().customers.is_empty());
        assert_eq!(hub.registry().members, 1);
        assert!(!hub.stop_if_idle(false), "a stream is still here");
        assert!(hub.stop_if_idle(true));
        assert!(hub.enter(None, 0).is_none(), "a stopped hub takes no one");
        drop(second);
        assert_eq!(hub.registry().members, 0);
    }
}
