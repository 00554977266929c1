//! `GET` and `HEAD` of an object: path → key → preconditions and range → streamed response,
//! and what to answer when the key does not exist (directory redirect, listing, SPA fallback,
//! error document).
//!
//! The object body flows from the backend to the client chunk by chunk as the client reads it
//! (hyper polls the SDK's body only when its write buffer has room), so memory stays flat
//! whatever the object's size. A request with preconditions or a `Range` first reads the
//! object's metadata (HEAD): a 304, 412 or 416 then costs no body transfer, and a range becomes
//! a ranged GetObject for exactly the bytes sent, pinned to the ETag that was evaluated.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};

use crate::app::App;
use crate::cache::{CacheStatus, CachedObject, Lookup};
use crate::error::StorageError;
use crate::key::object_key;
use crate::semantics::{
    Precondition, RangeDecision, evaluate_preconditions, has_preconditions, if_range_allows, resolve_range,
};
use crate::storage::ObjectMeta;

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type of the gateway: a fixed buffer or a stream from the backend.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// The parts of a request the object handler reads.
#[derive(Clone, Copy, Debug)]
pub struct ObjectRequest<'a> {
    /// GET or HEAD.
    pub method: &'a Method,
    /// Raw (still percent-encoded) path.
    pub path: &'a str,
    /// Raw query string, if any.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// A small `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// How a key is being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The object the request names: preconditions and ranges apply.
    Requested,
    /// The SPA fallback document: served with 200 as if requested.
    SpaFallback,
    /// The error document: served whole with 404.
    ErrorDocument,
}

/// Serves `GET`/`HEAD` for the object named by the request path.
pub async fn object(app: &App, req: &ObjectRequest<'_>) -> Response<Body> {
    let mut resp = match object_key(req.path, &app.site.index) {
        Err(e) => text(StatusCode::BAD_REQUEST, format!("bad request: {e}\n")),
        Ok(rel) => {
            let key = app.site.key(&rel);
            match serve_key(app, req, &key, Mode::Requested).await {
                Ok(resp) => resp,
                Err(StorageError::NotFound) => match not_found(app, req, &rel).await {
                    Ok(resp) => resp,
                    Err(e) => backend_failure(app, &key, &e),
                },
                Err(e) => backend_failure(app, &key, &e),
            }
        }
    };
    if let Some(cors) = &app.site.cors {
        cors.apply(req.headers, resp.headers_mut());
    }
    resp
}

/// Answers a backend failure with its honest status; the cause goes to the log only.
fn backend_failure(app: &App, key: &str, e: &StorageError) -> Response<Body> {
    let status = e.status(app.is_ready());
    if status == StatusCode::NOT_FOUND {
        return text(status, "not found\n");
    }
    tracing::warn!(%key, status = status.as_u16(), error = %e, "backend request failed");
    let reason = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    text(status, format!("{reason}\n"))
}

/// What a request gets, given the object's metadata.
enum Decision {
    NotModified,
    Failed,
    Unsatisfiable(u64),
    Send(StatusCode, RangeDecision),
}

/// Preconditions, then the range (RFC 9110 §13.2.2, §14), for a request in `mode`.
fn decide(req: &ObjectRequest<'_>, meta: &ObjectMeta, mode: Mode) -> Decision {
    let len = meta.content_length.unwrap_or(0);
    match mode {
        Mode::ErrorDocument => return Decision::Send(StatusCode::NOT_FOUND, RangeDecision::Full),
        Mode::SpaFallback => return Decision::Send(StatusCode::OK, RangeDecision::Full),
        Mode::Requested => {}
    }
    match evaluate_preconditions(req.method, req.headers, meta.etag.as_deref(), meta.last_modified) {
        Precondition::NotModified => return Decision::NotModified,
        Precondition::Failed => return Decision::Failed,
        Precondition::Proceed => {}
    }
    let range_header = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = if if_range_allows(req.headers, meta.etag.as_deref(), meta.last_modified) {
        resolve_range(range_header, len)
    } else {
        RangeDecision::Full
    };
    match range {
        RangeDecision::Unsatisfiable => Decision::Unsatisfiable(len),
        RangeDecision::Partial { .. } => Decision::Send(StatusCode::PARTIAL_CONTENT, range),
        RangeDecision::Full => Decision::Send(StatusCode::OK, range),
    }
}

