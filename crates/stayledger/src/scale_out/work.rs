//! The two scaled-out consumers as services: `projector --shards N` (one [`Projector`] per held
//! shard, plus the task that merges the shards' checkpoints into the views checkpoint that
//! query-api reads) and `saga --shards N` (one [`SagaRunner`] per held shard, each over its own
//! timer file `saga-{i}-of-{n}.db`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use domain::saga::SagaPolicy;
use eventlog::{EventLog, Repositories};
use futures::future::BoxFuture;
use futures::FutureExt;
use projector::{
    merge_checkpoints_of, Projector, ProjectorShard, ProjectorStatus, ViewShard, PROJECTOR_ID,
};
use readmodel::{ProjectionTarget, ViewStore, Views};
use saga::{PaymentGateway, SagaConfig, SagaRunner, SagaStatus, Shard};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::group::{ShardGroup, ShardWork};
use super::Plan;
use crate::cli::{ProjectorArgs, SagaArgs};
use crate::data_dir;
use crate::lease::{LeaseStore, MongoLeases};
use crate::lifecycle::Service;
use crate::ops::{with_ops, Probes};
use crate::stores;
use crate::supervise::shutdown_on_signals;

/// How often the shards' checkpoints are merged into the views checkpoint.
const MERGE_EVERY: Duration = Duration::from_millis(50);

pub(super) fn status_of<T: Clone>(map: &Mutex<HashMap<u32, T>>, index: u32) -> Option<T> {
    map.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&index)
        .cloned()
}

struct ProjectorShards {
    log: Arc<dyn EventLog>,
    views: Arc<dyn ViewStore>,
    count: u32,
    statuses: Mutex<HashMap<u32, ProjectorStatus>>,
}

impl ShardWork for ProjectorShards {
    fn run(
        self: Arc<Self>,
        index: u32,
        stop: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        async move {
            let shard = ProjectorShard::new(index, self.count)?;
            let projector =
                Projector::new(Arc::clone(&self.log), Arc::clone(&self.views)).with_shard(shard);
            self.statuses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, projector.status());
            projector
                .run(stop)
                .await
                .with_context(|| format!("projector shard {index}"))
        }
        .boxed()
    }

    fn describe(&self, index: u32) -> Value {
        let checkpoint = ProjectorShard::new(index, self.count)
            .map(ProjectorShard::checkpoint_id)
            .unwrap_or_default();
        describe_projector(status_of(&self.statuses, index), &checkpoint)
    }
}

struct SagaShards {
    /// The process's write model, shared by the shards it holds.
    repositories: Repositories,
    gateway: Arc<dyn PaymentGateway>,
    policy: SagaPolicy,
    data_dir: PathBuf,
    count: u32,
    statuses: Mutex<HashMap<u32, SagaStatus>>,
}

impl ShardWork for SagaShards {
    fn run(
        self: Arc<Self>,
        index: u32,
        stop: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        async move {
            let shard = Shard::new(index, self.count)?;
            let timers = Arc::new(data_dir::timer_store(&self.data_dir, shard)?);
            let config = SagaConfig {
                shard,
                ..SagaConfig::default()
            };
            let runner = SagaRunner::new(
                self.repositories.clone(),
                Arc::clone(&self.gateway),
                timers,
                self.policy,
                config,
            );
            self.statuses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, runner.status());
            runner
                .run(stop)
                .await
                .with_context(|| format!("saga shard {index}"))
        }
        .boxed()
    }

    fn describe(&self, index: u32) -> Value {
        status_of(&self.statuses, index)
            .and_then(|status| serde_json::to_value(status.snapshot()).ok())
            .unwrap_or(Value::Null)
    }
}

