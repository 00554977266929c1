//! What to answer when the requested key does not exist: the not-found policy.
//!
//! In order: `/dir` where `dir/index.html` exists redirects to `/dir/` (as S3 websites do); a
//! directory without an index is listed when `--list-directories` is on; then the SPA fallback
//! document (200), then the error document (404); else a plain 404. The object handler serves
//! the documents this module names, so both go through the same cache and semantics.

use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::backend::storage::Storage;
use crate::body::{Body, text};
use crate::cache::Lookup;
use crate::config::app::App;
use crate::config::serve::Site;
use crate::config::sites::Hosted;
use crate::error::StorageError;
use crate::http::key::ObjectPath;

/// How a key is being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The object the request names: preconditions and ranges apply.
    Requested,
    /// The SPA fallback document: served with 200 as if requested.
    SpaFallback,
    /// The error document: served whole with 404.
    ErrorDocument,
}

/// The documents to try, in order, for a missing key: keys relative to the site's prefix.
pub fn documents(site: &Site) -> impl Iterator<Item = (&str, Mode)> {
    [
        (site.spa_fallback.as_deref(), Mode::SpaFallback),
        (site.error_document.as_deref(), Mode::ErrorDocument),
    ]
    .into_iter()
    .filter_map(|(doc, mode)| Some((doc?, mode)))
}

/// The redirect to the directory or its listing, when one applies to the missing key of
/// `object`, requested as `path` (raw, still percent-encoded) with `query`.
///
/// # Errors
/// Backend trouble while checking for the index or listing.
pub async fn redirect_or_listing(
    app: &App,
    hosted: &Hosted,
    method: &Method,
    path: &str,
    query: Option<&str>,
    accept: Option<&str>,
    object: &ObjectPath,
) -> Result<Option<Response<Body>>, StorageError> {
    let site = &hosted.site;
    let rel = object.rel.as_str();
    if !object.directory {
        // `/dir` where `dir/index.html` exists: redirect to `/dir/`, as S3 websites do.
        if exists(app, &hosted.storage, &site.key(&format!("{rel}/{}", site.index))).await? {
            let location = directory_location(path, query);
            let mut resp = text(StatusCode::FOUND, "");
            resp.headers_mut().remove(header::CONTENT_TYPE);
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(Some(resp));
        }
    } else if site.list_directories {
        let dir = rel.strip_suffix(site.index.as_str()).unwrap_or(rel);
        return crate::handler::listing::render(&hosted.storage, &site.prefix, dir, method, query, accept).await;
    }
    Ok(None)
}

/// The `Location` of the redirect from `/…/dir` to `/…/dir/`: relative to the request, `./`
/// and the last segment exactly as the client sent it. Never an absolute or protocol-relative
/// URL, whatever the key holds (`//evil.example/dir` and `javascript:x` stay on this site:
/// serve-static's CVE-2015-1164 is the class avoided).
fn directory_location(path: &str, query: Option<&str>) -> String {
    let last = path.rsplit('/').next().unwrap_or("");
    match query {
        Some(q) => format!("./{last}/?{q}"),
        None => format!("./{last}/"),
    }
}

/// Whether a key exists; through the cache when it is on, so that probing missing paths is
/// answered from the negative cache instead of reaching the backend every time. A key too long
/// to exist (the index under a long path) does not exist.
async fn exists(app: &App, storage: &Storage, key: &str) -> Result<bool, StorageError> {
    if key.len() > crate::http::key::MAX_KEY_BYTES {
        return Ok(false);
    }
    if let Some(cache) = &app.cache {
        return Ok(!matches!(
            cache.lookup(storage, key, false, true).await?,
            Lookup::Missing(_)
        ));
    }
    match storage.head(key).await {
        Ok(_) => Ok(true),
        Err(StorageError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::directory_location;

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(directory_location("/dir", None), "./dir/");
        assert_eq!(directory_location("/a/b%2Fc", Some("x=1")), "./b%2Fc/?x=1");
        assert_eq!(directory_location("//evil.example/dir", None), "./dir/");
        assert_eq!(directory_location("//evil.example", None), "./evil.example/");
        assert_eq!(
            directory_location("/javascript:alert(1)", None),
            "./javascript:alert(1)/"
        );
    }

    proptest::proptest! {
        /// No path gives a Location that leaves the site (a scheme or `//`).
        #[test]
        fn no_location_leaves_the_site(path in "/[a-z:/.%0-9]{0,30}", q in proptest::option::of("[a-z=&]{0,8}")) {
            let l = directory_location(&path, q.as_deref());
            proptest::prop_assert!(l.starts_with("./"), "{}", l);
        }
    }
}
