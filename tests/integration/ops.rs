//! Operations: a real Prometheus scrapes the admin port; SIGTERM drains a slow download while
//! /readyz fails; a slow-loris client is cut off while others are served; JSON logs carry the
//! request id and never the secret.

use std::path::PathBuf;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{Backend, Binary, Gateway, SECRET_KEY, TIMEOUT, free_port, get, request_with, send, wait_for_status};

/// `$PROMETHEUS`, else `prometheus` on PATH.
fn prometheus() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS") {
        return p.into();
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .expect(
            "prometheus not found: install the Debian package `prometheus` (scripts/test.sh does) or set PROMETHEUS",
        )
}

/// A value from Prometheus' query API: the first sample of `query`, if any.
async fn prom_query(port: u16, query: &str) -> Option<f64> {
    let q = percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
    let url = format!("http://127.0.0.1:{port}/api/v1/query?query={q}");
    let req = http::Request::get(url)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .ok()?;
    // Prometheus may not be listening yet: no answer is None, not a failure.
    let resp = tokio::time::timeout(Duration::from_secs(5), crate::util::client().request(req))
        .await
        .ok()?
        .ok()?;
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Prometheus (Debian's, with a temporary config) scrapes the admin port; the target is up and
/// `gateway_http_requests_total` counts exactly the 7 requests this test made for missing keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_admin_port() {
    let backend = Backend::start().await;
    backend.storage().create_bucket().await.unwrap();
    let gw = Gateway::start(backend.args()).await;
    for i in 0..7 {
        assert_eq!(get(&gw.url(&format!("/missing-{i}.gif"))).await.status, 404);
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: ['{}']\n",
            gw.admin_addr
        ),
    )
    .unwrap();
    let port = free_port();
    let mut prom = tokio::process::Command::new(prometheus())
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus could not be started");

    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let (mut up, mut counted) = (None, None);
    while tokio::time::Instant::now() < deadline {
        up = prom_query(port, "up{job=\"gateway\"}").await;
        counted = prom_query(
            port,
            "sum(gateway_http_requests_total{job=\"gateway\",status_class=\"4xx\"})",
        )
        .await;
        if up == Some(1.0) && counted == Some(7.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = prom.kill().await;
    assert_eq!(up, Some(1.0), "the gateway target is not up in Prometheus");
    assert_eq!(counted, Some(7.0), "Prometheus does not see the 7 requests made");
    gw.stop().await;
}

/// SIGTERM during a download: /readyz fails at once, responses during the shutdown delay say
/// `Connection: close`, the download completes intact, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_download_while_readyz_fails() {
    let backend = Backend::start().await;
    let data = bytes::Bytes::from(vec![9u8; 24 * 1024 * 1024]);
    backend.put("slow.bin", data.clone(), "application/octet-stream").await;
    let cli = backend.serve_cli(&backend.args(), &["--shutdown-delay", "2s"]);
    let mut bin = Binary::spawn(&cli);
    let (addr, admin) = (bin.listen_addr().await, bin.admin_addr().await);
    wait_for_status(&format!("http://{admin}/readyz"), 200).await;

    let resp = send("GET", &format!("http://{addr}/slow.bin")).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = tokio::time::timeout(TIMEOUT, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut received = first.into_data().unwrap().len();

    bin.signal_term();
    wait_for_status(&format!("http://{admin}/readyz"), 503).await;
    // During --shutdown-delay the listener still serves, and tells keep-alive clients to go.
    let during = crate::util::request("HEAD", &format!("http://{addr}/slow.bin")).await;
    assert_eq!((during.status, during.header("connection")), (200, "close"));
    while let Some(frame) = tokio::time::timeout(TIMEOUT, body.frame()).await.unwrap() {
        let chunk = frame.unwrap().into_data().unwrap();
        assert!(chunk.iter().all(|b| *b == 9));
        received += chunk.len();
        tokio::time::sleep(Duration::from_millis(2)).await; // a slow client
    }
    assert_eq!(received, data.len());
    assert_eq!(bin.wait().await, 0, "{}", bin.stderr());
}

/// One HTTP/1.1 exchange on an open connection: the response head (lower-case) and whether the
/// 10-byte body came, or `None` when the connection was closed under the request.
async fn exchange(conn: &mut tokio::net::TcpStream) -> Option<String> {
    conn.write_all(b"GET /ten.txt HTTP/1.1\r\nHost: x\r\n\r\n").await.ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(TIMEOUT, conn.read(&mut buf)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n")
            && got.len() >= end + 4 + 10
        {
            return Some(text[..end].to_ascii_lowercase());
        }
    }
}

/// A rollout with keep-alive clients: connections that were idle when SIGTERM came are not
/// closed under them during the shutdown delay (a request sent on one would fail, as it does
/// for every client that does not retry, wrk or an ingress's upstream pool); their next request
/// is answered with `Connection: close`, and the client leaves. Nothing fails before the
/// listener closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_closes_no_idle_keep_alive_connection_early() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let cli = backend.serve_cli(&backend.args(), &["--shutdown-delay", "3s"]);
    let mut bin = Binary::spawn(&cli);
    let (addr, admin) = (bin.listen_addr().await, bin.admin_addr().await);
    wait_for_status(&format!("http://{admin}/readyz"), 200).await;
    let mut conns = Vec::new();
    for _ in 0..8 {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = exchange(&mut conn).await.expect("served before SIGTERM");
        assert!(!head.contains("connection: close"), "{head}");
        conns.push(conn);
    }
    bin.signal_term();
    wait_for_status(&format!("http://{admin}/readyz"), 503).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, conn) in conns.iter_mut().enumerate() {
        let head = exchange(conn)
            .await
            .unwrap_or_else(|| panic!("idle keep-alive connection {i} was closed during the shutdown delay"));
        assert!(
            head.starts_with("http/1.1 200") && head.contains("connection: close"),
            "{head}"
        );
    }
    assert_eq!(bin.wait().await, 0, "{}", bin.stderr());
}

