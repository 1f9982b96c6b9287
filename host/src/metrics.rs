//! The server's metrics, served at `GET /metrics` in the Prometheus text
//! format (OpenMetrics flavour).
//!
//! One registry per server (not a global), so tests that start several
//! servers in one process see each server's own numbers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{Millis, QueueStats, WebhookCounts};

/// Labels of a request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP method.
    pub method: String,
    /// The route's pattern, e.g. `/v1/webhooks/{id}` (never the raw path,
    /// which would make a series per id).
    pub route: String,
    /// The answer's status code.
    pub status: u16,
}

/// Labels of a latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The HTTP method.
    pub method: String,
    /// The route's pattern.
    pub route: String,
}

/// Labels of the webhook gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Labels of the delivery counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    webhooks: Family<StateLabels, Gauge>,
    deliveries: Family<OutcomeLabels, Counter>,
    attempt_latency: Histogram,
    queue_depth: Gauge,
    oldest_pending: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("inbox");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        // 0.5 ms to ~4 s.
        let latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14)));
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route",
            latency.clone(),
        );
        let webhooks = Family::<StateLabels, Gauge>::default();
        registry.register(
            "webhooks",
            "Stored webhooks over every tenant, by state",
            webhooks.clone(),
        );
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by what followed: succeeded, retrying, failed, cancelled",
            deliveries.clone(),
        );
        // 1 ms to ~16 s: past the default 15 s timeout.
        let attempt_latency = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "delivery_attempt_duration_seconds",
            "Time from sending an attempt to its answer (or failure)",
            attempt_latency.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "delivery_queue_depth",
            "Pending deliveries",
            queue_depth.clone(),
        );
        let oldest_pending = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "delivery_oldest_pending_seconds",
            "Age of the oldest pending delivery (0 when none)",
            oldest_pending.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            webhooks,
            deliveries,
            attempt_latency,
            queue_depth,
            oldest_pending,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, labels: RequestLabels, seconds: f64) {
        let route = RouteLabels {
            method: labels.method.clone(),
            route: labels.route.clone(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&route).observe(seconds);
    }

    /// Sets the webhook gauge (read from the store at each scrape).
    pub fn set_webhooks(&self, counts: WebhookCounts) {
        for (state, n) in [("enabled", counts.enabled), ("disabled", counts.disabled)] {
            self.webhooks.get_or_create(&StateLabels { state }).set(n);
        }
    }

    /// Counts a delivery attempt (or cancellation) by what followed it.
    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Observes an attempt's duration.
    pub fn attempt(&self, milliseconds: i64) {
        self.attempt_latency.observe(milliseconds as f64 / 1e3);
    }

    /// Sets the queue gauges (read from the store at each scrape).
    pub fn set_queue(&self, stats: QueueStats, now: Millis) {
        self.queue_depth.set(stats.depth);
        let age = stats
            .oldest
            .map_or(0.0, |oldest| (now - oldest).max(0) as f64 / 1e3);
        self.oldest_pending.set(age);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_webhooks_are_rendered() {
        let metrics = Metrics::new();
        let labels = RequestLabels {
            method: "GET".to_owned(),
            route: "/v1/webhooks".to_owned(),
            status: 200,
        };
        metrics.request(labels, 0.002);
        metrics.set_webhooks(WebhookCounts {
            enabled: 3,
            disabled: 1,
        });
        let text = metrics.render();
        assert!(
            text.contains(
                r#"inbox_http_requests_total{method="GET",route="/v1/webhooks",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"inbox_webhooks{state="enabled"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("inbox_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
