//! The object cache against the real backend: hits, coalescing, revalidation, stale-if-error,
//! the negative cache and the byte bound. Backend calls are counted with the gateway's own
//! `gateway_s3_requests_total`, which counts every call the S3 client makes.

use std::time::Duration;

use crate::util::{Backend, Gateway, get, request_with};

/// The value of one series in the gateway's /metrics (0 when absent).
async fn metric(gw: &Gateway, series: &str) -> f64 {
    gw.metric(series).await
}

const GETS: &str = "gateway_s3_requests_total{operation=\"GetObject\",outcome=\"ok\"}";

/// The second GET is a hit served from memory: one GetObject for two responses.
#[tokio::test]
async fn second_get_is_a_hit() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;
    let first = get(&gw.url("/gateway.gif")).await;
    let second = get(&gw.url("/gateway.gif")).await;
    assert_eq!((first.header("x-cache"), second.header("x-cache")), ("MISS", "HIT"));
    assert_eq!(first.body, second.body);
    assert_eq!(first.header("etag"), second.header("etag"));
    let ranged = request_with("GET", &gw.url("/gateway.gif"), &[("range".into(), "bytes=0-5".into())]).await;
    assert_eq!((ranged.status, ranged.header("x-cache")), (206, "HIT"));
    assert_eq!(ranged.body.as_ref(), b"GIF89a");
    assert_eq!(metric(&gw, GETS).await, 1.0);
    assert_eq!(metric(&gw, "gateway_cache_entries").await, 1.0);
    gw.stop().await;
}

/// 50 concurrent first requests for one key make exactly one GetObject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_coalesce() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;
    let url = gw.url("/gateway.gif");
    let replies = futures_util::future::join_all((0..50).map(|_| get(&url))).await;
    let expected = crate::util::seed_gif();
    assert!(
        replies
            .iter()
            .all(|r| r.status == 200 && r.body.as_ref() == expected.as_slice())
    );
    assert_eq!(metric(&gw, GETS).await, 1.0);
    gw.stop().await;
}

/// After the TTL (with no stale-while-revalidate window) an unchanged object is revalidated
/// with a 304 (entry kept, no body moved); a replaced object is served with its new bytes;
/// `Cache-Control: no-cache` forces revalidation.
#[tokio::test]
async fn revalidation_after_ttl() {
    let backend = Backend::start().await;
    backend.put("page.txt", "v1", "text/plain").await;
    let gw = Gateway::start_with(
        backend.args(),
        &["--cache-ttl", "2s", "--cache-stale-while-revalidate", "0s"],
    )
    .await;
    assert_eq!(get(&gw.url("/page.txt")).await.header("x-cache"), "MISS");

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = get(&gw.url("/page.txt")).await;
    assert_eq!((r.header("x-cache"), r.body.as_ref()), ("REVALIDATED", b"v1".as_ref()));
    assert_eq!(
        metric(&gw, "gateway_cache_revalidations_total{outcome=\"not_modified\"}").await,
        1.0
    );
    assert_eq!(get(&gw.url("/page.txt")).await.header("x-cache"), "HIT");

    backend.put("page.txt", "v2", "text/plain").await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = get(&gw.url("/page.txt")).await;
    assert_eq!((r.header("x-cache"), r.body.as_ref()), ("REVALIDATED", b"v2".as_ref()));
    assert_eq!(
        metric(&gw, "gateway_cache_revalidations_total{outcome=\"modified\"}").await,
        1.0
    );

    let forced = request_with(
        "GET",
        &gw.url("/page.txt"),
        &[("cache-control".into(), "no-cache".into())],
    )
    .await;
    assert_eq!(forced.header("x-cache"), "REVALIDATED");
    gw.stop().await;
}