/// A client sending its headers one byte per second is disconnected after the header read
/// timeout, while another client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_is_cut_off() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let gw = Gateway::start_with(backend.args(), &["--header-read-timeout", "2s"]).await;

    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /ten.txt HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        let mut buf = [0u8; 256];
        loop {
            if slow.write_all(b"a").await.is_err() {
                return "write failed";
            }
            match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return "closed",
                Ok(Ok(_)) => return "answered", // e.g. 408, then close
                Err(_) => {}                    // nothing yet: drip another byte
            }
        }
    });
    assert_eq!(get(&gw.url("/ten.txt")).await.body.as_ref(), b"0123456789");
    let outcome = tokio::time::timeout(TIMEOUT, dripping)
        .await
        .expect("slow client never cut off")
        .unwrap();
    assert!(["closed", "answered", "write failed"].contains(&outcome));
    assert_eq!(get(&gw.url("/ten.txt")).await.status, 200);
    gw.stop().await;
}

/// Requests the HTTP layer refuses before any handler runs (a head over 32 KiB: 431; bytes
/// that are not HTTP: 400) are answered with an `X-Request-Id`, and logged with it in the
/// access log, as every other response is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_request_heads_carry_a_request_id_and_an_access_line() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let cli = backend.serve_cli(&backend.args(), &["--log-format", "json", "--shutdown-delay", "0s"]);
    let mut bin = Binary::spawn(&cli);
    let addr = bin.listen_addr_json().await;
    let refused = async |head: Vec<u8>| {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = conn.write_all(&head).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(TIMEOUT, conn.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer).to_string();
        let id = answer
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no x-request-id in {answer:?}"))
            .trim()
            .to_string();
        (answer.lines().next().unwrap_or_default().to_string(), id)
    };
    let big = format!(
        "GET /ten.txt HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "v".repeat(40 * 1024)
    );
    let (status_431, id_431) = refused(big.into_bytes()).await;
    assert!(status_431.starts_with("HTTP/1.1 431"), "{status_431}");
    let (status_400, id_400) = refused(b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await;
    assert!(status_400.starts_with("HTTP/1.1 400"), "{status_400}");
    assert_eq!((id_431.len(), id_400.len()), (32, 32));
    // The server goes on serving.
    let answer = get(&format!("http://{addr}/missing.txt")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.header("x-request-id").len(), 32);
    // Counted as answered requests, under the method label of the unknown.
    let admin = bin.admin_addr_json().await;
    let metrics = String::from_utf8_lossy(&get(&format!("http://{admin}/metrics")).await.body).to_string();
    assert!(
        metrics.contains("gateway_http_requests_total{method=\"OTHER\",status_class=\"4xx\"} 2"),
        "{metrics}"
    );
    assert_eq!(bin.terminate().await, 0);
    let log = bin.stderr();
    for (id, status) in [(&id_431, 431), (&id_400, 400)] {
        let line = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["target"] == "gateway::access" && v["span"]["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no access line for {id}:\n{log}"));
        assert_eq!(
            (line["status"].as_u64(), line["method"].as_str()),
            (Some(status), Some("-"))
        );
    }
}

