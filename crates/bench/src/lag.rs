//! B4's probe: for each sampled command answer (its `position`), the time until the projector's
//! applied position (published after the view-store transaction commits) reaches it.
//!
//! One task keeps the waiting samples ordered by position and settles all that the views now cover
//! on every change of the applied position, so the probe costs little under load.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use projector::ProjectorStatus;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::load::{micros, Percentiles};

/// How long samples still waiting when the load stops may take before they count as never seen.
const DRAIN: Duration = Duration::from_secs(10);

/// A command answered at `answered` (sent at `sent`) wrote up to `position`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    position: u64,
    sent: Instant,
    answered: Instant,
}

#[derive(Debug, Clone, Serialize)]
pub struct LagReport {
    /// From the 202 answer to the views reflecting its position (B4's figure).
    pub from_answer: Percentiles,
    /// From sending the command to the views reflecting it (includes the append itself).
    pub from_send: Percentiles,
    /// Samples the views had not reflected within the drain time after the load stopped.
    pub never_reflected: u64,
}

/// The sending side, cloned into the workload.
#[derive(Clone)]
pub struct LagProbe {
    samples: mpsc::UnboundedSender<Sample>,
}

impl LagProbe {
    /// Start the tracking task on `status`.
    pub fn start(status: ProjectorStatus) -> (Self, JoinHandle<LagReport>) {
        let (samples, received) = mpsc::unbounded_channel();
        (Self { samples }, tokio::spawn(track(status, received)))
    }

    pub fn sample(&self, position: u64, sent: Instant, answered: Instant) {
        // The tracker only stops once every probe is dropped.
        let _ = self.samples.send(Sample {
            position,
            sent,
            answered,
        });
    }
}

#[derive(Default)]
struct Seen {
    from_answer: Vec<u32>,
    from_send: Vec<u32>,
}

impl Seen {
    fn record(&mut self, sample: &Sample, now: Instant) {
        self.from_answer
            .push(micros(now.saturating_duration_since(sample.answered)));
        self.from_send
            .push(micros(now.saturating_duration_since(sample.sent)));
    }
}

async fn track(
    status: ProjectorStatus,
    mut received: mpsc::UnboundedReceiver<Sample>,
) -> LagReport {
    let mut applied = status.subscribe();
    let mut waiting: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
    let mut seen = Seen::default();
    let mut open = true;
    let mut drain_until = tokio::time::Instant::now() + DRAIN;
    loop {
        if !open && waiting.is_empty() {
            break;
        }
        tokio::select! {
            sample = received.recv(), if open => match sample {
                Some(sample) => {
                    if *applied.borrow() >= sample.position {
                        seen.record(&sample, Instant::now());
                    } else {
                        waiting.entry(sample.position).or_default().push(sample);
                    }
                }
                None => {
                    open = false;
                    drain_until = tokio::time::Instant::now() + DRAIN;
                }
            },
            changed = applied.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = Instant::now();
                let position = *applied.borrow_and_update();
                let later = waiting.split_off(&position.saturating_add(1));
                for sample in std::mem::replace(&mut waiting, later).values().flatten() {
                    seen.record(sample, now);
                }
            },
            () = tokio::time::sleep_until(drain_until), if !open => break,
        }
    }
    LagReport {
        from_answer: Percentiles::of(seen.from_answer),
        from_send: Percentiles::of(seen.from_send),
        never_reflected: waiting.values().map(|v| v.len() as u64).sum(),
    }
}
