//! The projector of `serve`, and the swap of its view store after `stayledger replay`.
//!
//! `replay` rebuilds the views into a fresh file and names it in `views.generation`. This process
//! notices, catches the new store up to the log head while the old one keeps serving, stops the
//! projector, catches up the last few events, swaps the store queries read, and starts the projector
//! again on the new store, reporting on the same status handle (so `min_position` waits carry on).
//! The inbox follows the same reads (`Projector::with_follower`) under its own checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use eventlog::EventLog;
use projector::{Projector, ProjectorStatus};
use readmodel::{ProjectionTarget, SwappableViewStore, ViewStore};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::data_dir::{self, current_views_file};

/// How often the data dir is checked for a new views generation.
const POLL: Duration = Duration::from_millis(500);

/// What else the projector of `serve` feeds: the notifier's inbox, under its checkpoint.
pub struct Follower {
    pub id: String,
    pub store: Arc<dyn ProjectionTarget>,
    pub status: ProjectorStatus,
}

/// Run the projector on `views` (and `follower`); when a rebuilt store arrives on `swaps`, switch
/// to it.
pub async fn run_projector(
    log: Arc<dyn EventLog>,
    views: Arc<SwappableViewStore>,
    status: ProjectorStatus,
    follower: Option<Follower>,
    mut swaps: mpsc::Receiver<Arc<dyn ViewStore>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let stop = shutdown.child_token();
        let mut projector =
            Projector::new(Arc::clone(&log), Arc::clone(&views) as Arc<dyn ViewStore>)
                .with_status(status.clone());
        if let Some(follower) = &follower {
            projector = projector.with_follower(
                follower.id.clone(),
                Arc::clone(&follower.store),
                follower.status.clone(),
            );
        }
        let mut running = tokio::spawn(projector.run(stop.clone()));
        tokio::select! {
            ended = &mut running => {
                // The projector retries store failures and parks poison events itself: an end is
                // either shutdown or a store that refuses even dead letters.
                return ended.context("projector task")?.context("projector");
            }
            Some(fresh) = swaps.recv() => {
                stop.cancel();
                running.await.context("projector task")?.context("projector")?;
                let last = projector::rebuild(Arc::clone(&log), Arc::clone(&fresh), |_, _| {}).await?;
                views.swap(fresh);
                tracing::info!(position = last, "views swapped to the rebuilt store");
            }
        }
    }
}

/// Watch `views.generation` in `data_dir`; open and catch up each new generation, then hand it over.
pub async fn watch_generation(
    data_dir: PathBuf,
    log: Arc<dyn EventLog>,
    swaps: mpsc::Sender<Arc<dyn ViewStore>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut current = current_views_file(&data_dir)?;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
        let wanted = match current_views_file(&data_dir) {
            Ok(name) => name,
            Err(error) => {
                tracing::warn!(%error, "cannot read the views generation");
                continue;
            }
        };
        if wanted == current {
            continue;
        }
        match open_and_catch_up(&data_dir, &wanted, &log).await {
            Ok(fresh) => {
                if swaps.send(fresh).await.is_err() {
                    return Ok(());
                }
                current = wanted;
            }
            Err(error) => {
                tracing::error!(%error, file = %wanted, "cannot switch to the rebuilt views")
            }
        }
    }
}

async fn open_and_catch_up(
    data_dir: &std::path::Path,
    name: &str,
    log: &Arc<dyn EventLog>,
) -> anyhow::Result<Arc<dyn ViewStore>> {
    let fresh: Arc<dyn ViewStore> = Arc::new(data_dir::views_generation(data_dir, name)?);
    projector::rebuild(Arc::clone(log), Arc::clone(&fresh), |_, _| {}).await?;
    Ok(fresh)
}
