//! The write model of one process: one [`Repository`] per aggregate of the platform, over one log.
//!
//! Built once where a process is wired (`stayledger serve`, each service alone) and handed, cloned,
//! to every part that writes: the command API and the saga runner. Clones share each repository's
//! stream workers and state cache, so every command on a stream in this process goes through one
//! worker (decision 0007) and decides on one cached state: an admin's approval and the saga's
//! forwarded request on a lodging's desk are batched together instead of racing each other's
//! appends. Building a second `Repositories` over the same log in one process undoes that.
//!
//! This is the only place `eventlog` names the platform's aggregates, to hold their repositories;
//! their rules stay in `domain`.

use std::sync::Arc;

use domain::customer::CustomerAggregate;
use domain::lodging::LodgingAggregate;
use domain::payment::PaymentAggregate;
use domain::payout::PayoutAggregate;
use domain::reservation::ReservationAggregate;
use domain::saga::ReservationSaga;

use crate::{EventLog, Repository};

/// States kept of the short streams a flow loads again at each of its steps, so that a flow in
/// flight reads only what follows its own last write: enough of them for the flows in flight under
/// a burst. A flow's last steps (its admin's decision, its confirmation) come after every request
/// made since its own; an evicted state costs a read and a decode of its whole stream. A saga's
/// state is 0.5-2 KB and its stream the longest (up to ~10 events of ~400 bytes). Sagas and
/// reservations: one for each flow of a 20,000-flow burst and room to spare, ~15 MiB in all when full
/// (decision 0007).
const SAGA_STREAMS: usize = 24_576;
/// A reservation's state is ~0.3 KB, its stream two to four short events.
const RESERVATION_STREAMS: usize = 24_576;
/// A payment's steps come close together (requested, charged, completed).
const PAYMENT_STREAMS: usize = 8_192;
/// Lodgings are few and every request of theirs goes through their desk: kept from their first
/// event (a new lodging's first requests each read its whole stream otherwise), as many as
/// [`Repository::new`] keeps of long streams.
const LODGING_STREAMS: usize = 128;

/// One repository per aggregate over one log; clones share workers and caches.
#[derive(Clone)]
pub struct Repositories {
    pub reservations: Repository<ReservationAggregate>,
    pub lodgings: Repository<LodgingAggregate>,
    pub payments: Repository<PaymentAggregate>,
    pub payouts: Repository<PayoutAggregate>,
    pub customers: Repository<CustomerAggregate>,
    pub sagas: Repository<ReservationSaga>,
}

impl Repositories {
    /// The write model over `log`, each repository with [`Repository::new`]'s settings, except
    /// that the streams of a flow and lodgings are cached however short they are: up to
    /// [`SAGA_STREAMS`] sagas, [`RESERVATION_STREAMS`] reservations, [`PAYMENT_STREAMS`] payments
    /// and [`LODGING_STREAMS`] lodgings. Call once per process and log.
    #[must_use]
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self {
            reservations: Repository::new(Arc::clone(&log)).cache(RESERVATION_STREAMS, 0),
            lodgings: Repository::new(Arc::clone(&log)).cache(LODGING_STREAMS, 0),
            payments: Repository::new(Arc::clone(&log)).cache(PAYMENT_STREAMS, 0),
            payouts: Repository::new(Arc::clone(&log)),
            customers: Repository::new(Arc::clone(&log)),
            sagas: Repository::new(log).cache(SAGA_STREAMS, 0),
        }
    }

    /// The log the repositories write to.
    #[must_use]
    pub fn log(&self) -> &Arc<dyn EventLog> {
        self.reservations.log()
    }

    /// These repositories, re-deciding a conflicting command of theirs `n` times before giving up
    /// ([`Repository::max_retries`]): one part's setting, still on the shared workers and caches.
    #[must_use]
    pub fn max_retries(self, n: u32) -> Self {
        Self {
            reservations: self.reservations.max_retries(n),
            lodgings: self.lodgings.max_retries(n),
            payments: self.payments.max_retries(n),
            payouts: self.payouts.max_retries(n),
            customers: self.customers.max_retries(n),
            sagas: self.sagas.max_retries(n),
        }
    }
}
