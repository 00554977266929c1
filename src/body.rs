//! The response body type of the gateway and the helpers that build one.
//!
//! A leaf: every layer that answers a request (objects, listings, CORS preflights, the
//! operational endpoints) builds its body here, and this module imports nothing of the crate.

use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type of the gateway: a fixed buffer or a stream from the backend.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

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

/// A body with no bytes (HEAD, 304).
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Any body of bytes, e.g. one reading along a cache fill.
pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes, Error = BoxError> + Send + Sync + 'static,
{
    BodyExt::boxed(body)
}

/// The backend's streaming body, passed through as it arrives.
pub fn streamed(body: SdkBody) -> Body {
    body.map_err(BoxError::from).boxed()
}
