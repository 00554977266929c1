//! `GET` and `HEAD` of an object: path → key → preconditions and range → response, from the
//! cache or streamed from the backend.
//!
//! The object body flows from the backend to the client chunk by chunk as the client reads it
//! (hyper polls the SDK's body only when its write buffer has room), so memory stays flat
//! whatever the object's size. A request with preconditions or a `Range` first reads the
//! object's metadata (HEAD): a 304, 412 or 416 then costs no body transfer, and a range becomes
//! a ranged GetObject for exactly the bytes sent, pinned to the ETag that was evaluated. What
//! a missing key gets instead is [`crate::handler::fallback`]'s policy.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use crate::body::{Body, boxed, empty, full, streamed, text};
use crate::cache::disk::DiskLookup;
use crate::cache::{CacheStatus, CachedObject, Lookup, ObjectCache, Served, cache_name};
use crate::config::app::App;
use crate::config::sites::Hosted;
use crate::error::StorageError;
use crate::handler::fallback::{self, Mode};
use crate::handler::response::{Answer, as_not_found};
use crate::http::compression::Encoding;
use crate::http::conditional::{Precondition, evaluate_preconditions, has_preconditions, if_range_allows};
use crate::http::key::{ObjectPath, object_path};
use crate::http::range::{RangeDecision, resolve_range};
use crate::meta::ObjectMeta;

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
    /// The site the request's host selected.
    pub site: &'a Hosted,
}

/// Serves `GET`/`HEAD` for the object named by the request path, under the site's rules: a
/// redirect that matches answers instead, a rewrite (200) serves its target in place, and the
/// header rules that match the path apply to whatever the answer is.
pub async fn object(app: &App, req: &ObjectRequest<'_>) -> Response<Body> {
    // Protection and header rules match the decoded path, the one that names the key:
    // `/%73taging/` is `/staging/`.
    let decoded = percent_encoding::percent_decode_str(req.path).decode_utf8_lossy();
    // The check comes before anything, the cache included.
    let mut protected = match guard(app, req, &decoded).await {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let rules = crate::handler::rules::for_site(app, req.site).await;
    let mut resp = match rules.redirect(req.path, req.query) {
        Some((rule, to)) if rule.status != 200 => redirect(rule.status, &to),
        Some((_, to)) => {
            // A rewrite serves another path: that path's protection applies too.
            let path = to.split_once('?').map_or(to.as_str(), |(p, _)| p);
            let target = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
            match guard(app, req, &target).await {
                Ok(p) => {
                    protected |= p;
                    serve_path(app, req, path).await
                }
                Err(refused) => return refused,
            }
        }
        None => serve_path(app, req, req.path).await,
    };
    rules.apply_headers(&decoded, resp.headers_mut());
    if protected {
        // For this user only: no shared cache (an ingress's, a CDN's) may keep it.
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    }
    if let Some(cors) = &req.site.site.cors {
        cors.apply(req.headers, resp.headers_mut());
    }
    resp
}

/// Whether `path` (decoded) is protected and the request's credentials pass: `Ok(true)` when
/// protected and passed, `Ok(false)` when not protected, the 401 when refused.
async fn guard(app: &App, req: &ObjectRequest<'_>, path: &str) -> Result<bool, Response<Body>> {
    let Some(p) = req.site.site.protect.iter().find(|p| p.pattern.matches(path).is_some()) else {
        return Ok(false);
    };
    let authorization = req.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if p.users.check(authorization).await {
        return Ok(true);
    }
    let reason = if authorization.is_some() { "wrong" } else { "missing" };
    app.metrics
        .auth_failures
        .with_label_values(&[req.site.name.as_str(), reason])
        .inc();
    let mut resp = text(StatusCode::UNAUTHORIZED, "authentication required\n");
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, p.challenge.clone());
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Err(resp)
}

/// A redirect to `to` with `status`.
fn redirect(status: u16, to: &str) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut resp = text(status, format!("moved: {to}\n"));
    if let Ok(location) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

/// Serves the object of `raw_path` (the request's, or a rewrite's target).
async fn serve_path(app: &App, req: &ObjectRequest<'_>, raw_path: &str) -> Response<Body> {
    match object_path(raw_path, &req.site.site.prefix, &req.site.site.index) {
        Err(e) => text(StatusCode::BAD_REQUEST, format!("bad request: {e}\n")),
        Ok(path)
            if crate::handler::rules::is_rule_file(
                req.site,
                path.key.strip_prefix(&req.site.site.prefix).unwrap_or(""),
            ) =>
        {
            plain_not_found(req.site)
        }
        Ok(path) => match serve_key(app, req, &path.key, Mode::Requested).await {
            Ok(resp) => resp,
            Err(StorageError::NotFound) => match not_found(app, req, &path).await {
                Ok(resp) => resp,
                Err(e) => backend_failure(app, req.site, &path.key, &e),
            },
            Err(e) => backend_failure(app, req.site, &path.key, &e),
        },
    }
}

