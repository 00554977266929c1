//! Method and path to handler, plus the per-request bookkeeping (metrics, in-flight gauge).
//!
//! No business logic lives here; moving the operational endpoints to their own port only
//! changes [`Routes`].

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};

use crate::admin;
use crate::app::App;
use crate::handler::{self, Body};

/// Which endpoints a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// Objects and the operational endpoints on one port.
    All,
}

/// Longest request target (path and query) accepted, in bytes; longer is 414. Object keys are
/// at most 1024 bytes, percent-encoding triples that, and a prefix may add some.
pub const MAX_URI_BYTES: usize = 4096;

/// Answers one request.
pub async fn route<B>(app: Arc<App>, routes: Routes, req: Request<B>) -> Response<Body> {
    let start = Instant::now();
    app.metrics.http_in_flight.inc();
    let (parts, _body) = req.into_parts();
    let resp = dispatch(&app, routes, &parts).await;
    app.metrics.http_in_flight.dec();
    app.metrics.observe_http(&parts.method, resp.status(), start.elapsed());
    tracing::debug!(method = %parts.method, path = parts.uri.path(), status = resp.status().as_u16(), elapsed_ms = start.elapsed().as_secs_f64() * 1e3, "request");
    resp
}

async fn dispatch(app: &App, routes: Routes, parts: &http::request::Parts) -> Response<Body> {
    let method = &parts.method;
    let path = parts.uri.path();
    if parts.uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return handler::text(StatusCode::URI_TOO_LONG, "request target too long\n");
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
        let mut resp = handler::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return resp;
    }
    if routes == Routes::All
        && let Some(resp) = admin::handle(app, path).await
    {
        return resp;
    }
    let req = handler::ObjectRequest {
        method,
        path,
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    handler::object(app, &req).await
}
