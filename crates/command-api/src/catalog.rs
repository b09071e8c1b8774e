//! The lodging profiles a reservation request needs (rate, currency, guests per room), read from the
//! first event of `lodging-{id}` and kept in memory: a profile never changes after registration, so
//! the cache never goes stale. Unknown lodgings are not cached (they may be registered later).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use domain::lodging::{LodgingAggregate, LodgingEvent, LodgingProfile};
use domain::{Aggregate, DomainEvent};
use eventlog::EventLog;

use crate::error::CommandError;

pub struct LodgingCatalog {
    log: Arc<dyn EventLog>,
    profiles: RwLock<HashMap<String, Arc<LodgingProfile>>>,
}

impl LodgingCatalog {
    #[must_use]
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            log,
            profiles: RwLock::new(HashMap::new()),
        }
    }

    /// The registered profile of `lodging_id`, or `None` if no such lodging was registered.
    pub async fn profile(
        &self,
        lodging_id: &str,
    ) -> Result<Option<Arc<LodgingProfile>>, CommandError> {
        if let Some(found) = self.cached(lodging_id) {
            return Ok(Some(found));
        }
        let stream = LodgingAggregate::stream_name(lodging_id);
        let first = self.log.read_stream(&stream, 0, 1).await?;
        let Some(event) = first.first() else {
            return Ok(None);
        };
        let decoded = LodgingEvent::decode(&event.event_type, event.schema_version, &event.data)
            .map_err(|e| CommandError::Internal(format!("{stream} v0: {e}")))?;
        match decoded {
            LodgingEvent::LodgingRegistered(profile) => {
                let profile = Arc::new(profile);
                self.remember(Arc::clone(&profile));
                Ok(Some(profile))
            }
            other => Err(CommandError::Internal(format!(
                "{stream} starts with {} instead of LodgingRegistered",
                other.event_type()
            ))),
        }
    }

    /// Keep a just-registered profile.
    pub fn remember(&self, profile: Arc<LodgingProfile>) {
        if let Ok(mut profiles) = self.profiles.write() {
            profiles.insert(profile.lodging_id.clone(), profile);
        }
    }

    fn cached(&self, lodging_id: &str) -> Option<Arc<LodgingProfile>> {
        self.profiles.read().ok()?.get(lodging_id).cloned()
    }
}
