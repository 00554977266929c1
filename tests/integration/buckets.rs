//! What real buckets and their operators do that fixtures usually do not: a policy without
//! s3:ListBucket (403 for missing keys), a backend certificate for another name, keys the
//! backend cannot store, conditional GETs, and objects whose own Cache-Control forbids or
//! shortens caching.

use gateway::error::StorageError;

use crate::util::{Backend, Gateway, get, request_with};

const MODES: [&[&str]; 2] = [&[], &["--cache-max-bytes", "0"]];

fn flags<'a>(site: &[&'a str], mode: &[&'a str]) -> Vec<&'a str> {
    site.iter().chain(mode).copied().collect()
}

/// With a GetObject-only policy the backend answers 403 AccessDenied for missing keys and
/// refuses HeadBucket. The gateway still becomes ready, learns that (the default `auto`), and
/// answers missing paths with the error document or the SPA fallback, cache on and off; told
/// `404`, it answers them 502 (a refusal it was told not to trust), and `403` needs no probe.
// README: missing key under a policy without `s3:ListBucket` (the bucket answers 403 `AccessDenied`)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn getobject_only_policy_serves_missing_keys_as_missing() {
    let backend = Backend::start().await;
    backend.put("site/page.txt", "in site", "text/plain").await;
    backend.put("site/404.html", "<h1>gone</h1>", "text/html").await;
    backend.put("site/app.html", "<app/>", "text/html").await;
    backend.server.as_ref().unwrap().faults().without_list_bucket(true);
    assert!(matches!(
        backend.storage().head("site/nothing").await,
        Err(StorageError::Denied { .. })
    ));

    for mode in MODES {
        let gw = Gateway::start_with(
            backend.args(),
            &flags(&["--prefix", "site", "--error-document", "404.html"], mode),
        )
        .await;
        gw.ready().await;
        assert_eq!(get(&gw.url("/page.txt")).await.body.as_ref(), b"in site", "{mode:?}");
        for _ in 0..2 {
            let r = get(&gw.url("/missing.gif")).await;
            assert_eq!((r.status, r.body.as_ref()), (404, &b"<h1>gone</h1>"[..]), "{mode:?}");
            assert_eq!(crate::util::request("HEAD", &gw.url("/missing.gif")).await.status, 404);
        }
        gw.stop().await;

        let gw = Gateway::start_with(
            backend.args(),
            &flags(&["--prefix", "site", "--spa-fallback", "app.html"], mode),
        )
        .await;
        gw.ready().await;
        let r = get(&gw.url("/deep/link")).await;
        assert_eq!((r.status, r.body.as_ref()), (200, &b"<app/>"[..]), "{mode:?}");
        gw.stop().await;

        let gw = Gateway::start_with(
            backend.args(),
            &flags(&["--prefix", "site", "--missing-object-status", "404"], mode),
        )
        .await;
        gw.ready().await;
        assert_eq!(get(&gw.url("/page.txt")).await.status, 200, "{mode:?}");
        assert_eq!(get(&gw.url("/missing.gif")).await.status, 502, "{mode:?}");
        gw.stop().await;

        let gw = Gateway::start_with(
            backend.args(),
            &flags(&["--prefix", "site", "--missing-object-status", "403"], mode),
        )
        .await;
        assert_eq!(get(&gw.url("/missing.gif")).await.status, 404, "{mode:?}");
        gw.stop().await;
    }
}

/// A backend certificate from the trusted CA but for another name is refused: the gateway
/// never becomes ready, says `tls` on /readyz, and answers 502, never the object.
#[tokio::test]
async fn backend_certificate_for_another_name_is_refused() {
    let backend = Backend::start_named(&["s3.elsewhere.example"]).await;
    let gw = Gateway::start(backend.args()).await;
    let r = get(&gw.url("/ten.txt")).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    let deadline = tokio::time::Instant::now() + crate::util::TIMEOUT;
    loop {
        let ready = get(&gw.admin_url("/readyz")).await;
        assert_eq!(ready.status, 503);
        if String::from_utf8_lossy(&ready.body).contains("last probe: tls") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:?}", ready.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    gw.stop().await;
}

