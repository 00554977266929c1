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
        // The TTL path: change events would show the change at once (tests/integration/events.rs).
        &[
            "--cache-ttl",
            "2s",
            "--cache-stale-while-revalidate",
            "0s",
            "--bucket-events",
            "off",
        ],
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

/// Stale-if-error is a limit even when stale-while-revalidate is longer: once revalidation has
/// failed, the copy is served as STALE (not UPDATING) within the stale-if-error window and an
/// error after it, and every 503 says when to try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_limits_a_longer_stale_while_revalidate() {
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
            "60s",
            "--bucket-events",
            "off",
        ],
    )
    .await;
    assert_eq!(get(&gw.url("/page.txt")).await.status, 200);
    backend.server.take().unwrap().stop().await;

    // Past the TTL: the first request starts a revalidation in the background (UPDATING);
    // once it has failed, requests get STALE.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let r = get(&gw.url("/page.txt")).await;
        assert_eq!((r.status, r.body.as_ref()), (200, b"cached".as_ref()));
        if r.header("x-cache") == "STALE" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {} after the revalidation failed",
            r.header("x-cache")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past TTL + stale-if-error (4 s), within stale-while-revalidate: an error, not the copy.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let r = get(&gw.url("/page.txt")).await;
    assert!(
        matches!(r.status, 502..=504),
        "past stale-if-error: {} {}",
        r.status,
        r.header("x-cache")
    );
    if r.status == 503 {
        assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1, "{:?}", r.headers);
    }
    gw.stop().await;
}

