//! Every Prometheus metric the gateway exports, defined in one place.
//!
//! Naming follows prometheus.io/docs/practices/naming: one `gateway_` prefix, base units
//! (seconds, bytes), `_total` on counters. Labels are bounded sets (method, status class,
//! operation, outcome); an object key is never a label. Each gateway owns its own [`Registry`]
//! so several can run in one process (tests, `gateway demo`).

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Request latency buckets, in seconds: from 0.5 ms (a cache hit on loopback) through the
/// typical backend round trip (5-50 ms) to the 30 s backend timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// All metrics of one gateway, each created and registered in [`Metrics::new`] under its one
/// name.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// What [`Metrics::new`] registered, for [`Metrics::catalogue`].
    catalogue: Vec<MetricInfo>,
    /// HTTP requests answered, by method and status class.
    pub http_requests: IntCounterVec,
    /// Time from request to response head, by method.
    pub http_duration: HistogramVec,
    /// HTTP requests being answered.
    pub http_in_flight: IntGauge,
    /// Bytes of response bodies sent, counted as they go out (aborted downloads count what was sent).
    pub http_response_bytes: IntCounter,
    /// Client connections open.
    pub http_connections_open: IntGauge,
    /// Calls to the S3 backend, by operation and outcome.
    pub s3_requests: IntCounterVec,
    /// Object answers whose stored Content-Encoding named aws-chunked, removed before serving.
    pub s3_aws_chunked_removed: IntCounter,
    /// Time from S3 call to the backend's response head, by operation.
    pub s3_duration: HistogramVec,
    /// 1 when /readyz answers 200: the bucket was reached at least once and shutdown has not begun.
    pub ready: IntGauge,
    /// 1 while the backend answers (background probe and requests), 0 while it does not.
    pub backend_up: IntGauge,
    /// 1 while the circuit breaker answers 503 instead of calling the failing backend.
    pub backend_circuit_open: IntGauge,
    /// Times the circuit breaker opened after consecutive backend failures.
    pub backend_circuit_opened: IntCounter,
    /// Responses by how their body ended: complete, aborted (client gone), error (backend failed mid-body).
    pub http_responses: IntCounterVec,
    /// Log lines dropped because the log writer could not keep up (its queue was full).
    pub log_lines_dropped: IntCounter,
    /// Requests to protected paths refused, by site and reason (missing, wrong).
    pub auth_failures: IntCounterVec,
    /// Bytes of slices held by the disk tier.
    pub disk_cache_bytes: IntGauge,
    /// Slices held by the disk tier.
    pub disk_cache_slices_held: IntGauge,
    /// Object versions known to the disk tier.
    pub disk_cache_objects: IntGauge,
    /// Disk-tier slices by what happened: hit (served from its file), fetched (from the bucket), evicted.
    pub disk_cache_slices: IntCounterVec,
    /// Disk-tier I/O errors by operation (open, read, write, remove); the bucket served instead.
    pub disk_cache_errors: IntCounterVec,
    /// Cacheable misses streamed uncached because the fill memory budget was spent.
    pub cache_fills_bypassed: IntCounter,
    /// Missing keys remembered by the negative cache.
    pub cache_negative_entries: IntGauge,
    /// Cache entries held in sealed memory files, sent to clients with sendfile (no copy).
    pub cache_sealed_entries: IntGauge,
    /// Not-after time of the client certificate presented to the backend, in Unix seconds.
    pub tls_client_cert_expiry: IntGauge,
    /// Changed TLS files seen, by file (identity, ca) and outcome (ok, rejected).
    pub tls_reloads: IntCounterVec,
    /// Object lookups in the cache, by result.
    pub cache_requests: IntCounterVec,
    /// Conditional GetObjects for stale entries, by outcome.
    pub cache_revalidations: IntCounterVec,
    /// Stale copies served because the backend failed revalidation.
    pub cache_stale_served: IntCounter,
    /// Entries removed from the cache, by cause.
    pub cache_evictions: IntCounterVec,
    /// Entries in the cache.
    pub cache_entries: IntGauge,
    /// Temporary S3 credentials fetched from the STS, by outcome (ok, error).
    pub credential_refreshes: IntCounterVec,
    /// When the temporary S3 credentials in use expire (Unix time); 0 with static keys.
    pub credential_expiry: IntGauge,
    /// Object requests by site (the sites' configured names) and status class.
    pub site_requests: IntCounterVec,
    /// Change events received from the bucket, by kind (created, removed, other).
    pub bucket_events: IntCounterVec,
    /// Cache entries dropped because a change event named their object.
    pub bucket_event_invalidations: IntCounter,
    /// 1 for the state of the change-event subscription (subscribed, retrying, unsupported, denied).
    pub bucket_events_state: IntGaugeVec,
    /// POST /purge requests, by outcome (key, prefix, all, unauthorized, invalid).
    pub purge_requests: IntCounterVec,
    /// Objects compressed into the cache, by coding and outcome (compressed, no_gain).
    pub compressions: IntCounterVec,
    /// Answers sent in a content coding the gateway chose, by coding.
    pub compressed_responses: IntCounterVec,
    /// Bytes held by the cache.
    pub cache_bytes: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric, plus process metrics and `gateway_build_info`.
    /// Series with known label values start at zero, so that rate() and dashboards see them
    /// before the first event.
    ///
    /// # Panics
    /// Only if a metric definition here is invalid (a programming error caught by tests).
    pub fn new() -> Self {
        let registry = Catalogued::default();
        let build_info = gauge_vec(
            &registry,
            "gateway_build_info",
            "Build information; always 1.",
            &["version"],
            &[],
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry
            .registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("process metrics registered once");
        Self {
            http_requests: counter_vec(
                &registry,
                "gateway_http_requests_total",
                "HTTP requests answered, by method and status class.",
                &["method", "status_class"],
                &[],
            ),
            http_duration: histogram_vec(
                &registry,
                "gateway_http_request_duration_seconds",
                "Time from request to response head, by method.",
                &["method"],
            ),
            http_in_flight: gauge(
                &registry,
                "gateway_http_requests_in_flight",
                "HTTP requests being answered.",
            ),
            http_response_bytes: counter(
                &registry,
                "gateway_http_response_bytes_total",
                "Bytes of response bodies sent, counted as they go out (aborted downloads count what was sent).",
            ),
            http_connections_open: gauge(&registry, "gateway_http_connections_open", "Client connections open."),
            s3_requests: counter_vec(
                &registry,
                "gateway_s3_requests_total",
                "Calls to the S3 backend, by operation and outcome.",
                &["operation", "outcome"],
                &[],
            ),
            s3_aws_chunked_removed: counter(
                &registry,
                "gateway_s3_aws_chunked_removed_total",
                "Object answers whose stored Content-Encoding named aws-chunked (an upload coding some stores keep), removed before serving.",
            ),
            s3_duration: histogram_vec(
                &registry,
                "gateway_s3_request_duration_seconds",
                "Time from S3 call to the backend's response head, by operation.",
                &["operation"],
            ),
            ready: gauge(
                &registry,
                "gateway_ready",
                "1 when /readyz answers 200: the bucket was reached at least once and shutdown has not begun.",
            ),
            backend_up: gauge(
                &registry,
                "gateway_backend_up",
                "1 while the backend answers (background probe and requests), 0 while it does not.",
            ),
            backend_circuit_open: gauge(
                &registry,
                "gateway_backend_circuit_open",
                "1 while the circuit breaker answers 503 instead of calling the failing backend.",
            ),
            backend_circuit_opened: counter(
                &registry,
                "gateway_backend_circuit_opened_total",
                "Times the circuit breaker opened after consecutive backend failures.",
            ),
            http_responses: counter_vec(
                &registry,
                "gateway_http_responses_total",
                "Responses by how their body ended: complete, aborted (client gone), error (backend failed mid-body).",
                &["outcome"],
                &[&["complete"], &["aborted"], &["error"]],
            ),
            log_lines_dropped: counter(
                &registry,
                "gateway_log_lines_dropped_total",
                "Log lines dropped because the log writer could not keep up (its queue was full).",
            ),
            auth_failures: counter_vec(
                &registry,
                "gateway_auth_failures_total",
                "Requests to protected paths refused, by site and reason (missing, wrong).",
                &["site", "reason"],
                &[],
            ),
            disk_cache_bytes: gauge(
                &registry,
                "gateway_disk_cache_bytes",
                "Bytes of slices held by the disk tier.",
            ),
            disk_cache_slices_held: gauge(&registry, "gateway_disk_cache_slices", "Slices held by the disk tier."),
            disk_cache_objects: gauge(
                &registry,
                "gateway_disk_cache_objects",
                "Object versions known to the disk tier.",
            ),
            disk_cache_slices: counter_vec(
                &registry,
                "gateway_disk_cache_slice_reads_total",
                "Disk-tier slices by what happened: hit (served from its file), fetched (from the bucket), evicted.",
                &["outcome"],
                &[&["hit"], &["fetched"], &["evicted"]],
            ),
            disk_cache_errors: counter_vec(
                &registry,
                "gateway_disk_cache_errors_total",
                "Disk-tier I/O errors by operation (open, read, write, remove); the bucket served instead.",
                &["op"],
                &[&["open"], &["read"], &["write"], &["remove"]],
            ),
            cache_fills_bypassed: counter(
                &registry,
                "gateway_cache_fills_bypassed_total",
                "Cacheable misses streamed uncached because the fill memory budget was spent.",
            ),
            cache_negative_entries: gauge(
                &registry,
                "gateway_cache_negative_entries",
                "Missing keys remembered by the negative cache.",
            ),
            cache_sealed_entries: gauge(
                &registry,
                "gateway_cache_sealed_entries",
                "Cache entries held in sealed memory files, sent to clients with sendfile (no copy).",
            ),
            tls_client_cert_expiry: gauge(
                &registry,
                "gateway_tls_client_cert_expiry_timestamp_seconds",
                "Not-after time of the client certificate presented to the backend, in Unix seconds.",
            ),
            tls_reloads: counter_vec(
                &registry,
                "gateway_tls_reloads_total",
                "Changed TLS files seen, by file (identity, ca) and outcome (ok, rejected).",
                &["file", "outcome"],
                &[
                    &["identity", "ok"],
                    &["identity", "rejected"],
                    &["ca", "ok"],
                    &["ca", "rejected"],
                ],
            ),
            cache_requests: counter_vec(
                &registry,
                "gateway_cache_requests_total",
                "Object lookups in the cache, by result.",
                &["result"],
                &[
                    &["HIT"],
                    &["MISS"],
                    &["REVALIDATED"],
                    &["UPDATING"],
                    &["STALE"],
                    &["BYPASS"],
                    &["ERROR"],
                ],
            ),
            cache_revalidations: counter_vec(
                &registry,
                "gateway_cache_revalidations_total",
                "Conditional GetObjects for stale entries, by outcome.",
                &["outcome"],
                &[&["not_modified"], &["modified"], &["deleted"], &["error"]],
            ),
            cache_stale_served: counter(
                &registry,
                "gateway_cache_stale_served_total",
                "Stale copies served because the backend failed revalidation.",
            ),
            cache_evictions: counter_vec(
                &registry,
                "gateway_cache_evictions_total",
                "Entries removed from the cache, by cause.",
                &["cause"],
                &[&["size"], &["expired"], &["replaced"], &["explicit"]],
            ),
            cache_entries: gauge(&registry, "gateway_cache_entries", "Entries in the cache."),
            credential_refreshes: counter_vec(
                &registry,
                "gateway_backend_credential_refreshes_total",
                "Temporary S3 credentials fetched from the STS, by outcome (ok, error).",
                &["outcome"],
                &[&["ok"], &["error"]],
            ),
            credential_expiry: gauge(
                &registry,
                "gateway_backend_credentials_expiry_timestamp_seconds",
                "When the temporary S3 credentials in use expire (Unix time); 0 with static keys.",
            ),
            site_requests: counter_vec(
                &registry,
                "gateway_site_requests_total",
                "Object requests by site (the sites' configured names) and status class.",
                &["site", "class"],
                &[],
            ),
            bucket_events: counter_vec(
                &registry,
                "gateway_bucket_events_total",
                "Change events received from the bucket, by kind (created, removed, other).",
                &["kind"],
                &[&["created"], &["removed"], &["other"]],
            ),
            bucket_event_invalidations: counter(
                &registry,
                "gateway_bucket_event_invalidations_total",
                "Cache entries dropped because a change event named their object.",
            ),
            bucket_events_state: gauge_vec(
                &registry,
                "gateway_bucket_events_state",
                "1 for the state of the change-event subscription (subscribed, retrying, unsupported, denied).",
                &["state"],
                &[&["subscribed"], &["retrying"], &["unsupported"], &["denied"]],
            ),
            purge_requests: counter_vec(
                &registry,
                "gateway_purge_requests_total",
                "POST /purge requests, by outcome (key, prefix, all, unauthorized, invalid).",
                &["outcome"],
                &[&["key"], &["prefix"], &["all"], &["unauthorized"], &["invalid"]],
            ),
            compressions: counter_vec(
                &registry,
                "gateway_compressions_total",
                "Objects compressed into the cache, by coding and outcome (compressed, no_gain).",
                &["encoding", "outcome"],
                &[],
            ),
            compressed_responses: counter_vec(
                &registry,
                "gateway_compressed_responses_total",
                "Answers sent in a content coding the gateway chose, by coding.",
                &["encoding"],
                &[],
            ),
            cache_bytes: gauge(&registry, "gateway_cache_size_bytes", "Bytes held by the cache."),
            catalogue: registry.seen.into_inner(),
            registry: registry.registry,
        }
    }

    /// Every `gateway_*` metric registered: its name, type and label names (for the tests that
    /// hold the README's table to what is exported, labels included before any series exists).
    pub fn catalogue(&self) -> &[MetricInfo] {
        &self.catalogue
    }

    /// Records one answered object request of the site named `site`.
    pub fn observe_site(&self, site: &str, status: http::StatusCode) {
        self.site_requests
            .with_label_values(&[site, status_class(status)])
            .inc();
    }

    /// Records one answered HTTP request.
    pub fn observe_http(&self, method: &http::Method, status: http::StatusCode, elapsed: Duration) {
        let method = method_label(method);
        let class = status_class(status);
        self.http_requests.with_label_values(&[method, class]).inc();
        self.http_duration
            .with_label_values(&[method])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one answer the HTTP layer wrote by itself (400, 414, 431 to a request head it
    /// could not parse): its method is unknown (`OTHER`), and it took no handler time, so it
    /// is counted but not timed.
    pub fn observe_rejected_head(&self, status: u16) {
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
        self.http_requests
            .with_label_values(&["OTHER", status_class(status)])
            .inc();
    }

    /// Records one S3 call.
    pub fn observe_s3(&self, operation: &str, outcome: &str, elapsed: Duration) {
        self.s3_requests.with_label_values(&[operation, outcome]).inc();
        self.s3_duration
            .with_label_values(&[operation])
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for text; an error would only drop the output.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One registered metric: name, Prometheus type and label names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricInfo {
    /// The metric's name, e.g. `gateway_http_requests_total`.
    pub name: String,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Its label names, in order.
    pub labels: Vec<String>,
}

/// A registry that also notes what is registered in it.
#[derive(Default)]
struct Catalogued {
    registry: Registry,
    seen: std::cell::RefCell<Vec<MetricInfo>>,
}

/// Registers `metric` (of Prometheus type `kind`) and returns it.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Catalogued,
    kind: &'static str,
    metric: M,
) -> M {
    for desc in metric.desc() {
        registry.seen.borrow_mut().push(MetricInfo {
            name: desc.fq_name.clone(),
            kind,
            labels: desc.variable_labels.clone(),
        });
    }
    registry
        .registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

fn counter(registry: &Catalogued, name: &str, help: &str) -> IntCounter {
    register(registry, "counter", IntCounter::new(name, help).expect("valid metric"))
}

fn gauge(registry: &Catalogued, name: &str, help: &str) -> IntGauge {
    register(registry, "gauge", IntGauge::new(name, help).expect("valid metric"))
}

/// A counter by `labels`, with the series of `start` at zero.
fn counter_vec(registry: &Catalogued, name: &str, help: &str, labels: &[&str], start: &[&[&str]]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    for values in start {
        metric.with_label_values(values);
    }
    register(registry, "counter", metric)
}

/// A gauge by `labels`, with the series of `start` at zero.
fn gauge_vec(registry: &Catalogued, name: &str, help: &str, labels: &[&str], start: &[&[&str]]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    for values in start {
        metric.with_label_values(values);
    }
    register(registry, "gauge", metric)
}

/// A latency histogram by `labels`, in [`LATENCY_BUCKETS`].
fn histogram_vec(registry: &Catalogued, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    register(
        registry,
        "histogram",
        HistogramVec::new(opts, labels).expect("valid metric"),
    )
}

/// Methods outside the known set share one label value, so a client cannot grow the series.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// `1xx` .. `5xx`.
fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.observe_http(&http::Method::GET, http::StatusCode::OK, Duration::from_millis(3));
        m.observe_http(
            &http::Method::from_bytes(b"BREW").unwrap(),
            http::StatusCode::METHOD_NOT_ALLOWED,
            Duration::ZERO,
        );
        let text = m.render();
        assert!(
            text.contains("gateway_http_requests_total{method=\"GET\",status_class=\"2xx\"} 1"),
            "{text}"
        );
        assert!(text.contains("method=\"OTHER\""), "{text}");
        assert!(text.contains("gateway_build_info{version="), "{text}");
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
    }
}
