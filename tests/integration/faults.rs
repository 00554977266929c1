//! Fault injection: a controllable proxy ([`crate::proxy::FaultProxy`]) between the gateway and
//! the embedded mTLS backend hangs, resets or kills the backend while clients keep asking, and
//! hostile or idle clients hold connections. The assertions are what clients see; time bounds
//! are generous (seconds), the precise figures are the benchmark's (`bench/`).

use std::time::{Duration, Instant};

use gateway::cli::BackendArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proxy::{Fault, FaultProxy};
use crate::util::{Backend, Gateway, eventually, get, wait_for_status};

/// Backend flags that go through `proxy`, with this `--backend-timeout`.
fn via(backend: &Backend, proxy: &FaultProxy, timeout: Duration) -> BackendArgs {
    BackendArgs {
        backend_timeout: timeout,
        ..backend.args_via(proxy.addr)
    }
}

/// A hung backend does not make the cached object slow: past its TTL it is served at once
/// (stale-while-revalidate), and once a revalidation has failed, at once again (the failure
/// is remembered) until the stale-if-error window ends.
#[tokio::test]
async fn cached_object_stays_fast_while_the_backend_hangs() {
    let backend = Backend::start().await;
    backend.put("page.txt", "cached", "text/plain").await;
    let proxy = FaultProxy::start(backend.addr).await;
    let gw = Gateway::start_with(
        via(&backend, &proxy, Duration::from_secs(6)),
        &[
            "--cache-ttl",
            "1s",
            "--cache-stale-while-revalidate",
            "2s",
            "--circuit-breaker-failures",
            "0",
        ],
    )
    .await;
    assert_eq!(get(&gw.url("/page.txt")).await.header("x-cache"), "MISS");
    proxy.set(Fault::BlackHole);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Within the stale-while-revalidate window: at once, while one revalidation hangs.
    let t = Instant::now();
    let r = get(&gw.url("/page.txt")).await;
    assert_eq!(
        (r.status, r.header("x-cache"), r.body.as_ref()),
        (200, "UPDATING", &b"cached"[..])
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // After the window the hung revalidation fails (6 s); from then on, stale at once.
    eventually("revalidation failure recorded", async || {
        get(&gw.url("/page.txt")).await.header("x-cache") == "STALE"
    })
    .await;
    assert!(gw.metric("gateway_cache_revalidations_total{outcome=\"error\"}").await >= 1.0);
    for _ in 0..3 {
        let t = Instant::now();
        let r = get(&gw.url("/page.txt")).await;
        assert_eq!((r.status, r.header("x-cache")), (200, "STALE"));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
    gw.stop().await;
}

/// A miss during a hang gets its 504 after one `--backend-timeout`: the timed-out attempt is
/// not retried (one connection reaches the backend per miss).
#[tokio::test]
async fn a_timed_out_miss_is_one_attempt() {
    let backend = Backend::start().await;
    backend.storage().create_bucket().await.unwrap();
    let proxy = FaultProxy::start(backend.addr).await;
    proxy.set(Fault::BlackHole);
    let gw = Gateway::start_with(
        via(&backend, &proxy, Duration::from_secs(2)),
        // No change subscription: only the miss may connect.
        &[
            "--circuit-breaker-failures",
            "0",
            "--backend-probe-interval",
            "1h",
            "--bucket-events",
            "off",
        ],
    )
    .await;
    // The startup probe hangs too; wait until it has given up.
    eventually("the probe gave up", async || {
        String::from_utf8_lossy(&get(&gw.admin_url("/readyz")).await.body).contains("down (timeout)")
    })
    .await;
    let before = proxy.accepted();
    let r = get(&gw.url("/missing.txt")).await;
    assert_eq!(r.status, 504);
    assert_eq!(proxy.accepted() - before, 1, "one attempt per miss");
    gw.stop().await;
}

/// A herd of 100 misses of distinct keys while the backend hangs, after a miss has already
/// timed out (the circuit not open): at most a handful of calls reach the backend, and the rest
/// answer 503 with Retry-After at once instead of each waiting out the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_of_misses_during_a_hang_costs_a_few_backend_calls() {
    let backend = Backend::start().await;
    backend.storage().create_bucket().await.unwrap();
    let proxy = FaultProxy::start(backend.addr).await;
    let gw = Gateway::start_with(
        via(&backend, &proxy, Duration::from_secs(2)),
        &[
            "--circuit-breaker-failures",
            "0",
            "--backend-probe-interval",
            "1h",
            "--bucket-events",
            "off",
        ],
    )
    .await;
    gw.ready().await;
    proxy.set(Fault::BlackHole);
    assert_eq!(get(&gw.url("/first.txt")).await.status, 504);
    let before = proxy.accepted();
    let started = Instant::now();
    let herd: Vec<_> = (0..100)
        .map(|i| {
            let url = gw.url(&format!("/herd-{i}.txt"));
            tokio::spawn(async move {
                let t = Instant::now();
                let r = get(&url).await;
                (r.status, r.header("retry-after").to_string(), t.elapsed())
            })
        })
        .collect();
    let mut refused = 0;
    for h in herd {
        let (status, retry_after, took) = h.await.unwrap();
        if status == 503 {
            refused += 1;
            assert!(
                retry_after.parse::<u64>().is_ok_and(|s| s >= 1),
                "503 without Retry-After"
            );
            assert!(took < Duration::from_secs(1), "a refused miss waited {took:?}");
        } else {
            assert_eq!(status, 504, "a miss that went out times out");
        }
    }
    let calls = proxy.accepted() - before;
    assert!(calls <= 20, "{calls} backend calls for 100 misses during a hang");
    assert!(refused >= 80, "only {refused} of 100 refused at once");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(
        gw.metric("gateway_s3_requests_total{operation=\"GetObject\",outcome=\"saturated\"}")
            .await
            >= 80.0
    );
    gw.stop().await;
}

/// After consecutive failures the circuit opens: misses answer 503 with Retry-After without
/// calling the backend; when it answers again, the background probe closes the circuit.
#[tokio::test]
async fn circuit_opens_then_closes() {
    let backend = Backend::start().await;
    backend.put("a.txt", "a", "text/plain").await;
    let proxy = FaultProxy::start(backend.addr).await;
    let gw = Gateway::start_with(
        via(&backend, &proxy, Duration::from_secs(5)),
        &[
            "--circuit-breaker-failures",
            "3",
            "--circuit-breaker-open",
            "60s",
            "--backend-probe-interval",
            "1s",
            "--cache-max-bytes",
            "0",
        ],
    )
    .await;
    wait_for_status(&gw.admin_url("/readyz"), 200).await;
    proxy.set(Fault::Reset);
    eventually("circuit open", async || {
        let _ = get(&gw.url("/a.txt")).await;
        gw.metric("gateway_backend_circuit_open").await == 1.0
    })
    .await;
    let t = Instant::now();
    let r = get(&gw.url("/a.txt")).await;
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1, "{:?}", r.headers);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        gw.metric("gateway_s3_requests_total{operation=\"GetObject\",outcome=\"circuit_open\"}")
            .await
            >= 1.0
    );
    // Readiness is not tied to the backend: the pod stays in the Service.
    assert_eq!(get(&gw.admin_url("/readyz")).await.status, 200);

    proxy.set(Fault::Pass);
    eventually("circuit closed by the probe", async || {
        gw.metric("gateway_backend_circuit_open").await == 0.0
    })
    .await;
    assert_eq!(get(&gw.url("/a.txt")).await.status, 200);
    gw.stop().await;
}

