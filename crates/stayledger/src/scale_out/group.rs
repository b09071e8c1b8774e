//! One process's share of the shards of a consumer (`projector` or `saga`), held through leases.
//!
//! Every `renew` interval, in one lease transaction: renew this instance's member lease, then take
//! or renew the lease of each shard it should run: its preferred shards (`i % instances ==
//! instance`) always; another instance's shard only while that instance has no live member lease
//! (it is down) and, for a shard this process does not run yet, only once the process has been up
//! for one TTL (so instances started together first take their own). A shard whose preferred
//! instance is back is not renewed: its runner stops and the lease is released for it.
//!
//! Fencing: a runner stops as soon as its lease is not renewed, and at the latest `ttl - renew`
//! after the start of the last round that renewed it, before the lease can expire; a shard is not
//! started again while its previous runner is still stopping.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::Plan;
use crate::lease::{LeaseError, LeaseStore};

/// The work of one shard: runs until `stop` is cancelled.
pub(crate) trait ShardWork: Send + Sync + 'static {
    fn run(
        self: Arc<Self>,
        index: u32,
        stop: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<()>>;
    /// What `/shards` shows about a shard this process runs.
    fn describe(&self, index: u32) -> Value;
}

/// Why a shard's runner is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// A round did not renew its lease: another owner has it, or its preferred instance is back.
    NotRenewed,
    /// No round renewed its lease in time (the lease table is unreachable or slow).
    Late,
    Shutdown,
}

impl Stop {
    fn reason(self) -> &'static str {
        match self {
            Self::NotRenewed => {
                "its lease was not renewed (taken by another owner, or handed back)"
            }
            Self::Late => "its lease could not be renewed in time",
            Self::Shutdown => "the process is stopping",
        }
    }
}

struct Runner {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// When the runner must have stopped unless a round renews its lease first.
    valid_until: Instant,
}

/// This process's shards of one consumer.
pub(crate) struct ShardGroup<W: ShardWork> {
    plan: Plan,
    owner: String,
    leases: Arc<dyn LeaseStore>,
    work: Arc<W>,
    started: Instant,
    running: BTreeMap<u32, Runner>,
    /// Runners told to stop, with the release of their lease once they have.
    retiring: BTreeMap<u32, JoinHandle<()>>,
    shown: Arc<Mutex<BTreeSet<u32>>>,
}

/// Which shards to hold after this round (policy over the lease store; each lease taken atomically).
async fn decide(
    leases: &dyn LeaseStore,
    plan: &Plan,
    owner: &str,
    running: &BTreeSet<u32>,
    blocked: &BTreeSet<u32>,
    may_take_over: bool,
) -> Result<BTreeSet<u32>, LeaseError> {
    let ttl = plan.ttl;
    if !leases
        .acquire(&plan.member_lease(plan.instance), owner, ttl)
        .await?
    {
        tracing::warn!(
            consumer = plan.kind,
            instance = plan.instance,
            "another live process holds this instance's member lease; waiting for it to expire"
        );
    }
    let mut held = BTreeSet::new();
    for shard in (0..plan.shards).filter(|s| !blocked.contains(s)) {
        let preferred = plan.preferred_instance(shard);
        let wanted = preferred == plan.instance
            || (!leases
                .held_by_other(&plan.member_lease(preferred), owner)
                .await?
                && (running.contains(&shard) || may_take_over));
        if wanted && leases.acquire(&plan.shard_lease(shard), owner, ttl).await? {
            held.insert(shard);
        }
    }
    Ok(held)
}

impl<W: ShardWork> ShardGroup<W> {
    pub(crate) fn new(plan: Plan, leases: Arc<dyn LeaseStore>, work: Arc<W>) -> Self {
        let owner = format!(
            "{}-{}-pid{}-{}",
            plan.kind,
            plan.instance,
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            plan,
            owner,
            leases,
            work,
            started: Instant::now(),
            running: BTreeMap::new(),
            retiring: BTreeMap::new(),
            shown: Arc::default(),
        }
    }

    /// `GET /shards`: the shards this process runs now.
    pub(crate) fn routes(&self) -> axum::Router {
        let (plan, owner) = (self.plan, self.owner.clone());
        let (shown, work) = (Arc::clone(&self.shown), Arc::clone(&self.work));
        let handler = move || {
            let held = shown.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let running: Vec<Value> = held
                .iter()
                .map(|s| json!({"shard": s, "status": work.describe(*s)}))
                .collect();
            let body = json!({"consumer": plan.kind, "instance": plan.instance,
                "instances": plan.instances, "shards": plan.shards, "owner": owner,
                "running": running});
            async move { axum::Json(body) }
        };
        axum::Router::new().route("/shards", axum::routing::get(handler))
    }

