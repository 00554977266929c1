//! `GET`/`HEAD` through the gateway of objects in the mTLS backend.

use crate::util::{Backend, Gateway, get, request, seed_gif};

/// The seeded GIF comes back byte for byte with the headers browsers need; HEAD has the same
/// headers and no body.
#[tokio::test]
async fn seeded_gif_is_served_exactly() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;
    let expected = seed_gif();

    let r = get(&gw.url("/gateway.gif")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body.as_ref(),
        expected.as_slice(),
        "body differs from seed/gateway.gif"
    );
    assert_eq!(r.header("content-type"), "image/gif");
    assert_eq!(r.header("content-length"), expected.len().to_string());
    let md5 = format!("\"{}\"", hex::encode(<md5::Md5 as md5::Digest>::digest(&expected)));
    assert_eq!(r.header("etag"), md5);
    assert!(!r.header("last-modified").is_empty());

    let h = request("HEAD", &gw.url("/gateway.gif")).await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    for name in ["content-type", "content-length", "etag", "last-modified"] {
        assert_eq!(h.header(name), r.header(name), "HEAD {name}");
    }
    gw.stop().await;
}

/// A key that does not exist is a 404, for GET and HEAD.
#[tokio::test]
async fn missing_key_is_404() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;
    assert_eq!(get(&gw.url("/nope.gif")).await.status, 404);
    assert_eq!(request("HEAD", &gw.url("/nope.gif")).await.status, 404);
    gw.stop().await;
}

/// `/` serves `index.html`, keys with spaces and Unicode are reachable, and the object's own
/// Cache-Control is passed through.
#[tokio::test]
async fn index_and_encoded_keys() {
    let backend = Backend::start().await;
    backend.put("index.html", "<h1>hi</h1>", "text/html").await;
    backend.put("a b/café (1).txt", "unicode", "text/plain").await;
    let gw = Gateway::start(backend.args()).await;

    let r = get(&gw.url("/")).await;
    assert_eq!((r.status, r.header("content-type")), (200, "text/html; charset=utf-8"));
    assert_eq!(r.body.as_ref(), b"<h1>hi</h1>");
    let r = get(&gw.url("/a%20b/caf%C3%A9%20(1).txt")).await;
    assert_eq!((r.status, r.body.as_ref()), (200, b"unicode".as_ref()));
    gw.stop().await;
}

/// Malformed paths are 400 and other methods 405 with `Allow`; the server keeps serving.
#[tokio::test]
async fn bad_requests_are_4xx() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;

    assert_eq!(get(&gw.url("/a/%2e%2e/gateway.gif")).await.status, 400);
    assert_eq!(get(&gw.url("/a%00b")).await.status, 400);
    assert_eq!(get(&gw.url("/%ff")).await.status, 400);
    let r = request("DELETE", &gw.url("/gateway.gif")).await;
    assert_eq!((r.status, r.header("allow")), (405, "GET, HEAD"));
    assert_eq!(request("PUT", &gw.url("/x")).await.status, 405);
    assert_eq!(get(&gw.url("/gateway.gif")).await.status, 200);
    gw.stop().await;
}

/// `/healthz` is up, `/readyz` turns 200 once the background probe has reached the bucket,
/// `/metrics` is Prometheus text that counts the requests made.
#[tokio::test]
async fn operational_endpoints() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;
    assert_eq!(get(&gw.admin_url("/healthz")).await.status, 200);
    crate::util::wait_for_status(&gw.admin_url("/readyz"), 200).await;
    assert!(String::from_utf8_lossy(&get(&gw.admin_url("/readyz")).await.body).contains("backend: up"));
    get(&gw.url("/gateway.gif")).await;
    get(&gw.url("/missing")).await;
    let m = get(&gw.admin_url("/metrics")).await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    assert!(
        text.contains("gateway_http_requests_total{method=\"GET\",status_class=\"2xx\"}"),
        "{text}"
    );
    assert!(
        text.contains("gateway_http_requests_total{method=\"GET\",status_class=\"4xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gateway_s3_requests_total{operation=\"GetObject\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        // The missing key and its `missing/index.html` directory probe.
        text.contains("gateway_s3_requests_total{operation=\"GetObject\",outcome=\"not_found\"} 2"),
        "{text}"
    );
    assert!(text.contains("gateway_ready 1"), "{text}");
    assert!(!text.contains("gateway.gif"), "object keys must never be labels");
    gw.stop().await;
}

/// Representation headers stored with an object reach the client as stored, from the cache and
/// streamed alike: a precompressed asset keeps its `Content-Encoding`, a download its
/// `Content-Disposition`; a 304 repeats `Expires`.
#[tokio::test]
async fn stored_headers_pass_through() {
    let backend = Backend::start().await;
    let opts = gateway::PutOptions {
        content_type: "application/javascript",
        stored: gateway::StoredHeaders {
            content_encoding: Some("gzip".into()),
            content_disposition: Some("attachment; filename=\"app.js\"".into()),
            content_language: Some("en".into()),
            expires: Some("Fri, 01 Jan 2100 00:00:00 GMT".into()),
        },
        ..Default::default()
    };
    backend
        .storage()
        .put("app.js", bytes::Bytes::from_static(b"\x1f\x8b gzip bytes"), &opts)
        .await
        .unwrap();
    for flags in [&[][..], &["--cache-max-bytes", "0"][..]] {
        let gw = Gateway::start_with(backend.args(), flags).await;
        for method in ["GET", "HEAD", "GET"] {
            let r = crate::util::request(method, &gw.url("/app.js")).await;
            assert_eq!(r.status, 200, "{flags:?} {method}");
            assert_eq!(r.header("content-encoding"), "gzip", "{flags:?} {method}");
            assert_eq!(r.header("content-disposition"), "attachment; filename=\"app.js\"");
            assert_eq!(r.header("content-language"), "en");
            assert_eq!(r.header("expires"), "Fri, 01 Jan 2100 00:00:00 GMT");
        }
        let etag = get(&gw.url("/app.js")).await.header("etag").to_string();
        let r = crate::util::request_with("GET", &gw.url("/app.js"), &[("if-none-match".into(), etag)]).await;
        assert_eq!((r.status, r.header("expires")), (304, "Fri, 01 Jan 2100 00:00:00 GMT"));
        gw.stop().await;
    }
}

/// A backend that ignores `Range` (answers 200 with the whole object) never produces a
/// mislabelled 206: the gateway checks the answer's Content-Range and says 502.
#[tokio::test]
async fn ignored_range_is_502_not_a_mislabelled_206() {
    let backend = Backend::start().await;
    backend.put("digits.txt", "0123456789", "text/plain").await;
    let range = [("range".to_string(), "bytes=2-4".to_string())];
    for flags in [&[][..], &["--cache-max-bytes", "0"][..]] {
        let gw = Gateway::start_with(backend.args(), flags).await;
        let r = crate::util::request_with("GET", &gw.url("/digits.txt"), &range).await;
        assert_eq!((r.status, r.body.as_ref()), (206, &b"234"[..]), "{flags:?}");
        backend.server.as_ref().unwrap().faults().ignore_range(true);
        let r = crate::util::request_with("GET", &gw.url("/digits.txt"), &range).await;
        backend.server.as_ref().unwrap().faults().ignore_range(false);
        assert_eq!(r.status, 502, "{flags:?}: {:?}", r.body);
        gw.stop().await;
    }
}
