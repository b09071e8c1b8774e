//! The frames of the live streams: one per version of a ReservationList document, in log order,
//! each the document as that event left it. The views hold a document's last version only (the
//! projector folds a batch's changes of it into one write), so a [`Framer`] derives every version
//! from the last one it framed, with the views' own projection
//! (`readmodel::projection::reservation_versions`), and holds the result to the views: where the
//! views are at the same version, the derived document must equal theirs. A reservation it has no
//! version of (begun before the framer started) or whose derivation the views contradict (a
//! lodging renamed between a request and the read of its name) gets the rule of before for that
//! batch: the document as the views hold it, at its own event, if it is still that version.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use domain::events::{self, Payload, SagaPayloads};
use domain::reservation::ReservationEvent;
use eventlog::RawRecordedEvent;
use readmodel::projection::{reservation_of, reservation_versions};
use readmodel::{AnyEvent, LodgingView, ReservationView, ViewEvent, Views, MAX_PAGE};
use uuid::Uuid;

use crate::error::QueryError;
use crate::state::QueryState;

/// How long one wait for the views lasts before it is tried again (a stream never skips).
const VIEWS_WAIT: Duration = Duration::from_secs(5);
/// Last versions a framer keeps per generation (two generations: the older goes when the newer
/// is full, so a reservation still changing stays known).
const KEPT: usize = 20_000;
/// Lodgings a framer remembers at most.
const LODGINGS: usize = 10_000;

/// One version of a reservation's document, as a stream sends it.
#[derive(Debug)]
pub(crate) struct Frame {
    /// The log position of the event that made this version (the frame's id).
    pub position: u64,
    pub view: ReservationView,
    /// The document as JSON.
    pub data: String,
}

/// `recorded` as the views' projection takes it (`None`: it does not decode; the projector
/// parks it, and it changes no document).
fn view_event(recorded: &RawRecordedEvent) -> Option<ViewEvent> {
    let decoded = events::decode(
        &recorded.stream,
        &recorded.event_type,
        recorded.schema_version,
        Payload::Text(&recorded.data),
        SagaPayloads::Skip,
    )
    .ok()?;
    Some(ViewEvent {
        event: AnyEvent::from(decoded),
        position: recorded.position,
        stream: recorded.stream.clone(),
        version: recorded.version,
        event_id: recorded.event_id,
        recorded_at: recorded.recorded_at,
    })
}

/// The lodging of the reservation `event` creates, if it creates one.
fn lodging_created_for(event: &ViewEvent) -> Option<&str> {
    match &event.event {
        AnyEvent::Reservation {
            event: ReservationEvent::ReservationRequested(details),
            ..
        } => Some(&details.lodging_id),
        _ => None,
    }
}

/// The views' documents of `ids`, once they reflect position `last`.
async fn documents(
    state: &QueryState,
    ids: &[Uuid],
    last: u64,
) -> Result<HashMap<Uuid, ReservationView>, QueryError> {
    let views = Views(Arc::clone(&state.views));
    while !state.progress.wait_for(&views, last, VIEWS_WAIT).await? {}
    let mut current = HashMap::new();
    for chunk in ids.chunks(MAX_PAGE) {
        for view in state.views.reservations_by_id(chunk).await? {
            current.insert(view.reservation_id, view);
        }
    }
    Ok(current)
}

/// Whether the derived document of reservation `id` stands: the views (`now`) hold that very
/// version, or are already past the batch (ending at `end`), so they cannot say.
fn confirmed(
    id: Uuid,
    now: Option<&ReservationView>,
    derived: Option<&ReservationView>,
    end: u64,
) -> bool {
    match (now, derived) {
        (Some(now), Some(derived)) if now.position > end || now == derived => true,
        (Some(now), Some(derived)) => {
            // Not expected (`readmodel/tests/versions.rs`): the views' document is sent.
            http_edge::error_throttled!(
                reservation = %id,
                views = now.position,
                derived = derived.position,
                "the live streams derived a version the views do not have; sent theirs"
            );
            false
        }
        _ => false,
    }
}

/// Makes the frames of consecutive batches of the log (see the module's comment).
#[derive(Default)]
pub(crate) struct Framer {
    recent: HashMap<Uuid, ReservationView>,
    older: HashMap<Uuid, ReservationView>,
    lodgings: HashMap<String, LodgingView>,
}

