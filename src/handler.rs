//! `GET` and `HEAD` of an object: key → backend → streamed response.
//!
//! The object body flows from the backend to the client chunk by chunk as the client reads it
//! (hyper polls the SDK's body only when its write buffer has room), so memory stays flat
//! whatever the object's size. Response headers come from the object's own metadata.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};

use crate::app::App;
use crate::key::object_key;
use crate::storage::ObjectMeta;

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type of the gateway: a fixed buffer or a stream from the backend.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// A small `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Serves `GET`/`HEAD` for the object named by `path`.
pub async fn object(app: &App, method: &Method, path: &str) -> Response<Body> {
    let key = match object_key(path, &app.index) {
        Ok(k) => k,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad request: {e}\n")),
    };
    let result = if method == Method::HEAD {
        app.storage.head(&key).await.map(|meta| (meta, empty()))
    } else {
        app.storage
            .get(&key)
            .await
            .map(|obj| (obj.meta, obj.body.map_err(BoxError::from).boxed()))
    };
    match result {
        Ok((meta, body)) => {
            let mut resp = Response::new(body);
            object_headers(&meta, resp.headers_mut());
            resp
        }
        Err(e) => {
            let status = e.status(app.is_ready());
            if status == StatusCode::NOT_FOUND {
                tracing::debug!(%key, "no such key");
                text(status, "not found\n")
            } else {
                tracing::warn!(%key, status = status.as_u16(), error = %e, "backend request failed");
                let reason = status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase();
                text(status, format!("{reason}\n"))
            }
        }
    }
}

/// Copies the object's metadata into response headers.
pub fn object_headers(meta: &ObjectMeta, headers: &mut HeaderMap) {
    let mut set = |name: header::HeaderName, value: Option<&str>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    };
    set(
        header::CONTENT_TYPE,
        Some(
            meta.content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
        ),
    );
    set(
        header::CONTENT_LENGTH,
        meta.content_length.map(|n| n.to_string()).as_deref(),
    );
    set(header::ETAG, meta.etag.as_deref());
    set(
        header::LAST_MODIFIED,
        meta.last_modified.map(http_date).as_deref(),
    );
    set(header::CACHE_CONTROL, meta.cache_control.as_deref());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}
