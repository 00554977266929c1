//! The headers of an object response: validators, type, length, range, cache policy.
//!
//! Every answer about an object (200, 206, 304, 412, 416) is built here by an [`Answer`], from
//! the object's metadata, the site's default `Cache-Control` and how the cache served it,
//! whether the body comes from the cache or streams from the backend.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::{Body, empty, text};
use crate::cache::Served;
use crate::http::range::RangeDecision;
use crate::meta::ObjectMeta;

/// Everything an answer about one object says besides its body: the object, the site's
/// policies, whether its representation depends on `Accept-Encoding`, and how the cache served
/// it. Every answer about an object (200, 206, 304, 412, 416, an error document's 404) is built
/// from one of these, so each carries the same `Vary`, `X-Cache` and `Cache-Status`.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// The object key (its extension gives a type when none is stored).
    pub key: &'a str,
    /// The object's metadata.
    pub meta: &'a ObjectMeta,
    /// The site's `Cache-Control` for objects without their own.
    pub cache_control: &'a HeaderValue,
    /// The error policy's `Cache-Control`, when the object is sent as the 404 page.
    pub error_document: Option<&'a HeaderValue>,
    /// Whether answers about this object depend on `Accept-Encoding`.
    pub varies: bool,
    /// How the cache served it.
    pub served: Served,
}

impl Answer<'_> {
    /// The object: status, its headers, and `body`. `range` is the decision and the object's
    /// full length, when known.
    pub fn send(&self, status: StatusCode, range: Option<(RangeDecision, u64)>, body: Body) -> Response<Body> {
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        let (meta, h) = (self.meta, resp.headers_mut());
        validators(self.cache_control, meta, h);
        let ct = crate::http::content_type::content_type(meta.content_type.as_deref(), self.key);
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
        if let Some(error_cache_control) = self.error_document {
            resp = as_not_found(resp, error_cache_control);
        }
        self.finish(resp)
    }

    /// 304 with the validators of the current object.
    pub fn not_modified(&self) -> Response<Body> {
        let mut resp = Response::new(empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        validators(self.cache_control, self.meta, resp.headers_mut());
        self.finish(resp)
    }

    /// 412.
    pub fn precondition_failed(&self) -> Response<Body> {
        self.finish(text(StatusCode::PRECONDITION_FAILED, "precondition failed\n"))
    }

    /// 416 with the object's length in `Content-Range`.
    pub fn unsatisfiable(&self, len: u64) -> Response<Body> {
        let mut resp = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        resp.headers_mut()
            .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        self.finish(resp)
    }

    /// `Vary: Accept-Encoding` when the representation depends on it, whichever one this is
    /// (RFC 9110 §12.5.5), so that a shared cache keeps them apart; then how the cache answered:
    /// `X-Cache` (one word, as nginx and varnish setups show it) and the standard `Cache-Status`
    /// (RFC 9211).
    fn finish(&self, mut resp: Response<Body>) -> Response<Body> {
        let h = resp.headers_mut();
        if self.varies {
            h.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        h.insert("x-cache", HeaderValue::from_static(self.served.x_cache()));
        if let Ok(v) = HeaderValue::from_str(&self.served.cache_status()) {
            h.insert("cache-status", v);
        }
        resp
    }
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

/// Makes an object response a not-found answer: the error policy's `Cache-Control` in place
/// of the document's own, and no `Expires`, so that no cache keeps a 404 for long.
pub fn as_not_found(mut resp: Response<Body>, cache_control: &HeaderValue) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, cache_control.clone());
    h.remove(header::EXPIRES);
    resp
}
