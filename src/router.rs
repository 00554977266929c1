//! Method and path to handler, plus the per-request bookkeeping: request id, metrics, the
//! in-flight gauge and the access log (written when the body ends, with what was sent).
//!
//! No business logic lives here. Which endpoints a listener serves is its [`Routes`]: objects,
//! the operational endpoints, or both on one port.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use http_body_util::BodyExt;

use crate::admin;
use crate::app::App;
use crate::body::{Body, BoxError, text};
use crate::conn::{Activity, InFlight};
use crate::object::{self, ObjectRequest};

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// Objects and the operational endpoints on one port.
    All,
    /// Objects only (the data port when the admin port is separate).
    Objects,
    /// `/metrics`, `/healthz`, `/readyz` only.
    Admin,
}

/// Header carrying the request id, taken from the client (or a proxy) or generated.
pub const REQUEST_ID: &str = "x-request-id";

/// A request id from the client is kept if it is short printable ASCII; otherwise a new one.
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic()))
        .cloned()
        .unwrap_or_else(|| {
            let id: u128 = rand::random();
            HeaderValue::from_str(&format!("{id:032x}")).expect("hex is a valid header value")
        })
}

/// Longest request target (path and query) accepted, in bytes; longer is 414. Object keys are
/// at most 1024 bytes, percent-encoding triples that, and a prefix may add some.
pub const MAX_URI_BYTES: usize = 4096;

/// Answers one request that arrived on a connection with `activity`.
///
/// The response body is wrapped so that the bookkeeping happens when it ends, not when its
/// head is sent: the in-flight gauge cannot leak when a client disconnects (a guard), and the
/// byte counter and access log line count the bytes actually sent, with how the body ended
/// (`complete`, `aborted` by the client, or `error` from the backend mid-body).
pub async fn route<B>(app: Arc<App>, routes: Routes, req: Request<B>, activity: &Arc<Activity>) -> Response<Body> {
    let start = Instant::now();
    let in_flight = (activity.request(), InFlightGauge::new(&app.metrics));
    let (parts, _body) = req.into_parts();
    let id = request_id(&parts.headers);
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
    let mut resp = dispatch(&app, routes, &parts).instrument(span.clone()).await;
    app.metrics.observe_http(&parts.method, resp.status(), start.elapsed());
    if app.readiness.is_draining() && parts.version <= Version::HTTP_11 {
        // Shutting down: this client should open its next connection elsewhere.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp.headers_mut().insert(REQUEST_ID, id);
    let expected = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .filter(|_| parts.method != Method::HEAD);
    let record = Record {
        cache: resp.headers().get("x-cache").cloned(),
        status: resp.status(),
        method: parts.method,
        uri: parts.uri,
        start,
        span,
        app,
        _in_flight: in_flight,
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
    start: Instant,
    _in_flight: (InFlight, InFlightGauge),
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
            r.span.in_scope(|| {
                tracing::info!(
                    target: "gateway::access",
                    method = %r.method,
                    path = r.uri.path(),
                    status = r.status.as_u16(),
                    bytes = self.sent,
                    duration_ms = r.start.elapsed().as_secs_f64() * 1e3,
                    cache = r.cache.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
                    outcome,
                    "request"
                );
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

async fn dispatch(app: &App, routes: Routes, parts: &http::request::Parts) -> Response<Body> {
    let method = &parts.method;
    let path = parts.uri.path();
    // RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a 400.
    if parts.version == Version::HTTP_11 && parts.headers.get_all(header::HOST).iter().count() != 1 {
        return text(
            StatusCode::BAD_REQUEST,
            "bad request: HTTP/1.1 needs exactly one Host header\n",
        );
    }
    if parts.uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return text(StatusCode::URI_TOO_LONG, "request target too long\n");
    }
    if routes != Routes::Objects && path == admin::PURGE {
        return admin::purge(app, parts).await;
    }
    // The site by host: `Host`, or the authority of an absolute target (HTTP/2's :authority).
    let host = parts
        .uri
        .authority()
        .map(http::uri::Authority::as_str)
        .or_else(|| parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()));
    let site = app.sites.select(host);
    let cors = site.and_then(|s| s.site.cors.as_ref());
    if *method == Method::OPTIONS
        && let Some(cors) = cors
    {
        return cors.preflight(&parts.headers);
    }
    if *method != Method::GET && *method != Method::HEAD {
        let allow = if cors.is_some() {
            "GET, HEAD, OPTIONS"
        } else {
            "GET, HEAD"
        };
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return resp;
    }
    if routes != Routes::Objects
        && let Some(resp) = admin::handle(app, path).await
    {
        return resp;
    }
    if routes == Routes::Admin {
        return text(
            StatusCode::NOT_FOUND,
            "not found: this port serves /metrics, /healthz and /readyz\n",
        );
    }
    let Some(site) = site else {
        return text(StatusCode::NOT_FOUND, "not found: no site is served for this host\n");
    };
    let req = ObjectRequest {
        method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
        site,
    };
    let resp = object::object(app, &req).await;
    app.metrics.observe_site(&site.name, resp.status());
    resp
}