/// A 404 is remembered for the negative TTL, so a missing key cannot hammer the backend.
#[tokio::test]
async fn missing_keys_are_remembered_briefly() {
    let backend = Backend::start().await;
    // An empty bucket: a key missing from it is a 404 (a missing bucket would be a 502).
    backend.storage().create_bucket().await.unwrap();
    // The TTL path: change events would show the new key at once.
    let gw = Gateway::start_with(
        backend.args(),
        &["--cache-negative-ttl", "3s", "--bucket-events", "off"],
    )
    .await;
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

/// 4 MiB of bytes that differ at every offset a wrong slice could start from.
fn large_object() -> Vec<u8> {
    (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Reads body frames until at least `n` bytes have arrived; returns them.
async fn read_at_least(resp: &mut http::Response<hyper::body::Incoming>, n: usize) -> Vec<u8> {
    use http_body_util::BodyExt;
    let mut got = Vec::new();
    while got.len() < n {
        let frame = tokio::time::timeout(crate::util::TIMEOUT, resp.body_mut().frame())
            .await
            .expect("no bytes while the backend is paused: the miss waited for the whole object")
            .expect("body ended early")
            .expect("body failed");
        if let Ok(data) = frame.into_data() {
            got.extend_from_slice(&data);
        }
    }
    got
}

/// A cacheable miss streams while it fills: with the backend paused mid-body, the first
/// request already has its headers and the first bytes, and a second request joins the same
/// fill (no second GetObject) and gets the same bytes; when the backend resumes, both complete
/// with the whole object, which is then a hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_streams_while_it_fills_and_others_join() {
    use crate::proxy::{Fault, FaultProxy};
    use http_body_util::BodyExt;
    let backend = Backend::start().await;
    let object = large_object();
    backend.put("big.bin", object.clone(), "application/octet-stream").await;
    let proxy = FaultProxy::start(backend.addr).await;
    let args = backend.args_via(proxy.addr);
    let gw = Gateway::start(args).await;
    proxy.set(Fault::PauseAfter(768 << 10));

    let mut first = crate::util::send("GET", &gw.url("/big.bin")).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let first_start = read_at_least(&mut first, 256 << 10).await;
    let mut second = crate::util::send("GET", &gw.url("/big.bin")).await;
    assert_eq!(second.headers()["content-length"], "4194304");
    let second_start = read_at_least(&mut second, 256 << 10).await;
    assert_eq!(&first_start[..], &object[..first_start.len()]);
    assert_eq!(&second_start[..], &object[..second_start.len()]);
    assert_eq!(metric(&gw, GETS).await, 1.0, "the second request must join the fill");

    proxy.set(Fault::Pass);
    for (mut resp, start) in [(first, first_start), (second, second_start)] {
        let rest = resp.body_mut().collect().await.unwrap().to_bytes();
        assert_eq!(start.len() + rest.len(), object.len());
        assert!(start.iter().chain(rest.iter()).eq(object.iter()), "bytes differ");
    }
    let third = get(&gw.url("/big.bin")).await;
    assert_eq!((third.header("x-cache"), third.body.len()), ("HIT", object.len()));
    assert_eq!(metric(&gw, GETS).await, 1.0);
    gw.stop().await;
}

/// A herd on a cold object whose fill is slow: 60 readers and 20 HEADs join while the backend
/// holds the rest of the body; every reader gets every byte once it comes, the HEADs answer at
/// once without joining the body, and the backend is asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_joining_a_slow_fill_gets_every_byte_from_one_backend_call() {
    use crate::proxy::{Fault, FaultProxy};
    use http_body_util::BodyExt;
    let backend = Backend::start().await;
    let object = large_object();
    backend.put("big.bin", object.clone(), "application/octet-stream").await;
    let proxy = FaultProxy::start(backend.addr).await;
    let args = backend.args_via(proxy.addr);
    let gw = Gateway::start_with(args, &["--bucket-events", "off"]).await;
    proxy.set(Fault::PauseAfter(1 << 20));
    let mut first = crate::util::send("GET", &gw.url("/big.bin")).await;
    read_at_least(&mut first, 256 << 10).await;
    let readers: Vec<_> = (0..60)
        .map(|_| {
            let url = gw.url("/big.bin");
            tokio::spawn(async move {
                let resp = crate::util::send("GET", &url).await;
                resp.into_body().collect().await.unwrap().to_bytes()
            })
        })
        .collect();
    for _ in 0..20 {
        let head = request_with("HEAD", &gw.url("/big.bin"), &[]).await;
        assert_eq!((head.status, head.header("content-length")), (200, "4194304"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.set(Fault::Pass);
    drop(first);
    for r in readers {
        let body = r.await.unwrap();
        assert!(body.len() == object.len() && body == object, "a reader got other bytes");
    }
    assert_eq!(metric(&gw, GETS).await, 1.0, "the herd must share one backend call");
    gw.stop().await;
}

/// A fill that fails mid-body breaks every reader's response (never a short 200 that looks
/// complete) and caches nothing: the next request fetches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_failing_mid_body_breaks_every_reader_and_caches_nothing() {
    use crate::proxy::{Fault, FaultProxy};
    use http_body_util::BodyExt;
    let backend = Backend::start().await;
    let object = large_object();
    backend.put("big.bin", object.clone(), "application/octet-stream").await;
    let mut proxy = FaultProxy::start(backend.addr).await;
    let args = backend.args_via(proxy.addr);
    let gw = Gateway::start(args).await;
    proxy.set(Fault::PauseAfter(768 << 10));
    let mut first = crate::util::send("GET", &gw.url("/big.bin")).await;
    read_at_least(&mut first, 256 << 10).await;
    let mut second = crate::util::send("GET", &gw.url("/big.bin")).await;
    read_at_least(&mut second, 256 << 10).await;

    proxy.kill();
    for resp in [first, second] {
        let rest = tokio::time::timeout(crate::util::TIMEOUT, resp.into_body().collect()).await;
        assert!(matches!(rest, Ok(Err(_))), "a reader got a complete-looking body");
    }
    proxy.revive().await;
    proxy.set(Fault::Pass);
    let again = get(&gw.url("/big.bin")).await;
    assert_eq!((again.status, again.header("x-cache")), (200, "MISS"));
    assert!(again.body.as_ref() == &object[..]);
    gw.stop().await;
}

/// Hits of a large object are sent from a sealed memory file with sendfile, and are byte-exact
/// whole, ranged and as HEAD, over HTTP/1.1 keep-alive and over HTTP/2 (which copies into its
/// frames instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_hits_go_out_from_sealed_memory_byte_exact() {
    use http_body_util::BodyExt;
    let backend = Backend::start().await;
    let object = large_object();
    backend.put("big.bin", object.clone(), "application/octet-stream").await;
    let gw = Gateway::start(backend.args()).await;
    assert_eq!(get(&gw.url("/big.bin")).await.header("x-cache"), "MISS");
    for _ in 0..3 {
        let hit = get(&gw.url("/big.bin")).await;
        assert_eq!(hit.header("x-cache"), "HIT");
        assert!(hit.body.as_ref() == &object[..], "hit bytes differ");
    }
    assert!(metric(&gw, "gateway_cache_sealed_entries").await >= 1.0);
    let r = request_with(
        "GET",
        &gw.url("/big.bin"),
        &[("range".into(), "bytes=1000000-1999999".into())],
    )
    .await;
    assert_eq!((r.status, r.header("x-cache")), (206, "HIT"));
    assert!(r.body.as_ref() == &object[1_000_000..2_000_000], "range bytes differ");
    let head = crate::util::request("HEAD", &gw.url("/big.bin")).await;
    assert_eq!((head.header("content-length"), head.body.len()), ("4194304", 0));

    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get(gw.url("/big.bin"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = h2.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.as_ref() == &object[..], "HTTP/2 bytes differ");
    }
    gw.stop().await;
}
