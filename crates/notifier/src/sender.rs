//! The senders: one task per subscription sends its open deliveries, signed with its secret, each
//! reservation's in `seq` order (so in log order per reservation), one at a time, and up to
//! [`IN_FLIGHT`] reservations at once; a window's outcomes are saved in one write, and a window
//! that held every open delivery is not read again until something is due or queued. A delivery that
//! must be retried holds back the later ones of its reservation until its next attempt (order is
//! kept); a parked one does not.
//! Each task holds at most [`WINDOW`] deliveries in memory, the rest stay in the store, so a slow
//! or dead endpoint costs its own task only: the dispatcher, the projector and other subscribers
//! never wait for it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use keys::{cipher, KeyState, KeyStore};
use readmodel::ViewError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::guard;
use crate::model::{Delivery, DeliveryState, Subscription};
use crate::policy::{Outcome, RetryPolicy, Verdict};
use crate::signature::{sign, DELIVERY_HEADER, SIGNATURE_HEADER};
use crate::store::WebhookStore;
use crate::wakeups::Wakeups;

/// Open deliveries a sender reads at once.
const WINDOW: usize = 32;
/// Reservations whose deliveries one sender attempts at once (each reservation's one at a time).
const IN_FLIGHT: usize = 8;
/// How often a sender and the supervisor look again when nothing woke them.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The sealed field the secret is under.
pub const SECRET_FIELD: &str = "secret";

/// What every sender shares.
#[derive(Clone)]
pub struct Senders {
    pub store: Arc<dyn WebhookStore>,
    pub keys: Arc<dyn KeyStore>,
    pub policy: RetryPolicy,
    pub client: reqwest::Client,
    /// Wakes a subscription's sender when deliveries are queued or re-driven for it, and the
    /// supervisor when subscriptions change.
    pub wakeups: Arc<Wakeups>,
    /// `--webhook-allow-private`: loopback and private targets allowed.
    pub allow_private: bool,
    /// The subscriptions these senders serve (a notifier shard's; `Partition::ALL`: every one).
    pub shard: eventlog::Partition,
}

/// Whether `shard` serves `subscription` (split by its id, which is random).
#[must_use]
pub fn serves(shard: eventlog::Partition, subscription: Uuid) -> bool {
    shard.holds(subscription.as_u64_pair().0)
}

/// Open a subscription's secret (`None` once its key is gone: it was deleted).
pub async fn secret_of(
    keys: &dyn KeyStore,
    subscription: &Subscription,
) -> Result<Option<String>, ViewError> {
    let name = Subscription::key_name(subscription.id);
    match keys.key(&name).await {
        Ok(KeyState::Active(key)) => {
            cipher::open(&key, &name, SECRET_FIELD, &subscription.sealed_secret)
                .map(Some)
                .map_err(|e| {
                    ViewError::Corrupt(format!("secret of webhook {}: {e}", subscription.id))
                })
        }
        Ok(KeyState::Destroyed | KeyState::Missing) => Ok(None),
        Err(e) => Err(ViewError::Unavailable(e.to_string())),
    }
}

/// An error and its causes, `: `-separated (reqwest's own message omits the cause, e.g.
/// "connection refused").
fn with_causes(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn outcome_of(result: Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match result {
        Ok(answer) => Outcome::Answered(answer.status().as_u16()),
        Err(e) if guard::refused_target(&e) => Outcome::Refused(with_causes(&e)),
        Err(e) if e.is_timeout() => Outcome::TimedOut,
        Err(e) => Outcome::Unreachable(with_causes(&e)),
    }
}

impl Senders {
    async fn attempt(&self, url: &str, secret: &str, delivery: &Delivery) -> Outcome {
        let target = match guard::parse_target(url) {
            Ok(target) => target,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        // An address literal never reaches the resolver: check it here.
        if let Some(host) = target.host_str() {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                if !self.allow_private && !guard::is_public(ip) {
                    return Outcome::Refused(format!("{ip} is a private address"));
                }
            }
        }
        let t = Utc::now().timestamp();
        let sent = self
            .client
            .post(target)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sign(secret, t, delivery.body.as_bytes()))
            .header(DELIVERY_HEADER, delivery.delivery_id.to_string())
            .body(delivery.body.clone())
            .send()
            .await;
        outcome_of(sent)
    }
}

