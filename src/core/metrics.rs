//! Prometheus metrics through the `metrics` facade: the recorder is process-wide,
//! installed once; `/metrics` renders it after refreshing the pool gauges.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, OnceLock, PoisonError, RwLock},
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram, Label, SharedString};
use poem::http::Method;

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

/// The two series a finished request updates.
struct Series {
    requests: Counter,
    duration: Histogram,
}

impl Series {
    fn observe(&self, seconds: f64) {
        self.requests.increment(1);
        self.duration.record(seconds);
    }
}

/// (method, route template, status) → its series handles.
type SeriesKey = (&'static str, Option<Arc<str>>, u16);

/// Handles made once per series: building a metrics key (labels, hashing, a registry
/// lookup) on every request cost more than the rest of the edge together.
static SERIES: LazyLock<RwLock<HashMap<SeriesKey, Series>>> = LazyLock::new(RwLock::default);

/// Counts one finished request by route template (not raw path: bounded cardinality);
/// requests that matched no route count as `unmatched`.
pub fn record_request(method: &Method, route: Option<Arc<str>>, status: u16, elapsed: Duration) {
    let key = (method_label(method), route, status);
    let seconds = elapsed.as_secs_f64();
    {
        let series = SERIES.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = series.get(&key) {
            series.observe(seconds);
            return;
        }
    }
    let mut all = SERIES.write().unwrap_or_else(PoisonError::into_inner);
    all.entry(key)
        .or_insert_with_key(|(method, route, status)| {
            let route = route
                .clone()
                .map_or(SharedString::const_str("unmatched"), SharedString::from);
            let labels = [
                Label::new("method", *method),
                Label::new("route", route),
                Label::new("status", status.to_string()),
            ];
            Series {
                requests: metrics::counter!("http_requests_total", labels.iter()),
                duration: metrics::histogram!("http_request_duration_seconds", labels[..2].iter()),
            }
        })
        .observe(seconds);
}

/// The method as a label. Clients may send any token as a method; those share one
/// label, so they cannot grow the number of series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

/// A handler panicked (the request was answered 500; the panic is in the log).
pub fn record_panic() {
    handle();
    metrics::counter!("http_handler_panics_total").increment(1);
}

/// Publishes the database pool's current usage.
pub fn record_pool(size: usize, available: usize, max_size: usize, waiting: usize) {
    metrics::gauge!("db_pool_connections", "state" => "open").set(size as f64);
    metrics::gauge!("db_pool_connections", "state" => "idle").set(available as f64);
    metrics::gauge!("db_pool_connections", "state" => "max").set(max_size as f64);
    metrics::gauge!("db_pool_waiting_requests").set(waiting as f64);
}

/// The WebSocket series, as handles made once: frames are counted on the hot path.
pub struct WsMetrics {
    /// Sockets open on this instance.
    pub open_sockets: Gauge,
    /// Text frames received from clients.
    pub frames_in: Counter,
    /// Frames written to clients (pushes, acks, pongs, errors).
    pub frames_out: Counter,
    /// Pub/sub events handed to a local socket's queue.
    pub deliveries: Counter,
    /// Sockets closed because their outbound queue was full.
    pub slow_consumer_disconnects: Counter,
    /// Times the pub/sub subscriber connection had to be re-established.
    pub pubsub_reconnects: Counter,
}

/// The WebSocket series (the recorder is installed first, so none go to a no-op).
pub fn ws() -> &'static WsMetrics {
    static WS: LazyLock<WsMetrics> = LazyLock::new(|| {
        handle();
        WsMetrics {
            open_sockets: metrics::gauge!("ws_open_sockets"),
            frames_in: metrics::counter!("ws_frames_in_total"),
            frames_out: metrics::counter!("ws_frames_out_total"),
            deliveries: metrics::counter!("ws_deliveries_total"),
            slow_consumer_disconnects: metrics::counter!("ws_slow_consumer_disconnects_total"),
            pubsub_reconnects: metrics::counter!("ws_pubsub_reconnects_total"),
        }
    });
    &WS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_others_share_one() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&made_up), "other");
    }
}