/// A backend outage does not fail `/readyz` (it would take every pod out of the Service);
/// `gateway_backend_up` and the `/readyz` body follow the backend down and back.
#[tokio::test]
async fn readiness_survives_a_backend_outage() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let mut proxy = FaultProxy::start(backend.addr).await;
    let gw = Gateway::start_with(
        via(&backend, &proxy, Duration::from_secs(5)),
        &["--backend-probe-interval", "1s"],
    )
    .await;
    wait_for_status(&gw.admin_url("/readyz"), 200).await;
    assert_eq!(get(&gw.url("/gateway.gif")).await.status, 200);
    assert_eq!(gw.metric("gateway_backend_up").await, 1.0);

    proxy.kill();
    eventually("backend down", async || gw.metric("gateway_backend_up").await == 0.0).await;
    let ready = get(&gw.admin_url("/readyz")).await;
    assert_eq!(ready.status, 200);
    assert!(String::from_utf8_lossy(&ready.body).contains("backend: down"));
    // The cached GIF is still served.
    assert_eq!(get(&gw.url("/gateway.gif")).await.status, 200);

    proxy.revive().await;
    eventually("backend up", async || gw.metric("gateway_backend_up").await == 1.0).await;
    gw.stop().await;
}

/// Reads until the server closes the connection; true if it did within the test timeout.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            return true;
        }
    }
    false
}

