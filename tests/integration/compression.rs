//! Content codings against the real backend: each coding decodes to the stored bytes, with its
//! own ETag and `Vary: Accept-Encoding`; q-values and `identity;q=0` choose; ranges, stored
//! codings and images go as stored; a coded representation is compressed once and kept.

use std::io::Read;

use crate::util::{Backend, Gateway, Reply, get, request_with};

/// A script big enough to be worth compressing (about 40 KiB).
fn script() -> String {
    (0..800)
        .map(|i| format!("document.title = 'gateway ' + {i}; // a line of the script\n"))
        .collect()
}

async fn get_accepting(gw: &Gateway, path: &str, accept: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("accept-encoding".to_string(), accept.to_string())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    request_with("GET", &gw.url(path), &headers).await
}

/// `body` decoded from `coding`.
fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => {
            brotli::Decompressor::new(body, 4096).read_to_end(&mut out).unwrap();
        }
        "zstd" => out = zstd::stream::decode_all(body).unwrap(),
        "gzip" => {
            flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap();
        }
        other => panic!("unexpected coding {other:?}"),
    }
    out
}

/// Each coding decodes to the stored bytes, with `Vary`, its own ETag and length; the second
/// request for a coding is a hit that compresses nothing again; a 304 answers the coded ETag.
#[tokio::test]
async fn each_coding_decodes_to_the_stored_bytes() {
    let backend = Backend::start().await;
    let js = script();
    backend.put("app.js", js.clone(), "application/javascript").await;
    let gw = Gateway::start(backend.args()).await;

    let plain = get_accepting(&gw, "/app.js", "identity", &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), "");
    assert_eq!(plain.header("vary"), "accept-encoding");
    assert_eq!(plain.body, js.as_bytes());
    let stored_etag = plain.header("etag").to_string();

    let mut etags = vec![stored_etag.clone()];
    for coding in ["br", "zstd", "gzip"] {
        let r = get_accepting(&gw, "/app.js", coding, &[]).await;
        assert_eq!((r.status, r.header("content-encoding")), (200, coding));
        assert_eq!(r.header("vary"), "accept-encoding");
        assert_eq!(r.header("content-length"), r.body.len().to_string());
        assert!(r.body.len() * 4 < js.len(), "{coding}: {} bytes", r.body.len());
        assert_eq!(decode(coding, &r.body), js.as_bytes(), "{coding}");
        assert_eq!(
            r.header("etag"),
            format!("{}-{coding}\"", stored_etag.trim_end_matches('"'))
        );
        assert!(r.header("content-type").starts_with("application/javascript"));
        etags.push(r.header("etag").to_string());

        // Again: from memory, no second compression.
        let again = get_accepting(&gw, "/app.js", coding, &[]).await;
        assert_eq!((again.header("x-cache"), &again.body), ("HIT", &r.body));
        let series = format!("gateway_compressions_total{{encoding=\"{coding}\",outcome=\"compressed\"}}");
        assert_eq!(gw.metric(&series).await, 1.0, "{series}");

        // The coded representation revalidates with its own tag.
        let etag = r.header("etag").to_string();
        let revalidated = get_accepting(&gw, "/app.js", coding, &[("if-none-match", &etag)]).await;
        assert_eq!((revalidated.status, revalidated.header("etag")), (304, etag.as_str()));
        assert_eq!(revalidated.header("vary"), "accept-encoding");
        // The stored form's tag does not match a coded answer.
        let other = get_accepting(&gw, "/app.js", coding, &[("if-none-match", &stored_etag)]).await;
        assert_eq!(other.status, 200);
    }
    etags.sort();
    etags.dedup();
    assert_eq!(etags.len(), 4, "one ETag per representation");

    // HEAD tells the coded length without a body.
    let head = request_with("HEAD", &gw.url("/app.js"), &[("accept-encoding".into(), "gzip".into())]).await;
    assert_eq!(head.header("content-encoding"), "gzip");
    assert!(head.header("content-length").parse::<usize>().unwrap() * 4 < js.len());
    assert!(gw.metric("gateway_compressed_responses_total{encoding=\"gzip\"}").await >= 3.0);
    gw.stop().await;
}