/// The key length S3 allows (1024 bytes) counts the served prefix: a path that fits alone but
/// not with the prefix is the client's 400, not a backend 502.
// README: key longer than S3's 1024 bytes once `--prefix` is added, or a key the backend refuses as invalid (`KeyTooLongError`, `XMinioInvalidObjectName`)
#[tokio::test]
async fn key_length_counts_the_prefix() {
    let backend = Backend::start().await;
    backend.put("a-rather-long-prefix/x", "x", "text/plain").await;
    let gw = Gateway::start_with(backend.args(), &["--prefix", "a-rather-long-prefix/"]).await;
    // Short segments: the embedded backend keeps keys as files, whose names have their own limit.
    let fits = format!("/{}x", "kkkkkkkkk/".repeat(100));
    let too_long = format!("/{}x", "kkkkkkkkk/".repeat(101));
    let r = get(&gw.url(&fits)).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = get(&gw.url(&too_long)).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    gw.stop().await;
}

/// The embedded backend evaluates If-Match and If-Unmodified-Since on GET as S3 does, so the
/// streaming path's pinned GET can be caught using a stale ETag.
#[tokio::test]
async fn backend_evaluates_conditional_gets() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let storage = backend.storage();
    let etag = storage.head("ten.txt").await.unwrap().etag.unwrap();
    assert!(storage.get_range("ten.txt", None, Some(&etag)).await.is_ok());
    assert!(matches!(
        storage
            .get_range("ten.txt", Some("bytes=0-1".into()), Some("\"other\""))
            .await,
        Err(StorageError::PreconditionFailed)
    ));
}

/// An object's own `Cache-Control` binds the in-memory cache: `no-store` and `private` are never
/// kept (every answer streams), `max-age` shorter than `--cache-ttl` shortens freshness. Every
/// answer says how in `Cache-Status` (RFC 9211).
#[tokio::test]
async fn objects_own_cache_policy_binds_the_cache() {
    let backend = Backend::start().await;
    backend.put_with("secret.txt", "s", Some("private"), "text/plain").await;
    backend.put_with("live.txt", "l", Some("no-store"), "text/plain").await;
    backend
        .put_with("short.txt", "0", Some("public, max-age=1"), "text/plain")
        .await;
    backend.put("plain.txt", "p", "text/plain").await;
    let gw = Gateway::start_with(
        backend.args(),
        // The object's own freshness: change events would drop replaced objects at once.
        &[
            "--cache-ttl",
            "60s",
            "--cache-stale-while-revalidate",
            "0s",
            "--bucket-events",
            "off",
        ],
    )
    .await;

    for key in ["/secret.txt", "/live.txt"] {
        for _ in 0..3 {
            let r = get(&gw.url(key)).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-cache"), "BYPASS", "{key}");
            assert_eq!(r.header("cache-status"), "gateway; fwd=bypass", "{key}");
        }
    }
    let first = get(&gw.url("/plain.txt")).await;
    assert_eq!(first.header("cache-status"), "gateway; fwd=uri-miss; stored; ttl=60");
    let hit = get(&gw.url("/plain.txt")).await;
    assert_eq!(hit.header("x-cache"), "HIT");
    assert!(
        hit.header("cache-status").starts_with("gateway; hit; ttl="),
        "{}",
        hit.header("cache-status")
    );

    assert_eq!(get(&gw.url("/short.txt")).await.header("x-cache"), "MISS");
    backend
        .put_with("short.txt", "1", Some("public, max-age=1"), "text/plain")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = get(&gw.url("/short.txt")).await;
    assert_eq!((r.header("x-cache"), r.body.as_ref()), ("REVALIDATED", &b"1"[..]));
    assert_eq!(r.header("cache-status"), "gateway; fwd=stale; stored; ttl=1");
    let r = request_with("GET", &gw.url("/short.txt"), &[("range".into(), "bytes=0-0".into())]).await;
    assert_eq!(r.status, 206);
    gw.stop().await;
}