/// The answer for a missing key: a redirect or listing, else the first fallback document that
/// exists, else 404.
async fn not_found(app: &App, req: &ObjectRequest<'_>, path: &ObjectPath) -> Result<Response<Body>, StorageError> {
    let accept = req.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if let Some(resp) =
        fallback::redirect_or_listing(app, req.site, req.method, req.path, req.query, accept, path).await?
    {
        return Ok(resp);
    }
    for (doc, mode) in fallback::documents(&req.site.site) {
        match serve_key(app, req, &req.site.site.key(doc), mode).await {
            Err(StorageError::NotFound) => {}
            other => return other,
        }
    }
    Ok(plain_not_found(req.site))
}

/// The plain 404, with the error policy's `Cache-Control`.
fn plain_not_found(site: &Hosted) -> Response<Body> {
    as_not_found(
        text(StatusCode::NOT_FOUND, "not found\n"),
        &site.site.error_cache_control,
    )
}

/// Answers a backend failure with its honest status; the cause goes to the log only. An open
/// circuit says when to try again (`Retry-After`).
fn backend_failure(app: &App, site: &Hosted, key: &str, e: &StorageError) -> Response<Body> {
    let status = e.status(app.readiness.backend_up());
    if status == StatusCode::NOT_FOUND {
        return plain_not_found(site);
    }
    if status.is_client_error() {
        // The client's own mistake (a key the backend refuses): not a backend failure.
        tracing::debug!(key = %key.escape_debug(), status = status.as_u16(), error = %e, "backend refused the request");
        return text(status, "bad request: the storage backend refused this key\n");
    }
    tracing::warn!(key = %key.escape_debug(), status = status.as_u16(), error = %e, "backend request failed");
    let reason = status.canonical_reason().unwrap_or("error").to_ascii_lowercase();
    let mut resp = text(status, format!("{reason}\n"));
    // Every 503 says when to try again: an open circuit knows when its next trial is; a
    // backend known to be down is asked again by then too (the circuit's open period, else
    // the probe's).
    let retry_after = match e {
        StorageError::CircuitOpen { retry_after } => Some(*retry_after),
        StorageError::Saturated { .. } => Some(std::time::Duration::from_secs(1)),
        _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(app.storage.circuit().map_or(
            std::time::Duration::from_secs(5),
            crate::backend::circuit::Circuit::retry_after,
        )),
        _ => None,
    };
    if let Some(after) = retry_after {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    resp
}

/// What a request gets, given the object's metadata.
enum Decision {
    /// The object, or the range of it, with this status.
    Send(StatusCode, RangeDecision),
    /// An answer that stands for the object: 304, 412 or 416.
    Answered(Response<Body>),
}

/// Preconditions, then the range (RFC 9110 §13.2.2, §14), for a request in `mode`.
fn decide(req: &ObjectRequest<'_>, answer: &Answer<'_>, mode: Mode) -> Decision {
    let meta = answer.meta;
    let len = meta.content_length.unwrap_or(0);
    if mode == Mode::ErrorDocument {
        return Decision::Send(StatusCode::NOT_FOUND, RangeDecision::Full);
    }
    // Preconditions apply to any 2xx answer (RFC 9110 §13.2.1), the SPA fallback's included:
    // a deep link revalidated by the browser gets its 304.
    match evaluate_preconditions(req.method, req.headers, meta.etag.as_deref(), meta.last_modified) {
        Precondition::NotModified => return Decision::Answered(answer.not_modified()),
        Precondition::Failed => return Decision::Answered(answer.precondition_failed()),
        Precondition::Proceed => {}
    }
    if mode == Mode::SpaFallback {
        return Decision::Send(StatusCode::OK, RangeDecision::Full);
    }
    let range_header = req.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = if if_range_allows(req.headers, meta.etag.as_deref(), meta.last_modified) {
        resolve_range(range_header, len)
    } else {
        RangeDecision::Full
    };
    match range {
        RangeDecision::Unsatisfiable => Decision::Answered(answer.unsatisfiable(len)),
        RangeDecision::Partial { .. } => Decision::Send(StatusCode::PARTIAL_CONTENT, range),
        RangeDecision::Full => Decision::Send(StatusCode::OK, range),
    }
}

/// The answer about `meta` (`key`) for this request in `mode`.
fn answer_for<'a>(
    app: &App,
    req: &ObjectRequest<'a>,
    key: &'a str,
    meta: &'a ObjectMeta,
    mode: Mode,
    served: Served,
) -> Answer<'a> {
    Answer {
        key,
        meta,
        cache_control: &req.site.site.cache_control,
        error_document: (mode == Mode::ErrorDocument).then_some(&req.site.site.error_cache_control),
        varies: compressible(app, key, meta),
        served,
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

/// Serves one key, from the cache or the backend. `Err(NotFound)` when it does not exist.
async fn serve_key(app: &App, req: &ObjectRequest<'_>, key: &str, mode: Mode) -> Result<Response<Body>, StorageError> {
    let mut streamed_as = CacheStatus::Bypass;
    if let Some(cache) = &app.cache {
        let range_request = mode == Mode::Requested && req.headers.contains_key(header::RANGE);
        let force = cache.config().honor_no_cache && wants_revalidation(req.headers);
        let looked = match cache.lookup(&req.site.storage, key, force, !range_request).await {
            // The bucket failed while memory held only "too large": the disk tier may hold the
            // object, and serve it stale.
            Err(_)
                if cache
                    .disk()
                    .is_some_and(|d| d.version(&cache_name(&req.site.storage, key)).is_some()) =>
            {
                Lookup::Bypass
            }
            other => other?,
        };
        match looked {
            Lookup::Object(obj, served) => {
                let varies = compressible(app, key, &obj.meta);
                // A range is of the object as stored; so is everything the client does not
                // accept in a coding.
                let coding = (varies && !req.headers.contains_key(header::RANGE))
                    .then(|| app.compression.negotiate(req.headers))
                    .flatten();
                let coded = match coding {
                    Some(encoding) => coded(app, req.site, cache, key, &obj, encoding)
                        .await
                        .map(|v| (encoding, v)),
                    None => None,
                };
                let (obj, coding) = match coded {
                    Some((encoding, variant)) => (variant, Some(encoding)),
                    None => (obj, None),
                };
                let mut answer = answer_for(app, req, key, &obj.meta, mode, served);
                // Whichever representation is sent, the object's own decides `Vary`.
                answer.varies = varies;
                let resp = respond_from(req, &answer, obj.body.len() as u64, mode, async |range| {
                    Ok(match range {
                        RangeDecision::Partial { start, end } => full(obj.body.slice(start as usize..=end as usize)),
                        _ => full(obj.body.clone()),
                    })
                })
                .await?;
                if let Some(encoding) = coding
                    && resp.headers().contains_key(header::CONTENT_ENCODING)
                {
                    app.metrics
                        .compressed_responses
                        .with_label_values(&[encoding.token()])
                        .inc();
                }
                return Ok(resp);
            }
            Lookup::Filling(meta, fill, served) => {
                let answer = answer_for(app, req, key, &meta, mode, served);
                let len = meta.content_length.unwrap_or(0);
                return respond_from(req, &answer, len, mode, async |range| Ok(boxed(fill.range(range)))).await;
            }
            Lookup::Missing(_) => return Err(StorageError::NotFound),
            Lookup::Bypass => {
                // Too large for memory: the disk tier's, if there is one and it takes it.
                if let Some(disk) = cache.disk()
                    && mode != Mode::ErrorDocument
                    && let DiskLookup::Serve(version, served) =
                        disk.lookup(&req.site.storage, key, force, cache.config()).await?
                {
                    let answer = answer_for(app, req, key, &version.meta, mode, served);
                    return respond_from(req, &answer, version.len, mode, async |range| {
                        let (start, end) = match range {
                            RangeDecision::Partial { start, end } => (start, end),
                            _ => (0, version.len - 1),
                        };
                        // The head goes out once the body can follow it.
                        disk.first_bytes(&req.site.storage, key, &version, start).await?;
                        Ok(disk.body(&req.site.storage, key, version.clone(), start, end))
                    })
                    .await;
                }
                // A range on a miss is fetched as a range, never as the whole object.
                if range_request {
                    streamed_as = CacheStatus::Miss;
                }
            }
        }
    }
    stream_key(app, req, key, mode, Served::streamed(streamed_as)).await
}

/// `obj` (cached under `key`) in `encoding`: its precompressed sibling (`app.js.br` beside
/// `app.js`) when `--compression-static` is on and the sibling is in the cache or the bucket,
/// else the gateway's own compression, kept in the cache.
async fn coded(
    app: &App,
    site: &Hosted,
    cache: &Arc<ObjectCache>,
    key: &str,
    obj: &Arc<CachedObject>,
    encoding: Encoding,
) -> Option<Arc<CachedObject>> {
    if app.compression.static_siblings {
        let name = format!("{key}{}", encoding.extension());
        // A sibling still filling, failing or absent leaves the coding to the gateway.
        if let Ok(Lookup::Object(sibling, _)) = cache.lookup(&site.storage, &name, false, true).await {
            let mut meta = sibling.meta.clone();
            meta.content_type = Some(crate::http::content_type::content_type(
                obj.meta.content_type.as_deref(),
                key,
            ));
            meta.cache_control.clone_from(&obj.meta.cache_control);
            meta.stored.content_encoding = Some(encoding.token().to_string());
            return Some(Arc::new(CachedObject {
                meta,
                body: sibling.body.clone(),
            }));
        }
    }
    cache.variant(&site.storage, key, obj, encoding).await
}

/// Whether answers for `meta` depend on `Accept-Encoding`: a compressible object small enough
/// to be cached (only cached objects are compressed).
fn compressible(app: &App, key: &str, meta: &ObjectMeta) -> bool {
    app.cache.as_ref().is_some_and(|cache| {
        meta.content_length
            .is_some_and(|n| n <= cache.config().max_object_bytes)
            && app.compression.eligible(key, meta)
    })
}

/// Answers from the cache: the metadata is at hand, and `body` gives the bytes of a range
/// (from memory, reading along a fill, or from the disk tier once its first bytes are there;
/// an error then is the answer's, before any head goes out).
async fn respond_from(
    req: &ObjectRequest<'_>,
    answer: &Answer<'_>,
    len: u64,
    mode: Mode,
    body: impl AsyncFnOnce(RangeDecision) -> Result<Body, StorageError>,
) -> Result<Response<Body>, StorageError> {
    Ok(match decide(req, answer, mode) {
        Decision::Answered(resp) => resp,
        Decision::Send(status, range) => {
            let body = if *req.method == Method::HEAD {
                empty()
            } else {
                body(range).await?
            };
            answer.send(status, Some((range, len)), body)
        }
    })
}

/// A ranged answer must be the range asked for: a backend (or a proxy in front of it) that
/// ignores `Range` sends the whole object with 200, which must not go out labelled as the
/// range (hyper would cut it to the declared length: bytes `0..n` labelled `start..end`).
fn check_range(range: RangeDecision, len: u64, got: Option<&str>) -> Result<(), StorageError> {
    let RangeDecision::Partial { start, end } = range else {
        return Ok(());
    };
    let want = format!("bytes {start}-{end}/{len}");
    if got == Some(want.as_str()) {
        Ok(())
    } else {
        Err(StorageError::BadResponse(format!(
            "asked for {want}, the backend answered Content-Range {got:?} (it ignored the Range)"
        )))
    }
}

/// Serves one key straight from the backend, streaming the body.
async fn stream_key(
    app: &App,
    req: &ObjectRequest<'_>,
    key: &str,
    mode: Mode,
    served: Served,
) -> Result<Response<Body>, StorageError> {
    let validated = (mode != Mode::ErrorDocument && has_preconditions(req.headers))
        || (mode == Mode::Requested && req.headers.contains_key(header::RANGE));
    if *req.method == Method::GET && !validated {
        // The common case: one GetObject, streamed.
        let obj = req.site.storage.get(key).await?;
        let status = if mode == Mode::ErrorDocument {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        let range = obj.meta.content_length.map(|n| (RangeDecision::Full, n));
        return Ok(answer_for(app, req, key, &obj.meta, mode, served).send(status, range, streamed(obj.body)));
    }

    // Read the validators first; a range is then fetched pinned to the ETag evaluated, and
    // evaluated again if the object changed in between.
    for _ in 0..2 {
        let meta = req.site.storage.head(key).await?;
        let len = meta.content_length.unwrap_or(0);
        let answer = answer_for(app, req, key, &meta, mode, served);
        let (status, range) = match decide(req, &answer, mode) {
            Decision::Send(status, range) => (status, range),
            Decision::Answered(resp) => return Ok(resp),
        };
        let body = if *req.method == Method::HEAD {
            empty()
        } else {
            match req
                .site
                .storage
                .get_range(key, range.to_s3(), meta.etag.as_deref())
                .await
            {
                Ok(obj) if obj.meta.etag == meta.etag => {
                    check_range(range, len, obj.content_range.as_deref())?;
                    streamed(obj.body)
                }
                // Replaced between HEAD and GET: evaluate again against the new object.
                Ok(_) | Err(StorageError::PreconditionFailed) => continue,
                Err(e) => return Err(e),
            }
        };
        return Ok(answer.send(status, Some((range, len)), body));
    }
    Err(StorageError::Backend {
        status: 503,
        code: "ObjectChanging".into(),
        message: format!("{key} changed during two consecutive reads"),
    })
}
