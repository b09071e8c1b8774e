//! Two sharded projectors (0/2 and 1/2) over one real SQLite event log and one SQLite view store
//! build exactly the views an unsharded rebuild builds, and each view event is applied by exactly
//! one of them, also across a restart of one shard (its lodging cache read back from the store).

mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::join_all;
use projector::{merge_checkpoints, Projector, ProjectorShard, ViewShard, PROJECTOR_ID};
use readmodel::conformance::{dump, payouts, timeline::day, timeline::Timeline};
use readmodel::{AnyEvent, DeadLetter, ViewEvent, ViewStore};
use serde_json::json;
use support::recording::Recording;
use support::{quick_retry, Env, Running, WAIT};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const LODGINGS: usize = 12;
const RESERVATIONS: usize = 160;
/// Events of a request step: ReservationRequested, the saga's record, ApprovalRequested.
const REQUEST_STEP: usize = 3;

fn start(env: &Env, store: &Arc<Recording>, shard: ProjectorShard) -> Running {
    let store: Arc<dyn ViewStore> = store.clone();
    let projector = Projector::new(env.log.clone(), store)
        .with_retry(quick_retry())
        .with_max_batch(64)
        .with_shard(shard);
    assert_eq!(projector.id(), shard.checkpoint_id());
    let status = projector.status();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(projector.run(shutdown.clone()));
    Running {
        status,
        shutdown,
        task,
    }
}

/// The reservation an event of the history belongs to (`None`: the lodging's own listing events).
fn reservation_of(event: &ViewEvent) -> Option<Uuid> {
    match &event.event {
        AnyEvent::Reservation { reservation_id, .. }
        | AnyEvent::Payment { reservation_id, .. }
        | AnyEvent::Payout { reservation_id, .. } => Some(*reservation_id),
        AnyEvent::Lodging { event, .. } => event.reservation_id(),
        AnyEvent::Customer { .. } => None,
        AnyEvent::Saga | AnyEvent::Other => event
            .stream
            .strip_prefix("saga-")
            .and_then(|id| Uuid::parse_str(id).ok()),
    }
}

/// Registrations, then each reservation's flow (its events in order), one flow per reservation.
fn history() -> (Vec<ViewEvent>, Vec<Vec<ViewEvent>>) {
    let mut t = Timeline::new();
    let lodgings: Vec<String> = (0..LODGINGS).map(|n| format!("stay-{n}")).collect();
    for lodging in &lodgings {
        t.register(lodging, 3);
    }
    // Customers' contact details, split between the shards by customer: one erased.
    for n in 0..7 {
        t.profile(
            &format!("c-{n}"),
            &format!("guest {n}"),
            &format!("010-{n}"),
        );
    }
    t.erase("c-3");
    for i in 0..RESERVATIONS {
        let lodging = &lodgings[i % LODGINGS];
        let id = t.request(lodging, &format!("c-{}", i % 7), day((i % 6) as u64), 2);
        match i % 8 {
            0 => {}
            6 => t.deny(lodging, id),
            7 => t.expire(lodging, id),
            step => {
                t.grant(lodging, id);
                match step {
                    2 => {
                        // Completed stays: their hosts' payouts, some sent.
                        t.pay(id);
                        payouts::schedule(&mut t, lodging, id);
                        if i % 16 == 2 {
                            payouts::defer(&mut t, id, 1);
                            payouts::send(&mut t, id);
                        }
                    }
                    3 => t.defer(id),
                    4 => t.fail_payment(lodging, id),
                    5 => {
                        t.pay(id);
                        t.cancel_confirmed(lodging, id);
                    }
                    _ => {}
                }
            }
        }
    }
    let mut registrations = Vec::new();
    let mut flows: Vec<Vec<ViewEvent>> = Vec::new();
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    for event in t.events() {
        let Some(id) = reservation_of(event) else {
            registrations.push(event.clone());
            continue;
        };
        let slot = *index.entry(id).or_insert_with(|| {
            flows.push(Vec::new());
            flows.len() - 1
        });
        flows[slot].push(event.clone());
    }
    (registrations, flows)
}

/// Append flows side by side (each in its own order), as concurrent services would.
async fn append_flows<'a>(env: &Env, flows: impl Iterator<Item = &'a [ViewEvent]>) -> u64 {
    let heads = join_all(flows.map(|flow| async move {
        let mut head = 0;
        for event in flow {
            head = env.append_view_event(event).await;
        }
        head
    }))
    .await;
    heads.into_iter().max().unwrap_or(0)
}