/// One attempt's result applied to `delivery`.
fn settle(policy: &RetryPolicy, delivery: &Delivery, outcome: &Outcome) -> Delivery {
    let now = Utc::now();
    let attempts = delivery.attempts.saturating_add(1);
    let first = delivery.first_attempt_at.unwrap_or(now);
    let (code, error) = match outcome {
        Outcome::Answered(code) => (Some(*code), None),
        Outcome::TimedOut => (None, Some("timed out".to_string())),
        Outcome::Unreachable(e) | Outcome::Refused(e) => (None, Some(e.clone())),
    };
    let (state, next, settled) = match policy.verdict(outcome, attempts, first, now) {
        Verdict::Delivered => (DeliveryState::Delivered, None, Some(now)),
        Verdict::RetryAt(at) => (DeliveryState::Retrying, Some(at), None),
        Verdict::Park => (DeliveryState::Parked, None, Some(now)),
    };
    Delivery {
        state,
        attempts,
        last_status_code: code,
        last_error: error,
        first_attempt_at: Some(first),
        next_attempt_at: next,
        settled_at: settled,
        ..delivery.clone()
    }
}

/// A window's deliveries that may be sent now, one chain per reservation in `seq` order (the
/// reservations in the order of their first delivery), and when the earliest held one is due. A
/// delivery not yet due (being retried) holds back the later ones of its reservation only.
fn chains(open: Vec<Delivery>, now: DateTime<Utc>) -> (Vec<Vec<Delivery>>, Option<DateTime<Utc>>) {
    let mut order: Vec<Uuid> = Vec::new();
    let mut by_reservation: HashMap<Uuid, Vec<Delivery>> = HashMap::new();
    let mut held: HashSet<Uuid> = HashSet::new();
    let mut held_until: Option<DateTime<Utc>> = None;
    for delivery in open {
        let reservation = delivery.reservation_id;
        if held.contains(&reservation) {
            continue;
        }
        let due = delivery.next_attempt_at.unwrap_or(delivery.queued_at);
        if due > now {
            held.insert(reservation);
            held_until = Some(held_until.map_or(due, |at| at.min(due)));
            continue;
        }
        by_reservation
            .entry(reservation)
            .or_insert_with(|| {
                order.push(reservation);
                Vec::new()
            })
            .push(delivery);
    }
    let chains = order
        .into_iter()
        .filter_map(|reservation| by_reservation.remove(&reservation))
        .collect();
    (chains, held_until)
}

/// Why a sender stopped looking at its window.
enum Pause {
    /// Nothing open: wait to be woken.
    Idle,
    /// The head is due at this time.
    Until(chrono::DateTime<Utc>),
    /// Look again at once.
    Again,
}

impl Senders {
    /// Send what is due in one window of `subscription`'s deliveries: each reservation's in
    /// order, up to [`IN_FLIGHT`] reservations at once.
    async fn window(&self, subscription: &Subscription, secret: &str) -> Result<Pause, ViewError> {
        let open = self.store.open_deliveries(subscription.id, WINDOW).await?;
        if open.is_empty() {
            return Ok(Pause::Idle);
        }
        // Fewer than a window: every delivery open when it was read is in it.
        let whole = open.len() < WINDOW;
        let (chains, held_until) = chains(open, Utc::now());
        if chains.is_empty() {
            return Ok(held_until.map_or(Pause::Again, Pause::Until));
        }
        // The window's outcomes are saved together, once it ends (one commit for many
        // deliveries); the next window is read only after that.
        let sends: Vec<_> = chains
            .into_iter()
            .map(|chain| self.send_chain(subscription, secret, chain))
            .collect();
        let outcomes: Vec<Vec<Delivery>> = futures::stream::iter(sends)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let outcomes: Vec<Delivery> = outcomes.into_iter().flatten().collect();
        self.store.record_attempts(&outcomes).await?;
        if !whole {
            return Ok(Pause::Again);
        }
        // The window held everything open, and each delivery in it is now settled, retrying or
        // held back: nothing is due before the earliest retry or held head. Deliveries queued or
        // re-driven since the read woke this sender (`run_one` listens from before the read), so
        // reading again now would only find what was just written.
        let retry_at = outcomes
            .iter()
            .filter(|delivery| delivery.state == DeliveryState::Retrying)
            .filter_map(|delivery| delivery.next_attempt_at)
            .min();
        Ok(match held_until.into_iter().chain(retry_at).min() {
            Some(at) => Pause::Until(at),
            None => Pause::Idle,
        })
    }

    /// Attempt one reservation's deliveries in order; stop at the first to retry (it holds back
    /// the rest). The outcomes.
    async fn send_chain(
        &self,
        subscription: &Subscription,
        secret: &str,
        chain: Vec<Delivery>,
    ) -> Vec<Delivery> {
        let mut outcomes = Vec::new();
        for delivery in chain {
            let outcome = self.attempt(&subscription.url, secret, &delivery).await;
            let settled = settle(&self.policy, &delivery, &outcome);
            let retrying = settled.state == DeliveryState::Retrying;
            outcomes.push(settled);
            if retrying {
                break;
            }
        }
        outcomes
    }