/// JSON log lines parse as JSON and carry the request id (taken from the client and echoed);
/// the secret key appears nowhere in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_no_secret() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let cli = backend.serve_cli(&backend.args(), &["--log-format", "json", "--shutdown-delay", "0s"]);
    let mut bin = Binary::spawn(&cli);
    let addr = bin.listen_addr_json().await;
    let id = [("x-request-id".to_string(), "req-abc-123".to_string())];
    let r = request_with("GET", &format!("http://{addr}/gateway.gif"), &id).await;
    assert_eq!((r.status, r.header("x-request-id")), (200, "req-abc-123"));
    let generated = get(&format!("http://{addr}/nope.gif")).await;
    assert_eq!(generated.header("x-request-id").len(), 32);
    assert_eq!(bin.terminate().await, 0);

    let log = bin.stderr();
    let mut access = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["target"] == "gateway::access" && line.contains("req-abc-123") {
            access += 1;
            assert_eq!(v["status"], 200, "{line}");
            assert_eq!(v["cache"], "MISS", "{line}");
        }
    }
    assert_eq!(access, 1, "one access line for the request:\n{log}");
    assert!(
        log.contains(generated.header("x-request-id")),
        "generated id not logged"
    );
    assert!(
        !log.contains(SECRET_KEY) && !bin.stdout().contains(SECRET_KEY),
        "secret leaked"
    );
}

/// Every metric the Grafana dashboard (helm/gateway/dashboards/gateway.json) queries is one the gateway
/// exports, so no panel stays empty because of a renamed metric.
#[tokio::test]
async fn dashboard_queries_exported_metrics() {
    let backend = Backend::start().await;
    let gw = Gateway::start(backend.args()).await;
    get(&gw.url("/x")).await;
    let text = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/gateway/dashboards/gateway.json");
    let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("gateway_").chain(expr.match_indices("process_")) {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used.push(name);
            }
        }
    }
    assert!(used.len() > 10);
    for name in used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(
            families.contains(&base),
            "the dashboard queries {name}, which the gateway does not export"
        );
    }
    gw.stop().await;
}

/// A log reader that stops reading (a stuck container log pipe, a full disk behind it) never
/// holds a response: log lines go through a bounded queue, those beyond it are dropped and
/// counted, and every request is answered. Writing the access log on the request path made
/// every response wait once the pipe's 64 KiB were full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_log_pipe_never_holds_a_response() {
    let backend = Backend::start().await;
    backend.put("small.txt", "x", "text/plain").await;
    let (port, admin) = (free_port(), free_port());
    let mut cli: Vec<String> = ["serve", "--listen", &format!("127.0.0.1:{port}"), "--admin-listen"]
        .map(String::from)
        .into();
    cli.push(format!("127.0.0.1:{admin}"));
    cli.extend(backend.cli_args(&backend.args()));
    // stderr is a pipe this test never reads. The process is killed however the test ends.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = KillOnDrop(
        crate::util::command(&cli)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_status(&format!("http://127.0.0.1:{admin}/healthz"), 200).await;

    // 8 keep-alive clients, 1,500 requests each: far more access-log lines than the pipe and
    // the queue (8,192 lines) hold.
    let answered = tokio::time::timeout(TIMEOUT * 4, async {
        let clients = (0..8).map(|_| async move {
            let mut conn =
                tokio::io::BufReader::new(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
            let mut ok = 0;
            for _ in 0..1500 {
                conn.get_mut()
                    .write_all(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .unwrap();
                let mut head = String::new();
                let mut line = String::new();
                while line != "\r\n" {
                    line.clear();
                    tokio::io::AsyncBufReadExt::read_line(&mut conn, &mut line)
                        .await
                        .unwrap();
                    head.push_str(&line);
                }
                let mut body = [0u8; 1];
                conn.read_exact(&mut body).await.unwrap();
                ok += usize::from(head.starts_with("HTTP/1.1 200") && &body == b"x");
            }
            ok
        });
        futures_util::future::join_all(clients).await.into_iter().sum::<usize>()
    })
    .await
    .expect("requests were held while the log pipe was full");
    assert_eq!(answered, 8 * 1500);
    let m = get(&format!("http://127.0.0.1:{admin}/metrics")).await;
    let text = String::from_utf8_lossy(&m.body);
    let dropped: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("gateway_log_lines_dropped_total "))
        .expect("the dropped-lines counter")
        .parse()
        .unwrap();
    assert!(dropped > 0.0, "nothing was dropped, so nothing was tested");
}
