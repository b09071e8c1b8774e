//! `stayledger notifier --shards N --instance K`: each held shard builds its lodgings' part of the
//! inbox (checkpoint `notifier-{i}-of-{n}`, merged into `notifier`) and sends the webhooks of its
//! subscriptions (split by subscription id), so no delivery is sent by two instances while their
//! leases hold; a dead instance's shards, inbox and webhooks both, are taken over once its
//! leases expire. Every instance runs the dispatcher (queuing is idempotent) and the merge of the
//! inbox checkpoint (it only moves up).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use eventlog::{EventLog, Partition};
use futures::future::BoxFuture;
use futures::FutureExt;
use notifier::WebhookParts;
use projector::{shard_checkpoint, Projector, ProjectorShard, ProjectorStatus};
use readmodel::inbox::NOTIFIER_ID;
use readmodel::ProjectionTarget;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::group::{ShardGroup, ShardWork};
use super::work::{describe_projector, keep_merged, status_of};
use super::Plan;
use crate::cli::NotifierArgs;
use crate::data_dir;
use crate::lease::{LeaseStore, MongoLeases};
use crate::lifecycle::Service;
use crate::ops::{with_ops, Probes};
use crate::services::notifier::{dispatch, send, Opened};

struct NotifierShards {
    log: Arc<dyn EventLog>,
    parts: WebhookParts,
    count: u32,
    statuses: Mutex<HashMap<u32, ProjectorStatus>>,
}

impl ShardWork for NotifierShards {
    fn run(
        self: Arc<Self>,
        index: u32,
        stop: CancellationToken,
    ) -> BoxFuture<'static, anyhow::Result<()>> {
        async move {
            let shard = ProjectorShard::new(index, self.count)?;
            let inbox = Arc::clone(&self.parts.inbox) as Arc<dyn ProjectionTarget>;
            let projector = Projector::for_target(Arc::clone(&self.log), inbox)
                .with_shard_of(NOTIFIER_ID, shard);
            self.statuses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, projector.status());
            let senders = send(
                &self.parts,
                Partition::new(index, self.count)?,
                stop.clone(),
            );
            let (built, sent) = tokio::join!(projector.run(stop), senders);
            built.with_context(|| format!("notifier shard {index}"))?;
            sent
        }
        .boxed()
    }

    fn describe(&self, index: u32) -> Value {
        let checkpoint = ProjectorShard::new(index, self.count)
            .map(|shard| shard_checkpoint(NOTIFIER_ID, shard))
            .unwrap_or_default();
        describe_projector(status_of(&self.statuses, index), &checkpoint)
    }
}

/// Run the shards of `plan` this instance holds.
pub(crate) async fn notifier(
    args: NotifierArgs,
    plan: Plan,
    opened: Opened,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // With the stores on MongoDB the leases go there too, so instances may run on several hosts.
    let leases: Arc<dyn LeaseStore> = match &args.views.mongodb_url {
        Some(url) => Arc::new(MongoLeases::connect(url.expose(), &args.views.mongodb_db).await?),
        None => Arc::new(data_dir::lease_table(&args.log.store.data_dir)?),
    };
    let Opened { log, parts } = opened;
    let inbox = Arc::clone(&parts.inbox) as Arc<dyn ProjectionTarget>;
    let work = Arc::new(NotifierShards {
        log: Arc::clone(&log),
        parts: parts.clone(),
        count: plan.shards,
        statuses: Mutex::default(),
    });
    let group = ShardGroup::new(plan, leases, work);
    let routes = group.routes();
    let probes = Probes {
        log: Some(log),
        ..Probes::default()
    };
    let mut service = Service::new("notifier", shutdown);
    service.spawn(|stop| group.run(stop));
    service.spawn(|stop| keep_merged(inbox, NOTIFIER_ID, plan, stop));
    service.spawn(|stop| dispatch(parts, stop));
    service
        .serve(args.addr, &args.listen, with_ops(routes, probes))
        .await
}
