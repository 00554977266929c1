//! Operational endpoints: `/healthz`, `/readyz`, `/metrics`, and `POST /purge` when a token is
//! configured.
//!
//! Liveness says only that the process answers; readiness says this pod reached the bucket
//! through the mTLS client at least once and is not shutting down ([`crate::backend::readiness`]).

use http::{Response, StatusCode, header};

use crate::body::{Body, text};
use crate::cache::{Purge, cache_name};
use crate::config::app::App;

/// Answers an operational endpoint; `None` when `path` is not one.
pub async fn handle(app: &App, path: &str) -> Option<Response<Body>> {
    Some(match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => readyz(app),
        "/metrics" => {
            if let Some(cache) = &app.cache {
                cache.export_gauges().await;
            }
            // The writer counts its drops; the counter catches up with it (one scrape at a time).
            {
                static CATCHING_UP: std::sync::Mutex<()> = std::sync::Mutex::new(());
                let _one = CATCHING_UP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let dropped = crate::telemetry::dropped_lines();
                let counted = app.metrics.log_lines_dropped.get();
                app.metrics.log_lines_dropped.inc_by(dropped.saturating_sub(counted));
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
    let scope = match scope(parts.uri.query()).and_then(|asked| resolve(app, asked)) {
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

/// What a purge query names, before it is resolved against the sites.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    /// `site=NAME`, if given.
    site: Option<String>,
    what: What,
}

#[derive(Debug, PartialEq, Eq)]
enum What {
    /// A key relative to the site's prefix.
    Key(String),
    /// A prefix relative to the site's prefix.
    Prefix(String),
    All,
}

/// The purge a query asks for: exactly one of `key=K`, `prefix=P` (percent-decoded, a leading
/// `/` dropped) or `all`, and optionally `site=NAME`.
fn scope(query: Option<&str>) -> Result<Asked, String> {
    const USAGE: &str = "name one of key=KEY, prefix=PREFIX or all (and site=NAME with several sites)";
    let (mut found, mut site) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| "the value is not UTF-8".to_string())?;
        let value = value.strip_prefix('/').unwrap_or(&value).to_string();
        if value.chars().any(char::is_control) {
            return Err("the value holds a control character".into());
        }
        let what = match name {
            "site" if site.is_none() => {
                site = Some(value);
                continue;
            }
            "key" if !value.is_empty() => What::Key(value),
            "prefix" => What::Prefix(value),
            "all" => What::All,
            _ => return Err(USAGE.into()),
        };
        if found.replace(what).is_some() {
            return Err(USAGE.into());
        }
    }
    Ok(Asked {
        site,
        what: found.ok_or(USAGE)?,
    })
}

/// The cache names an asked purge covers: keys and prefixes are under the site's prefix in
/// the site's bucket; `all` without a site is everything.
fn resolve(app: &App, asked: Asked) -> Result<Purge, String> {
    let hosted = match (&asked.site, &asked.what) {
        (Some(name), _) => app
            .sites
            .by_name(name)
            .ok_or_else(|| format!("no site is named {name:?}"))?,
        (None, What::All) => return Ok(Purge::All),
        (None, _) => app
            .sites
            .fallback()
            .ok_or("this gateway serves several sites: name one with site=NAME")?,
    };
    let name = |rel: &str| cache_name(&hosted.storage, &hosted.site.key(rel));
    Ok(match &asked.what {
        What::Key(k) => Purge::Key(name(k)),
        What::Prefix(p) => Purge::Prefix(name(p)),
        What::All => Purge::Prefix(name("")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_scopes() {
        let asked = |site: Option<&str>, what| {
            Ok(Asked {
                site: site.map(String::from),
                what,
            })
        };
        assert_eq!(scope(Some("key=/app.js")), asked(None, What::Key("app.js".into())));
        assert_eq!(scope(Some("key=a%20b.txt")), asked(None, What::Key("a b.txt".into())));
        assert_eq!(
            scope(Some("prefix=assets/")),
            asked(None, What::Prefix("assets/".into()))
        );
        assert_eq!(scope(Some("all&site=docs")), asked(Some("docs"), What::All));
        for bad in [
            None,
            Some(""),
            Some("key="),
            Some("key=a&all"),
            Some("path=x"),
            Some("key=%0a"),
            Some("site=a&site=b&all"),
        ] {
            assert!(scope(bad).is_err(), "{bad:?}");
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
