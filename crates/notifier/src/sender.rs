//! The senders: one task per subscription sends its open deliveries in `seq` order (so in log
//! order per reservation), one at a time, signed with its secret; a window's outcomes are saved in
//! one write. A delivery that must be retried holds back the ones behind it until its next attempt
//! (order is kept); a parked one does not.
//! Each task holds at most [`WINDOW`] deliveries in memory, the rest stay in the store, so a slow
//! or dead endpoint costs its own task only: the dispatcher, the projector and other subscribers
//! never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use keys::{cipher, KeyState, KeyStore};
use readmodel::ViewError;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::guard;
use crate::model::{Delivery, DeliveryState, Subscription};
use crate::policy::{Outcome, RetryPolicy, Verdict};
use crate::signature::{sign, DELIVERY_HEADER, SIGNATURE_HEADER};
use crate::store::WebhookStore;

/// Open deliveries a sender reads at once.
const WINDOW: usize = 32;
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
    /// Woken when deliveries are queued or re-driven, or subscriptions change.
    pub queued: Arc<Notify>,
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
    /// Send what is due in one window of `subscription`'s deliveries.
    async fn window(&self, subscription: &Subscription, secret: &str) -> Result<Pause, ViewError> {
        let open = self.store.open_deliveries(subscription.id, WINDOW).await?;
        if open.is_empty() {
            return Ok(Pause::Idle);
        }
        // The window's outcomes are saved together, once it ends (one commit for many
        // deliveries); the next window is read only after that.
        let mut outcomes = Vec::new();
        let mut pause = Pause::Again;
        for delivery in &open {
            let due = delivery.next_attempt_at.unwrap_or(delivery.queued_at);
            if due > Utc::now() {
                pause = Pause::Until(due);
                break;
            }
            let outcome = self.attempt(&subscription.url, secret, delivery).await;
            let settled = settle(&self.policy, delivery, &outcome);
            let retrying = settled.state == DeliveryState::Retrying;
            outcomes.push(settled);
            if retrying {
                break;
            }
        }
        if !outcomes.is_empty() {
            self.store.record_attempts(&outcomes).await?;
        }
        Ok(pause)
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
        while !stop.is_cancelled() {
            let woken = self.queued.notified();
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
            let woken = self.queued.notified();
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