    /// Hold leases and run shards until `shutdown`; then stop every runner and release.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(consumer = self.plan.kind, owner = %self.owner, shards = self.plan.shards,
            instance = self.plan.instance, "holding shards through leases");
        let mut tick = tokio::time::interval(self.plan.renew);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let result = loop {
            let fence_at = self.running.values().map(|r| r.valid_until).min();
            let fence_at = fence_at.unwrap_or_else(|| Instant::now() + self.plan.ttl);
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                _ = tick.tick() => {
                    if let Err(error) = self.round().await {
                        break Err(error);
                    }
                }
                () = tokio::time::sleep_until(fence_at) => self.fence(),
            }
        };
        self.stop_all().await;
        result
    }

    async fn round(&mut self) -> anyhow::Result<()> {
        self.reap().await?;
        self.retiring.retain(|_, task| !task.is_finished());
        let started = Instant::now();
        let (plan, owner) = (self.plan, self.owner.clone());
        let running: BTreeSet<u32> = self.running.keys().copied().collect();
        let blocked: BTreeSet<u32> = self.retiring.keys().copied().collect();
        let may_take_over = started.duration_since(self.started) >= plan.ttl;
        let leases = Arc::clone(&self.leases);
        let decided =
            async move { decide(&*leases, &plan, &owner, &running, &blocked, may_take_over).await };
        match tokio::time::timeout(plan.renew, decided).await {
            Ok(Ok(held)) => self.settle(&held, started),
            Ok(Err(error)) => {
                tracing::warn!(
                    consumer = plan.kind,
                    error = format!("{error:#}"),
                    "lease round failed"
                );
            }
            Err(_) => tracing::warn!(consumer = plan.kind, "lease round timed out"),
        }
        self.fence();
        Ok(())
    }

    /// Run exactly the shards of `held` (renewed at `renewed`).
    fn settle(&mut self, held: &BTreeSet<u32>, renewed: Instant) {
        let lost: Vec<u32> = self
            .running
            .keys()
            .filter(|s| !held.contains(s))
            .copied()
            .collect();
        for shard in lost {
            self.retire(shard, Stop::NotRenewed);
        }
        let valid_until = renewed + self.plan.ttl.saturating_sub(self.plan.renew);
        for shard in held {
            if let Some(runner) = self.running.get_mut(shard) {
                runner.valid_until = valid_until;
                continue;
            }
            tracing::info!(
                consumer = self.plan.kind,
                shard,
                "lease taken: starting the shard"
            );
            let stop = CancellationToken::new();
            let task = tokio::spawn(Arc::clone(&self.work).run(*shard, stop.clone()));
            let runner = Runner {
                stop,
                task,
                valid_until,
            };
            self.running.insert(*shard, runner);
        }
        self.show();
    }

    /// Stop the runners whose lease may be about to expire.
    fn fence(&mut self) {
        let now = Instant::now();
        let late: Vec<u32> = self
            .running
            .iter()
            .filter(|(_, r)| r.valid_until <= now)
            .map(|(s, _)| *s)
            .collect();
        for shard in late {
            self.retire(shard, Stop::Late);
        }
    }

    /// Stop a shard's runner now; release its lease once it has stopped.
    fn retire(&mut self, shard: u32, why: Stop) {
        let Some(runner) = self.running.remove(&shard) else {
            return;
        };
        if why == Stop::Shutdown {
            tracing::info!(
                consumer = self.plan.kind,
                shard,
                why = why.reason(),
                "stopping the shard"
            );
        } else {
            tracing::warn!(
                consumer = self.plan.kind,
                shard,
                why = why.reason(),
                "stopping the shard"
            );
        }
        runner.stop.cancel();
        let (leases, owner, name) = (
            self.leases.clone(),
            self.owner.clone(),
            self.plan.shard_lease(shard),
        );
        let retiring = tokio::spawn(async move {
            match runner.task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(
                    shard,
                    error = format!("{error:#}"),
                    "shard failed while stopping"
                ),
                Err(error) => tracing::error!(shard, %error, "shard task ended abnormally"),
            }
            if let Err(error) = leases.release(&name, &owner).await {
                tracing::warn!(
                    shard,
                    error = format!("{error:#}"),
                    "releasing the lease failed; it will expire"
                );
            }
        });
        self.retiring.insert(shard, retiring);
        self.show();
    }

    /// A runner that ended without being told to is a failure of this process.
    async fn reap(&mut self) -> anyhow::Result<()> {
        let Some(shard) = self
            .running
            .iter()
            .find(|(_, r)| r.task.is_finished())
            .map(|(s, _)| *s)
        else {
            return Ok(());
        };
        let Some(runner) = self.running.remove(&shard) else {
            return Ok(());
        };
        let outcome = runner.task.await.context("shard task panicked")?;
        outcome.with_context(|| format!("{} shard {shard}", self.plan.kind))?;
        anyhow::bail!("{} shard {shard} stopped by itself", self.plan.kind)
    }

    /// Shutdown: stop every runner, wait for them, release this process's leases.
    async fn stop_all(&mut self) {
        let shards: Vec<u32> = self.running.keys().copied().collect();
        for shard in shards {
            self.retire(shard, Stop::Shutdown);
        }
        for (_, retiring) in std::mem::take(&mut self.retiring) {
            let _ = retiring.await;
        }
        let (name, owner) = (
            self.plan.member_lease(self.plan.instance),
            self.owner.clone(),
        );
        if let Err(error) = self.leases.release(&name, &owner).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "releasing the member lease failed"
            );
        }
        tracing::info!(
            consumer = self.plan.kind,
            "shards stopped and leases released"
        );
    }

    fn show(&self) {
        let mut shown = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        *shown = self.running.keys().copied().collect();
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
