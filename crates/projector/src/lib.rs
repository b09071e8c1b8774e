//! The projector: subscribes to the global event log and builds the read models, exactly-once in
//! effect (the checkpoint is stored with the views, and every document guards itself by position).
//!
//! Owns: turning recorded events into [`readmodel::ViewEvent`]s, batching, the checkpointed
//! catch-up-then-live loop, retry with backoff, parking poison events as dead letters (R8), the
//! progress handle read by `/readyz`, `/metrics` and `min_position` waits, rebuilding the views
//! from position 0, and sharding (several projectors splitting the views by lodging, `shard`).
//! Must not: decide anything (no commands, no appends), know how views are stored (only the
//! [`readmodel::ViewStore`] port) or know about HTTP.

mod decode;
mod rebuild;
mod shard;
mod sink;
mod status;

pub use decode::{dead_letter, decode, DecodeFailure};
pub use rebuild::{rebuild, rebuild_target, REBUILD_PAGE};
pub use shard::{
    lodging_hash, merge_checkpoints, merge_checkpoints_of, shard_checkpoint, ProjectorShard,
    ShardError, ViewShard, OWNERSHIP_CACHE,
};
pub use sink::RetryPolicy;
pub use status::ProjectorStatus;

use std::sync::Arc;
use std::time::Duration;

use eventlog::{EventLog, RawEventSubscription, RawRecordedEvent};
use futures::{FutureExt, StreamExt};
use readmodel::{ProjectionTarget, ViewError, ViewStore, Views};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::shard::{Decoded, Ownership};
use crate::sink::{Halt, Item, Sink};

/// The stable id of the views projector: the name of its checkpoint.
pub const PROJECTOR_ID: &str = "views";

/// Most events applied in one view-store transaction while following the log. A batch that fills
/// before [`COMMIT_WINDOW`] has passed begins at once, so this also bounds the lag under load: 375
/// is ~125 requests under B2's load (three events each: the request, its saga's record with the
/// deadline it armed, its lodging's approval request). It was 500 while a saga's timers were
/// events of their own (four a request); at 500 with three, B4's lag p50 rose by ~3 ms.
pub const MAX_BATCH: usize = 375;

/// While following under load, a view-store transaction begins at most this often: events that
/// arrive sooner after the previous one began are gathered (up to a full batch) into the next one.
/// Each transaction rewrites the index pages it touches (a lodging's entries, the status indexes,
/// the tables' last pages), so fewer, larger ones write fewer pages: measured on B2, the views' WAL
/// took ~105 MB/s without a window, and B2 ran 8-12% faster with it. An event after a quiet spell
/// is applied at once; under load it waits at most this long more (B4 measures the lag).
pub const COMMIT_WINDOW: Duration = Duration::from_millis(20);

/// How often the log's head is read, so the lag shows even while the views are stuck.
const HEAD_POLL: Duration = Duration::from_millis(250);

/// A failure that stops the projector or a rebuild.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error(transparent)]
    Log(#[from] eventlog::LogError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("projector task failed: {0}")]
    Task(String),
}

/// Builds the views from the event log, from its checkpoint on.
pub struct Projector {
    id: String,
    log: Arc<dyn EventLog>,
    store: Arc<dyn ProjectionTarget>,
    status: ProjectorStatus,
    retry: RetryPolicy,
    max_batch: usize,
    window: Duration,
    /// How often a follower's transaction may begin ([`FOLLOWER_WINDOW`]).
    follower_window: Duration,
    shard: ProjectorShard,
    /// The whole checkpoint of its target, which a shard's first start begins at.
    base: String,
    /// Other targets fed from the same reads (`with_follower`).
    followers: Vec<Sink>,
}

impl Projector {
    /// The views projector over `store`.
    #[must_use]
    pub fn new(log: Arc<dyn EventLog>, store: Arc<dyn ViewStore>) -> Self {
        Self::for_target(log, Arc::new(Views(store)))
    }

    /// A projector of the log into another target (e.g. the inbox); give it its own id.
    #[must_use]
    pub fn for_target(log: Arc<dyn EventLog>, store: Arc<dyn ProjectionTarget>) -> Self {
        Self {
            id: PROJECTOR_ID.to_string(),
            log,
            store,
            status: ProjectorStatus::default(),
            retry: RetryPolicy::default(),
            max_batch: MAX_BATCH,
            window: COMMIT_WINDOW,
            follower_window: FOLLOWER_WINDOW,
            shard: ProjectorShard::ALL,
            base: PROJECTOR_ID.to_string(),
            followers: Vec::new(),
        }
    }

