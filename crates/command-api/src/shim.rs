//! TEMPORARY stand-in for `eventlog::Repository` (same signatures as announced) until it lands;
//! delete this file and import from `eventlog` then.

use std::marker::PhantomData;
use std::sync::Arc;

use domain::{Aggregate, DecodeError, DomainEvent, Timestamp};
use eventlog::{
    AppendError, AppendOutcome, EventLog, EventMetadata, ExpectedVersion, LogError, NewEvent,
    StreamVersion,
};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct CommandContext {
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub actor: String,
    pub now: Timestamp,
}

#[allow(dead_code)]
pub struct Executed<A: Aggregate> {
    pub events: Vec<A::Event>,
    pub outcome: Option<AppendOutcome>,
    pub state: A::State,
}

pub struct Loaded<A: Aggregate> {
    pub state: A::State,
    pub version: StreamVersion,
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError<E: std::error::Error> {
    #[error(transparent)]
    Domain(E),
    #[error("conflict on {stream}")]
    Conflict { stream: String },
    #[error(transparent)]
    Decode(DecodeError),
    #[error(transparent)]
    Log(LogError),
}

pub struct Repository<A> {
    log: Arc<dyn EventLog>,
    _aggregate: PhantomData<fn() -> A>,
}

const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x7e57_0000_0000_4000_8000_0000_0000_0001);

impl<A: Aggregate> Repository<A> {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            log,
            _aggregate: PhantomData,
        }
    }

    pub async fn load(&self, id: &str) -> Result<Loaded<A>, RepositoryError<A::Error>> {
        let stream = A::stream_name(id);
        let mut state = A::State::default();
        let mut version = None;
        let mut from = 0;
        loop {
            let page = self
                .log
                .read_stream(&stream, from, 1000)
                .await
                .map_err(RepositoryError::Log)?;
            let full = page.len() == 1000;
            for recorded in &page {
                let event = A::Event::decode(
                    &recorded.event_type,
                    recorded.schema_version,
                    &recorded.data,
                )
                .map_err(RepositoryError::Decode)?;
                state = A::evolve(state, &event);
                version = Some(recorded.version);
                from = recorded.version + 1;
            }
            if !full {
                break;
            }
        }
        Ok(Loaded { state, version })
    }

    pub async fn execute(
        &self,
        id: &str,
        command: &A::Command,
        ctx: &CommandContext,
    ) -> Result<Executed<A>, RepositoryError<A::Error>> {
        let loaded = self.load(id).await?;
        let events = A::decide(&loaded.state, command, ctx.now).map_err(RepositoryError::Domain)?;
        if events.is_empty() {
            return Ok(Executed {
                events,
                outcome: None,
                state: loaded.state,
            });
        }
        let stream = A::stream_name(id);
        let new_events = events
            .iter()
            .enumerate()
            .map(|(index, event)| NewEvent {
                event_id: Uuid::new_v5(
                    &EVENT_NAMESPACE,
                    format!("{}/{stream}/{index}", ctx.causation_id).as_bytes(),
                ),
                event_type: event.event_type().to_string(),
                schema_version: domain::SCHEMA_VERSION,
                data: event.payload(),
                metadata: EventMetadata {
                    correlation_id: ctx.correlation_id,
                    causation_id: ctx.causation_id,
                    actor: ctx.actor.clone(),
                },
            })
            .collect();
        let outcome = self
            .log
            .append(
                &stream,
                ExpectedVersion::from_current(loaded.version),
                new_events,
            )
            .await
            .map_err(|e| match e {
                AppendError::Conflict { stream, .. } => RepositoryError::Conflict { stream },
                AppendError::Log(log) => RepositoryError::Log(log),
            })?;
        let state = A::fold(loaded.state, &events);
        Ok(Executed {
            events,
            outcome: Some(outcome),
            state,
        })
    }
}
