//! The embedded SQLite view store (default): one file in WAL mode, a writer connection and a few
//! reader connections. Writes and lists run on tokio's blocking pool; a point read (one document by
//! its key) runs on the calling task when a reader is free. Several processes may open the same
//! file: writes take SQLite's write lock (`BEGIN IMMEDIATE`) and wait for it.

mod checkpoint;
mod inbox;
#[cfg(test)]
mod plans;
#[cfg(test)]
mod point_tests;
mod read;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};

use async_trait::async_trait;
use rusqlite::Connection;
use uuid::Uuid;

use crate::projection::CalendarNight;
use crate::{
    CustomerView, DeadLetter, LodgingFilter, LodgingView, ManagementView, Page, PageRequest,
    PayoutFilter, PayoutTotals, PayoutView, RequestFilter, ReservationFilter, ReservationStatus,
    ReservationView, ViewError, ViewEvent, ViewStore,
};
use chrono::NaiveDate;

pub use inbox::SqliteInbox;

/// Reader connections per store: enough for the query API on a 2-core machine.
const READERS: usize = 4;
/// Reads of documents by this many keys or fewer are point reads ([`SqliteViewStore::point`]); a
/// batch (the notifier's pages of documents, the live stream's) stays on the blocking pool.
const POINT_KEYS: usize = 16;

/// Views in one SQLite file (WAL): a writer connection and reader connections.
pub struct SqliteViewStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
    _checkpointer: checkpoint::Checkpointer,
}

impl std::fmt::Debug for SqliteViewStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteViewStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    task: impl FnOnce() -> Result<T, ViewError> + Send + 'static,
) -> Result<T, ViewError> {
    tokio::task::spawn_blocking(task)
        .await
        .map_err(|e| ViewError::Unavailable(format!("view store task failed: {e}")))?
}