    /// Also apply every batch this projector reads to `store` under its own checkpoint `id`,
    /// reporting on `status` (e.g. the inbox beside the views): the log is read and decoded once
    /// for both, and the two transactions of a batch run side by side. Reading starts at the lower
    /// of the checkpoints; each target skips what it already has. Not with [`Self::with_shard`]
    /// (a shard masks other lodgings' events, which another target may need).
    #[must_use]
    pub fn with_follower(
        mut self,
        id: impl Into<String>,
        store: Arc<dyn ProjectionTarget>,
        status: ProjectorStatus,
    ) -> Self {
        self.followers.push(Sink {
            id: id.into(),
            store,
            status,
            retry: self.retry,
        });
        self
    }

    /// Report progress on `status` (e.g. the handle of a projector this one replaces, so waiters
    /// and probes carry on across a restart or a view-store swap).
    #[must_use]
    pub fn with_status(mut self, status: ProjectorStatus) -> Self {
        self.status = status;
        self
    }

    /// Use another checkpoint name (e.g. one per projector instance when scaled out).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Apply only the events of `shard`'s lodgings, under the checkpoint `views-{i}-of-{n}`
    /// (see [`ProjectorShard`]; [`merge_checkpoints`] keeps the views checkpoint).
    #[must_use]
    pub fn with_shard(self, shard: ProjectorShard) -> Self {
        self.with_shard_of(PROJECTOR_ID, shard)
    }

