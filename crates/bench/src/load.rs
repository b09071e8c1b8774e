//! The closed-loop load generator: `clients` tasks, each on its own keep-alive connection, send the
//! next request as soon as the previous one is answered, through a warm-up and then a measured
//! window. Throughput counts the requests sent in the window; latency is send -> whole answer read.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;

use super::client::{Call, Connection};

/// What the clients send and how an answer is judged.
pub trait Workload: Send + Sync + 'static {
    /// Request number `seq` of client `client`.
    fn call(&self, client: usize, seq: u64) -> Call;

    /// Judge an answer (`Err(why)` counts as an error).
    fn check(&self, answer: &Answer<'_>) -> Result<(), String>;
}

/// One answer, as a workload sees it.
pub struct Answer<'a> {
    pub status: StatusCode,
    pub body: &'a Bytes,
    pub sent: Instant,
    pub answered: Instant,
    pub measured: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoadOptions {
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Percentiles of latencies in microseconds (sorted here).
    pub fn of(mut micros: Vec<u32>) -> Self {
        micros.sort_unstable();
        let at = |q: f64| {
            if micros.is_empty() {
                return 0.0;
            }
            let index = ((micros.len() - 1) as f64 * q).round() as usize;
            f64::from(micros[index.min(micros.len() - 1)]) / 1000.0
        };
        Self {
            count: micros.len() as u64,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: at(1.0),
        }
    }
}

pub fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub options: LoadOptions,
    /// Requests sent in the measured window and answered.
    pub requests: u64,
    /// Of those: transport failures and answers the workload refused.
    pub errors: u64,
    pub seconds: f64,
    pub per_sec: f64,
    pub latency: Percentiles,
    pub first_error: Option<String>,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    latencies: Vec<u32>,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, why: String) {
        self.errors += 1;
        self.first_error.get_or_insert(why);
    }
}

/// Run `workload` against `addr` with `options.clients` concurrent clients.
pub async fn run<W: Workload>(
    addr: SocketAddr,
    workload: Arc<W>,
    options: LoadOptions,
) -> anyhow::Result<LoadReport> {
    let start = Instant::now();
    let measure_from = start + options.warmup;
    let end = measure_from + options.duration;
    let tasks: Vec<_> = (0..options.clients)
        .map(|c| {
            let workload = Arc::clone(&workload);
            tokio::spawn(client(addr, workload, c, measure_from, end))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.context("a load client panicked")??;
        total.requests += tally.requests;
        total.errors += tally.errors;
        total.latencies.extend(tally.latencies);
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
    }
    let seconds = options.duration.as_secs_f64();
    Ok(LoadReport {
        options,
        requests: total.requests,
        errors: total.errors,
        seconds,
        per_sec: total.requests as f64 / seconds,
        latency: Percentiles::of(total.latencies),
        first_error: total.first_error,
    })
}

async fn client<W: Workload>(
    addr: SocketAddr,
    workload: Arc<W>,
    client: usize,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut connection = Connection::open(addr).await?;
    let mut tally = Tally::default();
    let mut seq = 0;
    loop {
        let sent = Instant::now();
        if sent >= end {
            return Ok(tally);
        }
        let call: Call = workload.call(client, seq);
        seq += 1;
        let measured = sent >= measure_from;
        match connection.send(&call).await {
            Ok((status, body)) => {
                let answered = Instant::now();
                let answer = Answer {
                    status,
                    body: &body,
                    sent,
                    answered,
                    measured,
                };
                let verdict = workload.check(&answer);
                if measured {
                    tally.requests += 1;
                    tally.latencies.push(micros(answered - sent));
                    if let Err(why) = verdict {
                        tally.error(why);
                    }
                }
            }
            Err(error) => {
                if measured {
                    tally.requests += 1;
                    tally.error(format!("{error:#}"));
                }
                connection = Connection::open(addr).await?;
            }
        }
    }
}

/// A fixed amount of work as fast as the service answers (where [`run`] is a timed window): items
/// `0..count` shared by one task per entry of `workers`, each on its own keep-alive connection to
/// `addr`, each taking the next item as soon as it is done with one. `step` gets the connection and
/// the worker's own state and hands them back.
pub async fn share<S, F, Fut>(
    addr: SocketAddr,
    workers: Vec<S>,
    count: usize,
    step: F,
) -> anyhow::Result<()>
where
    S: Send + 'static,
    F: Fn(Connection, S, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<(Connection, S)>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut state| {
            let (next, step) = (Arc::clone(&next), step.clone());
            tokio::spawn(async move {
                let mut connection = Connection::open(addr).await?;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return Ok::<_, anyhow::Error>(());
                    }
                    (connection, state) = step(connection, state, n).await?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread() {
        let p = Percentiles::of((1..=1000).rev().collect());
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 0.501).abs() < 0.002, "{p:?}");
        assert!((p.p99_ms - 0.990).abs() < 0.002, "{p:?}");
        assert!((p.max_ms - 1.0).abs() < 1e-9);
        assert_eq!(Percentiles::of(Vec::new()).count, 0);
    }
}
