//! The lodgings as the command side needs them to take a request (rate, currency, rooms, guests
//! per room, time zone, whether it is active) and to tell who is their admin: the current profile
//! and listing status, read through the lodging repository and kept in memory.
//!
//! A profile changes (update, review, close), so an entry is trusted for [`CatalogOptions::ttl`]
//! and then read again (the repository reads only the events after the state it caches). This
//! process's own catalog commands forget the entry at once; another process's change is seen
//! within the TTL: a request taken in that window is one made just before the change (the desk
//! still decides it, and a closed lodging honours what was requested before it closed).
//! Unknown lodgings are not cached (they may be registered later).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::lodging::{LodgingAggregate, LodgingProfile};
use eventlog::Repository;

use crate::error::CommandError;

pub use domain::lodging::ListingStatus;

/// How long a cached lodging is trusted before it is read again.
pub const CATALOG_TTL: Duration = Duration::from_secs(1);

/// A lodging as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub profile: LodgingProfile,
    pub status: ListingStatus,
}

struct Entry {
    listing: Arc<Listing>,
    read_at: Instant,
}

pub struct LodgingCatalog {
    lodgings: Repository<LodgingAggregate>,
    ttl: Duration,
    entries: RwLock<HashMap<String, Entry>>,
}

impl LodgingCatalog {
    #[must_use]
    pub fn new(lodgings: Repository<LodgingAggregate>, ttl: Duration) -> Self {
        Self {
            lodgings,
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The lodging `lodging_id` as registered and changed since, or `None` if there is none.
    pub async fn listing(&self, lodging_id: &str) -> Result<Option<Arc<Listing>>, CommandError> {
        if let Some(found) = self.fresh(lodging_id) {
            return Ok(Some(found));
        }
        let loaded = self
            .lodgings
            .load(lodging_id)
            .await
            .map_err(crate::store::infrastructure::<LodgingAggregate>)?;
        let Some(profile) = loaded.state.profile else {
            return Ok(None);
        };
        let listing = Arc::new(Listing {
            profile,
            status: loaded.state.status,
        });
        if let Ok(mut entries) = self.entries.write() {
            let entry = Entry {
                listing: Arc::clone(&listing),
                read_at: Instant::now(),
            };
            entries.insert(lodging_id.to_string(), entry);
        }
        Ok(Some(listing))
    }

    /// Read `lodging_id` again on its next use (this process just changed it).
    pub fn forget(&self, lodging_id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(lodging_id);
        }
    }

    fn fresh(&self, lodging_id: &str) -> Option<Arc<Listing>> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(lodging_id)?;
        (entry.read_at.elapsed() < self.ttl).then(|| Arc::clone(&entry.listing))
    }
}
