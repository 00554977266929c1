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

/// All metrics of one gateway.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `gateway_http_requests_total{method, status_class}`.
    pub http_requests: IntCounterVec,
    /// `gateway_http_request_duration_seconds{method}`: until the response head is sent.
    pub http_duration: HistogramVec,
    /// `gateway_http_requests_in_flight`.
    pub http_in_flight: IntGauge,
    /// `gateway_http_response_bytes_total`: body bytes sent, counted as they go out.
    pub http_response_bytes: IntCounter,
    /// `gateway_http_connections_open`: client connections open now.
    pub http_connections_open: IntGauge,
    /// `gateway_s3_requests_total{operation, outcome}`; outcome is `ok` or an error kind.
    pub s3_requests: IntCounterVec,
    /// `gateway_s3_request_duration_seconds{operation}`: until the backend's response head.
    pub s3_duration: HistogramVec,
    /// `gateway_ready`: 1 when `/readyz` answers 200 (the bucket was reached once; not draining).
    pub ready: IntGauge,
    /// `gateway_backend_up`: 1 while the backend answers (background probe and calls).
    pub backend_up: IntGauge,
    /// `gateway_backend_circuit_open`: 1 while the circuit breaker refuses backend calls.
    pub backend_circuit_open: IntGauge,
    /// `gateway_backend_circuit_opened_total`: times the circuit breaker opened.
    pub backend_circuit_opened: IntCounter,
    /// `gateway_http_responses_total{outcome}`: response bodies by how they ended: `complete`,
    /// `aborted` (the client went away), `error` (the backend failed mid-body).
    pub http_responses: IntCounterVec,
    /// `gateway_cache_fills_bypassed_total`: cacheable misses streamed uncached because the
    /// fill memory budget was spent.
    pub cache_fills_bypassed: IntCounter,
    /// `gateway_cache_negative_entries`: missing keys remembered.
    pub cache_negative_entries: IntGauge,
    /// `gateway_cache_sealed_entries`: entries held in sealed memory files (sent with sendfile).
    pub cache_sealed_entries: IntGauge,
    /// `gateway_tls_client_cert_expiry_timestamp_seconds`: not-after of the client certificate in use.
    pub tls_client_cert_expiry: IntGauge,
    /// `gateway_tls_reloads_total{file, outcome}`: file `identity` or `ca`; outcome `ok` or `rejected`.
    pub tls_reloads: IntCounterVec,
    /// `gateway_cache_requests_total{result}`: HIT, MISS, REVALIDATED, UPDATING, STALE, BYPASS, ERROR.
    pub cache_requests: IntCounterVec,
    /// `gateway_cache_revalidations_total{outcome}`: not_modified, modified, deleted, error.
    pub cache_revalidations: IntCounterVec,
    /// `gateway_cache_stale_served_total`: stale copies served because revalidation failed.
    pub cache_stale_served: IntCounter,
    /// `gateway_cache_evictions_total{cause}`: size, expired, replaced, explicit.
    pub cache_evictions: IntCounterVec,
    /// `gateway_cache_entries`.
    pub cache_entries: IntGauge,
    /// `gateway_backend_credential_refreshes_total{outcome}`: temporary credentials fetched
    /// (`ok`) or not (`error`), with `--credentials sts-certificate`.
    pub credential_refreshes: IntCounterVec,
    /// `gateway_backend_credentials_expiry_timestamp_seconds`: when the temporary credentials
    /// in use expire (Unix time); 0 with static keys.
    pub credential_expiry: IntGauge,
    /// `gateway_site_requests_total{site,class}`: object requests by site (the configured
    /// names) and status class.
    pub site_requests: IntCounterVec,
    /// `gateway_bucket_events_total{kind}`: change events received (created, removed, other).
    pub bucket_events: IntCounterVec,
    /// `gateway_bucket_event_invalidations_total`: cache entries dropped because of them.
    pub bucket_event_invalidations: IntCounter,
    /// `gateway_bucket_events_state{state}`: 1 for the subscription's state (subscribed,
    /// retrying, unsupported, denied), 0 for the others; all 0 when off.
    pub bucket_events_state: IntGaugeVec,
    /// `gateway_purge_requests_total{outcome}`: key, prefix, all, unauthorized, invalid.
    pub purge_requests: IntCounterVec,
    /// `gateway_compressions_total{encoding,outcome}`: objects compressed into the cache
    /// (`compressed`), or found not to shrink (`no_gain`); each happens once per version.
    pub compressions: IntCounterVec,
    /// `gateway_compressed_responses_total{encoding}`: answers sent in a content coding.
    pub compressed_responses: IntCounterVec,
    /// `gateway_cache_size_bytes`: weighted size held (bodies plus per-entry overhead).
    pub cache_bytes: IntGauge,
}

