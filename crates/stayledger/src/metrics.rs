//! A small Prometheus registry: HTTP request counts and latencies by route, rendered as text
//! together with gauges read from the parts' status handles at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_edge::ServerStats;

/// Latency bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; BUCKETS.len()],
}

/// A route's series, by (method, status).
type RouteSeries = BTreeMap<(&'static str, u16), Series>;

/// Request metrics keyed by route, then (method, status), and the listener's connection counts.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// By route first: a request finds its series by the route it matched, allocating nothing once
    /// the route has been seen.
    series: Mutex<BTreeMap<String, RouteSeries>>,
    /// Kept by the server loop that serves these routes (`http_edge::server::serve`).
    pub connections: Arc<ServerStats>,
    /// How this process's writes went lately, for `/readyz`.
    pub writes: crate::readiness::WriteHealth,
}

impl HttpMetrics {
    fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let by_route = match series.get_mut(route) {
            Some(by_route) => by_route,
            None => series.entry(route.to_owned()).or_default(),
        };
        let entry = by_route.entry((method, status)).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        for (bucket, bound) in entry.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Every series as (method, route, status, series), by route.
    fn each(
        series: &BTreeMap<String, RouteSeries>,
    ) -> impl Iterator<Item = (&str, &str, u16, &Series)> {
        series.iter().flat_map(|(route, by_route)| {
            by_route
                .iter()
                .map(move |((method, status), s)| (*method, route.as_str(), *status, s))
        })
    }

    /// Append the request series and the connection counts in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let connections = &self.connections;
        #[allow(clippy::cast_precision_loss)]
        for (name, kind, help, value) in [
            (
                "stayledger_http_connections_open",
                "gauge",
                "Client connections open now.",
                connections.open(),
            ),
            (
                "stayledger_http_connections_accepted_total",
                "counter",
                "Client connections accepted.",
                connections.accepted(),
            ),
            (
                "stayledger_http_accept_errors_total",
                "counter",
                "Failed accepts (e.g. out of file descriptors).",
                connections.accept_errors(),
            ),
            (
                "stayledger_http_connection_cap_reached_total",
                "counter",
                "Times the listener waited at its connection cap.",
                connections.times_at_cap(),
            ),
        ] {
            gauge(out, name, kind, help, &[("", value as f64)]);
        }
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        out.push_str("# HELP stayledger_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE stayledger_http_requests_total counter\n");
        for (method, route, status, s) in Self::each(&series) {
            let _ = writeln!(
                out,
                "stayledger_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP stayledger_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE stayledger_http_request_duration_seconds histogram\n");
        for (method, route, status, s) in Self::each(&series) {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            for (bound, count) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "stayledger_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "stayledger_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "stayledger_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "stayledger_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

/// Middleware: count and time every request by its matched route (never by raw path, so ids do
/// not explode the label space) and its method, any method outside HTTP's own named `other` (the
/// method is the client's to choose: each label a client could invent would be a series kept for
/// ever).
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = method_label(request.method());
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    metrics.record(method, route, status, started.elapsed().as_secs_f64());
    if matches!(method, "POST" | "PUT" | "PATCH" | "DELETE") && matched.is_some() {
        metrics.writes.note(status, crate::readiness::now_ms());
    }
    response
}

/// The label of a request's method: one of HTTP's methods, or `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Append one gauge (or counter) with its help line.
pub fn gauge(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The value of the series `name{labels}` in Prometheus text `text`, matched whole: the name and
/// the labels exactly as rendered (`labels` empty for an unlabelled series), the value parsed as a
/// number. `None` when the series is absent. What a scraper reads back; the tests check with it.
#[must_use]
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let metrics = HttpMetrics::default();
        metrics.record("GET", "/reservations/{id}", 200, 0.003);
        metrics.record("GET", "/reservations/{id}", 200, 0.2);
        let mut out = String::new();
        metrics.render(&mut out);
        let labels = "method=\"GET\",route=\"/reservations/{id}\",status=\"200\"";
        let value = |name: &str, labels: &str| sample(&out, name, labels);
        assert_eq!(value("stayledger_http_requests_total", labels), Some(2.0));
        let bucket = "stayledger_http_request_duration_seconds_bucket";
        for (le, count) in [("0.001", 0.0), ("0.005", 1.0), ("0.25", 2.0), ("+Inf", 2.0)] {
            let labels = format!("{labels},le=\"{le}\"");
            assert_eq!(value(bucket, &labels), Some(count), "le {le}: {out}");
        }
    }

    #[test]
    fn each_method_route_and_status_is_a_series_of_its_own() {
        let metrics = HttpMetrics::default();
        let calls = [
            ("GET", "/a", 200),
            ("POST", "/a", 202),
            ("GET", "/a", 404),
            ("GET", "/b", 200),
            ("GET", "/a", 200),
        ];
        for (method, route, status) in calls {
            metrics.record(method, route, status, 0.001);
        }
        let mut out = String::new();
        metrics.render(&mut out);
        for (method, route, status, count) in [
            ("GET", "/a", 200, 2.0),
            ("POST", "/a", 202, 1.0),
            ("GET", "/a", 404, 1.0),
            ("GET", "/b", 200, 1.0),
        ] {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            let total = sample(&out, "stayledger_http_requests_total", &labels);
            assert_eq!(total, Some(count), "{labels} in {out}");
        }
        assert_eq!(out.matches("stayledger_http_requests_total{").count(), 4);
    }

    #[test]
    fn a_sample_is_read_whole() {
        let text = "# TYPE a counter\na 10\na_total 3\nb{x=\"1\"} 12.5\nb{x=\"10\"} 1\n";
        assert_eq!(sample(text, "a", ""), Some(10.0));
        assert_eq!(sample(text, "a_total", ""), Some(3.0));
        assert_eq!(sample(text, "b", "x=\"1\""), Some(12.5));
        assert_eq!(sample(text, "b", "x=\"10\""), Some(1.0));
        assert_eq!(
            sample(text, "b", ""),
            None,
            "a labelled series is not the unlabelled one"
        );
        assert_eq!(sample(text, "c", ""), None);
    }

    #[test]
    fn invented_methods_share_one_label() {
        use axum::http::Method;
        let metrics = HttpMetrics::default();
        for i in 0..1000 {
            let invented = Method::from_bytes(format!("M{i}").as_bytes()).expect("a token");
            metrics.record(method_label(&invented), "unmatched", 405, 0.001);
        }
        metrics.record(method_label(&Method::GET), "/healthz", 200, 0.001);
        let mut out = String::new();
        metrics.render(&mut out);
        let totals: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("stayledger_http_requests_total{"))
            .collect();
        assert_eq!(
            totals,
            [
                "stayledger_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
                "stayledger_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 1000",
            ]
        );
    }
}
