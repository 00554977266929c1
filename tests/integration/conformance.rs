//! HTTP conformance, table-driven: request → expected status, headers and body, against the
//! real server and the mTLS backend. Covers RFC 9110 ranges (§14) and preconditions (§13),
//! HEAD, methods, key decoding, index documents, error and SPA documents, content type,
//! cache policy, directory listing, CORS and request limits.
//!
//! The table runs twice: against gateways with the cache on (the object warmed first, so
//! answers come from memory) and with it off, so that the streaming path (HEAD, then a GET
//! pinned with `If-Match`) answers every Range and precondition case too; the embedded backend
//! evaluates `If-Match` and `If-Unmodified-Since` on GET as S3 does.
//!
//! In expected values, `ETAG` stands for the ETag of `ten.txt`, `LM` for its Last-Modified,
//! `LATER` for one second after it, `APPTAG` for the ETag of the SPA fallback document.

use std::time::Duration;

use crate::util::{Backend, Gateway, get, request_with};

/// What a header must be.
#[derive(Clone, Copy, Debug)]
enum H {
    /// Exactly this value.
    Is(&'static str),
    /// Not sent at all.
    Absent,
}

/// What the body must be.
#[derive(Clone, Copy, Debug)]
enum B {
    /// Anything.
    Any,
    /// Exactly these bytes.
    Exact(&'static str),
    /// Contains this text.
    Has(&'static str),
    /// Does not contain this text.
    Lacks(&'static str),
}

/// Which gateway a case goes to.
#[derive(Clone, Copy, Debug)]
enum Gw {
    /// `--error-document 404.html --list-directories --cors-origin https://app.example`.
    Site,
    /// `--prefix site/ --spa-fallback app.html`.
    Spa,
    /// `--cors-origin '*'`; defaults otherwise.
    Open,
}

struct Case {
    gw: Gw,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    expect: &'static [(&'static str, H)],
    body: B,
}

const fn case(
    gw: Gw,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    expect: &'static [(&'static str, H)],
    body: B,
) -> Case {
    Case {
        gw,
        method,
        path,
        headers,
        status,
        expect,
        body,
    }
}

use B::*;
use Gw::*;
use H::*;

