//! Rebuilding the views from position 0 into a fresh store, in large batches: a reader task reads
//! the next pages and decodes each on the blocking pool while the current one is applied (one
//! transaction per page). Pages are read with their payloads as JSON text and decoded straight
//! into the domain events: building a `serde_json::Value` per event was the largest cost of
//! reading (docs/benchmarks.md, B5). A rebuild from nothing loads the store in bulk
//! ([`ProjectionTarget::begin_bulk_load`]: SQLite builds its query-only indexes at the end).

use std::sync::Arc;

use eventlog::EventLog;
use readmodel::{ProjectionTarget, ViewStore, Views};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sink::{decode_all_raw, Halt, Item, RetryPolicy, Sink};
use crate::{ProjectorError, ProjectorStatus, PROJECTOR_ID};

/// Events per read and per view-store transaction during a rebuild.
pub const REBUILD_PAGE: usize = 32_768;

/// Attempts while the fresh store is unavailable before the rebuild gives up.
const UNAVAILABLE_ATTEMPTS: u32 = 10;

/// A page being decoded, and its last position.
type Page = Result<(JoinHandle<Vec<Item>>, u64), ProjectorError>;

/// Read the log from `from` up to `head` (the head when the rebuild started) in pages, each
/// decoded on the blocking pool while the next one is read.
async fn read_pages(log: Arc<dyn EventLog>, mut from: u64, head: u64, pages: mpsc::Sender<Page>) {
    while from <= head {
        let page = match log.read_all(from, REBUILD_PAGE).await {
            Ok(page) => page,
            Err(error) => {
                let _ = pages.send(Err(error.into())).await;
                return;
            }
        };
        let Some(last) = page.last().map(|e| e.position) else {
            return;
        };
        from = last + 1;
        let decoding = tokio::task::spawn_blocking(move || decode_all_raw(page));
        if pages.send(Ok((decoding, last))).await.is_err() {
            return;
        }
    }
}

/// Replay the whole log from position 0 into `fresh_store` (under the checkpoint
/// [`PROJECTOR_ID`], so the projector can go on from it once the store is swapped in), calling
/// `progress(applied, head)` after each page. Poison events are parked as live projection parks
/// them, so the rebuilt store equals the live one. An interrupted rebuild resumes from the fresh
/// store's checkpoint. Returns the last position applied.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    fresh_store: Arc<dyn ViewStore>,
    progress: impl Fn(u64, u64) + Send + Sync,
) -> Result<u64, ProjectorError> {
    rebuild_target(log, Arc::new(Views(fresh_store)), PROJECTOR_ID, progress).await
}

/// [`rebuild`] into any fresh target (e.g. the inbox), under the checkpoint `id`.
pub async fn rebuild_target(
    log: Arc<dyn EventLog>,
    fresh_store: Arc<dyn ProjectionTarget>,
    id: &str,
    progress: impl Fn(u64, u64) + Send + Sync,
) -> Result<u64, ProjectorError> {
    let head = log.head_position().await?;
    let mut applied = fresh_store.checkpoint(id).await?;
    let sink = Sink {
        id: id.to_string(),
        store: Arc::clone(&fresh_store),
        status: ProjectorStatus::default(),
        retry: RetryPolicy {
            unavailable_attempts: Some(UNAVAILABLE_ATTEMPTS),
            ..RetryPolicy::default()
        },
    };
    if applied == 0 {
        fresh_store.begin_bulk_load().await?;
    }
    let (pages, mut received) = mpsc::channel(2);
    let reader = tokio::spawn(read_pages(log, applied + 1, head, pages));
    progress(applied, head.max(applied));
    let never = CancellationToken::new();
    while let Some(page) = received.recv().await {
        let (decoding, last) = page?;
        let items = decoding
            .await
            .map_err(|e| ProjectorError::Task(e.to_string()))?;
        match sink.handle(items, &never).await {
            Ok(()) => {}
            Err(Halt::Failed(error)) => return Err(error.into()),
            Err(Halt::Shutdown) => return Err(ProjectorError::Task("rebuild interrupted".into())),
        }
        applied = last;
        progress(applied, head.max(applied));
    }
    reader
        .await
        .map_err(|e| ProjectorError::Task(e.to_string()))?;
    fresh_store.end_bulk_load().await?;
    Ok(applied)
}
