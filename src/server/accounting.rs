//! The bookkeeping of one request: its id, the in-flight gauge, the request metrics, and the
//! access log line, written when the response body ends with what was actually sent.
//!
//! The response body is wrapped so that the bookkeeping happens when it ends, not when its
//! head is sent: the in-flight gauge cannot leak when a client disconnects (a guard), and the
//! byte counter and access log line count the bytes actually sent, with how the body ended
//! (`complete`, `aborted` by the client, or `error` from the backend mid-body).

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Response, StatusCode, Version, header};
use http_body_util::BodyExt;

use crate::body::{Body, BoxError};
use crate::config::app::App;
use crate::server::conn::{Activity, InFlight};

/// Header carrying the request id, taken from the client (or a proxy) or generated.
pub const REQUEST_ID: &str = "x-request-id";

/// A request id from the client is kept if it is short printable ASCII; otherwise a new one.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic()))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&new_request_id()).expect("hex is a valid header value"))
}

/// A new request id: 32 hex digits.
pub fn new_request_id() -> String {
    let id: u128 = rand::random();
    format!("{id:032x}")
}

/// A request being answered, from its arrival until its response body ends.
pub struct Accounting {
    start: Instant,
    id: HeaderValue,
    span: tracing::Span,
    in_flight: (InFlight, InFlightGauge),
}

impl Accounting {
    /// Starts counting a request that arrived on a connection with `activity`.
    pub fn begin(app: &App, activity: &Arc<Activity>, parts: &http::request::Parts) -> Self {
        let start = Instant::now();
        let headers = &parts.headers;
        let in_flight = (activity.request(parts.version), InFlightGauge::new(&app.metrics));
        let id = request_id(headers);
        let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
        Self {
            start,
            id,
            span,
            in_flight,
        }
    }

    /// The request's span, for what is logged while it is answered.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    /// Records the response head and wraps its body, which records the rest when it ends.
    pub fn finish(self, app: Arc<App>, parts: http::request::Parts, mut resp: Response<Body>) -> Response<Body> {
        app.metrics
            .observe_http(&parts.method, resp.status(), self.start.elapsed());
        if app.readiness.is_draining() && parts.version <= Version::HTTP_11 {
            // Shutting down: this client should open its next connection elsewhere.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp.headers_mut().insert(REQUEST_ID, self.id.clone());
        let expected = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .filter(|_| parts.method != Method::HEAD);
        let record = Record {
            cache: resp.headers().get("x-cache").cloned(),
            request_id: self.id,
            status: resp.status(),
            method: parts.method,
            uri: parts.uri,
            start: self.start,
            span: self.span,
            app,
            in_flight: self.in_flight,
        };
        resp.map(|inner| {
            Accounted {
                inner,
                sent: 0,
                expected,
                record: Some(record),
            }
            .boxed()
        })
    }
}

/// Counts a request in `gateway_http_requests_in_flight` until dropped.
struct InFlightGauge(prometheus::IntGauge);

impl InFlightGauge {
    fn new(metrics: &crate::metrics::Metrics) -> Self {
        metrics.http_in_flight.inc();
        Self(metrics.http_in_flight.clone())
    }
}

impl Drop for InFlightGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the access log and metrics need once the body has ended.
struct Record {
    app: Arc<App>,
    span: tracing::Span,
    method: Method,
    /// The request target; its path is logged.
    uri: http::Uri,
    status: StatusCode,
    /// `X-Cache` of the response, if any.
    cache: Option<HeaderValue>,
    /// `X-Request-Id`.
    request_id: HeaderValue,
    start: Instant,
    in_flight: (InFlight, InFlightGauge),
}

/// A response body that records, when it ends, how it ended and how many bytes went out.
struct Accounted {
    inner: Body,
    sent: u64,
    /// The Content-Length sent, if any.
    expected: Option<u64>,
    record: Option<Record>,
}

impl Accounted {
    fn finish(&mut self, outcome: &'static str) {
        let Some(r) = self.record.take() else { return };
        r.app.metrics.http_responses.with_label_values(&[outcome]).inc();
        if r.app.access_log {
            crate::telemetry::access(crate::telemetry::AccessLine {
                at: std::time::SystemTime::now(),
                request_id: r.request_id.to_str().unwrap_or_default().into(),
                method: Some(r.method),
                path: r.uri.path().into(),
                status: r.status.as_u16(),
                bytes: self.sent,
                duration_ms: r.start.elapsed().as_secs_f64() * 1e3,
                cache: r.cache,
                outcome,
            });
        }
    }
}

impl hyper::body::Body for Accounted {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    self.sent += n;
                    if let Some(r) = &self.record {
                        r.app.metrics.http_response_bytes.inc_by(n);
                        r.in_flight.0.progressed();
                    }
                }
            }
            std::task::Poll::Ready(Some(Err(e))) => {
                if let Some(r) = &self.record {
                    r.span
                        .in_scope(|| tracing::warn!(error = %e, "response body failed mid-way"));
                }
                self.finish("error");
            }
            std::task::Poll::Ready(None) => self.finish("complete"),
            std::task::Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Accounted {
    fn drop(&mut self) {
        // hyper drops a body without polling its end once it has sent all it announced.
        let done = hyper::body::Body::is_end_stream(&self.inner) || self.expected.is_some_and(|n| n == self.sent);
        self.finish(if done { "complete" } else { "aborted" });
    }
}
