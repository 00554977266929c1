//! Operational endpoints: `/healthz`, `/readyz`, `/metrics`, and `POST /purge` when a token is
//! configured.
//!
//! Liveness says only that the process answers; readiness says this pod reached the bucket
//! through the mTLS client at least once and is not shutting down ([`crate::readiness`]).

use http::{Response, StatusCode, header};

use crate::app::App;
use crate::body::{Body, text};
use crate::cache::Purge;

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

/// The path of the purge endpoint.
pub const PURGE: &str = "/purge";

/// `POST /purge?key=K`, `?prefix=P` or `?all`: drops cached objects (their codings and
/// remembered 404s included) so that the next request reads the bucket. Keys and prefixes are
/// under the site's `--prefix`, as request paths are. Needs `Authorization: Bearer <token>`
/// with the token of `--admin-token-file`; without that flag the endpoint does not exist.
pub async fn purge(app: &App, parts: &http::request::Parts) -> Response<Body> {
    let Some(token) = &app.admin_token else {
        return text(
            StatusCode::NOT_FOUND,
            "not found: purging is off (start the gateway with --admin-token-file)\n",
        );
    };
    if parts.method != http::Method::POST {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use POST\n");
        resp.headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("POST"));
        return resp;
    }
    let outcome = |o: &str| app.metrics.purge_requests.with_label_values(&[o]).inc();
    if !authorized(&parts.headers, token.expose()) {
        outcome("unauthorized");
        let mut resp = text(
            StatusCode::UNAUTHORIZED,
            "unauthorized: send Authorization: Bearer <token>\n",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"gateway admin\""),
        );
        return resp;
    }
    let scope = match scope(parts.uri.query(), &app.site.prefix) {
        Ok(scope) => scope,
        Err(message) => {
            outcome("invalid");
            return text(StatusCode::BAD_REQUEST, format!("bad request: {message}\n"));
        }
    };
    let purged = match &app.cache {
        Some(cache) => cache.purge(&scope).await,
        None => 0,
    };
    let (label, what) = match &scope {
        Purge::Key(k) => ("key", k.as_str()),
        Purge::Prefix(p) => ("prefix", p.as_str()),
        Purge::All => ("all", ""),
    };
    outcome(label);
    tracing::info!(scope = label, name = %what.escape_debug(), purged, "purge");
    let mut resp = text(StatusCode::OK, format!("{{\"purged\":{purged}}}\n"));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}

/// Whether `headers` carry `Authorization: Bearer <token>`. The digests are compared, so the
/// time taken does not tell how much of a guess was right.
fn authorized(headers: &http::HeaderMap, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    given.is_some_and(|given| Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes()))
}

/// The purge a query asks for: exactly one of `key=K`, `prefix=P` (percent-decoded, a leading
/// `/` dropped, under the site's `prefix`) or `all`.
fn scope(query: Option<&str>, site_prefix: &str) -> Result<Purge, &'static str> {
    const USAGE: &str = "name one of key=KEY, prefix=PREFIX or all";
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| "the value is not UTF-8")?;
        let value = value.strip_prefix('/').unwrap_or(&value);
        if value.chars().any(char::is_control) {
            return Err("the value holds a control character");
        }
        let scope = match name {
            "key" if !value.is_empty() => Purge::Key(format!("{site_prefix}{value}")),
            "prefix" => Purge::Prefix(format!("{site_prefix}{value}")),
            "all" => Purge::All,
            _ => return Err(USAGE),
        };
        if found.replace(scope).is_some() {
            return Err(USAGE);
        }
    }
    found.ok_or(USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_scopes() {
        assert_eq!(
            scope(Some("key=/app.js"), "site/"),
            Ok(Purge::Key("site/app.js".into()))
        );
        assert_eq!(scope(Some("key=a%20b.txt"), ""), Ok(Purge::Key("a b.txt".into())));
        assert_eq!(scope(Some("prefix=assets/"), ""), Ok(Purge::Prefix("assets/".into())));
        assert_eq!(scope(Some("all"), "site/"), Ok(Purge::All));
        for bad in [
            None,
            Some(""),
            Some("key="),
            Some("key=a&all"),
            Some("path=x"),
            Some("key=%0a"),
        ] {
            assert!(scope(bad, "").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut h = http::HeaderMap::new();
        assert!(!authorized(&h, "0123456789abcdef"));
        h.insert(header::AUTHORIZATION, "Bearer 0123456789abcdef".parse().unwrap());
        assert!(authorized(&h, "0123456789abcdef"));
        assert!(!authorized(&h, "0123456789abcdeF"));
        h.insert(header::AUTHORIZATION, "Basic 0123456789abcdef".parse().unwrap());
        assert!(!authorized(&h, "0123456789abcdef"));
    }
}
