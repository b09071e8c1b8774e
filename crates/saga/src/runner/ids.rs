//! Deterministic ids: the same trigger, action or timer always gets the same id, so anything sent
//! again after a crash or a redelivery is recognised as a duplicate downstream.

use domain::saga::TimerKind;
use domain::{ReservationId, Timestamp};
use uuid::Uuid;

/// Namespace of every id the saga runner derives (a fixed, random v4).
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a57_93d4_4c8e_b0a1_5e7d_c3f2_9b64);

/// The causation id of the `index`-th action recorded for `trigger_id`.
#[must_use]
pub fn action_id(trigger_id: Uuid, index: usize) -> Uuid {
    let mut name = trigger_id.as_bytes().to_vec();
    name.extend_from_slice(b"/action/");
    name.extend_from_slice(index.to_string().as_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

/// The trigger id of a timer firing: one per (reservation, kind, due time).
#[must_use]
pub fn timer_trigger_id(reservation_id: ReservationId, kind: TimerKind, due_at: Timestamp) -> Uuid {
    let name = format!(
        "{reservation_id}/timer/{}/{}",
        kind.as_str(),
        due_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    );
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// An id derived from another one for a follow-up step (`"compensation"`, `"payment"`...).
#[must_use]
pub fn derived_id(parent: Uuid, step: &str) -> Uuid {
    let mut name = parent.as_bytes().to_vec();
    name.push(b'/');
    name.extend_from_slice(step.as_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn ids_are_stable_and_distinct() {
        let trigger = Uuid::from_u128(7);
        assert_eq!(action_id(trigger, 0), action_id(trigger, 0));
        assert_ne!(action_id(trigger, 0), action_id(trigger, 1));
        assert_ne!(action_id(trigger, 0), action_id(Uuid::from_u128(8), 0));
        let at = Utc
            .timestamp_opt(1_700_000_000, 123)
            .single()
            .expect("valid");
        let later = at + chrono::TimeDelta::nanoseconds(1);
        let rid = Uuid::from_u128(1);
        assert_eq!(
            timer_trigger_id(rid, TimerKind::PaymentRetry, at),
            timer_trigger_id(rid, TimerKind::PaymentRetry, at)
        );
        assert_ne!(
            timer_trigger_id(rid, TimerKind::PaymentRetry, at),
            timer_trigger_id(rid, TimerKind::PaymentRetry, later)
        );
        assert_ne!(
            timer_trigger_id(rid, TimerKind::PaymentRetry, at),
            timer_trigger_id(rid, TimerKind::ApprovalDeadline, at)
        );
        assert_ne!(derived_id(trigger, "a"), derived_id(trigger, "b"));
    }
}
