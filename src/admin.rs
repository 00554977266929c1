//! Operational endpoints: `/healthz`, `/readyz` and `/metrics`.
//!
//! Liveness says only that the process answers; readiness proves the bucket is reachable
//! through the mTLS client (HeadBucket) and fails as soon as shutdown begins.

use http::{Response, StatusCode, header};

use crate::app::App;
use crate::body::{Body, text};

/// Answers an operational endpoint; `None` when `path` is not one.
pub async fn handle(app: &App, path: &str) -> Option<Response<Body>> {
    Some(match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readyz(app).await,
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

async fn readyz(app: &App) -> Response<Body> {
    if app.readiness.is_draining() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    match app.readiness.probe().await {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        // The cause is logged by the probe; the body names only its class.
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", e.kind())),
    }
}