/// Negotiation through HTTP: browser-style lists pick br, q-values and `identity;q=0` are
/// honoured, an unknown coding gets the stored form, and `--compression` sets the offer.
#[tokio::test]
async fn negotiation_follows_q_values_and_the_offer() {
    let backend = Backend::start().await;
    backend.put("page.html", script(), "text/html").await;
    let gw = Gateway::start(backend.args()).await;
    // The first request reads along the fill, as stored; codings are made from the cached copy.
    get(&gw.url("/page.html")).await;
    for (accept, expect) in [
        ("gzip, deflate, br, zstd", "br"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("br;q=0, zstd", "zstd"),
        ("deflate", ""),
        ("gzip;q=0.5, identity", ""),
        ("gzip;q=0.5, identity;q=0", "gzip"),
        ("*", "br"),
    ] {
        let r = get_accepting(&gw, "/page.html", accept, &[]).await;
        assert_eq!(r.header("content-encoding"), expect, "Accept-Encoding: {accept}");
    }
    gw.stop().await;

    let gw = Gateway::start_with(backend.args(), &["--compression", "gzip"]).await;
    get(&gw.url("/page.html")).await;
    let r = get_accepting(&gw, "/page.html", "br, zstd, gzip", &[]).await;
    assert_eq!(r.header("content-encoding"), "gzip");
    gw.stop().await;

    let gw = Gateway::start_with(backend.args(), &["--compression", "off"]).await;
    get(&gw.url("/page.html")).await;
    let r = get_accepting(&gw, "/page.html", "br, gzip", &[]).await;
    assert_eq!((r.header("content-encoding"), r.header("vary")), ("", ""));
    gw.stop().await;
}

/// What goes as stored: ranges, objects stored with a coding of their own, images, small
/// objects, and everything when the cache is off (only cached objects are compressed).
#[tokio::test]
async fn ranges_stored_codings_and_images_go_as_stored() {
    let backend = Backend::start().await;
    let js = script();
    backend.put("app.js", js.clone(), "application/javascript").await;
    backend.put("small.css", "body { color: red }", "text/css").await;
    let gz = gateway::Encoding::Gzip.compress(js.as_bytes()).unwrap();
    backend
        .put_stored(
            "pre.js",
            gz.clone(),
            None,
            "application/javascript",
            gateway::StoredHeaders {
                content_encoding: Some("gzip".into()),
                ..Default::default()
            },
        )
        .await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;

    let ranged = get_accepting(&gw, "/app.js", "br", &[("range", "bytes=0-7")]).await;
    assert_eq!((ranged.status, ranged.header("content-encoding")), (206, ""));
    assert_eq!(ranged.body.as_ref(), &js.as_bytes()[..8]);
    // A range after the object is cached is of the stored bytes too.
    get_accepting(&gw, "/app.js", "br", &[]).await;
    let ranged = get_accepting(&gw, "/app.js", "br", &[("range", "bytes=8-15")]).await;
    assert_eq!((ranged.status, ranged.header("content-encoding")), (206, ""));
    assert_eq!(ranged.body.as_ref(), &js.as_bytes()[8..16]);

    for _ in 0..2 {
        let pre = get_accepting(&gw, "/pre.js", "br", &[]).await;
        assert_eq!((pre.header("content-encoding"), pre.header("vary")), ("gzip", ""));
        assert_eq!(pre.body.as_ref(), gz.as_slice());

        let gif = get_accepting(&gw, "/gateway.gif", "br, gzip", &[]).await;
        assert_eq!((gif.header("content-encoding"), gif.header("vary")), ("", ""));

        let small = get_accepting(&gw, "/small.css", "br, gzip", &[]).await;
        assert_eq!((small.header("content-encoding"), small.header("vary")), ("", ""));
    }
    gw.stop().await;

    let gw = Gateway::start_with(backend.args(), &["--cache-max-bytes", "0"]).await;
    let r = get_accepting(&gw, "/app.js", "br, gzip", &[]).await;
    assert_eq!((r.header("content-encoding"), r.header("vary")), ("", ""));
    assert_eq!(r.body, js.as_bytes());
    gw.stop().await;
}

/// A replaced object is compressed again: the coded representation follows the stored one.
#[tokio::test]
async fn a_replaced_object_is_compressed_again() {
    let backend = Backend::start().await;
    backend.put("app.js", script(), "application/javascript").await;
    let gw = Gateway::start_with(
        backend.args(),
        // Revalidation after the TTL (change events would drop the entry instead).
        &[
            "--cache-ttl",
            "1s",
            "--cache-stale-while-revalidate",
            "0s",
            "--bucket-events",
            "off",
        ],
    )
    .await;
    get(&gw.url("/app.js")).await;
    let first = get_accepting(&gw, "/app.js", "gzip", &[]).await;
    assert_eq!(first.header("content-encoding"), "gzip");
    let v2 = script().replace("gateway", "replaced");
    backend.put("app.js", v2.clone(), "application/javascript").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let second = get_accepting(&gw, "/app.js", "gzip", &[]).await;
    assert_eq!(second.header("content-encoding"), "gzip");
    assert_eq!(decode("gzip", &second.body), v2.as_bytes());
    assert_ne!(first.header("etag"), second.header("etag"));
    gw.stop().await;
}

/// With `--compression-static`, a precompressed sibling (`app.js.br`) is sent for its coding,
/// with the object's type and the sibling's own ETag; a coding without a sibling is made by the
/// gateway; without the flag the sibling is ignored.
#[tokio::test]
async fn precompressed_siblings_win_when_present() {
    let backend = Backend::start().await;
    let js = script();
    let built = js.replace("gateway", "sibling");
    backend.put("app.js", js.clone(), "application/javascript").await;
    let br = gateway::Encoding::Br.compress(built.as_bytes()).unwrap();
    backend.put("app.js.br", br.clone(), "application/octet-stream").await;

    let gw = Gateway::start_with(backend.args(), &["--compression-static"]).await;
    get(&gw.url("/app.js")).await;
    let sibling_etag = get(&gw.url("/app.js.br")).await.header("etag").to_string();
    for _ in 0..2 {
        let r = get_accepting(&gw, "/app.js", "br, gzip", &[]).await;
        assert_eq!((r.status, r.header("content-encoding")), (200, "br"));
        assert!(r.header("content-type").starts_with("application/javascript"));
        assert_eq!(r.header("vary"), "accept-encoding");
        assert_eq!(r.header("etag"), sibling_etag);
        assert_eq!(r.body.as_ref(), br.as_slice());
        assert_eq!(decode("br", &r.body), built.as_bytes());
    }
    let gz = get_accepting(&gw, "/app.js", "gzip", &[]).await;
    assert_eq!(decode("gzip", &gz.body), js.as_bytes());
    assert_eq!(
        gw.metric("gateway_compressions_total{encoding=\"br\",outcome=\"compressed\"}")
            .await,
        0.0
    );
    gw.stop().await;

    let gw = Gateway::start(backend.args()).await;
    get(&gw.url("/app.js")).await;
    let r = get_accepting(&gw, "/app.js", "br", &[]).await;
    assert_eq!(decode("br", &r.body), js.as_bytes());
    gw.stop().await;
}