const FUTURE: &str = "Fri, 01 Jan 2100 00:00:00 GMT";
const EPOCH: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // GET/HEAD and the headers every object response carries.
    // README: `GET`/`HEAD /<key>`
    case(Site, "GET", "/ten.txt", &[], 200, &[("etag", Is("ETAG")), ("last-modified", Is("LM")), ("content-length", Is("10")), ("accept-ranges", Is("bytes")), ("content-type", Is("text/plain; charset=utf-8")), ("cache-control", Is("public, max-age=300")), ("x-content-type-options", Is("nosniff"))], Exact("0123456789")),
    case(Site, "HEAD", "/ten.txt", &[], 200, &[("etag", Is("ETAG")), ("last-modified", Is("LM")), ("content-length", Is("10")), ("accept-ranges", Is("bytes")), ("content-type", Is("text/plain; charset=utf-8")), ("cache-control", Is("public, max-age=300"))], Exact("")),
    // Range (RFC 9110 §14).
    // README: `Range: bytes=a-b`, `bytes=a-`, `bytes=-n`
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-3")], 206, &[("content-range", Is("bytes 0-3/10")), ("content-length", Is("4")), ("etag", Is("ETAG")), ("accept-ranges", Is("bytes"))], Exact("0123")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=5-")], 206, &[("content-range", Is("bytes 5-9/10"))], Exact("56789")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=-3")], 206, &[("content-range", Is("bytes 7-9/10"))], Exact("789")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=-100")], 206, &[("content-range", Is("bytes 0-9/10"))], Exact("0123456789")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=8-100")], 206, &[("content-range", Is("bytes 8-9/10"))], Exact("89")),
    // README: `Range` starting past the end, `bytes=-0`
    case(Site, "GET", "/ten.txt", &[("range", "bytes=10-")], 416, &[("content-range", Is("bytes */10"))], Any),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=-0")], 416, &[("content-range", Is("bytes */10"))], Any),
    // README: malformed or non-`bytes` `Range`
    case(Site, "GET", "/ten.txt", &[("range", "bytes=abc")], 200, &[("content-range", Absent)], Exact("0123456789")),
    case(Site, "GET", "/ten.txt", &[("range", "items=0-1")], 200, &[("content-range", Absent)], Exact("0123456789")),
    // README: several ranges (`bytes=0-1,5-6`)
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-1,5-6")], 200, &[("content-range", Absent)], Exact("0123456789")),
    case(Site, "HEAD", "/ten.txt", &[("range", "bytes=0-3")], 206, &[("content-range", Is("bytes 0-3/10")), ("content-length", Is("4"))], Exact("")),
    // README: `If-Range` (ETag, strong match; or the exact Last-Modified date)
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-3"), ("if-range", "ETAG")], 206, &[("content-range", Is("bytes 0-3/10"))], Exact("0123")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-3"), ("if-range", "\"stale\"")], 200, &[("content-range", Absent)], Exact("0123456789")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-3"), ("if-range", "LM")], 206, &[], Exact("0123")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-3"), ("if-range", EPOCH)], 200, &[], Exact("0123456789")),
    // A date validator matches only the exact Last-Modified (RFC 9110 §13.1.5): one second
    // later, or far in the future, sends the whole object.
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-3"), ("if-range", "LATER")], 200, &[("content-range", Absent)], Exact("0123456789")),
    case(Site, "GET", "/ten.txt", &[("range", "bytes=0-3"), ("if-range", FUTURE)], 200, &[("content-range", Absent)], Exact("0123456789")),
    // Preconditions (RFC 9110 §13.2.2).
    // README: `If-None-Match` (lists, `*`, weak comparison) / `If-Modified-Since`
    case(Site, "GET", "/ten.txt", &[("if-none-match", "ETAG")], 304, &[("etag", Is("ETAG")), ("cache-control", Is("public, max-age=300")), ("last-modified", Is("LM"))], Exact("")),
    case(Site, "GET", "/ten.txt", &[("if-none-match", "W/ETAG")], 304, &[], Exact("")),
    case(Site, "GET", "/ten.txt", &[("if-none-match", "\"x\", ETAG")], 304, &[], Exact("")),
    case(Site, "GET", "/ten.txt", &[("if-none-match", "*")], 304, &[], Exact("")),
    case(Site, "GET", "/ten.txt", &[("if-none-match", "\"x\"")], 200, &[], Exact("0123456789")),
    case(Site, "HEAD", "/ten.txt", &[("if-none-match", "ETAG")], 304, &[("etag", Is("ETAG"))], Exact("")),
    case(Site, "GET", "/ten.txt", &[("if-modified-since", FUTURE)], 304, &[("etag", Is("ETAG"))], Exact("")),
    case(Site, "GET", "/ten.txt", &[("if-modified-since", EPOCH)], 200, &[], Exact("0123456789")),
    case(Site, "GET", "/ten.txt", &[("if-none-match", "\"x\""), ("if-modified-since", FUTURE)], 200, &[], Exact("0123456789")),
    // README: `If-Match` / `If-Unmodified-Since` failing
    case(Site, "GET", "/ten.txt", &[("if-match", "\"x\"")], 412, &[], Any),
    case(Site, "GET", "/ten.txt", &[("if-match", "ETAG")], 200, &[], Exact("0123456789")),
    case(Site, "GET", "/ten.txt", &[("if-unmodified-since", EPOCH)], 412, &[], Any),
    case(Site, "GET", "/ten.txt", &[("if-unmodified-since", FUTURE)], 200, &[], Exact("0123456789")),
    // Methods.
    // README: any method but GET, HEAD (and OPTIONS with CORS on)
    case(Site, "POST", "/ten.txt", &[], 405, &[("allow", Is("GET, HEAD, OPTIONS"))], Any),
    case(Spa, "DELETE", "/ten.txt", &[], 405, &[("allow", Is("GET, HEAD"))], Any),
    case(Spa, "OPTIONS", "/ten.txt", &[], 405, &[("allow", Is("GET, HEAD"))], Any),
    case(Spa, "PUT", "/x", &[], 405, &[("allow", Is("GET, HEAD"))], Any),
    // Keys: percent-decoding, literal plus, Unicode, %2F; escapes refused.
    // README: path with `%20`, `%2F`, Unicode, `+`, parentheses
    case(Site, "GET", "/a%20b+c%20(1).txt", &[], 200, &[], Exact("spaces plus parens")),
    case(Site, "GET", "/caf%C3%A9%20%E2%9C%93.txt", &[], 200, &[], Exact("unicode")),
    case(Site, "GET", "/x%2Fy.txt", &[], 200, &[], Exact("slash")),
    // README: path with a `.`/`..` segment, a control character (`%00`, `%0A`, ...), invalid UTF-8
    case(Site, "GET", "/a/../ten.txt", &[], 400, &[], Any),
    case(Site, "GET", "/%2e%2e/ten.txt", &[], 400, &[], Any),
    case(Site, "GET", "/a%00b", &[], 400, &[], Any),
    case(Site, "GET", "/%ff.txt", &[], 400, &[], Any),
    // Index documents and directories.
    // README: `/` and `/dir/` (also `/dir%2F`: a path is a directory when its decoded form ends in `/`)
    case(Site, "GET", "/", &[], 200, &[("content-type", Is("text/html; charset=utf-8"))], Exact("<h1>root</h1>")),
    case(Site, "GET", "/dir/", &[], 200, &[], Exact("<h1>dir</h1>")),
    case(Site, "GET", "/dir%2F", &[], 200, &[], Exact("<h1>dir</h1>")),
    case(Site, "GET", "/docs%2F", &[], 200, &[], Has("href=\"./sub/\"")),
    // README: `/dir` when `dir/index.html` exists
    case(Site, "GET", "/dir", &[], 302, &[("location", Is("./dir/"))], Any),
    case(Site, "GET", "/dir?x=1", &[], 302, &[("location", Is("./dir/?x=1"))], Any),
    // Error document with its real status.
    // README: missing key
    // Not-found answers are not kept by caches: the error document's own Cache-Control (here
    // max-age=600) and Expires give way to --error-cache-control.
    case(Site, "GET", "/missing.gif", &[], 404, &[("content-type", Is("text/html; charset=utf-8")), ("cache-control", Is("no-store")), ("expires", Absent)], Exact("<h1>not here</h1>")),
    case(Site, "HEAD", "/missing.gif", &[], 404, &[("cache-control", Is("no-store"))], Exact("")),
    case(Site, "GET", "/missing.gif", &[("if-none-match", "*")], 404, &[], Exact("<h1>not here</h1>")),
    case(Open, "GET", "/missing.gif", &[], 404, &[("cache-control", Is("no-store"))], Exact("not found\n")),
    // Content-Type: metadata first, extension when generic.
    // README: stored `Content-Type` missing or generic (`binary/octet-stream`, `application/octet-stream`)
    // README: text type (`text/*`, `application/javascript`) without a charset
    case(Site, "GET", "/gateway.gif", &[], 200, &[("content-type", Is("image/gif"))], Any),
    case(Site, "GET", "/data.json", &[], 200, &[("content-type", Is("application/json"))], Exact("{}")),
    case(Site, "GET", "/style.css", &[], 200, &[("content-type", Is("text/css; charset=iso-8859-1"))], Any),
    case(Site, "GET", "/custom.bin", &[], 200, &[("content-type", Is("application/x-custom"))], Any),
    // Cache-Control: the object's own, else the default (the first case of the table).
    // README: object without its own `Cache-Control`
    case(Site, "GET", "/nocache.txt", &[], 200, &[("cache-control", Is("no-store"))], Any),
    case(Site, "GET", "/nocache.txt", &[("if-none-match", "*")], 304, &[("cache-control", Is("no-store"))], Exact("")),
    // Directory listing: on for Site, off by default.
    // README: `/dir/` without an index and `--list-directories`
    case(Site, "GET", "/docs/", &[], 200, &[("content-type", Is("text/html; charset=utf-8"))], Has(">&lt;b&gt;&amp;amp.txt</a>")),
    case(Site, "GET", "/docs/", &[], 200, &[], Lacks("<b>")),
    case(Site, "GET", "/docs/", &[], 200, &[], Has("href=\"./a%20b.txt\"")),
    case(Site, "GET", "/docs/", &[], 200, &[], Has("href=\"./%3Cb%3E%26amp.txt\"")),
    case(Site, "GET", "/docs/", &[], 200, &[], Has("href=\"./sub/\"")),
    case(Site, "GET", "/nodir/", &[], 404, &[], Has("not here")),
    case(Open, "GET", "/docs/", &[], 404, &[], Any),
    // CORS.
    // README: `Origin` with `--cors-origin`
    case(Site, "GET", "/ten.txt", &[("origin", "https://app.example")], 200, &[("access-control-allow-origin", Is("https://app.example")), ("vary", Is("Origin")), ("access-control-allow-credentials", Absent)], Any),
    case(Site, "GET", "/ten.txt", &[("origin", "https://evil.example")], 200, &[("access-control-allow-origin", Absent)], Any),
    case(Site, "OPTIONS", "/ten.txt", &[("origin", "https://app.example"), ("access-control-request-method", "GET")], 204, &[("access-control-allow-origin", Is("https://app.example")), ("access-control-allow-methods", Is("GET, HEAD"))], Exact("")),
    case(Site, "OPTIONS", "/ten.txt", &[("origin", "https://evil.example"), ("access-control-request-method", "GET")], 403, &[("access-control-allow-origin", Absent)], Any),
    case(Site, "OPTIONS", "/ten.txt", &[("origin", "https://app.example"), ("access-control-request-method", "DELETE")], 403, &[], Any),
    case(Open, "GET", "/ten.txt", &[("origin", "https://anywhere.example")], 200, &[("access-control-allow-origin", Is("*")), ("access-control-allow-credentials", Absent)], Any),
    case(Spa, "GET", "/page.txt", &[("origin", "https://app.example")], 200, &[("access-control-allow-origin", Absent)], Any),
    // --prefix: only keys under it; --spa-fallback: 200 with the app for missing paths.
    case(Spa, "GET", "/page.txt", &[], 200, &[], Exact("in site")),
    case(Spa, "GET", "/ten.txt", &[], 200, &[], Exact("<app/>")),
    case(Spa, "GET", "/deep/link", &[], 200, &[("content-type", Is("text/html; charset=utf-8")), ("etag", Is("APPTAG"))], Exact("<app/>")),
    // Preconditions apply to the fallback's 200 too (RFC 9110 §13.2.1); a Range does not.
    case(Spa, "GET", "/deep/link", &[("if-none-match", "APPTAG")], 304, &[("etag", Is("APPTAG"))], Exact("")),
    case(Spa, "HEAD", "/deep/link", &[("if-none-match", "APPTAG")], 304, &[], Exact("")),
    case(Spa, "GET", "/deep/link", &[("if-none-match", "\"other\"")], 200, &[], Exact("<app/>")),
    case(Spa, "GET", "/deep/link", &[("if-match", "\"other\"")], 412, &[], Any),
    case(Spa, "GET", "/deep/link", &[("if-modified-since", FUTURE)], 304, &[], Exact("")),
    case(Spa, "GET", "/deep/link", &[("range", "bytes=0-1")], 200, &[("content-range", Absent)], Exact("<app/>")),
    case(Spa, "GET", "/%2e%2e/ten.txt", &[], 400, &[], Any),
    case(Spa, "GET", "/", &[], 200, &[], Exact("<app/>")),
];

