//! Each service alone: `stayledger command-api | query-api | projector | saga`, configured by flags and
//! `STAYLEDGER_*` environment, over the embedded data dir (several processes may share one: SQLite
//! lets them, and the log's subscriptions poll for other processes' appends) or EventStoreDB +
//! MongoDB by URL.
//!
//! Every service serves `/healthz`, `/readyz` and `/metrics` (see [`crate::ops`]) next to its own
//! routes, prints `stayledger <service> listening on http://<addr>` once it takes requests, and on
//! SIGTERM/SIGINT finishes what is in flight before it exits (see `lifecycle`).

pub(crate) mod notifier;

use std::sync::Arc;
use std::time::Duration;

use ::notifier::routes::WebhookState;
use anyhow::Context;
use axum::Router;
use command_api::CommandState;
use eventlog::{ConsumerGroups, Repositories};
use projector::{Projector, PROJECTOR_ID};
use query_api::{QueryState, ViewProgress};
use readmodel::inbox::NOTIFIER_ID;
use saga::{SagaConfig, SagaRunner, Source};

use crate::cli::{self, CommandApiArgs, ProjectorArgs, QueryApiArgs, SagaArgs};
use crate::data_dir;
use crate::lifecycle::Service;
use crate::ops::{with_ops, Probes};
use crate::stores;
use crate::supervise::shutdown_on_signals;

pub use notifier::notifier;

/// How often query-api reads the views' stored checkpoint while a request waits for `min_position`.
const CHECKPOINT_POLL: Duration = Duration::from_millis(20);

/// `stayledger command-api`: the command routes over the event log.
pub async fn command_api(args: CommandApiArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signals();
    let auth = stores::auth(&args.auth, &args.log.store.data_dir)?;
    let Some(opened) = stores::open_log(&args.log, &shutdown).await? else {
        return Ok(());
    };
    let Some(keys) = stores::open_keys(&args.keys, &args.log.store.data_dir, &shutdown).await?
    else {
        return Ok(());
    };
    let repositories = Repositories::new(Arc::clone(&opened.log));
    let options = args.catalog.command_options();
    let state = CommandState::with_keys(repositories, auth, options, keys);
    let routes = command_api::router(state);
    let probes = Probes {
        log: Some(opened.log),
        writer: opened.writer,
        ..Probes::default()
    };
    Service::new("command-api", shutdown)
        .serve(args.addr, &args.listen, with_ops(routes, probes))
        .await
}

/// `stayledger query-api`: the view and audit routes; a projector elsewhere keeps the views, and
/// `min_position` waits read the checkpoint it stores with them.
pub async fn query_api(args: QueryApiArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signals();
    let data_dir = &args.log.store.data_dir;
    let auth = stores::auth(&args.auth, data_dir)?;
    let Some(opened) = stores::open_log(&args.log, &shutdown).await? else {
        return Ok(());
    };
    let Some(views) = stores::open_views(&args.views, data_dir, &shutdown).await? else {
        return Ok(());
    };
    let progress = ViewProgress::Checkpoint {
        projector_id: PROJECTOR_ID.to_string(),
        every: CHECKPOINT_POLL,
    };
    // The same MongoDB database (or data dir) as the command API's: `GET /me` opens profiles with it.
    let Some(keys) = stores::open_keys(&args.views, &args.log.store.data_dir, &shutdown).await?
    else {
        return Ok(());
    };
    // The inbox and the webhooks sit beside the views; a notifier elsewhere builds and sends them.
    let Some(inbox) = stores::open_inbox(&args.views, data_dir, &shutdown).await? else {
        return Ok(());
    };
    let Some(webhooks) = stores::open_webhooks(&args.views, data_dir, &shutdown).await? else {
        return Ok(());
    };
    let webhook_routes = ::notifier::routes::routes(WebhookState {
        store: webhooks,
        keys: Arc::clone(&keys),
        log: Arc::clone(&opened.log),
        auth: Arc::clone(&auth),
        allow_private: args.webhooks.webhook_allow_private,
        wakeups: Arc::default(),
    });
    let inbox_progress = ViewProgress::Checkpoint {
        projector_id: NOTIFIER_ID.to_string(),
        every: CHECKPOINT_POLL,
    };
    let state = QueryState::new(Arc::clone(&opened.log), Arc::clone(&views), auth, progress)
        .with_keys(keys)
        .with_inbox(inbox, inbox_progress)
        .closing_with(shutdown.clone());
    let probes = Probes {
        log: Some(opened.log),
        views: Some(views),
        view_checkpoint: Some(PROJECTOR_ID.to_string()),
        max_projector_lag: args.max_projector_lag,
        ..Probes::default()
    };
    Service::new("query-api", shutdown)
        .serve(
            args.addr,
            &args.listen,
            with_ops(query_api::router(state).merge(webhook_routes), probes),
        )
        .await
}

