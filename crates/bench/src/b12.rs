//! B12: B3's whole flows on one lodging that already holds a backlog of pending requests (50,000;
//! `--quick`: 2,000), against the same flows on one quiet lodging, each on a fresh `serve`. The
//! projector's cost must follow the nights a change touches, not the pending count: the target is
//! the busy lodging within 20% of the quiet one.

use serde_json::json;

use super::b3::{run_shape, Approval, Outcome, Shape, ShapeRun};
use super::load::Percentiles;
use super::report::{thousands, Figure};
use super::Plan;

/// One run's flows/s, latencies and platform figures.
async fn one(plan: &Plan, backlog: usize, flows: usize) -> anyhow::Result<serde_json::Value> {
    let shape = Shape {
        approval: Approval::Admin,
        lodgings: 1,
        backlog,
        pace: None,
        desk_interval: None,
    };
    let ShapeRun {
        outcome,
        seconds,
        submitted_in,
        platform,
    } = run_shape(plan, shape, flows).await?;
    let Outcome {
        confirmed,
        failed,
        timed_out,
        latencies,
        ..
    } = outcome;
    anyhow::ensure!(
        confirmed == flows,
        "backlog {backlog}: only {confirmed} of {flows} confirmed ({failed} failed, {timed_out} timed out)"
    );
    Ok(json!({
        "backlog": backlog, "flows": flows, "flows_per_sec": confirmed as f64 / seconds,
        "seconds": seconds, "submitted_in_seconds": submitted_in,
        "flow_latency": Percentiles::of(latencies), "platform": platform,
    }))
}

pub async fn run(plan: &Plan) -> anyhow::Result<Figure> {
    let backlog = if plan.quick { 2_000 } else { 50_000 };
    let flows = (plan.b3_flows / 4).max(100);
    let quiet = one(plan, 0, flows).await?;
    let busy = one(plan, backlog, flows).await?;
    let rate = |run: &serde_json::Value| run["flows_per_sec"].as_f64().unwrap_or(0.0);
    let p99 = |run: &serde_json::Value| run["flow_latency"]["p99_ms"].as_f64().unwrap_or(0.0);
    let ratio = rate(&busy) / rate(&quiet).max(f64::EPSILON);
    let text = format!(
        "{} flows/s with {} pending vs {} quiet ({:.0}%; flow p99 {:.0} vs {:.0} ms)",
        thousands(rate(&busy)),
        thousands(backlog as f64),
        thousands(rate(&quiet)),
        ratio * 100.0,
        p99(&busy),
        p99(&quiet),
    );
    Ok(Figure::new(
        "B12",
        "B3 (admin approves) on one lodging holding a pending backlog, vs one quiet lodging",
        ratio * 100.0,
        "% of quiet",
    )
    .figure(text)
    .target("within 20% of quiet", ratio >= 0.8)
    .details(json!({"quiet": quiet, "busy": busy, "ratio": ratio})))
}