/// Idle sockets are closed: one that never sends, one that sent only the HTTP/2 preface, and
/// a keep-alive connection after its request. So `--max-connections` idle sockets cannot lock
/// every client out.
#[tokio::test]
async fn idle_connections_are_closed() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start_with(
        backend.args(),
        &[
            "--header-read-timeout",
            "1s",
            "--idle-timeout",
            "1s",
            "--max-connections",
            "3",
        ],
    )
    .await;
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    let mut preface = TcpStream::connect(gw.addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut keep_alive = TcpStream::connect(gw.addr).await.unwrap();
    keep_alive
        .write_all(b"GET /healthz-missing HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_server(&mut silent).await, "silent socket left open");
    assert!(
        closed_by_server(&mut preface).await,
        "HTTP/2 preface-only socket left open"
    );
    assert!(closed_by_server(&mut keep_alive).await, "idle keep-alive left open");
    // The slots are free again.
    assert_eq!(get(&gw.url("/gateway.gif")).await.status, 200);
    gw.stop().await;
}

/// HTTP/1 keep-alive follows `--idle-timeout`, not `--header-read-timeout`: a connection idle
/// past the header timeout still takes its next request; a head that starts to arrive and
/// does not finish is cut after the header timeout, however long the idle timeout is.
#[tokio::test]
async fn http1_keep_alive_follows_the_idle_timeout_and_a_slow_head_the_header_timeout() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let gw = Gateway::start_with(
        backend.args(),
        &["--header-read-timeout", "1s", "--idle-timeout", "30s"],
    )
    .await;
    let request = b"GET /ten.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Idle for three header timeouts: kept (before, hyper's header timer closed it here).
    tokio::time::sleep(Duration::from_secs(3)).await;
    conn.write_all(request).await.unwrap();
    let n = tokio::time::timeout(crate::util::TIMEOUT, conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "the idle keep-alive connection was closed"
    );
    // A head that begins and stalls: cut long before the 30 s idle timeout.
    conn.write_all(b"GET /ten.txt HTTP/1.1\r\nHo").await.unwrap();
    let started = Instant::now();
    assert!(closed_by_server(&mut conn).await, "the stalled head was never cut");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "cut by the idle timeout, not the header timeout"
    );
    gw.stop().await;
}

/// GETs `path` over an HTTP/2 connection of its own whose client PINGs every 100 ms (hyper's
/// keep-alive, idle or not); returns the response (its body unread), the connection's task,
/// which ends when the server closes the connection, and the request handle, which keeps the
/// client from closing the connection itself while it is held.
async fn pinging_http2_get(
    gw: &Gateway,
    path: &str,
) -> (
    http::Response<hyper::body::Incoming>,
    tokio::task::JoinHandle<hyper::Result<()>>,
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
) {
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_while_idle(true)
        .handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let req = http::Request::get(gw.url(path))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    (send.send_request(req).await.unwrap(), driver, send)
}

