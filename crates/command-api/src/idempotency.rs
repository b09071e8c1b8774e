//! `Idempotency-Key`: a retried command gives the first answer and writes nothing new.
//!
//! How it stays durable without a table of its own: a key is scoped to the caller (`sub`) and the
//! operation (e.g. `cancel:<reservation_id>`), and turned into a deterministic causation id (UUID v5).
//! The event log derives event ids from (causation id, stream, index), so a repeat writes nothing, and
//! the events the first request wrote carry that causation id, so its answer can be rebuilt from the log
//! (see each service). A new reservation's id is likewise UUID v5 of (customer, key). A bounded
//! in-memory [`ReplayCache`] answers repeats within one process run at once and also catches a key
//! reused with a different body where the log alone cannot tell (e.g. another explicit lodging id).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use http_edge::limits::{is_idempotency_key, MAX_KEY_LEN};
use http_edge::FieldError;

/// Namespace of causation ids derived from idempotency keys.
const CAUSATION_NAMESPACE: Uuid = Uuid::from_u128(0x5f0b_8c1e_2d7a_4b44_9a63_1c2e_7d35_a001);
/// Namespace of reservation ids derived from (customer, key).
const RESERVATION_NAMESPACE: Uuid = Uuid::from_u128(0x5f0b_8c1e_2d7a_4b44_9a63_1c2e_7d35_a002);
/// Namespace of lodging ids derived from (admin, key) when the body names none.
const LODGING_NAMESPACE: Uuid = Uuid::from_u128(0x5f0b_8c1e_2d7a_4b44_9a63_1c2e_7d35_a003);

/// A validated `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        if !is_idempotency_key(text) {
            return Err(FieldError::new(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            ));
        }
        Ok(Self(text.to_string()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn scoped(namespace: &Uuid, parts: &[&str]) -> Uuid {
    Uuid::new_v5(namespace, parts.join("\n").as_bytes())
}

/// The causation id of `operation` by `sub` under `key`.
#[must_use]
pub fn causation_id(sub: &str, operation: &str, key: &IdempotencyKey) -> Uuid {
    scoped(&CAUSATION_NAMESPACE, &[sub, operation, key.as_str()])
}

/// The id of the reservation customer `sub` requests under `key`.
#[must_use]
pub fn reservation_id(sub: &str, key: &IdempotencyKey) -> Uuid {
    scoped(&RESERVATION_NAMESPACE, &[sub, key.as_str()])
}

/// The id of a lodging registered by `sub` under `key` without an explicit id.
#[must_use]
pub fn lodging_id(sub: &str, key: &IdempotencyKey) -> Uuid {
    scoped(&LODGING_NAMESPACE, &[sub, key.as_str()])
}

/// Digest of a request's canonical form (operation + parsed input), to tell a repeat from a reuse.
#[must_use]
pub fn fingerprint(operation: &str, canonical_input: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(canonical_input.as_bytes());
    hasher.finalize().into()
}

/// What a repeat finds in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay<T> {
    /// Never seen (or forgotten): run the command.
    Miss,
    /// The same request was answered: give this answer again.
    Same(T),
    /// The key was used with another request.
    Different,
}

/// First answers by causation id, the oldest forgotten first once `capacity` is reached.
#[derive(Debug)]
pub struct ReplayCache<T> {
    capacity: usize,
    inner: Mutex<CacheInner<T>>,
}

#[derive(Debug)]
struct CacheInner<T> {
    answers: HashMap<Uuid, ([u8; 32], T)>,
    order: VecDeque<Uuid>,
}

impl<T: Clone> ReplayCache<T> {
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(CacheInner {
                answers: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    pub fn lookup(&self, causation: Uuid, fingerprint: &[u8; 32]) -> Replay<T> {
        let Ok(inner) = self.inner.lock() else {
            return Replay::Miss;
        };
        match inner.answers.get(&causation) {
            None => Replay::Miss,
            Some((seen, answer)) if seen == fingerprint => Replay::Same(answer.clone()),
            Some(_) => Replay::Different,
        }
    }

    pub fn remember(&self, causation: Uuid, fingerprint: [u8; 32], answer: T) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner
            .answers
            .insert(causation, (fingerprint, answer))
            .is_none()
        {
            inner.order.push_back(causation);
        }
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.answers.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn derived_ids_depend_on_caller_operation_and_key() {
        let k = key("k-1");
        assert_eq!(
            causation_id("c-1", "cancel:r", &k),
            causation_id("c-1", "cancel:r", &k)
        );
        assert_ne!(
            causation_id("c-1", "cancel:r", &k),
            causation_id("c-2", "cancel:r", &k)
        );
        assert_ne!(
            causation_id("c-1", "cancel:r", &k),
            causation_id("c-1", "cancel:s", &k)
        );
        assert_ne!(
            reservation_id("c-1", &k),
            reservation_id("c-1", &key("k-2"))
        );
        assert_eq!(reservation_id("c-1", &k).get_version_num(), 5);
    }

    #[test]
    fn keys_must_be_short_visible_ascii() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("   ").is_err());
        assert!(IdempotencyKey::parse("tab\there").is_err());
        assert!(IdempotencyKey::parse(&"x".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("order 42/retry").is_ok());
    }

    #[test]
    fn cache_tells_repeats_from_reuses_and_forgets_the_oldest() {
        let cache = ReplayCache::new(2);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let fp = fingerprint("op", "{}");
        cache.remember(a, fp, 1);
        assert_eq!(cache.lookup(a, &fp), Replay::Same(1));
        assert_eq!(
            cache.lookup(a, &fingerprint("op", "{\"x\":1}")),
            Replay::Different
        );
        cache.remember(b, fp, 2);
        cache.remember(c, fp, 3);
        assert_eq!(cache.lookup(a, &fp), Replay::Miss);
        assert_eq!(cache.lookup(c, &fp), Replay::Same(3));
    }
}