/// With the backend down, the stale copy is served (X-Cache: STALE) within the stale window,
/// and an honest 5xx after it.
#[tokio::test]
async fn stale_if_error_then_5xx() {
    let mut backend = Backend::start().await;
    backend.put("page.txt", "cached", "text/plain").await;
    let gw = Gateway::start_with(
        backend.args(),
        &[
            "--cache-ttl",
            "1s",
            "--cache-stale-if-error",
            "3s",
            "--cache-stale-while-revalidate",
            "0s",
        ],
    )
    .await;
    assert_eq!(get(&gw.url("/page.txt")).await.status, 200);
    backend.server.take().unwrap().stop().await;

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = get(&gw.url("/page.txt")).await;
    assert_eq!(
        (r.status, r.header("x-cache"), r.body.as_ref()),
        (200, "STALE", b"cached".as_ref())
    );
    assert!(metric(&gw, "gateway_cache_stale_served_total").await >= 1.0);

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let r = get(&gw.url("/page.txt")).await;
    assert!(matches!(r.status, 502..=504), "past the stale window: {}", r.status);
    gw.stop().await;
}

/// A 404 is remembered for the negative TTL, so a missing key cannot hammer the backend.
#[tokio::test]
async fn missing_keys_are_remembered_briefly() {
    let backend = Backend::start().await;
    // An empty bucket: a key missing from it is a 404 (a missing bucket would be a 502).
    backend.storage().create_bucket().await.unwrap();
    let gw = Gateway::start_with(backend.args(), &["--cache-negative-ttl", "3s"]).await;
    for _ in 0..5 {
        assert_eq!(get(&gw.url("/late.txt")).await.status, 404);
    }
    let not_found = "gateway_s3_requests_total{operation=\"GetObject\",outcome=\"not_found\"}";
    // One for the key and one for the `late.txt/index.html` directory probe, both remembered:
    // five requests reached the backend twice, and so would fifty.
    assert_eq!(metric(&gw, not_found).await, 2.0);
    for _ in 0..5 {
        assert_eq!(get(&gw.url("/late.txt")).await.status, 404);
    }
    assert_eq!(metric(&gw, not_found).await, 2.0);
    backend.put("late.txt", "here", "text/plain").await;
    assert_eq!(get(&gw.url("/late.txt")).await.status, 404);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(get(&gw.url("/late.txt")).await.body.as_ref(), b"here");
    gw.stop().await;
}

/// Objects over the per-object limit are streamed and never cached; the cache never holds
/// more bytes than its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_bounds_hold() {
    let backend = Backend::start().await;
    backend
        .put("big.bin", vec![1u8; 4096], "application/octet-stream")
        .await;
    for i in 0..40 {
        backend
            .put(
                &format!("small/{i}.bin"),
                vec![2u8; 8 * 1024],
                "application/octet-stream",
            )
            .await;
    }
    let gw = Gateway::start_with(
        backend.args(),
        &["--cache-max-bytes", "64KiB", "--cache-max-object-bytes", "16KiB"],
    )
    .await;
    let small = Gateway::start_with(backend.args(), &["--cache-max-object-bytes", "1KiB"]).await;
    for _ in 0..2 {
        let r = get(&small.url("/big.bin")).await;
        assert_eq!((r.status, r.header("x-cache"), r.body.len()), (200, "BYPASS", 4096));
    }
    // Only the small "too large, stream it" marker is held, not the 4 KiB body.
    assert!(metric(&small, "gateway_cache_size_bytes").await < 4096.0);

    for i in 0..40 {
        assert_eq!(get(&gw.url(&format!("/small/{i}.bin"))).await.status, 200);
        let held = metric(&gw, "gateway_cache_size_bytes").await;
        assert!(held <= 64.0 * 1024.0, "cache holds {held} bytes, bound is 64 KiB");
    }
    assert!(metric(&gw, "gateway_cache_evictions_total{cause=\"size\"}").await > 0.0);
    gw.stop().await;
    small.stop().await;
}

/// `--cache-max-bytes 0` turns the cache off: every response says BYPASS.
#[tokio::test]
async fn cache_can_be_turned_off() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start_with(backend.args(), &["--cache-max-bytes", "0"]).await;
    for _ in 0..2 {
        assert_eq!(get(&gw.url("/gateway.gif")).await.header("x-cache"), "BYPASS");
    }
    assert_eq!(metric(&gw, GETS).await, 2.0);
    gw.stop().await;
}
