//! The generic repository over the SQLite adapter, with a tiny aggregate defined here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use domain::{Aggregate, DecodeError, DomainEvent, Timestamp};
use eventlog::conformance::new_event;
use eventlog::{
    AppendError, AppendOutcome, CommandContext, EventLog, ExpectedVersion, LogError, NewEvent,
    Position, RawEventSubscription, RawRecordedEvent, RecordedEvent, Repository, RepositoryError,
    Snapshots, SqliteEventLog, StreamVersion,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Tally {
    total: i64,
}

#[derive(Clone)]
enum TallyCommand {
    Add(i64),
    /// Add 1 while the total is below the limit, else refuse.
    Below(i64),
    Nothing,
    Refuse,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum TallyEvent {
    Added { n: i64 },
}
domain::impl_domain_event!(TallyEvent { Added });

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("refused")]
struct Refused;

struct TallyAggregate;

impl Aggregate for TallyAggregate {
    const STREAM_PREFIX: &'static str = "tally";
    type State = Tally;
    type Command = TallyCommand;
    type Event = TallyEvent;
    type Error = Refused;

    fn decide(
        state: &Tally,
        command: &TallyCommand,
        _: Timestamp,
    ) -> Result<Vec<TallyEvent>, Refused> {
        match command {
            TallyCommand::Add(n) => Ok(vec![TallyEvent::Added { n: *n }]),
            TallyCommand::Below(limit) if state.total < *limit => {
                Ok(vec![TallyEvent::Added { n: 1 }])
            }
            TallyCommand::Below(_) => Err(Refused),
            TallyCommand::Nothing => Ok(vec![]),
            TallyCommand::Refuse => Err(Refused),
        }
    }

    /// A tally of thousands is "big": its snapshots are spaced by its thousands.
    fn snapshot_weight(state: &Tally) -> u64 {
        u64::try_from(state.total / 1_000).unwrap_or(0)
    }

    fn evolve(state: Tally, event: &TallyEvent) -> Tally {
        match event {
            TallyEvent::Added { n } => Tally {
                total: state.total + n,
            },
        }
    }
}

fn ctx() -> CommandContext {
    CommandContext {
        correlation_id: Uuid::new_v4(),
        causation_id: Uuid::new_v4(),
        actor: "customer:c-1".into(),
        now: Utc::now(),
    }
}

fn fresh() -> (tempfile::TempDir, Arc<dyn EventLog>) {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteEventLog::open(dir.path().join("events.db")).unwrap();
    (dir, Arc::new(log))
}

/// Where `log` keeps its snapshots.
fn snapshots(log: &Arc<dyn EventLog>) -> Arc<dyn Snapshots> {
    log.snapshots().expect("the SQLite log keeps snapshots")
}

#[tokio::test]
async fn execute_appends_encoded_events_and_load_replays_them() {
    let (_dir, log) = fresh();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log)).with_snapshots(log.snapshots());
    let (first, second) = (ctx(), ctx());
    let done = repo
        .execute("t1", &TallyCommand::Add(2), &first)
        .await
        .unwrap();
    assert_eq!(
        (done.state.total, done.outcome.map(|o| o.last_version)),
        (2, Some(0))
    );
    let done = repo
        .execute("t1", &TallyCommand::Add(3), &second)
        .await
        .unwrap();
    assert_eq!((done.state.total, done.events.len()), (5, 1));

    let loaded = repo.load("t1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (5, Some(1)));
    let stored = log.read_stream("tally-t1", 0, 10).await.unwrap();
    assert_eq!(stored[0].event_type, "Added");
    assert_eq!(stored[0].data, json!({ "n": 2 }));
    assert_eq!(
        stored[0].schema_version,
        TallyEvent::Added { n: 2 }.schema_version()
    );
    assert_eq!(
        stored[0].event_id,
        eventlog::event_id(&first, "tally-t1", 0)
    );
    assert_eq!(stored[1].metadata.causation_id, second.causation_id);
    assert_eq!(stored[1].metadata.correlation_id, second.correlation_id);
    assert_eq!(stored[1].metadata.actor, "customer:c-1");
}

