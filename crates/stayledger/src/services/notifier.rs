//! `stayledger notifier`: the notifier alone. It builds the inbox from the log under its own
//! checkpoint (`notifier`), queues webhook deliveries from the inbox, and sends them. Its stores
//! sit beside the views: MongoDB with `--mongodb-url`, else `inbox.db` and `webhooks.db` in the
//! data dir. With `--shards N` it runs the shards it holds a lease on (`scale_out::notifier`).

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use eventlog::{EventLog, Partition};
use notifier::WebhookParts;
use projector::{Projector, PROJECTOR_ID};
use readmodel::inbox::NOTIFIER_ID;
use readmodel::ProjectionTarget;
use tokio_util::sync::CancellationToken;

use crate::cli::NotifierArgs;
use crate::lifecycle::Service;
use crate::ops::{with_ops, Probes};
use crate::stores;
use crate::supervise::shutdown_on_signals;

/// Everything a notifier process runs on.
pub(crate) struct Opened {
    pub log: Arc<dyn EventLog>,
    pub parts: WebhookParts,
}

/// Open the log and the stores of `args`; `None` if shutdown came while waiting for a server.
async fn open(args: &NotifierArgs, shutdown: &CancellationToken) -> anyhow::Result<Option<Opened>> {
    let data_dir = &args.log.store.data_dir;
    let Some(log) = stores::open_log(&args.log, shutdown).await? else {
        return Ok(None);
    };
    let Some(views) = stores::open_views(&args.views, data_dir, shutdown).await? else {
        return Ok(None);
    };
    let Some(inbox) = stores::open_inbox(&args.views, data_dir, shutdown).await? else {
        return Ok(None);
    };
    let Some(store) = stores::open_webhooks(&args.views, data_dir, shutdown).await? else {
        return Ok(None);
    };
    let Some(keys) = stores::open_keys(&args.views, data_dir, shutdown).await? else {
        return Ok(None);
    };
    Ok(Some(Opened {
        log: log.log,
        parts: WebhookParts {
            inbox,
            views,
            store,
            keys,
            policy: args.webhooks.policy(),
            allow_private: args.webhooks.targets.webhook_allow_private,
            wakeups: Arc::default(),
        },
    }))
}

/// Run the webhook dispatcher until `stop` (every instance may: queuing is idempotent).
pub(crate) async fn dispatch(parts: WebhookParts, stop: CancellationToken) -> anyhow::Result<()> {
    parts.dispatcher(PROJECTOR_ID, NOTIFIER_ID).run(stop).await;
    Ok(())
}

/// Run the senders of `shard`'s subscriptions until `stop`.
pub(crate) async fn send(
    parts: &WebhookParts,
    shard: Partition,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let senders = parts
        .senders(shard)
        .context("building the webhook client")?;
    senders.run(stop).await;
    Ok(())
}

/// `stayledger notifier`.
pub async fn notifier(args: NotifierArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signals();
    let Some(opened) = open(&args, &shutdown).await? else {
        return Ok(());
    };
    if let Some(plan) = args.scale_out.plan("notifier")? {
        return crate::scale_out::notifier(args, plan, opened, shutdown).await;
    }
    let Opened { log, parts } = opened;
    let inbox = Arc::clone(&parts.inbox) as Arc<dyn ProjectionTarget>;
    let projector = Projector::for_target(Arc::clone(&log), inbox).with_id(NOTIFIER_ID);
    let probes = Probes {
        log: Some(log),
        projector: Some(projector.status()),
        ..Probes::default()
    };
    let mut service = Service::new("notifier", shutdown);
    service.spawn(|stop| async move { projector.run(stop).await.context("notifier") });
    let dispatching = parts.clone();
    service.spawn(|stop| dispatch(dispatching, stop));
    service.spawn(|stop| async move { send(&parts, Partition::ALL, stop).await });
    service
        .serve(args.addr, &args.listen, with_ops(Router::new(), probes))
        .await
}
