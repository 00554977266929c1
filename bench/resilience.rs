//! The resilience run: what clients get while the backend hangs, and what memory costs.
//!
//! A fault proxy (the one the integration tests use) sits between each gateway and the
//! backend. Printed, in one run: hit latency (p50/p99) with the backend healthy and while it
//! hangs, time to 504 for a miss, backend connections per 100 concurrent misses during a hang
//! (while the hang is news, and once the circuit is open), peak RSS against `--cache-max-bytes`
//! under concurrent fills of distinct keys, memory per slow streaming client, and, read from
//! the gateway's own memory cgroup (what a pod's limit counts), the herd: N slow readers joining
//! the slow fill of a 14 MiB object.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway::{PutOptions, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cgroup::MemCgroup;
use crate::proxy::{Fault, FaultProxy};
use crate::{Error, gateway, get_once, load_http, proc_status_kib, vm_hwm_kib};

const TIMEOUT_FLAG: &str = "2s";

fn vm_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS")
}

async fn put(storage: &Storage, key: &str, body: Vec<u8>) -> Result<(), Error> {
    let opts = PutOptions {
        content_type: "application/octet-stream",
        ..Default::default()
    };
    storage.put(key, Bytes::from(body), &opts).await?;
    Ok(())
}

/// Status of one GET, or 0 when the connection failed.
async fn status_of(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf)).await {
        Ok(Ok(n)) if n > 12 => std::str::from_utf8(&buf[9..12])
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Runs every resilience measurement against the backend at `backend`.
pub async fn run(bin: &Path, tls: &Path, backend: SocketAddr, storage: &Storage) -> Result<(), Error> {
    println!("\nResilience (fault proxy between gateway and backend; --backend-timeout {TIMEOUT_FLAG}):\n");
    println!("| measurement | figure |");
    println!("|---|---|");

    // Hit latency, healthy and while the backend hangs.
    let proxy = FaultProxy::start(backend).await;
    let endpoint = format!("https://{}", proxy.addr);
    let (gw, addr) = gateway(
        bin,
        tls,
        &endpoint,
        &[
            "--cache-ttl",
            "1s",
            "--cache-stale-while-revalidate",
            "1s",
            "--backend-timeout",
            TIMEOUT_FLAG,
        ],
    )
    .await?;
    get_once(addr, "/gateway.gif").await.ok_or("cannot warm the cache")?;
    let mut healthy = load_http(addr, "/gateway.gif", 16, Duration::from_secs(4)).await;
    proxy.set(Fault::BlackHole);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut hung = load_http(addr, "/gateway.gif", 16, Duration::from_secs(6)).await;
    println!(
        "| cached GIF, backend healthy: p50 / p99 | {:.2} / {:.2} ms ({} requests, {} errors) |",
        healthy.percentile(0.5),
        healthy.percentile(0.99),
        healthy.requests,
        healthy.errors
    );
    println!(
        "| cached GIF past its TTL, backend hung: p50 / p99 | {:.2} / {:.2} ms ({} requests, {} errors) |",
        hung.percentile(0.5),
        hung.percentile(0.99),
        hung.requests,
        hung.errors
    );
    drop(gw);

    // Time to 504 for a miss, and backend connections per 100 concurrent misses.
    proxy.set(Fault::Pass);
    let (gw, addr) = gateway(
        bin,
        tls,
        &endpoint,
        &["--backend-timeout", TIMEOUT_FLAG, "--backend-probe-interval", "1h"],
    )
    .await?;
    proxy.set(Fault::BlackHole);
    let t = Instant::now();
    let status = status_of(addr, "/miss-first").await;
    println!(
        "| miss while the backend hangs: status, time | {status} after {:.2} s |",
        t.elapsed().as_secs_f64()
    );
    for phase in ["while the hang is news", "once the circuit is open"] {
        let before = proxy.accepted();
        let t = Instant::now();
        let statuses: Vec<u16> = futures_util::future::join_all(
            (0..100).map(|i| async move { status_of(addr, &format!("/miss-{phase:.4}-{i}")).await }),
        )
        .await;
        let count = |c: u16| statuses.iter().filter(|s| **s == c).count();
        println!(
            "| 100 concurrent misses {phase}: backend connections, answers | {} connections; {} x 503, {} x 504, others {}; all answered in {:.2} s |",
            proxy.accepted() - before,
            count(503),
            count(504),
            100 - count(503) - count(504),
            t.elapsed().as_secs_f64()
        );
    }
    drop(gw);
    drop(proxy);

    // Peak memory under churn: distinct keys, more than the cache holds, fetched three times.
    // 48 x 4 MiB all at once (the fill budget's worst case), and the workload of issue reports:
    // 300 x 1 MiB by 8 clients.
    let endpoint = format!("https://{backend}");
    churn(bin, tls, &endpoint, storage, 48, 4 << 20, 48).await?;
    churn(bin, tls, &endpoint, storage, 300, 1 << 20, 8).await?;

    // Memory per slow streaming client: 100 clients start a 32 MiB download and stop reading.
    put(storage, "slow.bin", vec![3u8; 32 << 20]).await?;
    let (gw, addr) = gateway(bin, tls, &endpoint, &["--cache-max-bytes", "0"]).await?;
    let slow_cgroup = MemCgroup::enter(gw.0.id());
    get_once(addr, "/gateway.gif").await.ok_or("warm-up failed")?;
    let before = vm_rss_kib(gw.0.id());
    let cg_before = slow_cgroup.as_ref().map_or(0, MemCgroup::usage);
    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /slow.bin HTTP/1.1\r\nHost: bench\r\n\r\n").await?;
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await?;
        clients.push(s);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = vm_rss_kib(gw.0.id());
    println!(
        "| 100 slow clients streaming, RSS growth per client | {:.0} KiB ({:.1} -> {:.1} MiB) |",
        after.saturating_sub(before) as f64 / 100.0,
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    if let Ok(cgroup) = &slow_cgroup {
        println!(
            "| the same, memory cgroup growth per client | {:.0} KiB |",
            cgroup.usage().saturating_sub(cg_before) as f64 / 1024.0 / 100.0
        );
    }
    drop(clients);
    drop(gw);
    drop(slow_cgroup);

    drain(bin, tls, &endpoint).await?;

    herd(bin, tls, backend, storage).await
}

/// `objects` distinct keys of `size` bytes, fetched three times by `clients` concurrent
/// clients through a gateway with `--cache-max-bytes 64MiB`: its peak VmHWM and cgroup peak.
async fn churn(
    bin: &Path,
    tls: &Path,
    endpoint: &str,
    storage: &Storage,
    objects: usize,
    size: usize,
    clients: usize,
) -> Result<(), Error> {
    let prefix = format!("churn-{objects}x{size}");
    for i in 0..objects {
        put(storage, &format!("{prefix}/{i}.bin"), vec![(i % 251) as u8; size]).await?;
    }
    let (gw, addr) = gateway(
        bin,
        tls,
        endpoint,
        &["--cache-max-bytes", "64MiB", "--cache-max-object-bytes", "8MiB"],
    )
    .await?;
    let cgroup = MemCgroup::enter(gw.0.id());
    get_once(addr, &format!("/{prefix}/0.bin"))
        .await
        .ok_or("fill warm-up failed")?;
    let base = vm_hwm_kib(gw.0.id());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (next, prefix) = (&next, &prefix);
    futures_util::future::join_all((0..clients).map(|_| async move {
        loop {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n >= 3 * objects {
                break;
            }
            get_once(addr, &format!("/{prefix}/{}.bin", n % objects)).await;
        }
    }))
    .await;
    let hwm = vm_hwm_kib(gw.0.id());
    let mib = size >> 20;
    println!(
        "| peak RSS, {objects} x {mib} MiB distinct keys fetched 3 times by {clients} clients, --cache-max-bytes 64MiB (fill budget 16 MiB) | {:.1} MiB = {:.2} x cache-max-bytes (after one fill: {:.1} MiB) |",
        hwm as f64 / 1024.0,
        hwm as f64 / 1024.0 / 64.0,
        base as f64 / 1024.0
    );
    match &cgroup {
        Ok(cgroup) => println!(
            "| the same, memory cgroup peak (what a pod's limit counts) | {:.1} MiB = {:.2} x cache-max-bytes, overhead included |",
            cgroup.peak() as f64 / f64::from(1 << 20),
            cgroup.peak() as f64 / f64::from(64 << 20)
        ),
        Err(why) => println!("| the same, memory cgroup peak | not measured: {why} |"),
    }
    drop(gw);
    drop(cgroup);
    Ok(())
}

/// N slow readers joining the slow fill of a 14 MiB object (10 MiB arrived, the rest held by
/// the backend), at the chart's sizing: the growth of the gateway's memory cgroup peak.
async fn herd(bin: &Path, tls: &Path, backend: SocketAddr, storage: &Storage) -> Result<(), Error> {
    put(storage, "herd.bin", vec![7u8; 14 << 20]).await?;
    for readers in [1usize, 10, 100] {
        let proxy = FaultProxy::start(backend).await;
        let endpoint = format!("https://{}", proxy.addr);
        let (gw, addr) = gateway(
            bin,
            tls,
            &endpoint,
            &[
                "--cache-max-bytes",
                "128MiB",
                "--cache-max-object-bytes",
                "16MiB",
                "--bucket-events",
                "off",
            ],
        )
        .await?;
        let cgroup = match MemCgroup::enter(gw.0.id()) {
            Ok(c) => c,
            Err(why) => {
                println!("| herd on a cold 14 MiB object | not measured: {why} |");
                return Ok(());
            }
        };
        get_once(addr, "/gateway.gif").await.ok_or("warm-up failed")?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = cgroup.usage();
        cgroup.reset_peak();
        proxy.set(Fault::PauseAfter(10 << 20));
        let mut clients = Vec::new();
        for i in 0..readers {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(b"GET /herd.bin HTTP/1.1\r\nHost: bench\r\n\r\n").await?;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await?;
            clients.push(s);
            if i == 0 {
                // The fill is under way before the others join.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let peak = cgroup.peak();
        println!(
            "| herd: {readers} slow reader(s) joining the slow fill of a 14 MiB object (cache 128 MiB, max object 16 MiB): memory cgroup peak growth | {:.1} MiB (usage before {:.1} MiB, peak {:.1} MiB; VmHWM {:.1} MiB) |",
            peak.saturating_sub(before) as f64 / f64::from(1 << 20),
            before as f64 / f64::from(1 << 20),
            peak as f64 / f64::from(1 << 20),
            vm_hwm_kib(gw.0.id()) as f64 / 1024.0
        );
        proxy.set(Fault::Pass);
        drop(clients);
        drop(gw);
        drop(cgroup);
        drop(proxy);
    }
    Ok(())
}

/// A rollout under load: 64 keep-alive clients through SIGTERM with `--shutdown-delay 3s`,
/// reconnecting when a response says `Connection: close`, as wrk and ingress pools do; the
/// failed requests before the listener closes.
async fn drain(bin: &Path, tls: &Path, endpoint: &str) -> Result<(), Error> {
    let (gw, addr) = gateway(bin, tls, endpoint, &["--shutdown-delay", "3s"]).await?;
    get_once(addr, "/gateway.gif").await.ok_or("warm-up failed")?;
    let term_at = Instant::now() + Duration::from_millis(500);
    let until = term_at + Duration::from_millis(2500);
    let clients: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, 0u64);
                while Instant::now() < until {
                    let Ok(tcp) = TcpStream::connect(addr).await else {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let Ok((mut send, conn)) =
                        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await
                    else {
                        failed += 1;
                        continue;
                    };
                    tokio::spawn(conn);
                    while Instant::now() < until {
                        let req = http::Request::get("/gateway.gif")
                            .header("host", "bench")
                            .body(http_body_util::Empty::<Bytes>::new())
                            .unwrap_or_default();
                        match send.send_request(req).await {
                            Ok(resp) => {
                                let close = resp
                                    .headers()
                                    .get(http::header::CONNECTION)
                                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                                match http_body_util::BodyExt::collect(resp.into_body()).await {
                                    Ok(_) => ok += 1,
                                    Err(_) => failed += 1,
                                }
                                if close {
                                    break;
                                }
                            }
                            Err(_) => {
                                failed += 1;
                                break;
                            }
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    tokio::time::sleep_until(tokio::time::Instant::from_std(term_at)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &gw.0.id().to_string()])
        .status();
    let (mut ok, mut failed) = (0, 0);
    for c in clients {
        let (o, f) = c.await.unwrap_or((0, 0));
        ok += o;
        failed += f;
    }
    println!(
        "| 64 keep-alive clients through SIGTERM (--shutdown-delay 3s), 0.5 s before to 2.5 s after: requests, failed | {ok} answered, {failed} failed |"
    );
    drop(gw);
    Ok(())
}
