//! Prometheus metrics through the `metrics` facade: the recorder is process-wide,
//! installed once; `/metrics` renders it after refreshing the pool gauges.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use metrics::{Label, SharedString};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from a cache hit to a slow query.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The process-wide recorder's handle (installed on first use).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|builder| builder.install_recorder())
                .unwrap_or_else(|err| {
                    // Another recorder is already installed (only possible in embedding
                    // programs): keep serving, with metrics going to that recorder.
                    tracing::warn!(error = %err, "prometheus recorder not installed");
                    PrometheusBuilder::new().build_recorder().handle()
                })
        })
        .clone()
}

/// Counts one finished request by route template (not raw path: bounded cardinality);
/// requests that matched no route count as `unmatched`.
pub fn record_request(method: &str, route: Option<Arc<str>>, status: u16, elapsed: Duration) {
    let route = route.map_or(SharedString::const_str("unmatched"), SharedString::from);
    let labels = [
        Label::new("method", method.to_owned()),
        Label::new("route", route),
        Label::new("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", labels.iter()).increment(1);
    metrics::histogram!("http_request_duration_seconds", labels[..2].iter())
        .record(elapsed.as_secs_f64());
}

/// Publishes the database pool's current usage.
pub fn record_pool(size: usize, available: usize, max_size: usize, waiting: usize) {
    metrics::gauge!("db_pool_connections", "state" => "open").set(size as f64);
    metrics::gauge!("db_pool_connections", "state" => "idle").set(available as f64);
    metrics::gauge!("db_pool_connections", "state" => "max").set(max_size as f64);
    metrics::gauge!("db_pool_waiting_requests").set(waiting as f64);
}
