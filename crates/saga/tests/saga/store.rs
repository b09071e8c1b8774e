//! The SQLite timer store: what is committed is what a restart loads.

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use domain::saga::TimerKind;
use saga::{ParkedAction, ProgressUpdate, RefundRetry, SqliteTimerStore, TimerStore};
use uuid::Uuid;

fn refund(action: u128, at_secs: i64) -> RefundRetry {
    RefundRetry {
        action_id: Uuid::from_u128(action),
        reservation_id: Uuid::from_u128(1),
        correlation_id: Uuid::from_u128(1),
        charge_ref: "ch_1".to_string(),
        amount: 700,
        attempt: 1,
        next_attempt_at: Utc
            .timestamp_opt(1_900_000_000 + at_secs, 0)
            .single()
            .expect("valid"),
        last_error: "503".to_string(),
    }
}

#[tokio::test]
async fn progress_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("saga.db");
    let store = SqliteTimerStore::open(&path).expect("open");
    assert_eq!(
        store.load().await.expect("load"),
        saga::SagaProgress::default()
    );

    let rid = Uuid::from_u128(1);
    let due = Utc::now() + TimeDelta::nanoseconds(1_234_567_891);
    let armed = BTreeMap::from([(TimerKind::ApprovalDeadline, due)]);
    let update = ProgressUpdate {
        checkpoint: Some(42),
        timers: vec![(rid, armed)],
        refunds_due: vec![refund(9, 0)],
        ..ProgressUpdate::default()
    };
    store.commit(update).await.expect("commit");
    drop(store);

    let reopened = SqliteTimerStore::open(&path).expect("reopen");
    let progress = reopened.load().await.expect("load");
    assert_eq!(progress.checkpoint, 42);
    assert_eq!(progress.timers.len(), 1);
    assert_eq!(
        progress.timers[0].due_at, due,
        "due times keep their nanoseconds"
    );
    assert_eq!(progress.refunds, vec![refund(9, 0)]);
}

#[tokio::test]
async fn timers_are_replaced_per_reservation_and_the_checkpoint_never_goes_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteTimerStore::open(dir.path().join("saga.db")).expect("open");
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let now = Utc::now();
    let both = BTreeMap::from([
        (TimerKind::ApprovalDeadline, now),
        (TimerKind::PaymentRetry, now + TimeDelta::seconds(1)),
    ]);
    let first = ProgressUpdate {
        checkpoint: Some(10),
        timers: vec![(a, both.clone()), (b, both)],
        ..ProgressUpdate::default()
    };
    store.commit(first).await.expect("commit");
    let second = ProgressUpdate {
        checkpoint: Some(7),
        timers: vec![(a, BTreeMap::new())],
        refunds_due: vec![refund(1, 5), refund(2, 1)],
        ..ProgressUpdate::default()
    };
    store.commit(second).await.expect("commit");
    let settle = ProgressUpdate {
        refunds_settled: vec![Uuid::from_u128(1)],
        ..ProgressUpdate::default()
    };
    store.commit(settle).await.expect("commit");

    let progress = store.load().await.expect("load");
    assert_eq!(progress.checkpoint, 10, "a lower checkpoint is ignored");
    assert!(progress.timers.iter().all(|t| t.reservation_id == b));
    assert_eq!(progress.timers.len(), 2);
    assert_eq!(progress.refunds, vec![refund(2, 1)]);
}

#[tokio::test]
async fn timers_due_before_an_instant_come_with_their_reservation_s_later_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteTimerStore::open(dir.path().join("saga.db")).expect("open");
    let now = Utc::now();
    let at = |minutes: i64| now + TimeDelta::minutes(minutes);
    let (soon, mixed, later) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let update = ProgressUpdate {
        timers: vec![
            (soon, BTreeMap::from([(TimerKind::PaymentRetry, at(1))])),
            (
                mixed,
                BTreeMap::from([
                    (TimerKind::PaymentRetry, at(5)),
                    (TimerKind::ApprovalDeadline, at(24 * 60)),
                ]),
            ),
            (
                later,
                BTreeMap::from([(TimerKind::ApprovalDeadline, at(60))]),
            ),
        ],
        ..ProgressUpdate::default()
    };
    store.commit(update).await.expect("commit");

    let near = store.armed_before(at(10)).await.expect("near");
    let mut got: Vec<(Uuid, TimerKind)> = near.iter().map(|t| (t.reservation_id, t.kind)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            (soon, TimerKind::PaymentRetry),
            (mixed, TimerKind::ApprovalDeadline),
            (mixed, TimerKind::PaymentRetry),
        ],
        "a reservation comes whole, its deadline a day away included"
    );
    assert!(
        near.windows(2).all(|w| w[0].due_at <= w[1].due_at),
        "by due time"
    );
    assert!(
        store.armed_before(at(1)).await.expect("none").is_empty(),
        "due strictly before"
    );
    assert_eq!(store.armed_before(at(61)).await.expect("all").len(), 4);
}

#[tokio::test]
async fn parked_actions_are_listed_newest_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteTimerStore::open(dir.path().join("saga.db")).expect("open");
    let parked = |n: u128| ParkedAction {
        reservation_id: (n != 3).then(|| Uuid::from_u128(n)),
        trigger_id: Uuid::from_u128(n),
        attempted: format!("action {n}"),
        error: "rejected".to_string(),
        parked_at: Utc.timestamp_opt(1_900_000_000, 0).single().expect("valid"),
    };
    let update = ProgressUpdate {
        parked: (1..=3).map(parked).collect(),
        ..ProgressUpdate::default()
    };
    store.commit(update).await.expect("commit");
    let listed = store.parked(2).await.expect("parked");
    assert_eq!(listed, vec![parked(3), parked(2)]);
}