async fn log_positions(env: &Env) -> (BTreeSet<u64>, u64) {
    use eventlog::EventLog;
    let events = env.log.read_all(1, 100_000).await.expect("read the log");
    let relevant = events
        .iter()
        .filter(|e| {
            let stream = e.stream.as_str();
            stream.starts_with("reservation-")
                || stream.starts_with("lodging-")
                || stream.starts_with("payment-")
                || stream.starts_with("payout-")
        })
        .map(|e| e.position)
        .collect();
    (relevant, events.last().map_or(0, |e| e.position))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_build_the_views_of_one_projector_each_event_applied_once() {
    let env = Env::new();
    let store = Arc::new(Recording::over(env.views.clone()));
    let shards = [
        ProjectorShard::new(0, 2).expect("shard"),
        ProjectorShard::new(1, 2).expect("shard"),
    ];
    let (registrations, flows) = history();
    assert_eq!(flows.len(), RESERVATIONS);
    env.append_all(&registrations).await;
    // Before the projectors start: whole flows of a quarter, the requests of another quarter.
    let quarter = RESERVATIONS / 4;
    append_flows(&env, flows[..quarter].iter().map(Vec::as_slice)).await;
    let requested = flows[quarter..2 * quarter].iter();
    append_flows(&env, requested.map(|f| &f[..REQUEST_STEP])).await;

    let zero = start(&env, &store, shards[0]);
    let one = start(&env, &store, shards[1]);
    // Live: the rest of those flows, and the requests of the second half.
    let rest = flows[quarter..2 * quarter].iter();
    append_flows(&env, rest.map(|f| &f[REQUEST_STEP..])).await;
    let requested = flows[2 * quarter..].iter();
    let head = append_flows(&env, requested.map(|f| &f[..REQUEST_STEP])).await;
    assert!(one.status.wait_for(head, WAIT).await, "shard 1 caught up");
    one.stop().await;

    // While shard 1 is down the second half goes on, with poison events; shard 1 comes back with
    // an empty lodging cache and reads the lodgings of those reservations from the store.
    let rest = flows[2 * quarter..].iter();
    append_flows(&env, rest.map(|f| &f[REQUEST_STEP..])).await;
    let some_reservation = reservation_of(&flows[RESERVATIONS - 1][0]).expect("a reservation");
    let poison = [
        (format!("reservation-{some_reservation}"), "Teleported"),
        ("reservation-not-a-uuid".to_string(), "ReservationExpired"),
        ("lodging-stay-3".to_string(), "LodgingDemolished"),
        ("lodging-stay-4".to_string(), "LodgingDemolished"),
    ];
    for (stream, event_type) in &poison {
        env.append_raw(stream, event_type, json!({})).await;
    }
    let (relevant, log_head) = log_positions(&env).await;
    let one = start(&env, &store, shards[1]);
    for running in [&zero, &one] {
        assert!(running.status.wait_for(log_head, WAIT).await, "caught up");
    }
    zero.stop().await;
    one.stop().await;

    // Each view event was applied (or parked) by exactly one shard, and every one was.
    let by_zero: BTreeSet<u64> = store
        .positions(&shards[0].checkpoint_id())
        .into_iter()
        .collect();
    let by_one: BTreeSet<u64> = store
        .positions(&shards[1].checkpoint_id())
        .into_iter()
        .collect();
    let applied = store.positions(&shards[0].checkpoint_id()).len()
        + store.positions(&shards[1].checkpoint_id()).len();
    assert_eq!(
        applied,
        by_zero.len() + by_one.len(),
        "no shard applied an event twice"
    );
    assert!(
        by_zero.is_disjoint(&by_one),
        "no event applied by both shards"
    );
    let union: BTreeSet<u64> = by_zero.union(&by_one).copied().collect();
    assert_eq!(union, relevant, "every view event applied by some shard");
    assert!(
        !by_zero.is_empty() && !by_one.is_empty(),
        "both shards worked"
    );

    // The merged views checkpoint is the log head; the views equal an unsharded rebuild.
    let views: Arc<dyn ViewStore> = store.clone();
    assert_eq!(merge_checkpoints(&views, 2).await.expect("merge"), log_head);
    assert_eq!(
        store.checkpoint(PROJECTOR_ID).await.expect("read"),
        log_head
    );
    let rebuilt = env.fresh_views("rebuilt.db");
    projector::rebuild(env.log.clone(), rebuilt.clone(), |_, _| {})
        .await
        .expect("rebuild");
    let (sharded, single) = (dump(&*env.views).await, dump(&*rebuilt).await);
    assert_eq!(sharded.lines().count(), single.lines().count());
    for (a, b) in sharded.lines().zip(single.lines()) {
        assert_eq!(a, b, "a sharded document differs from the rebuild");
    }
    let parked = |letters: Vec<DeadLetter>| {
        let mut positions: Vec<u64> = letters.iter().map(|d| d.position).collect();
        positions.sort_unstable();
        positions
    };
    let sharded_parked = parked(env.views.dead_letters().await.expect("read"));
    assert_eq!(
        sharded_parked.len(),
        poison.len(),
        "each poison event parked once"
    );
    assert_eq!(
        sharded_parked,
        parked(rebuilt.dead_letters().await.expect("read"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_shard_starts_from_the_views_checkpoint() {
    let env = Env::new();
    let shard = ProjectorShard::new(1, 2).expect("shard");
    let lodging = (0..)
        .map(|n| format!("stay-{n}"))
        .find(|l| shard.owns_lodging(l))
        .expect("some lodging of shard 1");
    let mut t = Timeline::new();
    t.register(&lodging, 2);
    let id = t.request(&lodging, "c-1", day(0), 2);
    t.grant(&lodging, id);
    let head = env.append_all(t.events()).await;
    let single = env.start(env.views.clone());
    assert!(single.status.wait_for(head, WAIT).await);
    single.stop().await;

    // Scaling out from one projector: each shard goes on from where the views are.
    let store = Arc::new(Recording::over(env.views.clone()));
    let running = start(&env, &store, shard);
    assert!(running.status.wait_for(head, WAIT).await);
    t.pay(id);
    let paid = env.append_all(&t.events()[t.events().len() - 2..]).await;
    assert!(running.status.wait_for(paid, WAIT).await);
    running.stop().await;
    let applied = store.positions(&shard.checkpoint_id());
    assert_eq!(applied.len(), 2, "the payment's two events: {applied:?}");
    assert!(
        applied.iter().all(|p| *p > head),
        "nothing before the views checkpoint applied again: {applied:?}"
    );
    assert_eq!(
        store
            .checkpoint(&shard.checkpoint_id())
            .await
            .expect("read"),
        paid
    );
}