#[tokio::test]
async fn an_empty_decision_appends_nothing_and_a_refusal_is_a_domain_error() {
    let (_dir, log) = fresh();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log)).with_snapshots(log.snapshots());
    let done = repo
        .execute("t1", &TallyCommand::Nothing, &ctx())
        .await
        .unwrap();
    assert!(done.outcome.is_none() && done.events.is_empty());
    assert_eq!(log.stream_version("tally-t1").await.unwrap(), None);
    let refused = repo.execute("t1", &TallyCommand::Refuse, &ctx()).await;
    assert!(matches!(refused, Err(RepositoryError::Domain(Refused))));
}

#[tokio::test]
async fn a_re_executed_command_is_deduplicated_by_its_deterministic_ids() {
    let (_dir, log) = fresh();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log)).with_snapshots(log.snapshots());
    let same = ctx();
    let first = repo
        .execute("t1", &TallyCommand::Add(5), &same)
        .await
        .unwrap();
    let again = repo
        .execute("t1", &TallyCommand::Add(5), &same)
        .await
        .unwrap();
    assert_eq!(again.outcome, first.outcome);
    assert_eq!(
        again.state.total, 5,
        "the state must not count the duplicate"
    );
    assert_eq!(log.read_stream("tally-t1", 0, 10).await.unwrap().len(), 1);
    let other = repo
        .execute("t1", &TallyCommand::Add(5), &ctx())
        .await
        .unwrap();
    assert_eq!(
        other.state.total, 10,
        "another causation is another command"
    );
}

/// Delegates to a real log, but first slips a foreign event into the stream on the next `interfere`
/// appends; makes each append take at least `delay`; counts appends, stream reads and snapshot queries.
#[derive(Default)]
struct Interfering {
    inner: Option<Arc<dyn EventLog>>,
    interfere: AtomicUsize,
    delay: Duration,
    appends: AtomicUsize,
    snapshot_loads: AtomicUsize,
    stream_reads: AtomicUsize,
}

impl Interfering {
    fn over(inner: Arc<dyn EventLog>) -> Self {
        Self {
            inner: Some(inner),
            ..Self::default()
        }
    }

    fn inner(&self) -> &Arc<dyn EventLog> {
        self.inner.as_ref().expect("an inner log")
    }
}

#[async_trait]
impl EventLog for Interfering {
    async fn append(
        &self,
        s: &str,
        e: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self
            .interfere
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            let foreign = new_event("Added", json!({ "n": 100 }));
            self.inner()
                .append(s, ExpectedVersion::Any, vec![foreign])
                .await?;
        }
        self.inner().append(s, e, events).await
    }
    async fn read_stream(
        &self,
        s: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        self.inner().read_stream(s, from, limit).await
    }
    async fn stream_version(&self, s: &str) -> Result<StreamVersion, LogError> {
        self.inner().stream_version(s).await
    }
    async fn read_all(
        &self,
        from: Position,
        limit: usize,
    ) -> Result<Vec<RawRecordedEvent>, LogError> {
        self.inner().read_all(from, limit).await
    }
    async fn head_position(&self) -> Result<Position, LogError> {
        self.inner().head_position().await
    }
    fn subscribe(&self, from: Position) -> RawEventSubscription {
        self.inner().subscribe(from)
    }
}

#[async_trait]
impl Snapshots for Interfering {
    async fn load(&self, s: &str) -> Result<Option<(u64, serde_json::Value)>, LogError> {
        self.snapshot_loads.fetch_add(1, Ordering::SeqCst);
        snapshots(self.inner()).load(s).await
    }
    async fn save(&self, s: &str, v: u64, state: serde_json::Value) -> Result<(), LogError> {
        snapshots(self.inner()).save(s, v, state).await
    }
}

