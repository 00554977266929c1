//! Operational endpoints: `/healthz`, `/readyz` and `/metrics`.
//!
//! Liveness says only that the process answers; readiness says this pod reached the bucket
//! through the mTLS client at least once and is not shutting down ([`crate::readiness`]).

use http::{Response, StatusCode, header};

use crate::app::App;
use crate::body::{Body, text};

/// Answers an operational endpoint; `None` when `path` is not one.
pub async fn handle(app: &App, path: &str) -> Option<Response<Body>> {
    Some(match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readyz(app),
        "/metrics" => {
            if let Some(cache) = &app.cache {
                cache.export_gauges().await;
            }
            let mut resp = text(StatusCode::OK, app.metrics.render());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        _ => return None,
    })
}

/// Ready once the bucket was reached, until shutdown; the body says whether the backend is up
/// now (the background probe's last finding), which does not change the status.
fn readyz(app: &App) -> Response<Body> {
    let (ready, body) = app.readiness.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, body)
}
