//! B5: rebuild every view from the shared large log (`projector::rebuild` into a fresh SQLite view
//! store, the data dir's own `views.db`), timed from the first read to the last page applied.
//! The rebuilt store is what B7 and B8 restart on.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use eventlog::{EventLog, SqliteEventLog};
use readmodel::SqliteViewStore;
use serde_json::json;
use stayledger::data_dir;

use super::dataset::{mark_saga_done, Dataset};
use super::report::{thousands, Figure};

/// Rebuild the views of `dataset` (replacing any), leave the dir ready for a restart; the figure.
pub async fn run(dataset: &Dataset) -> anyhow::Result<Figure> {
    let views_path = data_dir::views_path(&dataset.dir);
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", views_path.display());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {path}")),
        }
    }
    let log =
        SqliteEventLog::open(data_dir::events_path(&dataset.dir)).context("opening the log")?;
    let log: Arc<dyn EventLog> = Arc::new(log);
    let views = SqliteViewStore::open(&views_path).context("opening a fresh view store")?;
    let started = Instant::now();
    let applied = projector::rebuild(Arc::clone(&log), Arc::new(views), |_, _| {}).await;
    let seconds = started.elapsed().as_secs_f64();
    let applied = applied.context("rebuilding the views")?;
    drop(log);
    mark_saga_done(&dataset.dir, applied).await?;
    let per_sec = applied as f64 / seconds.max(f64::EPSILON);
    let figure = format!(
        "{} events/s ({} events in {seconds:.2} s)",
        thousands(per_sec),
        thousands(applied as f64)
    );
    Ok(Figure::new(
        "B5",
        &format!(
            "rebuild all views from {} events",
            thousands(applied as f64)
        ),
        per_sec,
        "events/s",
    )
    .figure(figure)
    .target(">= 300,000 events/s", per_sec >= 300_000.0)
    .details(json!({
        "events": applied, "seconds": seconds, "flows": dataset.flows,
        "seed_seconds": dataset.seed_seconds,
        "seed_events_per_sec": dataset.events as f64 / dataset.seed_seconds.max(f64::EPSILON),
    })))
}
