//! The large log B5, B7 and B8 share (1,000,000 events; ~20,000 in `--quick`), made once per run.
//!
//! Written straight through [`SqliteEventLog::append`] (durable, group-committed) by many concurrent
//! writers: whole confirmed flows in the order the services append them, over 500 lodgings. The
//! saga's events are decided by the real saga ([`ReservationSaga::decide`]), so their payloads
//! (handled trigger, actions, timers) are what production writes; the other events are built from
//! the domain types. Each of the 20,000 customers records a profile first, sealed under their own
//! key in the data dir's `keys.db` as `PUT /me/profile` does, and one in 20 is erased (the key
//! destroyed, `CustomerErased`). Then the views are rebuilt into the data dir (B5) and the saga's checkpoint is
//! set to the head, so the dir is what a `serve` that handled all of it leaves behind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use domain::customer::{CustomerEvent, SealedProfile};
use domain::lodging::{ApprovalMode, LodgingEvent, LodgingProfile};
use domain::payment::PaymentEvent;
use domain::reservation::{ReservationEvent, ReservationRequested};
use domain::saga::{ReservationSaga, SagaInput, SagaPolicy, SagaState, SagaTrigger};
use domain::{Aggregate, DomainEvent};
use eventlog::{EventLog, EventMetadata, ExpectedVersion, NewEvent, SqliteEventLog};
use keys::{KeyStore, SqliteKeyStore};
use saga::{ProgressUpdate, Shard, SqliteTimerStore, TimerStore};
use stayledger::data_dir;
use uuid::Uuid;

const LODGINGS: u64 = 500;
/// Customers of the seeded flows (flow `n` is customer `n % CUSTOMERS`'s); each has a profile.
const CUSTOMERS: u64 = 20_000;
/// One customer in this many is erased.
const ERASED_ONE_IN: u64 = 20;
/// Flows being written at once (each a chain of appends): the group commit's batch.
const WRITERS: u64 = 256;

/// A seeded data dir.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    pub events: u64,
    pub flows: u64,
    pub seed_seconds: f64,
}

/// Who caused an event, for its metadata.
fn meta(correlation: Uuid, causation: Uuid, actor: &str) -> EventMetadata {
    EventMetadata {
        correlation_id: correlation,
        causation_id: causation,
        actor: actor.to_string(),
    }
}

fn encode<E: DomainEvent>(event: &E, metadata: EventMetadata) -> NewEvent {
    eventlog::encode(event, Uuid::new_v4(), metadata)
}

async fn append(log: &SqliteEventLog, stream: &str, events: Vec<NewEvent>) -> anyhow::Result<()> {
    log.append(stream, ExpectedVersion::Any, events)
        .await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("seeding {stream}: {e}"))
}

/// The saga's own events for one trigger, as the runner records them.
struct SagaStream {
    id: Uuid,
    stream: String,
    state: SagaState,
}

impl SagaStream {
    async fn handle(
        &mut self,
        log: &SqliteEventLog,
        trigger: &NewEvent,
        input: SagaInput,
    ) -> anyhow::Result<Uuid> {
        let trigger = SagaTrigger {
            trigger_id: trigger.event_id,
            input,
            policy: SagaPolicy::default(),
        };
        let decided = ReservationSaga::decide(&self.state, &trigger, Utc::now())
            .map_err(|e| anyhow::anyhow!("saga decision: {e}"))?;
        self.state = ReservationSaga::fold(std::mem::take(&mut self.state), &decided);
        let events: Vec<NewEvent> = decided
            .iter()
            .map(|e| encode(e, meta(self.id, trigger.trigger_id, "saga")))
            .collect();
        let handled = events.first().map_or(trigger.trigger_id, |e| e.event_id);
        append(log, &self.stream, events).await?;
        Ok(handled)
    }
}