/// Whether the client asked for a response validated with the origin (`no-cache`).
fn wants_revalidation(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .chain(headers.get_all(header::PRAGMA).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
}

fn x_cache(mut resp: Response<Body>, status: CacheStatus) -> Response<Body> {
    resp.headers_mut()
        .insert("x-cache", HeaderValue::from_static(status.as_str()));
    resp
}

/// Serves one key. `Err(NotFound)` when it does not exist.
async fn serve_key(app: &App, req: &ObjectRequest<'_>, key: &str, mode: Mode) -> Result<Response<Body>, StorageError> {
    let mut streamed_as = CacheStatus::Bypass;
    if let Some(cache) = &app.cache {
        let range_request = mode == Mode::Requested && req.headers.contains_key(header::RANGE);
        let force = cache.config().honor_no_cache && wants_revalidation(req.headers);
        match cache.lookup(&app.storage, key, force, !range_request).await? {
            Lookup::Object(obj, status) => return Ok(x_cache(respond_cached(app, req, key, &obj, mode), status)),
            Lookup::Missing(_) => return Err(StorageError::NotFound),
            // A range on a miss is fetched as a range, never as the whole object.
            Lookup::Bypass if range_request => streamed_as = CacheStatus::Miss,
            Lookup::Bypass => {}
        }
    }
    stream_key(app, req, key, mode)
        .await
        .map(|resp| x_cache(resp, streamed_as))
}

/// Answers from a cached object: everything in memory, bodies are slices of one buffer.
fn respond_cached(app: &App, req: &ObjectRequest<'_>, key: &str, obj: &CachedObject, mode: Mode) -> Response<Body> {
    let len = obj.body.len() as u64;
    match decide(req, &obj.meta, mode) {
        Decision::NotModified => not_modified(app, &obj.meta),
        Decision::Failed => text(StatusCode::PRECONDITION_FAILED, "precondition failed\n"),
        Decision::Unsatisfiable(len) => unsatisfiable(len),
        Decision::Send(status, range) => {
            let body = match (req.method, range) {
                (&Method::HEAD, _) => empty(),
                (_, RangeDecision::Partial { start, end }) => full(obj.body.slice(start as usize..=end as usize)),
                _ => full(obj.body.clone()),
            };
            respond(app, key, &obj.meta, status, Some((range, len)), body)
        }
    }
}

/// Serves one key straight from the backend, streaming the body.
async fn stream_key(app: &App, req: &ObjectRequest<'_>, key: &str, mode: Mode) -> Result<Response<Body>, StorageError> {
    let validated =
        mode == Mode::Requested && (has_preconditions(req.headers) || req.headers.contains_key(header::RANGE));
    if *req.method == Method::GET && !validated {
        // The common case: one GetObject, streamed.
        let obj = app.storage.get(key).await?;
        let status = if mode == Mode::ErrorDocument {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        let len = obj.meta.content_length;
        return Ok(respond(
            app,
            key,
            &obj.meta,
            status,
            len.map(|n| (RangeDecision::Full, n)),
            box_sdk(obj.body),
        ));
    }

    // Read the validators first; a range is then fetched pinned to the ETag evaluated, and
    // evaluated again if the object changed in between.
    for _ in 0..2 {
        let meta = app.storage.head(key).await?;
        let len = meta.content_length.unwrap_or(0);
        let (status, range) = match decide(req, &meta, mode) {
            Decision::NotModified => return Ok(not_modified(app, &meta)),
            Decision::Failed => return Ok(text(StatusCode::PRECONDITION_FAILED, "precondition failed\n")),
            Decision::Unsatisfiable(len) => return Ok(unsatisfiable(len)),
            Decision::Send(status, range) => (status, range),
        };
        if *req.method == Method::HEAD {
            return Ok(respond(app, key, &meta, status, Some((range, len)), empty()));
        }
        match app.storage.get_range(key, range.to_s3(), meta.etag.as_deref()).await {
            Ok(obj) if obj.meta.etag == meta.etag => {
                return Ok(respond(app, key, &meta, status, Some((range, len)), box_sdk(obj.body)));
            }
            // Replaced between HEAD and GET: evaluate again against the new object.
            Ok(_) | Err(StorageError::PreconditionFailed) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StorageError::Backend {
        status: 503,
        code: "ObjectChanging".into(),
        message: format!("{key} changed during two consecutive reads"),
    })
}

/// Whether a key exists; through the cache when it is on, so that probing missing paths is
/// answered from the negative cache instead of reaching the backend every time.
async fn exists(app: &App, key: &str) -> Result<bool, StorageError> {
    if let Some(cache) = &app.cache {
        return Ok(!matches!(
            cache.lookup(&app.storage, key, false, true).await?,
            Lookup::Missing(_)
        ));
    }
    match app.storage.head(key).await {
        Ok(_) => Ok(true),
        Err(StorageError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What to answer when the requested key does not exist.
async fn not_found(app: &App, req: &ObjectRequest<'_>, rel: &str) -> Result<Response<Body>, StorageError> {
    let site = &app.site;
    let is_dir = req.path.is_empty() || req.path.ends_with('/');
    if !is_dir {
        // `/dir` where `dir/index.html` exists: redirect to `/dir/`, as S3 websites do.
        if exists(app, &site.key(&format!("{rel}/{}", site.index))).await? {
            let location = match req.query {
                Some(q) => format!("{}/?{q}", req.path),
                None => format!("{}/", req.path),
            };
            let mut resp = text(StatusCode::FOUND, "");
            resp.headers_mut().remove(header::CONTENT_TYPE);
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(resp);
        }
    } else if site.list_directories {
        let dir = rel.strip_suffix(site.index.as_str()).unwrap_or(rel);
        if let Some(resp) = crate::listing::render(app, dir, req).await? {
            return Ok(resp);
        }
    }
    for (doc, mode) in [
        (&site.spa_fallback, Mode::SpaFallback),
        (&site.error_document, Mode::ErrorDocument),
    ] {
        if let Some(doc) = doc {
            match serve_key(app, req, &site.key(doc), mode).await {
                Err(StorageError::NotFound) => {}
                other => return other,
            }
        }
    }
    Ok(text(StatusCode::NOT_FOUND, "not found\n"))
}

fn box_sdk(body: aws_smithy_types::body::SdkBody) -> Body {
    body.map_err(BoxError::from).boxed()
}

/// An object response: status, the object's headers, and `body`.
///
/// `range` is the decision and the object's full length, when known.
fn respond(
    app: &App,
    key: &str,
    meta: &ObjectMeta,
    status: StatusCode,
    range: Option<(RangeDecision, u64)>,
    body: Body,
) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    validators(app, meta, h);
    let ct = crate::semantics::content_type(meta.content_type.as_deref(), key);
    if let Ok(v) = HeaderValue::from_str(&ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
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

/// ETag, Last-Modified and Cache-Control: what a 304 must repeat.
fn validators(app: &App, meta: &ObjectMeta, h: &mut HeaderMap) {
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
        .unwrap_or_else(|| app.site.cache_control.clone());
    h.insert(header::CACHE_CONTROL, cache_control);
}

fn not_modified(app: &App, meta: &ObjectMeta) -> Response<Body> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    validators(app, meta, resp.headers_mut());
    resp
}

fn unsatisfiable(len: u64) -> Response<Body> {
    let mut resp = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp.headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp
}
