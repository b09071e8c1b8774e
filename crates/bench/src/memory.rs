//! B7 under load, with the REAL binary: `stayledger serve` on a fresh data dir, the B2 workload (16
//! clients posting reservations, the saga and the projector busy behind them) for the load window
//! while its resident memory is sampled every 250 ms, then idle for 30 s (quick: 3 s) and read again.
//! B7's restart figure only sees an idle process; this one sees what load leaves behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::b2::PostReservations;
use super::load::{self, LoadOptions};
use super::platform::{stay_bodies, BenchServe};
use super::report::{thousands, Figure};
use super::restart::{listening_addr, memory, spawn_serve, stayledger_binary, stop};
use super::Plan;

/// Clients of the load (the figure the memory growth was first seen at).
const CLIENTS: usize = 16;
const LODGINGS: usize = 16;
const TARGET_MIB: f64 = 150.0;

pub async fn run(plan: &Plan) -> anyhow::Result<Figure> {
    let exe = stayledger_binary(plan.stayledger_bin.as_deref())?;
    let dir = plan.fresh_dir("b7-load")?;
    let (mut child, pid) = spawn_serve(&exe, &dir, &dir.join("serve-b7-load.log"))?;
    let measured = async {
        let addr = listening_addr(&mut child).await?;
        let serve = BenchServe::attach(addr, &dir)?;
        let lodgings = serve.register_lodgings("b7", LODGINGS, "manual").await?;
        let customers = (0..CLIENTS)
            .map(|c| serve.customer(c))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (start_mib, _) = memory(pid)?;
        let workload = Arc::new(PostReservations {
            bodies: stay_bodies(&lodgings, 4_096),
            customers,
            lag: None,
        });
        let loading = Arc::new(AtomicBool::new(true));
        let sampler = tokio::spawn({
            let loading = Arc::clone(&loading);
            async move {
                let mut peak: f64 = 0.0;
                while loading.load(Ordering::Relaxed) {
                    if let Ok((rss, _)) = memory(pid) {
                        peak = peak.max(rss);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                peak
            }
        });
        let options = LoadOptions {
            clients: CLIENTS,
            warmup: plan.warmup,
            duration: plan.duration,
        };
        let report = load::run(addr, workload, options).await;
        loading.store(false, Ordering::Relaxed);
        let peak_mib = sampler.await.context("the memory sampler")?;
        let report = report?;
        let (end_mib, _) = memory(pid)?;
        let idle = if plan.quick { 3 } else { 30 };
        tokio::time::sleep(Duration::from_secs(idle)).await;
        let (after_mib, hwm_mib) = memory(pid)?;
        let met = peak_mib <= TARGET_MIB && after_mib <= TARGET_MIB;
        Ok::<_, anyhow::Error>(
            Figure::new(
                "B7",
                &format!(
                    "serve resident memory under B2 load ({CLIENTS} clients) and {idle} s after"
                ),
                peak_mib,
                "MiB",
            )
            .figure(format!(
                "peak {peak_mib:.1} MiB during {} requests ({} req/s), {after_mib:.1} MiB {idle} s \
                 after (from {start_mib:.1} MiB)",
                thousands(report.requests as f64),
                thousands(report.per_sec),
            ))
            .target("<= 150 MiB during and after", met)
            .details(json!({
                "start_mib": start_mib, "peak_mib": peak_mib, "end_mib": end_mib,
                "after_idle_mib": after_mib, "idle_seconds": idle, "hwm_mib": hwm_mib,
                "load": report,
            })),
        )
    }
    .await;
    stop(child).await?;
    crate::remove_dir_async(&dir).await?;
    measured
}