/// Customer `n` records a sealed profile (and, one in [`ERASED_ONE_IN`], is erased).
async fn profile(log: &SqliteEventLog, keys: &SqliteKeyStore, n: u64) -> anyhow::Result<()> {
    let customer_id = format!("customer-{n}");
    let key = keys
        .key_for_writing(&customer_id)
        .await
        .map_err(|e| anyhow::anyhow!("a seed key: {e}"))?;
    let seal = |field: &str, text: String| keys::seal(&key, &customer_id, field, &text);
    let profile = SealedProfile {
        name: seal("name", format!("Guest {n}")),
        email: seal("email", format!("guest{n}@example.kr")),
        phone: seal("phone", format!("010-{:04}-{:04}", n / 10_000, n % 10_000)),
    };
    let actor = format!("customer:{customer_id}");
    let stream = format!("customer-{customer_id}");
    let recorded = CustomerEvent::CustomerProfileRecorded { profile };
    let mut events = vec![encode(&recorded, meta(Uuid::nil(), Uuid::new_v4(), &actor))];
    if n.is_multiple_of(ERASED_ONE_IN) {
        keys.destroy(&customer_id)
            .await
            .map_err(|e| anyhow::anyhow!("destroying a seed key: {e}"))?;
        let erased = CustomerEvent::CustomerErased {
            erased_by: customer_id.clone(),
            reason: "asked by the customer".into(),
        };
        events.push(encode(&erased, meta(Uuid::nil(), Uuid::new_v4(), &actor)));
    }
    append(log, &stream, events).await
}

/// One whole flow: request -> approval -> payment -> confirmation, with the saga between.
async fn flow(log: &SqliteEventLog, n: u64) -> anyhow::Result<()> {
    let id = Uuid::new_v4();
    let lodging_id = format!("seed-{}", n % LODGINGS);
    let nights = 1 + (n % 3) as u32;
    let check_in = Utc::now().date_naive() + chrono::TimeDelta::days(60 + (n % 300) as i64);
    let requested = ReservationRequested {
        timezone: domain::WAVE1_TIMEZONE,
        rooms: 1,
        reservation_id: id,
        customer_id: format!("customer-{}", n % CUSTOMERS),
        lodging_id: lodging_id.clone(),
        check_in,
        check_out: check_in + chrono::TimeDelta::days(i64::from(nights)),
        guests: 2,
        nights,
        total_amount: 120_000 * i64::from(nights),
        currency: "KRW".into(),
    };
    let (reservation, payment) = (format!("reservation-{id}"), format!("payment-{id}"));
    let lodging = format!("lodging-{lodging_id}");
    let mut saga = SagaStream {
        id,
        stream: format!("saga-{id}"),
        state: SagaState::default(),
    };
    let customer = format!("customer:{}", requested.customer_id);
    let event = ReservationEvent::ReservationRequested(requested.clone());
    let request = encode(&event, meta(id, Uuid::new_v4(), &customer));
    append(log, &reservation, vec![request.clone()]).await?;
    let cause = saga
        .handle(log, &request, SagaInput::Reservation(event))
        .await?;
    let forwarded = LodgingEvent::ApprovalRequested {
        rooms: 1,
        reservation_id: id,
        check_in: requested.check_in,
        check_out: requested.check_out,
        guests: requested.guests,
    };
    append(
        log,
        &lodging,
        vec![encode(&forwarded, meta(id, cause, "saga"))],
    )
    .await?;
    let granted = LodgingEvent::ApprovalGranted {
        reservation_id: id,
        granted_by: format!("admin-{lodging_id}"),
    };
    let actor = format!("admin:admin-{lodging_id}");
    let grant = encode(&granted, meta(id, Uuid::new_v4(), &actor));
    append(log, &lodging, vec![grant.clone()]).await?;
    let cause = saga
        .handle(log, &grant, SagaInput::Lodging(granted))
        .await?;
    let approved = ReservationEvent::ReservationApproved {
        approved_by: format!("admin-{lodging_id}"),
    };
    append(
        log,
        &reservation,
        vec![encode(&approved, meta(id, cause, "saga"))],
    )
    .await?;
    let charge = PaymentEvent::PaymentRequested {
        reservation_id: id,
        amount: requested.total_amount,
        currency: "KRW".into(),
    };
    let charge_event = encode(&charge, meta(id, cause, "saga"));
    append(log, &payment, vec![charge_event.clone()]).await?;
    let cause = saga
        .handle(log, &charge_event, SagaInput::Payment(charge))
        .await?;
    let paid = PaymentEvent::PaymentCompleted {
        payment_id: format!("pay-{id}"),
        gateway_ref: format!("ch_{}", id.simple()),
        amount: requested.total_amount,
    };
    let paid_event = encode(&paid, meta(id, cause, "payment-worker"));
    append(log, &payment, vec![paid_event.clone()]).await?;
    let cause = saga
        .handle(log, &paid_event, SagaInput::Payment(paid))
        .await?;
    let confirmed = ReservationEvent::ReservationConfirmed {
        payment_id: format!("pay-{id}"),
        amount: requested.total_amount,
    };
    append(
        log,
        &reservation,
        vec![encode(&confirmed, meta(id, cause, "saga"))],
    )
    .await
}