    /// Apply only the events of `shard`'s lodgings to a target whose whole checkpoint is `base`,
    /// under `{base}-{i}-of-{n}` ([`shard::shard_checkpoint`]; [`merge_checkpoints_of`] keeps
    /// `base`), e.g. the notifier's shards of the inbox.
    #[must_use]
    pub fn with_shard_of(mut self, base: &str, shard: ProjectorShard) -> Self {
        self.shard = shard;
        self.base = base.to_string();
        self.id = shard::shard_checkpoint(base, shard);
        self
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How often a view-store transaction may begin while following (see [`COMMIT_WINDOW`]; zero:
    /// as soon as the previous one has ended).
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How often a follower's transaction may begin while following (see [`FOLLOWER_WINDOW`]; zero:
    /// as soon as the previous one has ended).
    #[must_use]
    pub fn with_follower_window(mut self, window: Duration) -> Self {
        self.follower_window = window;
        self
    }

    /// Most events per view-store transaction (at least 1).
    #[must_use]
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A cheap, cloneable handle on this projector's progress.
    #[must_use]
    pub fn status(&self) -> ProjectorStatus {
        self.status.clone()
    }

    /// Project until `shutdown` is cancelled: read the checkpoint, catch up, then follow the log.
    /// Returns `Ok` on shutdown; an error only if the view store refuses a dead letter.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ProjectorError> {
        let Some(mut checkpoint) = self.start(&shutdown).await? else {
            return Ok(());
        };
        for follower in &self.followers {
            let Some(theirs) = self
                .start_of(follower, ProjectorShard::ALL, &shutdown)
                .await?
            else {
                return Ok(());
            };
            checkpoint = checkpoint.min(theirs);
        }
        tracing::info!(projector = %self.id, checkpoint, "projector started");
        let head_watch = shutdown.child_token();
        tokio::spawn(watch_head(
            Arc::clone(&self.log),
            self.status.clone(),
            head_watch.clone(),
        ));
        let result = self.follow(checkpoint, &shutdown).await;
        head_watch.cancel();
        result
    }

    /// The checkpoint (waiting while the store is unavailable); `None` on shutdown.
    async fn start(&self, shutdown: &CancellationToken) -> Result<Option<u64>, ProjectorError> {
        let lead = self.sink();
        self.start_of(&lead, self.shard, shutdown).await
    }

    /// Where `sink` starts (see [`shard::start_position`]), with its dead letters counted into its
    /// status; waits while its store is unavailable. `None` on shutdown.
    async fn start_of(
        &self,
        sink: &Sink,
        shard: ProjectorShard,
        shutdown: &CancellationToken,
    ) -> Result<Option<u64>, ProjectorError> {
        let mut attempt = 0;
        loop {
            let read = async {
                let checkpoint =
                    shard::start_position(sink.store.as_ref(), &sink.id, &self.base, shard).await?;
                let dead = sink.store.dead_letter_count().await?;
                Ok::<_, ViewError>((checkpoint, dead))
            };
            match read.await {
                Ok((checkpoint, dead)) => {
                    sink.status.set_dead_letters(dead);
                    sink.status.reset_applied(checkpoint);
                    return Ok(Some(checkpoint));
                }
                Err(error) if error.is_transient() => sink.status.record_error(&error),
                Err(error) => return Err(error.into()),
            }
            attempt += 1;
            let pause = self.retry.base.saturating_mul(attempt).min(self.retry.max);
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One task per follower, fed the batches this projector applies (up to [`FOLLOW_AHEAD`]
    /// ahead): the views never wait for a follower's transaction, only for room in its queue.
    fn spawn_followers(&self, shutdown: &CancellationToken) -> Vec<Lane> {
        self.followers
            .iter()
            .map(|follower| {
                let (batches, mut ready) = mpsc::channel::<Vec<Item>>(FOLLOW_AHEAD);
                let (sink, stop) = (follower.clone(), shutdown.clone());
                let window = self.follower_window;
                let task = tokio::spawn(async move {
                    let mut began: Option<tokio::time::Instant> = None;
                    while let Some(items) = ready.recv().await {
                        // The batches queued while the last transaction ran, and those that come
                        // within the window since it began, go into one transaction.
                        let until = began.map(|began| began + window);
                        let Some(items) =
                            gather(items, &mut ready, until, FOLLOWER_BATCH, &stop).await
                        else {
                            return Ok(());
                        };
                        began = Some(tokio::time::Instant::now());
                        let head = items.iter().map(Item::position).max().unwrap_or(0);
                        sink.handle(items, &stop).await?;
                        sink.status.set_head(head.max(sink.status.head_position()));
                    }
                    Ok(())
                });
                Lane {
                    batches,
                    task: Some(task),
                }
            })
            .collect()
    }

    fn sink(&self) -> Sink {
        Sink {
            id: self.id.clone(),
            store: Arc::clone(&self.store),
            status: self.status.clone(),
            retry: self.retry,
        }
    }

    /// Follow the log from `checkpoint`: a reader task reads and decodes the next batches while
    /// this one applies the current one (up to [`READ_AHEAD`] batches ahead), so the view store's
    /// transactions and the log's reads overlap instead of taking turns. Whatever was read during
    /// one transaction, and within [`COMMIT_WINDOW`] of its start, goes into the next one (batches
    /// are joined until the batch size is reached, so a transaction holds less than two batch
    /// sizes): under load the projector commits fewer, larger transactions, which write each
    /// touched index page once instead of once per small batch.
    async fn follow(
        &self,
        checkpoint: u64,
        shutdown: &CancellationToken,
    ) -> Result<(), ProjectorError> {
        let sink = self.sink();
        let mut ownership = Ownership::new(
            self.shard,
            Arc::clone(&self.store),
            self.retry,
            self.status.clone(),
        );
        let (batches, mut ready) = mpsc::channel(READ_AHEAD);
        let reading = shutdown.child_token();
        let reader = Reader {
            log: Arc::clone(&self.log),
            id: self.id.clone(),
            status: self.status.clone(),
            max_batch: self.max_batch,
            shard: self.shard,
            pause: self.retry.base,
        };
        tokio::spawn(reader.run(checkpoint + 1, batches, reading.clone()));
        let _stop_reading = reading.drop_guard();
        let mut lanes = self.spawn_followers(shutdown);
        // When the last transaction began (none yet: the first batch is applied at once).
        let mut began: Option<tokio::time::Instant> = None;
        loop {
            let decoded = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                decoded = ready.recv() => match decoded {
                    Some(decoded) => decoded,
                    // The reader stops by itself only on shutdown; anything else is a panic.
                    None if shutdown.is_cancelled() => return Ok(()),
                    None => return Err(ProjectorError::Task("the log reader stopped".into())),
                },
            };
            // What was read while the last batch was applied, and what comes within the window
            // since it began, goes into one transaction.
            let until = began.map(|began| began + self.window);
            let Some(decoded) = gather(decoded, &mut ready, until, self.max_batch, shutdown).await
            else {
                return Ok(());
            };
            began = Some(tokio::time::Instant::now());
            let masked = ownership.mask_decoded(decoded, shutdown).await;
            let handled = match masked {
                Ok(items) => {
                    for lane in &mut lanes {
                        lane.send(items.clone()).await?;
                    }
                    sink.handle(items, shutdown).await
                }
                Err(halt) => Err(halt),
            };
            match handled {
                Ok(()) => {}
                Err(Halt::Shutdown) => return Ok(()),
                Err(Halt::Failed(error)) => return Err(error.into()),
            }
        }
    }
}

/// Decoded batches read ahead of the one being applied.
const READ_AHEAD: usize = 8;

/// Batches a follower may be behind the projector it follows before the projector waits for it.
const FOLLOW_AHEAD: usize = 32;

/// A follower's transaction begins at most this often: the projector's batches that arrive sooner
/// after the previous one began are joined into the next (up to [`FOLLOWER_BATCH`] events), as the
/// projector joins its reads within [`COMMIT_WINDOW`]. The inbox's index on recipients takes a page
/// per recipient a transaction touches, so fewer, larger transactions write fewer pages; a change
/// reaches the inbox (`GET /me/notifications`, and the webhooks behind it) at most this much later.
pub const FOLLOWER_WINDOW: Duration = Duration::from_millis(50);

/// Most events in one follower transaction.
pub const FOLLOWER_BATCH: usize = 4 * MAX_BATCH;

/// Batches that can be joined into one transaction.
trait Batch {
    fn events(&self) -> usize;
    fn join(&mut self, next: Self);
}

impl Batch for Decoded {
    fn events(&self) -> usize {
        self.len()
    }

    fn join(&mut self, next: Self) {
        self.extend(next);
    }
}

impl Batch for Vec<Item> {
    fn events(&self) -> usize {
        self.len()
    }

    fn join(&mut self, next: Self) {
        self.extend(next);
    }
}

/// Join to `batch` the batches `ready` already holds and those that arrive before `until` (if it
/// is still ahead), up to `max` events; `None` on shutdown.
async fn gather<B: Batch>(
    mut batch: B,
    ready: &mut mpsc::Receiver<B>,
    until: Option<tokio::time::Instant>,
    max: usize,
    shutdown: &CancellationToken,
) -> Option<B> {
    while batch.events() < max {
        if let Ok(next) = ready.try_recv() {
            batch.join(next);
            continue;
        }
        let Some(until) = until.filter(|t| *t > tokio::time::Instant::now()) else {
            break;
        };
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep_until(until) => break,
            next = ready.recv() => match next {
                Some(next) => batch.join(next),
                None => break,
            },
        }
    }
    Some(batch)
}

/// A follower's queue and task.
struct Lane {
    batches: mpsc::Sender<Vec<Item>>,
    /// `None` once the task ended (on shutdown).
    task: Option<tokio::task::JoinHandle<Result<(), Halt>>>,
}

impl Lane {
    /// Queue `items` for the follower; if its task ended, its error.
    async fn send(&mut self, items: Vec<Item>) -> Result<(), ProjectorError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        if self.batches.send(items).await.is_ok() {
            return Ok(());
        }
        let ended = task.await;
        self.task = None;
        match ended {
            Ok(Ok(()) | Err(Halt::Shutdown)) => Ok(()),
            Ok(Err(Halt::Failed(error))) => Err(error.into()),
            Err(error) => Err(ProjectorError::Task(error.to_string())),
        }
    }
}

/// The projector's reading side: follows the log and hands on decoded batches, in order.
struct Reader {
    log: Arc<dyn EventLog>,
    id: String,
    status: ProjectorStatus,
    max_batch: usize,
    shard: ProjectorShard,
    /// Before subscribing again after the subscription ended.
    pause: Duration,
}

impl Reader {
    async fn run(self, from: u64, batches: mpsc::Sender<Decoded>, stop: CancellationToken) {
        let mut next = from;
        let mut subscription = self.log.subscribe(next);
        loop {
            let first = tokio::select! {
                () = stop.cancelled() => return,
                item = subscription.next() => item,
            };
            let batch = match first {
                Some(Ok(event)) => self.fill(event, &mut subscription),
                Some(Err(error)) => {
                    // The subscription retries by itself from where it was.
                    tracing::warn!(projector = %self.id, %error, "reading the event log failed");
                    self.status.record_error(&error);
                    continue;
                }
                None => {
                    tracing::warn!(projector = %self.id, "subscription ended; subscribing again");
                    tokio::time::sleep(self.pause).await;
                    // Everything before `next` is applied or on its way.
                    subscription = self.log.subscribe(next);
                    continue;
                }
            };
            if let Some(last) = batch.last() {
                self.status.set_head(last.position);
                next = last.position + 1;
            }
            let decoded = Decoded::new(batch, self.shard);
            tokio::select! {
                () = stop.cancelled() => return,
                sent = batches.send(decoded) => if sent.is_err() { return },
            }
        }
    }

    /// A batch: `first`, then whatever the subscription has ready, up to the batch size.
    fn fill(
        &self,
        first: RawRecordedEvent,
        subscription: &mut RawEventSubscription,
    ) -> Vec<RawRecordedEvent> {
        let mut batch = vec![first];
        while batch.len() < self.max_batch {
            match subscription.next().now_or_never() {
                Some(Some(Ok(event))) => batch.push(event),
                Some(Some(Err(error))) => {
                    self.status.record_error(&error);
                    break;
                }
                Some(None) | None => break,
            }
        }
        batch
    }
}

/// Keep the status's view of the log head fresh until `stop`.
async fn watch_head(log: Arc<dyn EventLog>, status: ProjectorStatus, stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEAD_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok(head) = log.head_position().await {
            status.set_head(head);
        }
    }
}
