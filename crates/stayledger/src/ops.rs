//! Ops routes of every process: `/healthz` (liveness), `/readyz` (stores answer, projector lag under
//! its bound, dead letters shown) and `/metrics` (Prometheus text). They compose the status handles
//! of whichever parts run in this process, which only the binary knows; error bodies use the API
//! crates' problem+json type. [`with_ops`] puts them beside a service's own routes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use eventlog::{EventLog, WriterStats};
use http_edge::problem;
use http_edge::{Problem, ServerStats};
use projector::ProjectorStatus;
use readmodel::ViewStore;
use saga::{CircuitState, SagaStatus};
use serde_json::json;

use crate::metrics::{gauge, track, HttpMetrics};

/// What this process can report on.
#[derive(Clone, Default)]
pub struct Probes {
    pub log: Option<Arc<dyn EventLog>>,
    pub views: Option<Arc<dyn ViewStore>>,
    pub projector: Option<ProjectorStatus>,
    pub saga: Option<SagaStatus>,
    pub writer: Option<Arc<dyn Fn() -> WriterStats + Send + Sync>>,
    pub http: Arc<HttpMetrics>,
    /// `/readyz` fails while the projector is more than this many events behind the log.
    pub max_projector_lag: u64,
    /// With no projector in this process: the projector id whose checkpoint, stored with the views,
    /// tells how far they are behind the log (query-api alone).
    pub view_checkpoint: Option<String>,
    /// `/readyz` fails unless the saga runner is running (saga alone).
    pub require_saga: bool,
    /// The log head the views must reach after the start (serve, projector: their own projector's
    /// applied position is exact); the default asks nothing.
    pub catch_up: Arc<crate::readiness::CatchUp>,
}

