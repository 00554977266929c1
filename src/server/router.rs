//! Method and path to handler, after the protocol's guards (Host, request-target length,
//! methods); the bookkeeping of each request is [`crate::server::accounting`]'s.
//!
//! No business logic lives here. Which endpoints a listener serves is its [`Routes`]: objects,
//! the operational endpoints, or both on one port.

use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use tracing::Instrument;

use crate::body::{Body, text};
use crate::config::app::App;
use crate::handler::object::{self, ObjectRequest};
use crate::server::accounting::Accounting;
use crate::server::admin;
use crate::server::conn::Activity;

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

/// Longest request target (path and query) accepted, in bytes; longer is 414. Object keys are
/// at most 1024 bytes, percent-encoding triples that, and a prefix may add some.
pub const MAX_URI_BYTES: usize = 4096;

/// Answers one request that arrived on a connection with `activity`, accounted for
/// ([`crate::server::accounting`]) until its body ends.
pub async fn route<B>(app: Arc<App>, routes: Routes, req: Request<B>, activity: &Arc<Activity>) -> Response<Body> {
    let (parts, _body) = req.into_parts();
    let accounting = Accounting::begin(&app, activity, &parts);
    let resp = dispatch(&app, routes, &parts).instrument(accounting.span()).await;
    accounting.finish(app, parts, resp)
}

/// What a malformed request gets before any routing: RFC 9112 §3.2 (an HTTP/1.1 request
/// without exactly one Host is a 400) and the request-target limit.
fn malformed(parts: &http::request::Parts) -> Option<Response<Body>> {
    if parts.version == Version::HTTP_11 && parts.headers.get_all(header::HOST).iter().count() != 1 {
        return Some(text(
            StatusCode::BAD_REQUEST,
            "bad request: HTTP/1.1 needs exactly one Host header\n",
        ));
    }
    if parts.uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return Some(text(StatusCode::URI_TOO_LONG, "request target too long\n"));
    }
    None
}

async fn dispatch(app: &App, routes: Routes, parts: &http::request::Parts) -> Response<Body> {
    let method = &parts.method;
    let path = parts.uri.path();
    if let Some(resp) = malformed(parts) {
        return resp;
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