impl Metrics {
    /// Creates and registers every metric, plus process metrics and `gateway_build_info`.
    ///
    /// # Panics
    /// Only if a metric definition above is invalid (a programming error caught by tests).
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "gateway_http_requests_total",
                "HTTP requests answered, by method and status class.",
            ),
            &["method", "status_class"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_http_request_duration_seconds",
                "Time from request to response head, by method.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method"],
        )
        .expect("valid metric");
        let http_in_flight =
            IntGauge::new("gateway_http_requests_in_flight", "HTTP requests being answered.").expect("valid metric");
        let http_response_bytes = IntCounter::new(
            "gateway_http_response_bytes_total",
            "Bytes of response bodies sent, counted as they go out (aborted downloads count what was sent).",
        )
        .expect("valid metric");
        let http_connections_open =
            IntGauge::new("gateway_http_connections_open", "Client connections open.").expect("valid metric");
        let s3_requests = IntCounterVec::new(
            Opts::new(
                "gateway_s3_requests_total",
                "Calls to the S3 backend, by operation and outcome.",
            ),
            &["operation", "outcome"],
        )
        .expect("valid metric");
        let s3_duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_s3_request_duration_seconds",
                "Time from S3 call to the backend's response head, by operation.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )
        .expect("valid metric");
        let ready = IntGauge::new(
            "gateway_ready",
            "1 when /readyz answers 200: the bucket was reached at least once and shutdown has not begun.",
        )
        .expect("valid metric");
        let backend_up = IntGauge::new(
            "gateway_backend_up",
            "1 while the backend answers (background probe and requests), 0 while it does not.",
        )
        .expect("valid metric");
        let backend_circuit_open = IntGauge::new(
            "gateway_backend_circuit_open",
            "1 while the circuit breaker answers 503 instead of calling the failing backend.",
        )
        .expect("valid metric");
        let backend_circuit_opened = IntCounter::new(
            "gateway_backend_circuit_opened_total",
            "Times the circuit breaker opened after consecutive backend failures.",
        )
        .expect("valid metric");
        let http_responses = IntCounterVec::new(
            Opts::new(
                "gateway_http_responses_total",
                "Responses by how their body ended: complete, aborted (client gone), error (backend failed mid-body).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let cache_fills_bypassed = IntCounter::new(
            "gateway_cache_fills_bypassed_total",
            "Cacheable misses streamed uncached because the fill memory budget was spent.",
        )
        .expect("valid metric");
        let cache_negative_entries = IntGauge::new(
            "gateway_cache_negative_entries",
            "Missing keys remembered by the negative cache.",
        )
        .expect("valid metric");
        let cache_sealed_entries = IntGauge::new(
            "gateway_cache_sealed_entries",
            "Cache entries held in sealed memory files, sent to clients with sendfile (no copy).",
        )
        .expect("valid metric");
        let tls_client_cert_expiry = IntGauge::new(
            "gateway_tls_client_cert_expiry_timestamp_seconds",
            "Not-after time of the client certificate presented to the backend, in Unix seconds.",
        )
        .expect("valid metric");
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "gateway_tls_reloads_total",
                "Changed TLS files seen, by file (identity, ca) and outcome (ok, rejected).",
            ),
            &["file", "outcome"],
        )
        .expect("valid metric");
        let cache_requests = IntCounterVec::new(
            Opts::new(
                "gateway_cache_requests_total",
                "Object lookups in the cache, by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let cache_revalidations = IntCounterVec::new(
            Opts::new(
                "gateway_cache_revalidations_total",
                "Conditional GetObjects for stale entries, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let cache_stale_served = IntCounter::new(
            "gateway_cache_stale_served_total",
            "Stale copies served because the backend failed revalidation.",
        )
        .expect("valid metric");
        let cache_evictions = IntCounterVec::new(
            Opts::new(
                "gateway_cache_evictions_total",
                "Entries removed from the cache, by cause.",
            ),
            &["cause"],
        )
        .expect("valid metric");
        let compressions = IntCounterVec::new(
            Opts::new(
                "gateway_compressions_total",
                "Objects compressed into the cache, by coding and outcome (compressed, no_gain).",
            ),
            &["encoding", "outcome"],
        )
        .expect("valid metric");
        let compressed_responses = IntCounterVec::new(
            Opts::new(
                "gateway_compressed_responses_total",
                "Answers sent in a content coding the gateway chose, by coding.",
            ),
            &["encoding"],
        )
        .expect("valid metric");
        let credential_refreshes = IntCounterVec::new(
            Opts::new(
                "gateway_backend_credential_refreshes_total",
                "Temporary S3 credentials fetched from the STS, by outcome (ok, error).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for outcome in ["ok", "error"] {
            credential_refreshes.with_label_values(&[outcome]);
        }
        let credential_expiry = IntGauge::new(
            "gateway_backend_credentials_expiry_timestamp_seconds",
            "When the temporary S3 credentials in use expire (Unix time); 0 with static keys.",
        )
        .expect("valid metric");
        let site_requests = IntCounterVec::new(
            Opts::new(
                "gateway_site_requests_total",
                "Object requests by site (the sites' configured names) and status class.",
            ),
            &["site", "class"],
        )
        .expect("valid metric");
        let bucket_events = IntCounterVec::new(
            Opts::new(
                "gateway_bucket_events_total",
                "Change events received from the bucket, by kind (created, removed, other).",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for kind in ["created", "removed", "other"] {
            bucket_events.with_label_values(&[kind]);
        }
        let bucket_event_invalidations = IntCounter::new(
            "gateway_bucket_event_invalidations_total",
            "Cache entries dropped because a change event named their object.",
        )
        .expect("valid metric");
        let bucket_events_state = IntGaugeVec::new(
            Opts::new(
                "gateway_bucket_events_state",
                "1 for the state of the change-event subscription (subscribed, retrying, unsupported, denied).",
            ),
            &["state"],
        )
        .expect("valid metric");
        for state in ["subscribed", "retrying", "unsupported", "denied"] {
            bucket_events_state.with_label_values(&[state]);
        }
        let purge_requests = IntCounterVec::new(
            Opts::new(
                "gateway_purge_requests_total",
                "POST /purge requests, by outcome (key, prefix, all, unauthorized, invalid).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for outcome in ["key", "prefix", "all", "unauthorized", "invalid"] {
            purge_requests.with_label_values(&[outcome]);
        }
        let cache_entries = IntGauge::new("gateway_cache_entries", "Entries in the cache.").expect("valid metric");
        let cache_bytes = IntGauge::new("gateway_cache_size_bytes", "Bytes held by the cache.").expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("gateway_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        // Series with known label values start at zero, so rate() and dashboards see them
        // before the first event.
        for cause in ["size", "expired", "replaced", "explicit"] {
            cache_evictions.with_label_values(&[cause]);
        }
        for result in ["HIT", "MISS", "REVALIDATED", "UPDATING", "STALE", "BYPASS", "ERROR"] {
            cache_requests.with_label_values(&[result]);
        }
        for outcome in ["not_modified", "modified", "deleted", "error"] {
            cache_revalidations.with_label_values(&[outcome]);
        }
        for outcome in ["complete", "aborted", "error"] {
            http_responses.with_label_values(&[outcome]);
        }
        for file in ["identity", "ca"] {
            for outcome in ["ok", "rejected"] {
                tls_reloads.with_label_values(&[file, outcome]);
            }
        }

        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(http_in_flight.clone()),
            Box::new(http_response_bytes.clone()),
            Box::new(http_connections_open.clone()),
            Box::new(s3_requests.clone()),
            Box::new(s3_duration.clone()),
            Box::new(ready.clone()),
            Box::new(backend_up.clone()),
            Box::new(backend_circuit_open.clone()),
            Box::new(backend_circuit_opened.clone()),
            Box::new(http_responses.clone()),
            Box::new(cache_fills_bypassed.clone()),
            Box::new(cache_negative_entries.clone()),
            Box::new(cache_sealed_entries.clone()),
            Box::new(build_info),
            Box::new(tls_client_cert_expiry.clone()),
            Box::new(tls_reloads.clone()),
            Box::new(cache_requests.clone()),
            Box::new(cache_revalidations.clone()),
            Box::new(cache_stale_served.clone()),
            Box::new(cache_evictions.clone()),
            Box::new(cache_entries.clone()),
            Box::new(compressions.clone()),
            Box::new(purge_requests.clone()),
            Box::new(site_requests.clone()),
            Box::new(credential_refreshes.clone()),
            Box::new(credential_expiry.clone()),
            Box::new(bucket_events.clone()),
            Box::new(bucket_event_invalidations.clone()),
            Box::new(bucket_events_state.clone()),
            Box::new(compressed_responses.clone()),
            Box::new(cache_bytes.clone()),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            http_response_bytes,
            http_connections_open,
            s3_requests,
            s3_duration,
            ready,
            backend_up,
            backend_circuit_open,
            backend_circuit_opened,
            http_responses,
            cache_fills_bypassed,
            cache_negative_entries,
            cache_sealed_entries,
            tls_client_cert_expiry,
            tls_reloads,
            cache_requests,
            cache_revalidations,
            cache_stale_served,
            cache_evictions,
            cache_entries,
            compressions,
            compressed_responses,
            purge_requests,
            site_requests,
            credential_refreshes,
            credential_expiry,
            bucket_events,
            bucket_event_invalidations,
            bucket_events_state,
            cache_bytes,
        }
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