impl Framer {
    /// Forget every version: the next batch does not follow the last one.
    pub fn forget(&mut self) {
        self.recent.clear();
        self.older.clear();
    }

    fn forget_one(&mut self, id: Uuid) {
        self.recent.remove(&id);
        self.older.remove(&id);
    }

    fn last(&mut self, id: Uuid) -> Option<ReservationView> {
        match self.recent.get(&id) {
            Some(view) => Some(view.clone()),
            None => self.older.remove(&id),
        }
    }

    fn remember(&mut self, view: ReservationView) {
        if self.recent.len() >= KEPT && !self.recent.contains_key(&view.reservation_id) {
            self.older = std::mem::take(&mut self.recent);
        }
        self.older.remove(&view.reservation_id);
        self.recent.insert(view.reservation_id, view);
    }

    /// The lodgings of the reservations `events` create, read from the views where not known.
    async fn read_lodgings(
        &mut self,
        state: &QueryState,
        events: &[ViewEvent],
    ) -> Result<(), QueryError> {
        for lodging_id in events.iter().filter_map(lodging_created_for) {
            if self.lodgings.contains_key(lodging_id) {
                continue;
            }
            if let Some(lodging) = state.views.lodging(lodging_id).await? {
                if self.lodgings.len() >= LODGINGS {
                    self.lodgings.clear();
                }
                self.lodgings.insert(lodging_id.to_string(), lodging);
            }
        }
        Ok(())
    }

    /// The frames `batch` (the next events of the log, in order) makes, in log order, once the
    /// views reflect its last reservation event.
    pub async fn frames(
        &mut self,
        state: &QueryState,
        batch: &[RawRecordedEvent],
    ) -> Result<Vec<Arc<Frame>>, QueryError> {
        let mut events = Vec::new();
        for event in batch.iter().filter_map(view_event) {
            if reservation_of(&event.event).is_some() {
                events.push(event);
            } else if let AnyEvent::Lodging { lodging_id, .. } = &event.event {
                self.lodgings.remove(lodging_id); // its name may have changed
            }
        }
        let (Some(last), Some(end)) = (events.last(), batch.last()) else {
            return Ok(Vec::new());
        };
        let (last, end) = (last.position, end.position);
        let mut ids: Vec<Uuid> = events
            .iter()
            .filter_map(|e| reservation_of(&e.event))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut current = documents(state, &ids, last).await?;
        self.read_lodgings(state, &events).await?;
        let mut known: HashMap<Uuid, ReservationView> = ids
            .iter()
            .filter_map(|&id| Some((id, self.last(id)?)))
            .collect();
        let derived =
            reservation_versions(&mut known, &self.lodgings, &events).unwrap_or_else(|error| {
                tracing::debug!(%error, "the live streams could not derive a batch's versions");
                known.clear();
                Vec::new()
            });
        let exact: HashSet<Uuid> = ids
            .iter()
            .copied()
            .filter(|id| confirmed(*id, current.get(id), known.get(id), end))
            .collect();
        let mut frames: Vec<(u64, ReservationView)> = derived
            .into_iter()
            .filter(|view| exact.contains(&view.reservation_id))
            .map(|view| (view.position, view))
            .collect();
        for event in &events {
            let Some(id) = reservation_of(&event.event) else {
                continue;
            };
            match current.get(&id) {
                Some(now) if !exact.contains(&id) && now.position == event.position => {
                    frames.push((event.position, now.clone()));
                }
                _ => {}
            }
        }
        frames.sort_unstable_by_key(|(position, _)| *position);
        for id in ids {
            match (exact.contains(&id), known.remove(&id), current.remove(&id)) {
                (true, Some(derived), _) => self.remember(derived),
                (false, _, Some(now)) if now.position <= end => self.remember(now),
                _ => self.forget_one(id),
            }
        }
        frames
            .into_iter()
            .map(|(position, view)| {
                let data = serde_json::to_string(&view)
                    .map_err(|e| QueryError::Internal(e.to_string()))?;
                Ok(Arc::new(Frame {
                    position,
                    view,
                    data,
                }))
            })
            .collect()
    }
}
