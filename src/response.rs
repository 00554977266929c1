//! The headers of an object response: validators, type, length, range, cache policy.
//!
//! Every answer about an object (200, 206, 304, 416) is built here, from the object's metadata
//! and the site's default `Cache-Control`, whether the body comes from the cache or streams
//! from the backend.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::{Body, empty, text};
use crate::cache::Served;
use crate::range::RangeDecision;
use crate::storage::ObjectMeta;

/// An object response: status, the object's headers, and `body`.
///
/// `range` is the decision and the object's full length, when known; `cache_control` is the
/// site's default for objects without their own.
pub fn object(
    cache_control: &HeaderValue,
    key: &str,
    meta: &ObjectMeta,
    status: StatusCode,
    range: Option<(RangeDecision, u64)>,
    body: Body,
) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    validators(cache_control, meta, h);
    let ct = crate::content_type::content_type(meta.content_type.as_deref(), key);
    if let Ok(v) = HeaderValue::from_str(&ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let stored = &meta.stored;
    for (name, value) in [
        (header::CONTENT_ENCODING, &stored.content_encoding),
        (header::CONTENT_DISPOSITION, &stored.content_disposition),
        (header::CONTENT_LANGUAGE, &stored.content_language),
    ] {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name, v);
        }
    }
    match range {
        Some((RangeDecision::Partial { start, end }, len)) => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        Some((_, len)) => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        None => {}
    }
    resp
}

/// ETag, Last-Modified, Cache-Control and Expires: what a 304 must repeat (RFC 9110 §15.4.5).
fn validators(cache_control: &HeaderValue, meta: &ObjectMeta, h: &mut HeaderMap) {
    if let Some(v) = meta.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        h.insert(header::ETAG, v);
    }
    if let Some(t) = meta.last_modified
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(t))
    {
        h.insert(header::LAST_MODIFIED, v);
    }
    let cache_control = meta
        .cache_control
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or_else(|| cache_control.clone());
    h.insert(header::CACHE_CONTROL, cache_control);
    if let Some(v) = meta
        .stored
        .expires
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(header::EXPIRES, v);
    }
}

/// 304 with the validators of the current object.
pub fn not_modified(cache_control: &HeaderValue, meta: &ObjectMeta) -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    validators(cache_control, meta, resp.headers_mut());
    resp
}

/// 412.
pub fn precondition_failed() -> Response<Body> {
    text(StatusCode::PRECONDITION_FAILED, "precondition failed\n")
}

/// 416 with the object's length in `Content-Range`.
pub fn unsatisfiable(len: u64) -> Response<Body> {
    let mut resp = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp
}

/// Says how the cache answered: `X-Cache` (one word, as nginx and varnish setups show it) and
/// the standard `Cache-Status` (RFC 9211).
pub fn cache_headers(mut resp: Response<Body>, served: Served) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert("x-cache", HeaderValue::from_static(served.status.as_str()));
    if let Ok(v) = HeaderValue::from_str(&served.cache_status()) {
        h.insert("cache-status", v);
    }
    resp
}

/// Makes an object response a not-found answer: the error policy's `Cache-Control` in place
/// of the document's own, and no `Expires`, so that no cache keeps a 404 for long.
pub fn as_not_found(mut resp: Response<Body>, cache_control: &HeaderValue) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, cache_control.clone());
    h.remove(header::EXPIRES);
    resp
}
