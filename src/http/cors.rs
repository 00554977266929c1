//! Cross-origin resource sharing for browsers on other origins (off unless `--cors-origin`).
//!
//! Either any origin (`*`, never with credentials) or an exact list of origins. A listed origin
//! is echoed back with `Vary: Origin`; an origin that is not listed gets no CORS headers, so the
//! browser blocks it. Credentials are never allowed: the gateway serves public objects.

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

use crate::body::{Body, text};
use crate::error::ConfigError;

/// Request headers a cross-origin client may send (the ones object requests use).
const ALLOWED_HEADERS: &str =
    "range, if-match, if-none-match, if-modified-since, if-unmodified-since, if-range, cache-control, x-request-id";
/// Response headers a cross-origin script may read beyond the safelisted ones.
const EXPOSED_HEADERS: &str =
    "content-length, content-range, accept-ranges, etag, last-modified, x-cache, x-request-id";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The allowed origins.
#[derive(Clone, Debug)]
pub enum Cors {
    /// Any origin (`Access-Control-Allow-Origin: *`).
    Any,
    /// Exactly these origins.
    Origins(Vec<HeaderValue>),
}

impl Cors {
    /// Validates `--cors-origin` values; `None` when CORS is off.
    ///
    /// # Errors
    /// A [`ConfigError`] for a value that is neither `*` nor `scheme://host[:port]`.
    pub fn from_args(values: &[String]) -> Result<Option<Self>, ConfigError> {
        let values: Vec<&str> = values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            return Ok(None);
        }
        if values.contains(&"*") {
            return Ok(Some(Cors::Any));
        }
        let mut origins = Vec::new();
        for v in values {
            let uri: http::Uri = v.parse().map_err(|_| bad(v))?;
            let ok = matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.host().is_some()
                && uri
                    .path_and_query()
                    .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
                && !v.ends_with('/');
            if !ok {
                return Err(bad(v));
            }
            origins.push(HeaderValue::from_str(v).map_err(|_| bad(v))?);
        }
        Ok(Some(Cors::Origins(origins)))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match self {
            Cors::Any => Some(HeaderValue::from_static("*")),
            Cors::Origins(list) => origin.filter(|o| list.contains(o)).cloned(),
        }
    }

    /// Adds CORS headers to an object response.
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if let Cors::Origins(_) = self {
            response.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(allow) = self.allow(request.get(header::ORIGIN)) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            response.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }

    /// Answers an `OPTIONS` request: a preflight from an allowed origin gets 204 with the
    /// allowed methods and headers; one from another origin gets 403.
    pub fn preflight(&self, request: &HeaderMap) -> Response<Body> {
        let method = request
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        let Some(method) = method else {
            // A plain OPTIONS: say what the resource supports.
            let mut resp = text(StatusCode::NO_CONTENT, "");
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return resp;
        };
        let allowed = self.allow(request.get(header::ORIGIN));
        let (Some(allow), true) = (allowed, method == Method::GET || method == Method::HEAD) else {
            return text(
                StatusCode::FORBIDDEN,
                "CORS preflight refused: origin or method not allowed\n",
            );
        };
        let mut resp = text(StatusCode::NO_CONTENT, "");
        let h = resp.headers_mut();
        h.remove(header::CONTENT_TYPE);
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED_HEADERS),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        if let Cors::Origins(_) = self {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        resp
    }
}

fn bad(v: &str) -> ConfigError {
    ConfigError::new(
        "--cors-origin",
        format!("{v:?} is not an origin; use * or scheme://host[:port], e.g. https://app.example.com"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_validate() {
        assert!(Cors::from_args(&[]).unwrap().is_none());
        assert!(matches!(Cors::from_args(&["*".into()]).unwrap(), Some(Cors::Any)));
        assert!(Cors::from_args(&["https://a.example:8443".into()]).unwrap().is_some());
        for bad in ["a.example", "https://a.example/path", "ftp://x", "https://a.example/"] {
            assert!(Cors::from_args(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn listed_origin_echoed_others_not() {
        let cors = Cors::from_args(&["https://app.example".into()]).unwrap().unwrap();
        let mut req = HeaderMap::new();
        req.insert(header::ORIGIN, HeaderValue::from_static("https://app.example"));
        let mut resp = HeaderMap::new();
        cors.apply(&req, &mut resp);
        assert_eq!(resp[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert!(!resp.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        req.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        let mut resp = HeaderMap::new();
        cors.apply(&req, &mut resp);
        assert!(!resp.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert_eq!(resp[header::VARY], "Origin");
    }
}