async fn register(log: &SqliteEventLog) -> anyhow::Result<()> {
    for n in 0..LODGINGS {
        let profile = LodgingProfile {
            fee_bps: 1_000,
            lodging_id: format!("seed-{n}"),
            name: format!("Seeded lodging {n}"),
            nightly_rate: 120_000,
            currency: "KRW".into(),
            rooms: 100_000,
            max_guests: 4,
            approval_mode: ApprovalMode::Manual,
            admin_id: format!("admin-seed-{n}"),
            timezone: domain::Tz::Asia__Seoul,
        };
        let stream = format!("lodging-{}", profile.lodging_id);
        let event = LodgingEvent::LodgingRegistered(profile);
        let registered = encode(&event, meta(Uuid::nil(), Uuid::new_v4(), "admin:platform"));
        append(log, &stream, vec![registered]).await?;
    }
    Ok(())
}

/// Write about `events` events of whole flows into `dir`'s event log.
pub async fn seed(dir: &Path, events: u64) -> anyhow::Result<Dataset> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = SqliteEventLog::open(data_dir::events_path(dir)).context("opening the seed log")?;
    let started = Instant::now();
    let keys = Arc::new(data_dir::key_store(dir).context("opening the seed key store")?);
    register(&log).await?;
    // A flow's events as `flow` writes them, on average (11.0 since a saga's record carries its
    // timers; 14.0 before), so the log holds about `events`.
    let per_flow = 11;
    let flows = events.saturating_sub(LODGINGS) / per_flow;
    // The customers of the flows written (fewer in a small log), each with a profile.
    let customers = flows.min(CUSTOMERS);
    let profile_events = customers + customers.div_ceil(ERASED_ONE_IN);
    let flows = events.saturating_sub(LODGINGS + profile_events) / per_flow;
    let next = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (log, next, keys) = (log.clone(), Arc::clone(&next), Arc::clone(&keys));
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= flows {
                        return Ok::<_, anyhow::Error>(());
                    }
                    if n < customers {
                        profile(&log, &keys, n).await?;
                    }
                    flow(&log, n).await?;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.context("a seed writer panicked")??;
    }
    let head = log.head_position().await?;
    Ok(Dataset {
        dir: dir.to_path_buf(),
        events: head,
        flows,
        seed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Leave the saga's progress as a `serve` that handled the whole log would: checkpoint at the head.
pub async fn mark_saga_done(dir: &Path, head: u64) -> anyhow::Result<()> {
    let store = SqliteTimerStore::open(data_dir::timer_path(dir, Shard::ALL))
        .context("opening the saga store")?;
    let update = ProgressUpdate {
        checkpoint: Some(head),
        ..ProgressUpdate::default()
    };
    store
        .commit(update)
        .await
        .map_err(|e| anyhow::anyhow!("saga checkpoint: {e}"))
}
