//! The lease policy of a shard group over a real lease file, with a fake shard workload.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ShardGroup, ShardWork};
use crate::lease::LeaseTable;
use crate::scale_out::Plan;

/// Runs "shards" that only record that they are running; shard `fail` fails at once.
#[derive(Default)]
struct Fake {
    running: Mutex<BTreeSet<u32>>,
    fail: Option<u32>,
}

impl Fake {
    fn running(&self) -> BTreeSet<u32> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ShardWork for Fake {
    fn run(
        self: Arc<Self>,
        index: u32,
        stop: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        async move {
            anyhow::ensure!(self.fail != Some(index), "shard {index} is broken");
            self.running.lock().expect("lock").insert(index);
            stop.cancelled().await;
            self.running.lock().expect("lock").remove(&index);
            Ok(())
        }
        .boxed()
    }

    fn describe(&self, _index: u32) -> Value {
        Value::Null
    }
}

fn plan(shards: u32, instances: u32, ttl_ms: u64) -> Plan {
    Plan {
        kind: "test",
        shards,
        instance: 0,
        instances,
        ttl: Duration::from_millis(ttl_ms),
        renew: Duration::from_millis(ttl_ms / 4),
    }
}

struct Started {
    work: Arc<Fake>,
    table: LeaseTable,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

fn start(plan: Plan, work: Fake) -> Started {
    let dir = tempfile::tempdir().expect("dir");
    let table = LeaseTable::open(dir.path().join("leases.db")).expect("open");
    let work = Arc::new(work);
    let group = ShardGroup::new(plan, Arc::new(table.clone()), Arc::clone(&work));
    let stop = CancellationToken::new();
    let task = tokio::spawn(group.run(stop.clone()));
    Started {
        work,
        table,
        stop,
        task,
        _dir: dir,
    }
}

async fn wait_running(work: &Fake, expected: &[u32]) {
    let expected: BTreeSet<u32> = expected.iter().copied().collect();
    for _ in 0..500 {
        if work.running() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("running {:?}, never {expected:?}", work.running());
}

/// Hold `name` as `owner` for a minute.
async fn hold(table: &LeaseTable, name: &str, owner: &str) -> bool {
    let (name, owner) = (name.to_string(), owner.to_string());
    table
        .with(Duration::from_secs(60), move |l| l.acquire(&name, &owner))
        .await
        .expect("acquire")
}

#[tokio::test]
async fn a_lost_lease_stops_the_shard_at_once() {
    let plan = plan(1, 1, 400);
    let s = start(plan, Fake::default());
    wait_running(&s.work, &[0]).await;
    // Another owner takes the lease (as if it had expired unnoticed): the runner stops at the
    // next round and the group does not take it back while the other owner holds it.
    let stolen = s
        .table
        .with(Duration::from_secs(60), |l| {
            l.release(
                "test/shard-0-of-1",
                &l.get("test/shard-0-of-1")?.expect("held").owner,
            )?;
            l.acquire("test/shard-0-of-1", "thief")
        })
        .await
        .expect("steal");
    assert!(stolen);
    wait_running(&s.work, &[]).await;
    tokio::time::sleep(plan.ttl).await;
    assert!(
        s.work.running().is_empty(),
        "not taken back from a live owner"
    );
    s.stop.cancel();
    s.task.await.expect("joins").expect("clean stop");
}

#[tokio::test]
async fn an_orphan_shard_is_taken_over_after_a_ttl_and_handed_back() {
    let plan = plan(2, 2, 800);
    let s = start(plan, Fake::default());
    wait_running(&s.work, &[0]).await;
    tokio::time::sleep(plan.ttl / 2).await;
    assert_eq!(
        s.work.running(),
        [0].into(),
        "not before the process is up one TTL"
    );
    // Nobody is instance 1: its shard is taken over.
    wait_running(&s.work, &[0, 1]).await;
    // Instance 1 shows up: shard 1 is handed back and its lease released for it.
    assert!(hold(&s.table, &plan.member_lease(1), "peer").await);
    wait_running(&s.work, &[0]).await;
    let mut free = false;
    for _ in 0..100 {
        if hold(&s.table, &plan.shard_lease(1), "peer").await {
            free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(free, "the lease of shard 1 was released");
    s.stop.cancel();
    s.task.await.expect("joins").expect("clean stop");
    let member = plan.member_lease(0);
    let left = s
        .table
        .with(Duration::ZERO, move |l| l.get(&member))
        .await
        .expect("read");
    assert_eq!(left, None, "the member lease is released on shutdown");
}

#[tokio::test]
async fn a_failed_shard_fails_the_group() {
    let s = start(
        plan(1, 1, 400),
        Fake {
            fail: Some(0),
            ..Fake::default()
        },
    );
    let outcome = tokio::time::timeout(Duration::from_secs(5), s.task)
        .await
        .expect("ends")
        .expect("joins");
    let error = format!("{:#}", outcome.expect_err("fails"));
    assert!(error.contains("shard 0 is broken"), "{error}");
}
