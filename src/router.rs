//! Method and path to handler, plus the per-request bookkeeping: request id, metrics, the
//! in-flight gauge and the access log.
//!
//! No business logic lives here. Which endpoints a listener serves is its [`Routes`]: objects,
//! the operational endpoints, or both on one port.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};

use crate::admin;
use crate::app::App;
use crate::body::{Body, text};
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

/// Answers one request.
pub async fn route<B>(app: Arc<App>, routes: Routes, req: Request<B>) -> Response<Body> {
    let start = Instant::now();
    app.metrics.http_in_flight.inc();
    let (parts, _body) = req.into_parts();
    let id = request_id(&parts.headers);
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default());
    let mut resp = dispatch(&app, routes, &parts).instrument(span.clone()).await;
    app.metrics.http_in_flight.dec();
    let elapsed = start.elapsed();
    app.metrics.observe_http(&parts.method, resp.status(), elapsed);
    let bytes: u64 = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .filter(|_| parts.method != Method::HEAD)
        .unwrap_or(0);
    app.metrics.http_response_bytes.inc_by(bytes);
    if app.access_log {
        let cache = resp
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        span.in_scope(|| {
            tracing::info!(
                target: "gateway::access",
                method = %parts.method,
                path = parts.uri.path(),
                status = resp.status().as_u16(),
                bytes,
                duration_ms = elapsed.as_secs_f64() * 1e3,
                cache,
                "request"
            );
        });
    }
    resp.headers_mut().insert(REQUEST_ID, id);
    resp
}

async fn dispatch(app: &App, routes: Routes, parts: &http::request::Parts) -> Response<Body> {
    let method = &parts.method;
    let path = parts.uri.path();
    if parts.uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return text(StatusCode::URI_TOO_LONG, "request target too long\n");
    }
    if *method == Method::OPTIONS
        && let Some(cors) = &app.site.cors
    {
        return cors.preflight(&parts.headers);
    }
    if *method != Method::GET && *method != Method::HEAD {
        let allow = if app.site.cors.is_some() {
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
    let req = ObjectRequest {
        method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    object::object(app, &req).await
}
