//! Our side of the peer comparison, in process: the command workload of `bench/peer/peer_bench.py`
//! (request, approve, confirm; 64 lodgings) run through [`Repository`] with the domain aggregates
//! on a durable [`SqliteEventLog`] (fsync before every acknowledgement, as the peer's SQLite WAL
//! commits with `synchronous=FULL`).
//!
//! Per flow: `Request` on a new Reservation stream; approve = load the reservation (the admin's
//! command reads the stay from it), `Grant` on the lodging's stream (optimistic concurrency, retried
//! on conflict) and `RecordApproval` on the reservation; then `Confirm`. Four durable appends, where
//! the peer makes three transactions (it saves the lodging and the reservation together).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use domain::lodging::{ApprovalMode, LodgingAggregate, LodgingCommand, LodgingProfile};
use domain::reservation::{LodgingTerms, ReservationAggregate, ReservationCommand};
use domain::Stay;
use eventlog::{CommandContext, EventLog, Repository, SqliteEventLog};
use uuid::Uuid;

const LODGINGS: usize = 64;

struct Workload {
    reservations: Repository<ReservationAggregate>,
    lodgings: Repository<LodgingAggregate>,
    profiles: Vec<LodgingProfile>,
}

fn context(correlation: Uuid, actor: &str) -> CommandContext {
    CommandContext {
        correlation_id: correlation,
        causation_id: Uuid::new_v4(),
        actor: actor.to_string(),
        now: Utc::now(),
    }
}

fn failed<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> anyhow::Error {
    move |e| anyhow::anyhow!("{what}: {e}")
}

impl Workload {
    async fn open(path: &Path) -> anyhow::Result<Self> {
        let log: Arc<dyn EventLog> =
            Arc::new(SqliteEventLog::open(path).context("opening the log")?);
        let lodgings = Repository::<LodgingAggregate>::new(Arc::clone(&log))
            .with_snapshots(log.snapshots())
            .max_retries(20);
        let mut profiles = Vec::with_capacity(LODGINGS);
        for n in 0..LODGINGS {
            let profile = LodgingProfile {
                fee_bps: 1_000,
                lodging_id: format!("lodging-{n}"),
                name: format!("lodging-{n}"),
                nightly_rate: 120_000,
                currency: "KRW".into(),
                rooms: 1_000_000,
                max_guests: 4,
                approval_mode: ApprovalMode::Manual,
                admin_id: "admin".into(),
                timezone: domain::Tz::Asia__Seoul,
            };
            let command = LodgingCommand::Register(profile.clone());
            let ctx = context(Uuid::nil(), "admin:platform");
            lodgings
                .execute(&profile.lodging_id, &command, &ctx)
                .await
                .map_err(failed("register"))?;
            profiles.push(profile);
        }
        Ok(Self {
            reservations: Repository::new(Arc::clone(&log))
                .with_snapshots(log.snapshots())
                .max_retries(20),
            lodgings,
            profiles,
        })
    }

    async fn flow(&self, i: usize) -> anyhow::Result<()> {
        let profile = &self.profiles[i % self.profiles.len()];
        let base = NaiveDate::from_ymd_opt(2030, 1, 1).context("date")?;
        let check_in = base + chrono::TimeDelta::days((i % 300) as i64);
        let stay = Stay {
            rooms: 1,
            check_in,
            check_out: check_in + chrono::TimeDelta::days(2),
            guests: 2,
        };
        let id = Uuid::new_v4();
        let key = id.to_string();
        let request = ReservationCommand::Request {
            reservation_id: id,
            customer_id: format!("customer-{i}"),
            lodging: LodgingTerms {
                lodging_id: profile.lodging_id.clone(),
                nightly_rate: profile.nightly_rate,
                currency: profile.currency.clone(),
                max_guests: profile.max_guests,
                rooms: profile.rooms,
                timezone: domain::Tz::Asia__Seoul,
            },
            stay,
        };
        let customer = format!("customer:customer-{i}");
        self.reservations
            .execute(&key, &request, &context(id, &customer))
            .await
            .map_err(failed("request"))?;
        let reservation = self.reservations.load(&key).await.map_err(failed("load"))?;
        let stay = reservation
            .state
            .details
            .context("the reservation was not recorded")?
            .stay();
        let grant = LodgingCommand::Grant {
            reservation_id: id,
            stay,
            granted_by: "admin".into(),
        };
        let ctx = context(id, "admin:admin");
        self.lodgings
            .execute(&profile.lodging_id, &grant, &ctx)
            .await
            .map_err(failed("grant"))?;
        let approve = ReservationCommand::RecordApproval {
            approved_by: "admin".into(),
        };
        self.reservations
            .execute(&key, &approve, &context(id, "admin:admin"))
            .await
            .map_err(failed("approve"))?;
        let confirm = ReservationCommand::Confirm {
            payment_id: format!("pay-{i}"),
            amount: 240_000,
        };
        self.reservations
            .execute(&key, &confirm, &context(id, "saga"))
            .await
            .map_err(failed("confirm"))?;
        Ok(())
    }
}

/// Run `flows` flows from `concurrency` tasks on a fresh log in `dir`; flows per second.
pub async fn run(dir: &Path, flows: usize, concurrency: usize) -> anyhow::Result<f64> {
    let path = dir.join(format!("peer-ours-c{concurrency}.db"));
    let workload = Arc::new(Workload::open(&path).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (workload, next) = (Arc::clone(&workload), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= flows {
                        return Ok::<_, anyhow::Error>(());
                    }
                    workload.flow(i).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a flow task panicked")??;
    }
    Ok(flows as f64 / started.elapsed().as_secs_f64())
}