/// An HTTP/2 client that, after one request, sends only PINGs (hyper's keep-alive, every
/// 100 ms): PINGs are not requests, so the connection is closed after `--idle-timeout`
/// like any idle one and does not hold a connection slot forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_sending_only_pings_is_closed_when_idle() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start_with(backend.args(), &["--idle-timeout", "1s"]).await;
    let (resp, driver, _send) = pinging_http2_get(&gw, "/gateway.gif").await;
    assert_eq!(resp.status().as_u16(), 200);
    drop(resp);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("a PING-only HTTP/2 connection was kept open")
        .unwrap()
        .ok();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the idle timeout"
    );
    gw.stop().await;
}

/// A client that stops reading a large response: after `--send-timeout` without progress
/// the connection is closed, the download counted as aborted, and the backend stream it held
/// (the object streams uncached) released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_after_the_send_timeout() {
    let backend = Backend::start().await;
    backend
        .put("big.bin", vec![5u8; 16 << 20], "application/octet-stream")
        .await;
    let gw = Gateway::start_with(backend.args(), &["--send-timeout", "1s", "--cache-max-bytes", "0"]).await;
    let mut stalled = TcpStream::connect(gw.addr).await.unwrap();
    stalled
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read the head and a little, then nothing: the socket buffers fill and writes stop.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(crate::util::TIMEOUT, stalled.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.metric("gateway_http_responses_total{outcome=\"aborted\"}").await < 1.0 {
        assert!(Instant::now() < deadline, "a stalled download was never cut");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server closed the socket: what the kernel buffered drains, then end of stream.
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the stalled connection was not closed");
    gw.stop().await;
}

/// An HTTP/2 client that reads its connection (it answers the server's PINGs and sends its
/// own, which the server acknowledges) but never reads a large response, so the stream's
/// flow-control window stays shut: PING traffic is not the response's progress, and the
/// connection is cut after `--send-timeout` like an HTTP/1 client that stopped reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_given_no_window_is_cut_although_pings_flow() {
    let backend = Backend::start().await;
    backend
        .put("big.bin", vec![5u8; 4 << 20], "application/octet-stream")
        .await;
    let gw = Gateway::start_with(
        backend.args(),
        &[
            "--send-timeout",
            "1s",
            "--http2-keepalive-interval",
            "200ms",
            "--cache-max-bytes",
            "0",
        ],
    )
    .await;
    // The head arrives; the body is never read, so no window is ever given back.
    let (resp, driver, _send) = pinging_http2_get(&gw, "/big.bin").await;
    assert_eq!(resp.status().as_u16(), 200);
    eventually("the stalled HTTP/2 download is cut", async || {
        gw.metric("gateway_http_responses_total{outcome=\"aborted\"}").await >= 1.0
    })
    .await;
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("the connection of the stalled stream stayed open")
        .unwrap()
        .ok();
    drop(resp);
    gw.stop().await;
}

/// Backend connections have a maximum age: with `--backend-connection-max-age 1s`, misses
/// spread over three seconds after the first open new connections (every call succeeds),
/// while with the default five minutes they reuse the first miss's connection.
#[tokio::test]
async fn backend_connections_are_replaced_after_their_maximum_age() {
    let backend = Backend::start().await;
    for i in 0..8 {
        backend.put(&format!("k{i}.txt"), "x", "text/plain").await;
    }
    let proxy = FaultProxy::start(backend.addr).await;
    for (max_age, more_than_one) in [("1s", true), ("5m", false)] {
        let gw = Gateway::start_with(
            via(&backend, &proxy, Duration::from_secs(10)),
            &[
                "--backend-connection-max-age",
                max_age,
                "--cache-max-bytes",
                "0",
                "--backend-probe-interval",
                "1h",
                "--bucket-events",
                "off",
            ],
        )
        .await;
        // The first miss opens a connection (others may be opening for the startup probe).
        assert_eq!(get(&gw.url("/k0.txt")).await.status, 200);
        let before = proxy.accepted();
        for i in 1..8 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(get(&gw.url(&format!("/k{i}.txt"))).await.status, 200);
        }
        let opened = proxy.accepted() - before;
        assert_eq!(opened > 1, more_than_one, "max age {max_age}: {opened} new connections");
        gw.stop().await;
    }
}

