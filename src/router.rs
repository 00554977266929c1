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

/// Answers one request.
pub async fn route<B>(app: Arc<App>, routes: Routes, req: Request<B>) -> Response<Body> {
    let start = Instant::now();
    app.metrics.http_in_flight.inc();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = dispatch(&app, routes, &method, &path).await;
    app.metrics.http_in_flight.dec();
    app.metrics
        .observe_http(&method, resp.status(), start.elapsed());
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_ms = start.elapsed().as_secs_f64() * 1e3, "request");
    resp
}

async fn dispatch(app: &App, routes: Routes, method: &Method, path: &str) -> Response<Body> {
    if *method != Method::GET && *method != Method::HEAD {
        let mut resp = handler::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    if routes == Routes::All
        && let Some(resp) = admin::handle(app, path).await
    {
        return resp;
    }
    handler::object(app, method, path).await
}