/// Every case of the table, answered from memory (each object warmed first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_table_cached() {
    conformance_table(&[]).await;
}

/// Every case of the table, streamed from the backend: Range and preconditions go through HEAD
/// and a GET pinned with `If-Match`.
// README: a `Range` or precondition answered by streaming (cache off, object too large)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_table_streamed() {
    conformance_table(&["--cache-max-bytes", "0"]).await;
}

/// Every case of the table, against three gateways (with `mode` flags) over one mTLS backend.
async fn conformance_table(mode: &[&str]) {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    for (key, body, ct) in [
        ("ten.txt", "0123456789", "text/plain"),
        ("index.html", "<h1>root</h1>", "text/html"),
        ("dir/index.html", "<h1>dir</h1>", "text/html"),
        ("a b+c (1).txt", "spaces plus parens", "text/plain"),
        ("café ✓.txt", "unicode", "text/plain"),
        ("x/y.txt", "slash", "text/plain"),
        ("data.json", "{}", "binary/octet-stream"),
        ("custom.bin", "c", "application/x-custom"),
        ("style.css", "p{}", "text/css; charset=iso-8859-1"),
        ("docs/<b>&amp.txt", "b", "text/plain"),
        ("docs/a b.txt", "a", "text/plain"),
        ("docs/sub/c.txt", "c", "text/plain"),
        ("site/page.txt", "in site", "text/plain"),
        ("site/app.html", "<app/>", "text/html"),
    ] {
        backend.put(key, body.to_string(), ct).await;
    }
    backend
        .put_with("nocache.txt", "n", Some("no-store"), "text/plain")
        .await;
    let expires = gateway::StoredHeaders {
        expires: Some(FUTURE.into()),
        ..Default::default()
    };
    backend
        .put_stored(
            "404.html",
            "<h1>not here</h1>",
            Some("public, max-age=600"),
            "text/html",
            expires,
        )
        .await;

    let with = |flags: &[&'static str]| -> Vec<&str> { flags.iter().chain(mode).copied().collect() };
    let site = Gateway::start_with(
        backend.args(),
        &with(&[
            "--error-document",
            "404.html",
            "--list-directories",
            "--cors-origin",
            "https://app.example",
        ]),
    )
    .await;
    let spa = Gateway::start_with(
        backend.args(),
        &with(&["--prefix", "site/", "--spa-fallback", "app.html"]),
    )
    .await;
    let open = Gateway::start_with(backend.args(), &with(&["--cors-origin", "*"])).await;

    let reference = get(&site.url("/ten.txt")).await;
    let etag = reference.header("etag").to_string();
    let lm = reference.header("last-modified").to_string();
    assert!(etag.starts_with('"'), "ETag {etag:?}");
    let app_etag = get(&spa.url("/deep/link")).await.header("etag").to_string();
    assert!(app_etag.starts_with('"'), "ETag {app_etag:?}");
    let later = httpdate::fmt_http_date(httpdate::parse_http_date(&lm).unwrap() + Duration::from_secs(1));
    let subst = |s: &str| {
        s.replace("APPTAG", &app_etag)
            .replace("ETAG", &etag)
            .replace("LATER", &later)
            .replace("LM", &lm)
    };

    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let gw = match c.gw {
            Site => &site,
            Spa => &spa,
            Open => &open,
        };
        let headers: Vec<(String, String)> = c.headers.iter().map(|(k, v)| (k.to_string(), subst(v))).collect();
        let r = request_with(c.method, &gw.url(c.path), &headers).await;
        let what = format!("#{i} {:?} {} {} {:?}", c.gw, c.method, c.path, c.headers);
        if r.status != c.status {
            failures.push(format!("{what}: status {} (want {})", r.status, c.status));
            continue;
        }
        for (name, want) in c.expect {
            let got = r
                .headers
                .get(*name)
                .map(|v| v.to_str().unwrap_or("<binary>").to_string());
            let ok = match want {
                Is(v) => got.as_deref() == Some(subst(v).as_str()),
                Absent => got.is_none(),
            };
            if !ok {
                failures.push(format!("{what}: header {name} = {got:?}, want {want:?}"));
            }
        }
        let body = String::from_utf8_lossy(&r.body);
        let ok = match c.body {
            Any => true,
            Exact(b) => body == b,
            Has(b) => body.contains(b),
            Lacks(b) => !body.contains(b),
        };
        if !ok {
            failures.push(format!("{what}: body {:?}, want {:?}", truncate(&body), c.body));
        }
    }
    assert!(
        failures.is_empty(),
        "{mode:?}: {} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    for gw in [site, spa, open] {
        gw.stop().await;
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// A listing of more than 1000 keys is paginated: the first page links to the next one, which
/// holds the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_paginates_past_1000_keys() {
    let backend = Backend::start().await;
    let storage = backend.storage();
    let keys: Vec<String> = (0..1010).map(|i| format!("many/k{i:04}.txt")).collect();
    for batch in keys.chunks(50) {
        let puts = batch.iter().map(|k| {
            let storage = storage.clone();
            let k = k.clone();
            async move {
                let opts = gateway::PutOptions {
                    content_type: "text/plain",
                    ..Default::default()
                };
                storage.put(&k, bytes::Bytes::from_static(b"x"), &opts).await.unwrap();
            }
        });
        futures_util::future::join_all(puts).await;
    }
    let gw = Gateway::start_with(backend.args(), &["--list-directories"]).await;
    let first = get(&gw.url("/many/")).await;
    assert_eq!(first.status, 200);
    let page = String::from_utf8_lossy(&first.body).to_string();
    assert!(page.contains("k0000.txt") && page.contains("k0999.txt"));
    assert!(!page.contains("k1009.txt"));
    let next = page
        .split("href=\"?page=")
        .nth(1)
        .expect("a next-page link")
        .split('"')
        .next()
        .unwrap();
    let second = get(&gw.url(&format!("/many/?page={}", next.replace("&amp;", "&")))).await;
    let page2 = String::from_utf8_lossy(&second.body).to_string();
    assert_eq!(second.status, 200);
    assert!(page2.contains("k1000.txt") && page2.contains("k1009.txt"), "{page2}");
    assert!(!page2.contains("k0000.txt"));

    // The same pages as JSON, for a client that asks for it.
    let json = [("accept".to_string(), "application/json".to_string())];
    let first = request_with("GET", &gw.url("/many/"), &json).await;
    assert_eq!((first.status, first.header("content-type")), (200, "application/json"));
    assert_eq!(first.header("vary"), "Accept");
    let v: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1000);
    assert_eq!(entries[0]["name"], "k0000.txt");
    assert_eq!(
        (entries[0]["dir"].as_bool(), entries[0]["size"].as_u64()),
        (Some(false), Some(1))
    );
    // The ETag the listing gave (MinIO and S3 list one; the embedded s3s-fs lists none: null).
    assert!(entries[0].get("etag").is_some(), "{}", entries[0]);
    assert!(entries[0]["last_modified"].as_str().is_some_and(|t| t.ends_with("GMT")));
    let next = v["next"].as_str().expect("a next page");
    let second = request_with("GET", &gw.url(&format!("/many/{next}")), &json).await;
    let v: serde_json::Value = serde_json::from_slice(&second.body).unwrap();
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"k1000.txt"));
    assert_eq!(names.len(), 10);
    assert!(v["next"].is_null());
    // A browser's Accept stays HTML.
    let browser = [(
        "accept".to_string(),
        "text/html,application/xhtml+xml,*/*;q=0.8".to_string(),
    )];
    let r = request_with("GET", &gw.url("/many/"), &browser).await;
    assert!(r.header("content-type").starts_with("text/html"));
    gw.stop().await;
}

/// Oversized request heads get 431 and oversized targets 414; the server keeps serving.
// README: request head over 32 KiB / target over 4 KiB
#[tokio::test]
async fn oversized_requests_are_refused_and_server_stays_up() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let gw = Gateway::start(backend.args()).await;
    let long_path = format!("/{}", "a".repeat(5000));
    assert_eq!(get(&gw.url(&long_path)).await.status, 414);
    let big = vec![("x-filler".to_string(), "v".repeat(40 * 1024))];
    assert_eq!(request_with("GET", &gw.url("/ten.txt"), &big).await.status, 431);
    assert_eq!(get(&gw.url("/ten.txt")).await.body.as_ref(), b"0123456789");
    gw.stop().await;
}