/// `stayledger projector --shards N --instance K`.
pub async fn projector(args: ProjectorArgs) -> anyhow::Result<()> {
    let Some(plan) = args.scale_out.plan("projector")? else {
        anyhow::bail!("scale-out needs --shards");
    };
    let shutdown = shutdown_on_signals();
    let data_dir = &args.log.store.data_dir;
    let Some(opened) = stores::open_log(&args.log, &shutdown).await? else {
        return Ok(());
    };
    let Some(views) = stores::open_views(&args.views, data_dir, &shutdown).await? else {
        return Ok(());
    };
    // With the views on MongoDB the leases go there too, so instances may run on several hosts.
    let leases: Arc<dyn LeaseStore> = match &args.views.mongodb_url {
        Some(url) => {
            let leases = MongoLeases::connect(url.expose(), &args.views.mongodb_db).await?;
            tracing::info!(store = "mongodb", db = %args.views.mongodb_db, "projector leases");
            Arc::new(leases)
        }
        None => Arc::new(data_dir::lease_table(data_dir)?),
    };
    let work = Arc::new(ProjectorShards {
        log: Arc::clone(&opened.log),
        views: Arc::clone(&views),
        count: plan.shards,
        statuses: Mutex::default(),
    });
    let group = ShardGroup::new(plan, leases, work);
    let routes = group.routes();
    let probes = Probes {
        log: Some(opened.log),
        views: Some(Arc::clone(&views)),
        view_checkpoint: Some(PROJECTOR_ID.to_string()),
        max_projector_lag: args.max_projector_lag,
        ..Probes::default()
    };
    let mut service = Service::new("projector", shutdown);
    service.spawn(|stop| group.run(stop));
    let merged = Arc::new(Views(views)) as Arc<dyn ProjectionTarget>;
    service.spawn(|stop| keep_merged(merged, PROJECTOR_ID, plan, stop));
    service
        .serve(args.addr, &args.listen, with_ops(routes, probes))
        .await
}

/// Keep the checkpoint `base` of `target` at the lowest of its `plan.shards` shards' (any instance
/// may: it only moves up): the views' for the projector, the inbox's for the notifier.
pub(super) async fn keep_merged(
    target: Arc<dyn ProjectionTarget>,
    base: &'static str,
    plan: Plan,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(MERGE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Err(error) = merge_checkpoints_of(target.as_ref(), base, plan.shards).await {
            tracing::warn!(%error, checkpoint = base, "merging the shards' checkpoints failed; retrying");
        }
    }
}

/// What `/shards` shows of a projector shard's `status` (checkpoint `checkpoint`).
pub(super) fn describe_projector(status: Option<ProjectorStatus>, checkpoint: &str) -> Value {
    status.map_or(Value::Null, |status| {
        json!({"checkpoint": checkpoint, "applied_position": status.applied_position(),
            "lag": status.lag(), "events_projected": status.events_projected(),
            "last_error": status.last_error()})
    })
}

/// `stayledger saga --shards N --instance K`.
pub async fn saga(args: SagaArgs) -> anyhow::Result<()> {
    let Some(plan) = args.scale_out.plan("saga")? else {
        anyhow::bail!("scale-out needs --shards");
    };
    anyhow::ensure!(
        args.shard == Shard::ALL,
        "--shard i/n and --shards N exclude each other (a fixed shard, or leased ones)"
    );
    let shutdown = shutdown_on_signals();
    let (policy, gateway) = stores::saga_policy_and_gateway(&args)?;
    let data_dir = args.log.store.data_dir.clone();
    let leases: Arc<dyn LeaseStore> = Arc::new(data_dir::lease_table(&data_dir)?);
    let Some(opened) = stores::open_log(&args.log, &shutdown).await? else {
        return Ok(());
    };
    let work = Arc::new(SagaShards {
        repositories: Repositories::new(Arc::clone(&opened.log)),
        gateway,
        policy,
        data_dir,
        count: plan.shards,
        statuses: Mutex::default(),
    });
    let group = ShardGroup::new(plan, leases, work);
    let routes = group.routes();
    let probes = Probes {
        log: Some(opened.log),
        writer: opened.writer,
        ..Probes::default()
    };
    let mut service = Service::new("saga", shutdown);
    service.spawn(|stop| group.run(stop));
    service
        .serve(args.addr, &args.listen, with_ops(routes, probes))
        .await
}