#[tokio::test]
async fn a_conflict_is_retried_on_reloaded_state_then_given_up() {
    let (_dir, log) = fresh();
    let interfering = Arc::new(Interfering::over(log));
    interfering.interfere.store(2, Ordering::SeqCst);
    let repo = Repository::<TallyAggregate>::new(interfering.clone())
        .with_snapshots(Some(interfering.clone()));
    let done = repo
        .execute("t1", &TallyCommand::Add(1), &ctx())
        .await
        .unwrap();
    assert_eq!(
        done.state.total, 201,
        "decided again on the state including both foreign events"
    );
    assert_eq!(done.outcome.map(|o| o.last_version), Some(2));

    interfering.interfere.store(1, Ordering::SeqCst);
    let repo = repo.max_retries(0);
    match repo.execute("t1", &TallyCommand::Add(1), &ctx()).await {
        Err(RepositoryError::Conflict { stream }) => assert_eq!(stream, "tally-t1"),
        other => panic!("expected Conflict, got {:?}", other.map(|e| e.state)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_on_one_aggregate_all_land() {
    let (_dir, log) = fresh();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log))
        .with_snapshots(log.snapshots())
        .max_retries(100);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.execute("t1", &TallyCommand::Add(1), &ctx())
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let loaded = repo.load("t1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (16, Some(15)));
}

/// A tally repository on `log` that snapshots every `every` events (or its state's weight).
fn snapshotting_every(log: &Arc<dyn EventLog>, every: u64) -> Repository<TallyAggregate> {
    Repository::<TallyAggregate>::new(Arc::clone(log))
        .with_snapshots(log.snapshots())
        .snapshot_every(every)
}

/// One `Add` command on tally `t1` per amount, in order.
async fn add_each(repo: &Repository<TallyAggregate>, amounts: &[i64]) {
    for &amount in amounts {
        repo.execute("t1", &TallyCommand::Add(amount), &ctx())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn snapshots_are_saved_every_n_events_and_used_by_load() {
    let (_dir, log) = fresh();
    let repo = snapshotting_every(&log, 3);
    add_each(&repo, &[1; 7]).await;
    assert_eq!(
        snapshots(&log).load("tally-t1").await.unwrap(),
        Some((5, json!({ "total": 6 })))
    );

    // A doctored snapshot shows that load starts from it and replays only the events after it.
    snapshots(&log)
        .save("tally-t1", 5, json!({ "total": 1000 }))
        .await
        .unwrap();
    assert_eq!(repo.load("t1").await.unwrap().state.total, 1001);

    // A snapshot that no longer deserializes is ignored: full replay.
    snapshots(&log)
        .save("tally-t1", 6, json!("not a tally"))
        .await
        .unwrap();
    let loaded = repo.load("t1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (7, Some(6)));
}

#[tokio::test]
async fn a_heavy_state_spaces_its_snapshots_by_its_weight() {
    let (_dir, log) = fresh();
    let repo = snapshotting_every(&log, 3);
    add_each(&repo, &[10_000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).await;
    // Weight 10: the first snapshot once 10 events are in (version 9), the next not before 19,
    // where every 3 events would have left one at version 11.
    assert_eq!(
        snapshots(&log).load("tally-t1").await.unwrap(),
        Some((9, json!({ "total": 10_000 })))
    );
}

#[tokio::test]
async fn an_undecodable_event_is_a_decode_error() {
    let (_dir, log) = fresh();
    log.append(
        "tally-t1",
        ExpectedVersion::NoStream,
        vec![new_event("Exploded", json!({}))],
    )
    .await
    .unwrap();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log)).with_snapshots(log.snapshots());
    match repo.load("t1").await {
        Err(RepositoryError::Decode(DecodeError::UnknownType(t))) => assert_eq!(t, "Exploded"),
        other => panic!(
            "expected a decode error, got {:?}",
            other.map(|l| l.version)
        ),
    }
}

#[tokio::test]
async fn a_cached_state_still_sees_events_appended_behind_its_back() {
    let (_dir, log) = fresh();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log))
        .with_snapshots(log.snapshots())
        .cache(8, 2);
    for _ in 0..3 {
        repo.execute("t1", &TallyCommand::Add(1), &ctx())
            .await
            .unwrap();
    }
    // Another repository (or process) appends without the cache knowing.
    let other = Repository::<TallyAggregate>::new(Arc::clone(&log))
        .with_snapshots(log.snapshots())
        .cache(0, 0);
    other
        .execute("t1", &TallyCommand::Add(100), &ctx())
        .await
        .unwrap();
    let loaded = repo.load("t1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (103, Some(3)));
    let done = repo
        .execute("t1", &TallyCommand::Add(1), &ctx())
        .await
        .unwrap();
    assert_eq!(done.state.total, 104);
    assert_eq!(done.outcome.map(|o| o.last_version), Some(4));
}

#[tokio::test]
async fn with_the_cache_snapshots_keep_their_cadence() {
    let (_dir, log) = fresh();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log))
        .with_snapshots(log.snapshots())
        .snapshot_every(3)
        .cache(8, 1);
    for _ in 0..7 {
        repo.execute("t1", &TallyCommand::Add(1), &ctx())
            .await
            .unwrap();
    }
    assert_eq!(
        snapshots(&log).load("tally-t1").await.unwrap(),
        Some((5, json!({ "total": 6 }))),
        "snapshots at versions 2 and 5, as without the cache"
    );
}

/// A log whose appends take at least 20 ms, so commands sent meanwhile queue up behind one.
fn slow(log: Arc<dyn EventLog>) -> Arc<Interfering> {
    Arc::new(Interfering {
        delay: Duration::from_millis(20),
        ..Interfering::over(log)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_commands_on_one_stream_are_decided_in_turn_and_written_together() {
    let (_dir, log) = fresh();
    let counted = slow(log);
    let repo = Repository::<TallyAggregate>::new(counted.clone())
        .with_snapshots(Some(counted.clone()))
        .max_retries(0);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.execute("t1", &TallyCommand::Add(1), &ctx()).await })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let done = task
            .await
            .unwrap()
            .expect("no conflict, even without retries");
        let version = done.outcome.expect("appended").last_version;
        assert!(
            done.state.total > i64::try_from(version).unwrap(),
            "each answer carries the state after the append that wrote its command"
        );
        versions.push(version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (0..64).collect::<Vec<u64>>());
    let appends = counted.appends.load(Ordering::SeqCst);
    assert!(appends < 64, "batched: {appends} appends for 64 commands");
    let loaded = repo.load("t1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (64, Some(63)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_within_a_batch_leaves_the_other_commands_to_land() {
    let (_dir, log) = fresh();
    let counted = slow(Arc::clone(&log));
    let repo =
        Repository::<TallyAggregate>::new(counted.clone()).with_snapshots(Some(counted.clone()));
    let first = tokio::spawn({
        let repo = repo.clone();
        async move { repo.execute("t1", &TallyCommand::Add(1), &ctx()).await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (c1, c2) = (ctx(), ctx());
    let (refused, added) = tokio::join!(
        repo.execute("t1", &TallyCommand::Refuse, &c1),
        repo.execute("t1", &TallyCommand::Add(2), &c2),
    );
    first.await.unwrap().unwrap();
    assert!(matches!(refused, Err(RepositoryError::Domain(Refused))));
    let added = added.unwrap();
    assert_eq!(added.state.total, 3);
    assert_eq!(counted.appends.load(Ordering::SeqCst), 2);
    assert_eq!(log.read_stream("tally-t1", 0, 10).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_executed_command_within_a_batch_is_still_deduplicated() {
    let (_dir, log) = fresh();
    let repo =
        Repository::<TallyAggregate>::new(slow(Arc::clone(&log))).with_snapshots(log.snapshots());
    let same = ctx();
    repo.execute("t1", &TallyCommand::Add(5), &same)
        .await
        .unwrap();
    let blocker = tokio::spawn({
        let repo = repo.clone();
        async move { repo.execute("t1", &TallyCommand::Add(1), &ctx()).await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Queued together behind the blocker: a repeat of the first command and a new one.
    let another = ctx();
    let (again, other) = tokio::join!(
        repo.execute("t1", &TallyCommand::Add(5), &same),
        repo.execute("t1", &TallyCommand::Add(2), &another),
    );
    blocker.await.unwrap().unwrap();
    assert_eq!(
        again.unwrap().state.total,
        6,
        "the stream as it is, counted once"
    );
    assert_eq!(other.unwrap().state.total, 8);
    let stored = log.read_stream("tally-t1", 0, 10).await.unwrap();
    assert_eq!(stored.len(), 3, "the repeat wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_carried_out_even_if_its_caller_stops_waiting() {
    let (_dir, log) = fresh();
    let repo =
        Repository::<TallyAggregate>::new(slow(Arc::clone(&log))).with_snapshots(log.snapshots());
    let waited = tokio::time::timeout(
        Duration::from_millis(1),
        repo.execute("t1", &TallyCommand::Add(7), &ctx()),
    )
    .await;
    assert!(waited.is_err(), "the append takes 20 ms");
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = log.read_stream("tally-t1", 0, 10).await.unwrap();
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stored.len(), 1);
    assert_eq!(repo.load("t1").await.unwrap().state.total, 7);
}

#[tokio::test]
async fn a_short_stream_is_loaded_without_asking_for_a_snapshot() {
    let (_dir, log) = fresh();
    let counted = Arc::new(Interfering::over(log));
    let repo = Repository::<TallyAggregate>::new(counted.clone())
        .with_snapshots(Some(counted.clone()))
        .snapshot_every(5)
        .cache(0, 0);
    for _ in 0..4 {
        repo.execute("t1", &TallyCommand::Add(1), &ctx())
            .await
            .unwrap();
    }
    assert_eq!(repo.load("t1").await.unwrap().state.total, 4);
    assert_eq!(counted.snapshot_loads.load(Ordering::SeqCst), 0);
    repo.execute("t1", &TallyCommand::Add(1), &ctx())
        .await
        .unwrap();
    let loaded = repo.load("t1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (5, Some(4)));
    assert_eq!(
        counted.snapshot_loads.load(Ordering::SeqCst),
        1,
        "a stream as long as the snapshot interval may have one"
    );
}

#[tokio::test]
async fn load_recent_answers_from_the_cache_without_a_read_and_reads_on_a_miss() {
    let (_dir, log) = fresh();
    let counted = Arc::new(Interfering::over(Arc::clone(&log)));
    let repo = Repository::<TallyAggregate>::new(counted.clone()).cache(8, 0);
    for _ in 0..3 {
        repo.execute("t1", &TallyCommand::Add(1), &ctx())
            .await
            .unwrap();
    }
    let reads = counted.stream_reads.load(Ordering::SeqCst);
    let recent = repo.load_recent("t1").await.unwrap();
    assert_eq!((recent.state.total, recent.version), (3, Some(2)));
    assert_eq!(
        counted.stream_reads.load(Ordering::SeqCst),
        reads,
        "a cached state is answered unread"
    );

    // Another process appends: the recent state is the one this process saw; `load` reads the log.
    let other = Repository::<TallyAggregate>::new(Arc::clone(&log)).cache(0, 0);
    other
        .execute("t1", &TallyCommand::Add(100), &ctx())
        .await
        .unwrap();
    assert_eq!(repo.load_recent("t1").await.unwrap().state.total, 3);
    let loaded = repo.load("t1").await.unwrap();
    assert_eq!((loaded.state.total, loaded.version), (103, Some(3)));
    assert_eq!(repo.load_recent("t1").await.unwrap().state.total, 103);

    // A stream this process keeps no state of is read.
    other
        .execute("t2", &TallyCommand::Add(7), &ctx())
        .await
        .unwrap();
    let reads = counted.stream_reads.load(Ordering::SeqCst);
    let missed = repo.load_recent("t2").await.unwrap();
    assert_eq!((missed.state.total, missed.version), (7, Some(0)));
    assert!(counted.stream_reads.load(Ordering::SeqCst) > reads);
}

#[tokio::test]
async fn a_cached_state_another_process_moved_past_is_never_the_basis_of_an_answer() {
    let (_dir, log) = fresh();
    let repo = Repository::<TallyAggregate>::new(Arc::clone(&log))
        .with_snapshots(log.snapshots())
        .cache(8, 2);
    let other = Repository::<TallyAggregate>::new(Arc::clone(&log))
        .with_snapshots(log.snapshots())
        .cache(0, 0);
    for _ in 0..3 {
        repo.execute("t1", &TallyCommand::Add(1), &ctx())
            .await
            .unwrap();
    }
    // Behind the cache's back: total 3 -> 103. On the cached 3 this would be accepted; the append
    // conflicts and the command is decided again on the stream as it is.
    other
        .execute("t1", &TallyCommand::Add(100), &ctx())
        .await
        .unwrap();
    let refused = repo.execute("t1", &TallyCommand::Below(50), &ctx()).await;
    assert!(matches!(refused, Err(RepositoryError::Domain(Refused))));

    // Behind its back again: 103 -> -97. On the cached 103 this would be refused without any
    // append to check it; a refusal is only given after reading the stream.
    other
        .execute("t1", &TallyCommand::Add(-200), &ctx())
        .await
        .unwrap();
    let done = repo
        .execute("t1", &TallyCommand::Below(50), &ctx())
        .await
        .expect("accepted on the stream as it is");
    assert_eq!(done.state.total, -96);
    assert_eq!(done.outcome.map(|o| o.last_version), Some(5));
}

#[tokio::test]
async fn a_command_that_opens_its_stream_is_decided_unread_and_checked_by_the_append() {
    let (_dir, log) = fresh();
    let counted = Arc::new(Interfering::over(log));
    let repo = Repository::<TallyAggregate>::new(counted.clone())
        .with_snapshots(Some(counted.clone()))
        .cache(0, 0);
    let opened = repo
        .execute_new("t1", &TallyCommand::Add(3), &ctx())
        .await
        .unwrap();
    assert_eq!(opened.state.total, 3);
    assert_eq!(opened.outcome.map(|o| o.last_version), Some(0));
    assert_eq!(counted.stream_reads.load(Ordering::SeqCst), 0, "not read");

    // The stream exists after all: decided again on what it holds (3 is not below 2), not on the
    // empty state the command assumed (which would accept it).
    let refused = repo
        .execute_new("t1", &TallyCommand::Below(2), &ctx())
        .await;
    assert!(matches!(refused, Err(RepositoryError::Domain(Refused))));
    let done = repo
        .execute_new("t1", &TallyCommand::Below(10), &ctx())
        .await
        .unwrap();
    assert_eq!(done.state.total, 4, "decided and folded on the stream's 3");
    assert_eq!(done.outcome.map(|o| o.last_version), Some(1));

    // A repeat of the opening command (same ids) is deduplicated; the answer is the stream's state.
    let first = ctx();
    repo.execute_new("t2", &TallyCommand::Add(5), &first)
        .await
        .unwrap();
    repo.execute("t2", &TallyCommand::Add(1), &ctx())
        .await
        .unwrap();
    let repeat = repo
        .execute_new("t2", &TallyCommand::Add(5), &first)
        .await
        .unwrap();
    assert_eq!(repeat.state.total, 6, "the stream as it is, not 5");
    assert_eq!(
        repo.load("t2").await.unwrap().version,
        Some(1),
        "nothing appended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_with_their_own_retry_counts_share_one_worker_and_one_cache() {
    let (_dir, log) = fresh();
    let counted = slow(log);
    let repo = Repository::<TallyAggregate>::new(counted.clone());
    let (patient, impatient) = (repo.clone().max_retries(100), repo.clone().max_retries(0));
    let tasks: Vec<_> = (0..32)
        .map(|n| {
            let repo = if n % 2 == 0 { &patient } else { &impatient }.clone();
            tokio::spawn(async move { repo.execute("t1", &TallyCommand::Add(1), &ctx()).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("no conflict between clones");
    }
    let stats = repo.stats();
    assert_eq!(stats, impatient.stats(), "clones share their counters");
    assert_eq!((stats.commands, stats.conflicts), (32, 0));
    let appends = counted.appends.load(Ordering::SeqCst);
    assert_eq!(stats.appends, appends as u64);
    assert!(
        appends < 32,
        "one worker batched both clones' commands: {appends} appends"
    );
    assert!(stats.workers < 32, "{stats:?}");
    let loaded = repo.load("t1").await.unwrap();
    assert_eq!(loaded.state.total, 32);
}

#[tokio::test]
async fn each_command_is_retried_as_many_times_as_its_own_clone_allows() {
    let (_dir, log) = fresh();
    let interfering = Arc::new(Interfering::over(log));
    let repo = Repository::<TallyAggregate>::new(interfering.clone());
    let impatient = repo.clone().max_retries(0);
    interfering.interfere.store(1, Ordering::SeqCst);
    match impatient.execute("t1", &TallyCommand::Add(1), &ctx()).await {
        Err(RepositoryError::Conflict { stream }) => assert_eq!(stream, "tally-t1"),
        other => panic!("expected Conflict, got {:?}", other.map(|e| e.state)),
    }
    interfering.interfere.store(2, Ordering::SeqCst);
    let done = repo
        .execute("t1", &TallyCommand::Add(1), &ctx())
        .await
        .expect("the default clone re-decides past two conflicts");
    assert_eq!(done.state.total, 301);
    let stats = impatient.stats();
    assert_eq!((stats.commands, stats.conflicts, stats.appends), (2, 3, 1));
}

#[tokio::test]
async fn the_write_model_keeps_a_new_lodging_from_its_first_event() {
    use domain::lodging::{ApprovalMode, LodgingCommand, LodgingProfile};
    use domain::stay::Stay;

    let (_dir, log) = fresh();
    let counted = Arc::new(Interfering::over(Arc::clone(&log)));
    let lodgings = eventlog::Repositories::new(counted.clone()).lodgings;
    let profile = LodgingProfile {
        lodging_id: "hanok-1".to_string(),
        name: "Hanok".to_string(),
        nightly_rate: 100_000,
        currency: "KRW".to_string(),
        rooms: 100,
        max_guests: 4,
        approval_mode: ApprovalMode::Manual,
        admin_id: "admin-1".to_string(),
        timezone: domain::Tz::Asia__Seoul,
        fee_bps: 1_000,
    };
    lodgings
        .execute_new("hanok-1", &LodgingCommand::Register(profile), &ctx())
        .await
        .unwrap();
    let reads = counted.stream_reads.load(Ordering::SeqCst);
    let check_in = Utc::now().date_naive() + chrono::TimeDelta::days(30);
    // A handful of requests: far fewer events than `Repository::new` keeps a stream's state from.
    for _ in 0..5 {
        let stay = Stay {
            check_in,
            check_out: check_in + chrono::TimeDelta::days(1),
            guests: 2,
            rooms: 1,
        };
        let command = LodgingCommand::RequestApproval {
            reservation_id: Uuid::new_v4(),
            stay,
        };
        let executed = lodgings.execute("hanok-1", &command, &ctx()).await.unwrap();
        assert_eq!(executed.events.len(), 1, "{:?}", executed.events);
    }
    assert_eq!(
        counted.stream_reads.load(Ordering::SeqCst),
        reads,
        "each request was decided on the kept state, the lodging's stream unread"
    );
    let loaded = lodgings.load("hanok-1").await.unwrap();
    assert_eq!(loaded.version, Some(5));
    assert_eq!(loaded.state.requests.len(), 5);
}
