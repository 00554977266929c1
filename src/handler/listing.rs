//! Listing of a "directory" (a key prefix) that has no index document: HTML, or JSON for a
//! client that asks for `application/json` (name, size, last modified, ETag, whether it is a
//! directory), as static-web-server and Caddy offer.
//!
//! Off unless `--list-directories`: listing needs `s3:ListBucket` and shows every key, which a
//! site rarely wants. Names are HTML-escaped and percent-encoded in links; pages hold up to
//! 1000 entries and link to the next page with S3's continuation token (`next` in JSON).

use std::fmt::Write;

use http::{HeaderValue, Method, Response, StatusCode, header};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::backend::storage::Storage;
use crate::body::{Body, full};
use crate::error::StorageError;

/// Characters escaped in a path segment of a link.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\'')
    .add(b'+')
    .add(b'&');

/// The link to `name` (relative to the listed directory): `./` and each segment
/// percent-encoded, so a key such as `javascript:alert(1)` or `//evil.example` cannot become a
/// link to another scheme or site.
fn href(name: &str) -> String {
    let encoded: Vec<String> = name
        .split('/')
        .map(|seg| utf8_percent_encode(seg, SEGMENT).to_string())
        .collect();
    format!("./{}", encoded.join("/"))
}

/// Query parameter carrying the continuation token.
const PAGE_PARAM: &str = "page";

/// Renders the listing of `dir` (relative to the served `prefix`, empty or ending in `/`) for a
/// request with `method` and `query`; `None` when the directory holds nothing (so it does not
/// exist).
///
/// # Errors
/// Backend trouble, e.g. [`StorageError::Denied`] without s3:ListBucket.
pub async fn render(
    storage: &Storage,
    prefix: &str,
    dir: &str,
    method: &Method,
    query: Option<&str>,
    accept: Option<&str>,
) -> Result<Option<Response<Body>>, StorageError> {
    let token = query.and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == PAGE_PARAM)
            .and_then(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8().ok())
            .map(|v| v.into_owned())
    });
    let full_prefix = format!("{prefix}{dir}");
    let page = storage.list(&full_prefix, token.clone()).await?;
    if page.directories.is_empty() && page.objects.is_empty() && !dir.is_empty() && token.is_none() {
        return Ok(None);
    }
    if wants_json(accept) {
        return Ok(Some(json(&page, &full_prefix, dir, method)));
    }

    let title = format!("Index of /{dir}");
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body>\n<h1>{t}</h1>\n<ul>\n",
        t = html_escape::encode_text(&title)
    );
    if !dir.is_empty() {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    let names = page
        .directories
        .iter()
        .map(|d| (d.as_str(), None))
        .chain(page.objects.iter().map(|o| (o.key.as_str(), Some(o.size))));
    for (key, size) in names {
        let name = key.strip_prefix(&full_prefix).unwrap_or(key);
        if name.is_empty() {
            continue;
        }
        let href = href(name);
        let _ = writeln!(
            html,
            "<li><a href=\"{}\">{}</a>{}</li>",
            html_escape::encode_double_quoted_attribute(&href),
            html_escape::encode_text(name),
            size.map(|s| format!(" ({s} bytes)")).unwrap_or_default()
        );
    }
    html.push_str("</ul>\n");
    if let Some(next) = &page.next {
        let _ = writeln!(
            html,
            "<p><a href=\"?{PAGE_PARAM}={}\">next page</a></p>",
            html_escape::encode_double_quoted_attribute(&utf8_percent_encode(next, SEGMENT).to_string())
        );
    }
    html.push_str("</body></html>\n");

    let len = html.len();
    let body = if *method == Method::HEAD { full("") } else { full(html) };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The page has no script, style or image: forbid them all, so an escaping mistake
    // cannot run anything.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; base-uri 'none'; form-action 'none'"),
    );
    Ok(Some(resp))
}

/// Whether the client asks for JSON rather than HTML: `application/json` named, and HTML not
/// preferred (a browser's `text/html,...,*/*` stays HTML).
fn wants_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let q = |media: &str| {
        accept.split(',').find_map(|part| {
            let mut fields = part.split(';').map(str::trim);
            (fields.next()?.eq_ignore_ascii_case(media)).then(|| {
                fields
                    .find_map(|p| p.strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
                    .unwrap_or(1.0)
            })
        })
    };
    match (q("application/json"), q("text/html")) {
        (Some(j), Some(h)) => j > 0.0 && j >= h,
        (Some(j), None) => j > 0.0,
        _ => false,
    }
}

/// The JSON listing of `page`.
fn json(page: &crate::backend::storage::Listing, full_prefix: &str, dir: &str, method: &Method) -> Response<Body> {
    let http_date = httpdate::fmt_http_date;
    let mut entries: Vec<serde_json::Value> = page
        .directories
        .iter()
        .filter_map(|d| d.strip_prefix(full_prefix).filter(|n| !n.is_empty()))
        .map(|name| serde_json::json!({ "name": name, "dir": true }))
        .collect();
    entries.extend(page.objects.iter().filter_map(|o| {
        let name = o.key.strip_prefix(full_prefix).filter(|n| !n.is_empty())?;
        Some(serde_json::json!({
            "name": name,
            "dir": false,
            "size": o.size,
            "last_modified": o.last_modified.map(http_date),
            "etag": o.etag,
        }))
    }));
    let body = serde_json::json!({
        "path": format!("/{dir}"),
        "entries": entries,
        "next": page.next.as_ref().map(|t| format!("?{PAGE_PARAM}={}", utf8_percent_encode(t, SEGMENT))),
    })
    .to_string()
        + "\n";
    let len = body.len();
    let mut resp = Response::new(if *method == Method::HEAD { full("") } else { full(body) });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

#[cfg(test)]
mod tests {
    use super::{href, wants_json};

    #[test]
    fn json_only_when_asked_over_html() {
        assert!(wants_json(Some("application/json")));
        assert!(wants_json(Some("application/json, text/plain;q=0.5")));
        assert!(!wants_json(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants_json(Some("text/html, application/json;q=0.5")));
        assert!(!wants_json(Some("application/json;q=0")));
        assert!(!wants_json(None));
    }

    #[test]
    fn links_are_relative() {
        assert_eq!(href("a b.txt"), "./a%20b.txt");
        assert_eq!(href("sub/"), "./sub/");
        assert_eq!(href("javascript:alert(1)"), "./javascript:alert(1)");
        // A key with an empty first segment: a path under this directory, never a host.
        assert_eq!(href("/evil.example/x"), ".//evil.example/x");
    }

    proptest::proptest! {
        /// No listed name gives a link that starts with `//` or a scheme: every link is a
        /// relative path (`./…`).
        #[test]
        fn no_link_leaves_the_site(name in "[a-z:/ .%]{0,30}") {
            let h = href(&name);
            proptest::prop_assert!(h.starts_with("./"), "{}", h);
        }
    }
}
