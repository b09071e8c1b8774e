//! B1: durable appends, 64 concurrent writers on distinct streams, through [`crate::appends`] (the
//! event log's runner), beside raw SQLite doing the same batching on the same disk.

use serde_json::json;

use super::report::{thousands, Figure};
use super::Plan;

const WRITERS: usize = 64;

pub async fn run(plan: &Plan) -> anyhow::Result<Figure> {
    let dir = plan.fresh_dir("b1")?;
    let report = crate::appends::b1(&dir, WRITERS, plan.b1_duration)
        .await
        .map_err(|e| anyhow::anyhow!("B1: {e}"))?;
    let met = report.events_per_sec >= 100_000.0 && report.ratio >= 0.5;
    let figure = format!(
        "{} events/s = {:.0}% of raw SQLite ({} events/s); append p99 {:.1} ms",
        thousands(report.events_per_sec),
        report.ratio * 100.0,
        thousands(report.raw_events_per_sec),
        report.append_p99_ms
    );
    Ok(Figure::new(
        "B1",
        "durable appends, 64 writers, distinct streams",
        report.events_per_sec,
        "events/s",
    )
    .figure(figure)
    .target(">= 100,000 events/s and >= 50% of raw SQLite", met)
    .details(json!({ "report": report })))
}