/// `stayledger projector`: builds the views from the log, from its stored checkpoint on.
pub async fn projector(args: ProjectorArgs) -> anyhow::Result<()> {
    if args.scale_out.shards.is_some() {
        return crate::scale_out::projector(args).await;
    }
    let shutdown = shutdown_on_signals();
    let Some(opened) = stores::open_log(&args.log, &shutdown).await? else {
        return Ok(());
    };
    let data_dir = &args.log.store.data_dir;
    let Some(views) = stores::open_views(&args.views, data_dir, &shutdown).await? else {
        return Ok(());
    };
    let projector = Projector::new(Arc::clone(&opened.log), Arc::clone(&views));
    let start_head = opened.log.head_position().await?;
    let probes = Probes {
        log: Some(opened.log),
        views: Some(views),
        projector: Some(projector.status()),
        max_projector_lag: args.max_projector_lag,
        catch_up: Arc::new(crate::readiness::CatchUp::to(start_head)),
        ..Probes::default()
    };
    let mut service = Service::new("projector", shutdown);
    service.spawn(|stop| async move { projector.run(stop).await.context("projector") });
    service
        .serve(args.addr, &args.listen, with_ops(Router::new(), probes))
        .await
}

/// `stayledger saga`: the reservation process manager and the payment worker, with its timer store
/// in the data dir.
pub async fn saga(args: SagaArgs) -> anyhow::Result<()> {
    if args.scale_out.shards.is_some() {
        return crate::scale_out::saga(args).await;
    }
    let shutdown = shutdown_on_signals();
    let (policy, gateway) = stores::saga_policy_and_gateway(&args)?;
    let data_dir = &args.log.store.data_dir;
    let (opened, timers, source) = match (&args.consumer_group, &args.log.eventstore_url) {
        (Some(group), Some(url)) => {
            let member = group_member(&args)?;
            let timers = Arc::new(data_dir::group_timer_store(data_dir, &member)?);
            let Some(log) = stores::open_esdb(url, &shutdown).await? else {
                return Ok(());
            };
            let log = Arc::new(log);
            tracing::info!(%group, %member, drain = args.drain, "saga runs as a member of an EventStoreDB consumer group");
            let source = match args.drain {
                true => Source::Drain,
                false => Source::Group {
                    groups: Arc::clone(&log) as Arc<dyn ConsumerGroups>,
                    group: group.clone(),
                    member,
                },
            };
            let opened = stores::OpenedLog { log, writer: None };
            (opened, timers, source)
        }
        (Some(_), None) => anyhow::bail!(
            "--consumer-group needs EventStoreDB (--eventstore-url); on the embedded log, scale \
             out with --shards N --instance K"
        ),
        (None, _) => {
            let timers = Arc::new(data_dir::timer_store(data_dir, args.shard)?);
            let Some(opened) = stores::open_log(&args.log, &shutdown).await? else {
                return Ok(());
            };
            (opened, timers, Source::Log)
        }
    };
    let config = SagaConfig {
        shard: args.shard,
        ..SagaConfig::default()
    };
    let repositories = Repositories::new(Arc::clone(&opened.log));
    let runner = SagaRunner::new(repositories, gateway, timers, policy, config).with_source(source);
    let probes = Probes {
        log: Some(opened.log),
        writer: opened.writer,
        saga: Some(runner.status()),
        require_saga: true,
        ..Probes::default()
    };
    let mut service = Service::new("saga", shutdown);
    let drain = args.drain;
    service.spawn(|stop| async move {
        runner.run(stop.clone()).await.context("saga runner")?;
        if drain {
            tracing::info!("drained: no timer or refund left, stopping");
            stop.cancel();
        }
        Ok(())
    });
    service
        .serve(args.addr, &args.listen, with_ops(Router::new(), probes))
        .await
}

/// The saga's name in its consumer group: `--group-member`, else the host name.
fn group_member(args: &SagaArgs) -> anyhow::Result<String> {
    if let Some(member) = &args.group_member {
        return Ok(member.clone());
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    cli::parse_name(&host).map_err(|e| {
        anyhow::anyhow!("--group-member is not set and the host name will not do: {e}")
    })
}