pub fn routes(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

/// What a service serves: its routes with the probes, and the connection counts its listener keeps
/// (shown in `/metrics`).
pub struct OpsApp {
    pub router: Router,
    pub connections: Arc<ServerStats>,
}

/// A service's routes plus the ops probes, answering unknown routes with problem+json and counting
/// every request in `/metrics`.
pub fn with_ops(routes: Router, probes: Probes) -> OpsApp {
    let http: Arc<HttpMetrics> = Arc::clone(&probes.http);
    let connections = Arc::clone(&http.connections);
    let router = routes
        .merge(self::routes(probes))
        .fallback(problem::not_found);
    let router =
        http_edge::outermost(router).layer(axum::middleware::from_fn_with_state(http, track));
    OpsApp {
        router,
        connections,
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(probes): State<Probes>) -> Response {
    let mut reasons = Vec::new();
    let mut head = None;
    if let Some(log) = &probes.log {
        match log.head_position().await {
            Ok(position) => head = Some(position),
            Err(e) => reasons.push(format!("event log unreachable: {e}")),
        }
    }
    let mut dead_letters = None;
    if let Some(views) = &probes.views {
        if let Err(e) = views.ping().await {
            reasons.push(format!("view store unreachable: {e}"));
        }
        match views.dead_letter_count().await {
            Ok(count) => dead_letters = Some(count),
            Err(e) => reasons.push(format!("dead letters unreadable: {e}")),
        }
    }
    let applied = match views_position(&probes).await {
        Ok(applied) => applied,
        Err(e) => {
            reasons.push(format!("view checkpoint unreadable: {e}"));
            None
        }
    };
    let lag = head.zip(applied).map(|(head, at)| head.saturating_sub(at));
    if let Some(applied) = applied {
        if let Err(target) = probes.catch_up.check(applied) {
            reasons.push(format!(
                "views are catching up after the start: at position {applied} of {target}"
            ));
        }
    }
    if let Some(reason) = probes.http.writes.failing(crate::readiness::now_ms()) {
        reasons.push(reason);
    }
    if let Some(lag) = lag.filter(|lag| *lag > probes.max_projector_lag) {
        reasons.push(format!(
            "projector is {lag} events behind (bound {})",
            probes.max_projector_lag
        ));
    }
    if let Some(saga) = probes.saga.as_ref().filter(|_| probes.require_saga) {
        if !saga.snapshot().running {
            reasons.push("saga runner is not running".to_string());
        }
    }
    let body = json!({
        "status": if reasons.is_empty() { "ready" } else { "not_ready" },
        "log_head": head, "projector_lag": lag, "dead_letters": dead_letters,
    });
    if reasons.is_empty() {
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let mut response = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            reasons.join("; "),
        )
        .into_response();
        response
            .headers_mut()
            .insert("x-readiness", header::HeaderValue::from_static("not-ready"));
        tracing::warn!(%body, "not ready");
        response
    }
}

/// The log position the views reflect: the projector of this process, else the stored checkpoint.
async fn views_position(probes: &Probes) -> Result<Option<u64>, readmodel::ViewError> {
    if let Some(projector) = &probes.projector {
        return Ok(Some(projector.applied_position()));
    }
    match (&probes.views, &probes.view_checkpoint) {
        (Some(views), Some(id)) => views.checkpoint(id).await.map(Some),
        _ => Ok(None),
    }
}

async fn metrics(State(probes): State<Probes>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    probes.http.render(&mut out);
    if let Some(log) = &probes.log {
        if let Ok(head) = log.head_position().await {
            gauge(
                &mut out,
                "stayledger_log_head_position",
                "gauge",
                "Global position of the last event.",
                &[("", head as f64)],
            );
        }
    }
    if let Some(writer) = &probes.writer {
        let stats = writer();
        gauge(
            &mut out,
            "stayledger_appends_total",
            "counter",
            "Appends committed by this process.",
            &[("", stats.appends as f64)],
        );
        gauge(
            &mut out,
            "stayledger_appended_events_total",
            "counter",
            "Events appended by this process.",
            &[("", stats.events as f64)],
        );
        gauge(
            &mut out,
            "stayledger_append_transactions_total",
            "counter",
            "Group-commit transactions.",
            &[("", stats.transactions as f64)],
        );
    }
    if let Some(projector) = &probes.projector {
        render_projector(&mut out, projector);
    } else if let (Some(views), Some(id)) = (&probes.views, &probes.view_checkpoint) {
        if let Ok(checkpoint) = views.checkpoint(id).await {
            gauge(
                &mut out,
                "stayledger_view_checkpoint_position",
                "gauge",
                "Last position the views reflect, as stored with them.",
                &[("", checkpoint as f64)],
            );
        }
    }
    if let Some(views) = &probes.views {
        render_views(&mut out, views.as_ref()).await;
    }
    if let Some(saga) = &probes.saga {
        render_saga(&mut out, saga);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// What the view store tells: its dead letters, and the reservations still on their way by the
/// step of the flow they wait in. A figure the store fails to give is left out (never shown as 0)
/// and `stayledger_view_store_scrape_error` is 1.
async fn render_views(out: &mut String, views: &dyn ViewStore) {
    use readmodel::ReservationStatus as S;
    let mut failed = false;
    let mut note = |what: &str, error: readmodel::ViewError| {
        tracing::warn!(%error, "metrics: cannot read {what} from the view store");
        failed = true;
    };
    let dead: Vec<(&str, f64)> = match views.dead_letter_count().await {
        Ok(count) => vec![("", count as f64)],
        Err(error) => {
            note("the dead letters", error);
            Vec::new()
        }
    };
    gauge(
        out,
        "stayledger_dead_letters",
        "gauge",
        "Events parked by the projector.",
        &dead,
    );
    let mut samples = Vec::new();
    for (status, label) in [
        (S::Requested, "step=\"awaiting_approval\""),
        (S::Approved, "step=\"awaiting_payment\""),
        (S::PaymentPending, "step=\"payment_deferred\""),
    ] {
        match views.count_reservations(status).await {
            Ok(count) => samples.push((label, count as f64)),
            Err(error) => note("the reservations in flight", error),
        }
    }
    gauge(
        out,
        "stayledger_reservations_in_flight",
        "gauge",
        "Reservations waiting in each step of the saga, as the views see them.",
        &samples,
    );
    gauge(
        out,
        "stayledger_view_store_scrape_error",
        "gauge",
        "1 if this scrape could not read a figure from the view store (left out above), else 0.",
        &[("", if failed { 1.0 } else { 0.0 })],
    );
}

fn render_projector(out: &mut String, projector: &ProjectorStatus) {
    gauge(
        out,
        "stayledger_projector_position",
        "gauge",
        "Last position the views reflect.",
        &[("", projector.applied_position() as f64)],
    );
    gauge(
        out,
        "stayledger_projector_events_total",
        "counter",
        "Events applied to the views or parked since this process started.",
        &[("", projector.events_projected() as f64)],
    );
    gauge(
        out,
        "stayledger_projector_lag_events",
        "gauge",
        "Events seen but not yet reflected.",
        &[("", projector.lag() as f64)],
    );
}

fn render_saga(out: &mut String, saga: &SagaStatus) {
    let s = saga.snapshot();
    gauge(
        out,
        "stayledger_saga_checkpoint",
        "gauge",
        "Last position the saga fully handled.",
        &[("", s.checkpoint as f64)],
    );
    gauge(
        out,
        "stayledger_saga_in_flight",
        "gauge",
        "Events, timers and refunds being handled.",
        &[("", s.in_flight as f64)],
    );
    gauge(
        out,
        "stayledger_saga_triggers_total",
        "counter",
        "Triggers (events and timers) the saga handled since this process started.",
        &[("", s.triggers_handled as f64)],
    );
    gauge(
        out,
        "stayledger_saga_timers_armed",
        "gauge",
        "Durable timers armed.",
        &[("", s.timers_armed as f64)],
    );
    gauge(
        out,
        "stayledger_saga_refunds_pending",
        "gauge",
        "Refunds waiting for the gateway.",
        &[("", s.refunds_pending as f64)],
    );
    gauge(
        out,
        "stayledger_saga_actions_parked",
        "gauge",
        "Saga actions parked for operators.",
        &[("", s.actions_parked as f64)],
    );
    gauge(
        out,
        "stayledger_payments_total",
        "counter",
        "Charge and refund outcomes.",
        &[
            ("outcome=\"completed\"", s.charges_completed as f64),
            ("outcome=\"deferred\"", s.charges_deferred as f64),
            ("outcome=\"failed\"", s.charges_failed as f64),
            ("outcome=\"refunded\"", s.refunds_completed as f64),
        ],
    );
    gauge(
        out,
        "stayledger_payouts_total",
        "counter",
        "Payout calls to the gateway, by outcome (a net of zero is sent without one).",
        &[
            ("outcome=\"sent\"", s.payouts_sent as f64),
            ("outcome=\"deferred\"", s.payouts_deferred as f64),
            ("outcome=\"failed\"", s.payouts_failed as f64),
        ],
    );
    let circuit = match s.circuit {
        Some(CircuitState::Closed) | None => 0.0,
        Some(CircuitState::HalfOpen) => 1.0,
        Some(CircuitState::Open) => 2.0,
    };
    gauge(
        out,
        "stayledger_payment_circuit_state",
        "gauge",
        "Payment gateway circuit: 0 closed, 1 half-open, 2 open.",
        &[("", circuit)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::sample;

    async fn scrape(probes: Probes) -> String {
        let response = metrics(State(probes)).await;
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(body.to_vec()).expect("utf-8")
    }

    /// A dead-letter count the store cannot give is not shown as 0: the series is left out and the
    /// scrape error gauge says so; /readyz fails.
    #[tokio::test]
    async fn a_view_store_error_is_not_reported_as_zero_dead_letters() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("views.db");
        let views: Arc<dyn ViewStore> =
            Arc::new(readmodel::SqliteViewStore::open(&path).expect("open"));
        let probes = Probes {
            views: Some(Arc::clone(&views)),
            ..Probes::default()
        };
        let text = scrape(probes.clone()).await;
        assert_eq!(sample(&text, "stayledger_dead_letters", ""), Some(0.0));
        assert_eq!(
            sample(&text, "stayledger_view_store_scrape_error", ""),
            Some(0.0)
        );

        // The store still answers, but its dead letters can no longer be counted.
        let other = rusqlite::Connection::open(&path).expect("open");
        other
            .execute_batch("DROP TABLE dead_letters")
            .expect("drop");
        let text = scrape(probes.clone()).await;
        assert_eq!(sample(&text, "stayledger_dead_letters", ""), None, "{text}");
        assert_eq!(
            sample(&text, "stayledger_view_store_scrape_error", ""),
            Some(1.0)
        );
        let awaiting = "step=\"awaiting_approval\"";
        let in_flight = sample(&text, "stayledger_reservations_in_flight", awaiting);
        assert_eq!(
            in_flight,
            Some(0.0),
            "what the store can give is still shown"
        );
        let ready = readyz(State(probes)).await;
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