/// Sends raw bytes and returns the status line's code.
async fn raw_status(gw: &Gateway, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(crate::util::TIMEOUT, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// HTTP/1.1 without a Host, or with two, is 400; a key with a control character is 400.
// README: HTTP/1.1 without `Host`, or with two
#[tokio::test]
async fn malformed_requests_are_4xx() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let gw = Gateway::start(backend.args()).await;
    assert_eq!(raw_status(&gw, b"GET /gateway.gif HTTP/1.1\r\n\r\n").await, 400);
    assert_eq!(
        raw_status(&gw, b"GET /gateway.gif HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").await,
        400
    );
    assert_eq!(
        raw_status(
            &gw,
            b"GET /gateway.gif HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        .await,
        200
    );
    assert_eq!(get(&gw.url("/a%0Ab.gif")).await.status, 400);
    assert_eq!(get(&gw.url("/a%1Bb.gif")).await.status, 400);
    gw.stop().await;
}

/// A client that goes away mid-download: the in-flight gauge returns to 0 and the response
/// is counted as aborted, with the bytes actually sent.
#[tokio::test]
async fn aborted_downloads_are_accounted() {
    let backend = Backend::start().await;
    backend
        .put("big.bin", vec![7u8; 8 << 20], "application/octet-stream")
        .await;
    let gw = Gateway::start_with(backend.args(), &["--cache-max-bytes", "0"]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = tokio::time::timeout(crate::util::TIMEOUT, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The download, and the /metrics request that reads the gauge.
    assert_eq!(gw.metric("gateway_http_requests_in_flight").await, 2.0);
    crate::proxy::abort(s);
    eventually("the abort is counted", async || {
        gw.metric("gateway_http_responses_total{outcome=\"aborted\"}").await == 1.0
    })
    .await;
    assert_eq!(gw.metric("gateway_http_requests_in_flight").await, 1.0);
    let sent = gw.metric("gateway_http_response_bytes_total").await;
    assert!(sent < (8 << 20) as f64, "only what was sent is counted: {sent}");
    gw.stop().await;
}

/// A slow backend within the timeout still serves; one that stops mid-body fails that
/// response after the stall grace (the client sees a short body, never a complete-looking
/// one), and it is counted as an error.
#[tokio::test]
async fn slow_backend_serves_stalled_body_fails() {
    let backend = Backend::start().await;
    let size = 2 << 20;
    backend
        .put("big.bin", vec![1u8; size], "application/octet-stream")
        .await;
    let proxy = FaultProxy::start(backend.addr).await;
    let gw = Gateway::start_with(
        via(&backend, &proxy, Duration::from_secs(2)),
        &["--cache-max-bytes", "0", "--backend-probe-interval", "1h"],
    )
    .await;
    proxy.set(Fault::Delay(Duration::from_millis(20)));
    let r = get(&gw.url("/big.bin")).await;
    assert_eq!((r.status, r.body.len()), (200, size));

    proxy.set(Fault::StallAfter(300_000));
    let resp = crate::util::send("GET", &gw.url("/big.bin")).await;
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(crate::util::TIMEOUT, http_body_util::BodyExt::collect(resp.into_body()))
        .await
        .expect("a stalled body must end");
    assert!(body.is_err(), "a truncated body must not look complete");
    eventually("the failure is counted", async || {
        gw.metric("gateway_http_responses_total{outcome=\"error\"}").await == 1.0
    })
    .await;
    gw.stop().await;
}