    /// Run one subscription's sender until `stop`.
    async fn run_one(self, subscription: Subscription, stop: CancellationToken) {
        let secret = loop {
            match secret_of(self.keys.as_ref(), &subscription).await {
                Ok(Some(secret)) => break secret,
                Ok(None) => return,
                Err(e) => {
                    http_edge::error_throttled!(cause = %e, webhook = %subscription.id, "webhook secret unreadable");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
        };
        let wakeup = self.wakeups.sender(subscription.id);
        while !stop.is_cancelled() {
            let woken = wakeup.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let wait = match self.window(&subscription, &secret).await {
                Ok(Pause::Again) => continue,
                Ok(Pause::Idle) => IDLE_POLL,
                Ok(Pause::Until(at)) => (at - Utc::now()).to_std().unwrap_or_default(),
                Err(e) => {
                    http_edge::error_throttled!(cause = %e, webhook = %subscription.id, "webhook sender: store failure");
                    IDLE_POLL
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = &mut woken => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Keep one sender per subscription (started for new ones, stopped for removed ones) until
    /// `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut running: HashMap<Uuid, (CancellationToken, JoinHandle<()>)> = HashMap::new();
        while !shutdown.is_cancelled() {
            match self.store.subscriptions().await {
                Ok(subscriptions) => {
                    running.retain(|id, (stop, task)| {
                        let kept = subscriptions.iter().any(|s| s.id == *id) && !task.is_finished();
                        if !kept {
                            stop.cancel();
                            self.wakeups.forget(*id);
                        }
                        kept
                    });
                    for subscription in subscriptions {
                        if running.contains_key(&subscription.id)
                            || !serves(self.shard, subscription.id)
                        {
                            continue;
                        }
                        let stop = shutdown.child_token();
                        let id = subscription.id;
                        let task = tokio::spawn(self.clone().run_one(subscription, stop.clone()));
                        running.insert(id, (stop, task));
                    }
                }
                Err(e) => {
                    http_edge::error_throttled!(cause = %e, "webhook senders: store failure");
                }
            }
            let woken = self.wakeups.supervisor().notified();
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = woken => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        for (_, (stop, task)) in running {
            stop.cancel();
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(seq: u64, reservation: u128, due_in_s: i64, now: DateTime<Utc>) -> Delivery {
        let due = now + chrono::Duration::seconds(due_in_s);
        Delivery {
            delivery_id: Uuid::from_u128(seq.into()),
            subscription_id: Uuid::nil(),
            seq,
            event_id: Uuid::from_u128(u128::from(seq) + 1_000),
            event_type: "reservation.approved".into(),
            reservation_id: Uuid::from_u128(reservation),
            position: seq,
            body: String::new(),
            state: DeliveryState::Pending,
            attempts: 0,
            last_status_code: None,
            last_error: None,
            queued_at: now,
            first_attempt_at: None,
            next_attempt_at: Some(due),
            settled_at: None,
        }
    }

    fn seqs(chains: &[Vec<Delivery>]) -> Vec<Vec<u64>> {
        chains
            .iter()
            .map(|c| c.iter().map(|d| d.seq).collect())
            .collect()
    }

    #[test]
    fn given_a_window_when_all_are_due_then_each_reservation_is_one_chain_in_seq_order() {
        let now = Utc::now();
        let open = [
            delivery(1, 7, 0, now),
            delivery(2, 8, 0, now),
            delivery(3, 7, 0, now),
            delivery(4, 9, 0, now),
            delivery(5, 8, 0, now),
        ];
        let (chains, held) = chains(open.to_vec(), now);
        assert_eq!(seqs(&chains), [vec![1, 3], vec![2, 5], vec![4]]);
        assert_eq!(held, None);
    }

    #[test]
    fn given_a_delivery_being_retried_when_the_window_is_read_then_it_holds_back_its_reservation_only(
    ) {
        let now = Utc::now();
        let open = [
            delivery(1, 7, 30, now),
            delivery(2, 8, 0, now),
            delivery(3, 7, 0, now),
            delivery(4, 9, 10, now),
            delivery(5, 8, 0, now),
        ];
        let (chains, held) = chains(open.to_vec(), now);
        assert_eq!(seqs(&chains), [vec![2, 5]], "7 and 9 wait for their heads");
        assert_eq!(
            held,
            Some(now + chrono::Duration::seconds(10)),
            "the earliest"
        );
    }

    #[test]
    fn given_only_held_deliveries_when_the_window_is_read_then_nothing_is_sent_until_the_earliest()
    {
        let now = Utc::now();
        let open = [delivery(1, 7, 30, now), delivery(2, 7, 0, now)];
        let (chains, held) = chains(open.to_vec(), now);
        assert!(chains.is_empty());
        assert_eq!(held, Some(now + chrono::Duration::seconds(30)));
    }
}