impl SqliteViewStore {
    /// Open (or create) the view store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ViewError> {
        let path = path.as_ref().to_path_buf();
        let writer = schema::open_writer(&path)?;
        let readers = (0..READERS)
            .map(|_| schema::open_reader(&path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let checkpointer = checkpoint::start(&path, "views-checkpoint")?;
        Ok(Self {
            path,
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
            _checkpointer: checkpointer,
        })
    }

    /// The file this store lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let writer = Arc::clone(&self.writer);
        blocking(move || {
            let mut conn = writer.lock().unwrap_or_else(PoisonError::into_inner);
            task(&mut conn)
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        task: impl FnOnce(&Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let readers = Arc::clone(&self.readers);
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % READERS;
        blocking(move || {
            let slot = readers
                .get(index)
                .ok_or_else(|| ViewError::Unavailable("no reader connection".into()))?;
            let conn = slot.lock().unwrap_or_else(PoisonError::into_inner);
            task(&conn)
        })
        .await
    }

    /// A point read (documents by their keys: a few indexed rows from pages the OS caches, tens of
    /// microseconds) on the calling task, on the first reader connection free, as the log's stream
    /// reads are (decision 0007): two thread hand-offs of `spawn_blocking` cost more than the read.
    /// With every reader busy (lists on the blocking pool), it waits its turn there instead of
    /// blocking the task's thread on a lock.
    async fn point<T: Send + 'static>(
        &self,
        task: impl FnOnce(&Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        let first = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for offset in 0..READERS {
            let Some(slot) = self.readers.get((first + offset) % READERS) else {
                break;
            };
            match slot.try_lock() {
                Ok(conn) => return task(&conn),
                Err(TryLockError::Poisoned(poisoned)) => return task(&poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.read(task).await
    }

    /// A read of documents by `keys` keys: a point read when they are few ([`POINT_KEYS`]), else on
    /// the blocking pool.
    async fn keyed<T: Send + 'static>(
        &self,
        keys: usize,
        task: impl FnOnce(&Connection) -> Result<T, ViewError> + Send + 'static,
    ) -> Result<T, ViewError> {
        if keys <= POINT_KEYS {
            self.point(task).await
        } else {
            self.read(task).await
        }
    }
}

#[async_trait]
impl ViewStore for SqliteViewStore {
    async fn checkpoint(&self, projector_id: &str) -> Result<u64, ViewError> {
        let projector_id = projector_id.to_string();
        self.read(move |conn| write::checkpoint(conn, &projector_id))
            .await
    }

    async fn apply(&self, projector_id: &str, events: &[ViewEvent]) -> Result<(), ViewError> {
        if events.is_empty() {
            return Ok(());
        }
        self.apply_shared(projector_id, Arc::from(events)).await
    }

    async fn apply_shared(
        &self,
        projector_id: &str,
        events: Arc<[ViewEvent]>,
    ) -> Result<(), ViewError> {
        if events.is_empty() {
            return Ok(());
        }
        let projector_id = projector_id.to_string();
        self.write(move |conn| write::apply(conn, &projector_id, &events))
            .await
    }

    async fn begin_bulk_load(&self) -> Result<(), ViewError> {
        self.write(|conn| {
            schema::drop_query_indexes(conn)?;
            conn.pragma_update(None, "cache_size", schema::BULK_LOAD_CACHE_KIB)
                .map_err(schema::store_error)
        })
        .await
    }

    async fn end_bulk_load(&self) -> Result<(), ViewError> {
        self.write(|conn| {
            schema::create_query_indexes(conn)?;
            conn.pragma_update(None, "cache_size", schema::WRITER_CACHE_KIB)
                .map_err(schema::store_error)
        })
        .await
    }

    async fn reservation(&self, id: Uuid) -> Result<Option<ReservationView>, ViewError> {
        let sql = "SELECT doc FROM reservations WHERE reservation_id = ?1";
        self.point(move |conn| read::one(conn, sql, &id.to_string()))
            .await
    }

    async fn reservations_by_id(&self, ids: &[Uuid]) -> Result<Vec<ReservationView>, ViewError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        self.keyed(ids.len(), move |conn| {
            read::by_keys(conn, "reservations", "reservation_id", &ids)
        })
        .await
    }

    async fn reservations(
        &self,
        filter: &ReservationFilter,
        page: &PageRequest,
    ) -> Result<Page<ReservationView>, ViewError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| read::reservations(conn, &filter, &page))
            .await
    }

    async fn request(&self, id: Uuid) -> Result<Option<ManagementView>, ViewError> {
        let sql = "SELECT doc FROM requests WHERE reservation_id = ?1";
        self.point(move |conn| read::one(conn, sql, &id.to_string()))
            .await
    }

    async fn requests(
        &self,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<ManagementView>, ViewError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| read::requests(conn, &filter, &page))
            .await
    }

    async fn lodging(&self, lodging_id: &str) -> Result<Option<LodgingView>, ViewError> {
        let sql = "SELECT doc FROM lodgings WHERE lodging_id = ?1";
        let lodging_id = lodging_id.to_string();
        self.point(move |conn| read::one(conn, sql, &lodging_id))
            .await
    }

    async fn lodgings(
        &self,
        filter: &LodgingFilter,
        page: &PageRequest,
    ) -> Result<Page<LodgingView>, ViewError> {
        let filter = filter.clone();
        let page = page.clone();
        self.read(move |conn| read::lodgings(conn, &filter, &page))
            .await
    }

    async fn calendar(
        &self,
        lodging_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarNight>, ViewError> {
        let lodging_id = lodging_id.to_string();
        self.read(move |conn| write::calendar(conn, &lodging_id, from, to))
            .await
    }

    async fn payouts(
        &self,
        filter: &PayoutFilter,
        page: &PageRequest,
    ) -> Result<Page<PayoutView>, ViewError> {
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |conn| read::payouts(conn, &filter, &page))
            .await
    }

    async fn payout_summary(&self, filter: &PayoutFilter) -> Result<Vec<PayoutTotals>, ViewError> {
        let filter = filter.clone();
        self.read(move |conn| read::payout_summary(conn, &filter))
            .await
    }

    async fn reservation_with_guest(
        &self,
        reservation_id: Uuid,
    ) -> Result<Option<(ReservationView, Option<CustomerView>)>, ViewError> {
        self.point(move |conn| read::reservation_with_guest(conn, reservation_id))
            .await
    }

    async fn customers(&self, customer_ids: &[String]) -> Result<Vec<CustomerView>, ViewError> {
        let customer_ids = customer_ids.to_vec();
        self.keyed(customer_ids.len(), move |conn| {
            read::by_keys(conn, "customers", "customer_id", &customer_ids)
        })
        .await
    }

    async fn record_dead_letter(
        &self,
        projector_id: &str,
        dead_letter: &DeadLetter,
    ) -> Result<(), ViewError> {
        let (projector_id, dead_letter) = (projector_id.to_string(), dead_letter.clone());
        self.write(move |conn| write::park(conn, &projector_id, &dead_letter))
            .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ViewError> {
        self.read(read::dead_letters).await
    }

    async fn dead_letter_count(&self) -> Result<u64, ViewError> {
        self.read(read::dead_letter_count).await
    }

    async fn count_reservations(&self, status: ReservationStatus) -> Result<u64, ViewError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM reservations WHERE status = ?1",
                [status.as_str()],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(schema::store_error)
        })
        .await
    }

    async fn ping(&self) -> Result<(), ViewError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(schema::store_error)
        })
        .await
    }
}
