//! Benchmark: the gateway against the servers people would use instead, on this machine.
//!
//! Run with `bench/run.sh` (it installs nginx, builds in release mode and runs this). It starts:
//! - the embedded S3 backend (s3s-fs, mTLS + SigV4) in this process, holding the seed GIF;
//! - `gateway serve` with the cache (the hit path) and with `--cache-max-bytes 0` (every
//!   request streamed from the backend), as separate processes from `target/release/gateway`;
//! - nginx serving the same GIF from local disk with sendfile: the practical upper bound.
//!
//! One load generator (hyper, HTTP/1.1 keep-alive, `CONNS` connections) measures every target
//! in alternating rounds, so each figure is a ratio to nginx measured in the same run and
//! survives a noisy machine. The backend's own GET is measured through aws-sdk-s3 (TLS with a
//! client certificate, SigV4), as the gateway reaches it. It then streams a 256 MiB object 8
//! times through a fresh gateway (cache bypass) and reports MB/s and the gateway's peak RSS, and
//! counts the backend GetObjects behind 10,000 hits of one key.
//!
//! Environment: `BENCH_SECONDS` (per target, default 10), `BENCH_CONNS` (default 64),
//! `GATEWAY_BIN` (default `target/release/gateway`), `NGINX` (default `nginx`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway::backend::BackendConfig;
use gateway::certs::DevPki;
use gateway::embedded::{EmbeddedS3, EmbeddedS3Config};
use gateway::metrics::Metrics;
use gateway::storage::{PutOptions, Retries, Storage};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

// The integration tests' fault proxy; they use the rest of it.
#[allow(dead_code)]
#[path = "../tests/integration/proxy.rs"]
mod proxy;
mod resilience;

const ACCESS_KEY: &str = "benchaccess";
const SECRET_KEY: &str = "bench-secret-not-for-production";
const BUCKET: &str = "bench";
const GIF_KEY: &str = "gateway.gif";
const BIG_KEY: &str = "big.bin";
const BIG_SIZE: usize = 256 << 20;
const ROUNDS: u32 = 3;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Requests, bytes and latencies of one target.
#[derive(Default)]
struct Stats {
    requests: u64,
    errors: u64,
    bytes: u64,
    elapsed: Duration,
    micros: Vec<u32>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
        self.micros.extend(other.micros);
    }
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&mut self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        self.micros.sort_unstable();
        let i = ((self.micros.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.micros[i]) / 1000.0
    }
}

/// Keeps `conns` HTTP/1.1 connections busy with `GET path` for `dur`.
async fn load_http(addr: SocketAddr, path: &'static str, conns: usize, dur: Duration) -> Stats {
    let deadline = Instant::now() + dur;
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = Stats::default();
                let Ok(tcp) = TcpStream::connect(addr).await else {
                    s.errors += 1;
                    return s;
                };
                let _ = tcp.set_nodelay(true);
                let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await else {
                    s.errors += 1;
                    return s;
                };
                tokio::spawn(conn);
                while Instant::now() < deadline {
                    let req = http::Request::get(path)
                        .header("host", "bench")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let t = Instant::now();
                    match send.send_request(req).await {
                        Ok(resp) if resp.status().is_success() => match resp.into_body().collect().await {
                            Ok(body) => {
                                s.bytes += body.to_bytes().len() as u64;
                                s.requests += 1;
                                s.micros.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            }
                            Err(_) => s.errors += 1,
                        },
                        _ => {
                            s.errors += 1;
                            break;
                        }
                    }
                }
                s
            })
        })
        .collect();
    collect(tasks, start).await
}

/// Keeps `conns` concurrent GetObjects of `key` going against the backend for `dur`.
async fn load_s3(storage: Storage, key: &'static str, conns: usize, dur: Duration) -> Stats {
    let deadline = Instant::now() + dur;
    let start = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut s = Stats::default();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match storage.get(key).await {
                        Ok(obj) => match obj.body.collect().await {
                            Ok(body) => {
                                s.bytes += body.to_bytes().len() as u64;
                                s.requests += 1;
                                s.micros.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                            }
                            Err(_) => s.errors += 1,
                        },
                        Err(_) => s.errors += 1,
                    }
                }
                s
            })
        })
        .collect();
    collect(tasks, start).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Stats>>, start: Instant) -> Stats {
    let mut total = Stats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            total.merge(s);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One GET, body streamed and counted (never held): `Some(bytes)` on a 2xx.
async fn get_once(addr: SocketAddr, path: &str) -> Option<u64> {
    let tcp = TcpStream::connect(addr).await.ok()?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "bench")
        .body(Empty::<Bytes>::new())
        .ok()?;
    let resp = send.send_request(req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            n += data.len() as u64;
        }
    }
    Some(n)
}

async fn wait_http(addr: SocketAddr, path: &'static str) -> Result<(), Error> {
    for _ in 0..200 {
        if get_once(addr, path).await.is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{addr}{path} never answered").into())
}

/// Starts `gateway serve` against the backend with extra flags.
async fn gateway(bin: &Path, tls: &Path, endpoint: &str, extra: &[&str]) -> Result<(Proc, SocketAddr), Error> {
    let addr = free_addr();
    let child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            // The operational endpoints on the same port: /healthz and /metrics are read here.
            "--admin-listen",
            &addr.to_string(),
            "--endpoint",
            endpoint,
            "--bucket",
            BUCKET,
        ])
        .args([
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "--log-level",
            "warn",
        ])
        .arg("--ca-cert")
        .arg(tls.join("ca.pem"))
        .arg("--client-cert")
        .arg(tls.join("client.pem"))
        .arg("--client-key")
        .arg(tls.join("client-key.pem"))
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e} (build it: cargo build --release)", bin.display()))?;
    let proc = Proc(child);
    wait_http(addr, "/healthz").await?;
    Ok((proc, addr))
}

/// A `kB` field of `/proc/PID/status`, e.g. `VmHWM` (peak RSS) or `VmRSS`.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)
                    .and_then(|v| v.strip_prefix(':'))
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn vm_hwm_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM")
}

async fn gateway_gets(addr: SocketAddr) -> f64 {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return f64::NAN;
    };
    let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await else {
        return f64::NAN;
    };
    tokio::spawn(conn);
    let req = http::Request::get("/metrics")
        .header("host", "bench")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let Ok(resp) = send.send_request(req).await else {
        return f64::NAN;
    };
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("gateway_s3_requests_total{operation=\"GetObject\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let conns: usize = std::env::var("BENCH_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let bin = PathBuf::from(std::env::var("GATEWAY_BIN").unwrap_or_else(|_| "target/release/gateway".into()));
    let nginx = std::env::var("NGINX").unwrap_or_else(|_| "nginx".into());
    let gif = Bytes::from_static(gateway::seed::BUNDLED);

    // The backend, with the GIF.
    let dir = tempfile::tempdir()?;
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(dir.path().join("data"))?;
    let pki = DevPki::generate(&["127.0.0.1".into()], "gateway", 1)?;
    pki.write_to(&tls, false)?;
    let backend = EmbeddedS3::start(
        TcpListener::bind("127.0.0.1:0").await?,
        EmbeddedS3Config {
            root: &dir.path().join("data"),
            client_ca_pem: &pki.ca_cert,
            server_cert_pem: &pki.server_cert,
            server_key_pem: &pki.server_key,
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
        },
    )?;
    let endpoint = backend.endpoint();
    let cfg = BackendConfig::from_args(&gateway::demo::backend_args(
        endpoint.clone(),
        BUCKET,
        &tls,
        ACCESS_KEY,
        SECRET_KEY,
    ))?;
    let storage = Storage::new(&cfg, Arc::new(Metrics::new()), Retries::Serve);
    storage.create_bucket().await?;
    let opts = PutOptions {
        content_type: "image/gif",
        ..Default::default()
    };
    storage.put(GIF_KEY, gif.clone(), &opts).await?;

    // nginx with the same file on local disk.
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join(GIF_KEY), &gif)?;
    let nginx_addr = free_addr();
    let conf = format!(
        "worker_processes auto;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 10000000;\n\
         client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
         server {{ listen {a}; root {w}; }} }}\n",
        d = dir.path().display(),
        a = nginx_addr,
        w = www.display()
    );
    std::fs::write(dir.path().join("nginx.conf"), conf)?;
    let _nginx = Proc(
        Command::new(&nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {nginx}: {e} (install the Debian package nginx)"))?,
    );
    wait_http(nginx_addr, "/gateway.gif").await?;

    let (_hit_gw, hit_addr) = gateway(&bin, &tls, &endpoint, &[]).await?;
    let (_miss_gw, miss_addr) = gateway(&bin, &tls, &endpoint, &["--cache-max-bytes", "0"]).await?;
    get_once(hit_addr, "/gateway.gif")
        .await
        .ok_or("cannot warm the cache")?;

    let names = [
        "nginx (sendfile, local disk)",
        "gateway, cache hit",
        "gateway, cache off",
        "backend GetObject (s3s-fs)",
    ];
    let mut stats: Vec<Stats> = (0..4).map(|_| Stats::default()).collect();
    let slice = Duration::from_secs(secs) / ROUNDS;
    for round in 0..ROUNDS {
        eprintln!(
            "bench: round {}/{ROUNDS} ({conns} connections, {slice:?} per target)",
            round + 1
        );
        stats[0].merge(load_http(nginx_addr, "/gateway.gif", conns, slice).await);
        stats[1].merge(load_http(hit_addr, "/gateway.gif", conns, slice).await);
        stats[2].merge(load_http(miss_addr, "/gateway.gif", conns, slice).await);
        stats[3].merge(load_s3(storage.clone(), GIF_KEY, conns, slice).await);
    }

    let (nginx_rps, nginx_p99) = (stats[0].rps(), stats[0].percentile(0.99));
    println!(
        "\nGIF ({} bytes), {conns} connections, {secs} s per target in {ROUNDS} alternating rounds:\n",
        gif.len()
    );
    println!("| target | req/s | MB/s | p50 ms | p99 ms | req/s vs nginx | p99 vs nginx | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, s) in names.iter().zip(stats.iter_mut()) {
        let (rps, mbs) = (s.rps(), s.bytes as f64 / s.elapsed.as_secs_f64() / 1e6);
        let (p50, p99) = (s.percentile(0.50), s.percentile(0.99));
        println!(
            "| {name} | {rps:.0} | {mbs:.0} | {p50:.2} | {p99:.2} | {:.2}x | {:.2}x | {} |",
            rps / nginx_rps,
            p99 / nginx_p99,
            s.errors
        );
    }
    drop((_hit_gw, _miss_gw));

    // 10,000 hits of one hot key: how many GetObjects reach the backend?
    let (_gw, addr) = gateway(&bin, &tls, &endpoint, &[]).await?;
    let before = gateway_gets(addr).await;
    let mut served = 0u64;
    while served < 10_000 {
        let s = load_http(addr, "/gateway.gif", 50, Duration::from_millis(100)).await;
        served += s.requests;
    }
    let gets = gateway_gets(addr).await - before;
    println!("\nBackend GetObjects for {served} requests of one hot key: {gets}");
    drop(_gw);

    // 256 MiB streamed 8 times (over --cache-max-object-bytes: bypass) through a fresh gateway.
    let big: Vec<u8> = (0..BIG_SIZE).map(|i| (i % 251) as u8).collect();
    storage
        .put(
            BIG_KEY,
            Bytes::from(big),
            &PutOptions {
                content_type: "application/octet-stream",
                ..Default::default()
            },
        )
        .await?;
    let (gw, addr) = gateway(&bin, &tls, &endpoint, &[]).await?;
    let start = Instant::now();
    let mut bytes = 0u64;
    for _ in 0..8 {
        bytes += get_once(addr, "/big.bin").await.ok_or("GET /big.bin failed")?;
    }
    let secs = start.elapsed().as_secs_f64();
    let hwm = vm_hwm_kib(gw.0.id());
    println!(
        "256 MiB object streamed 8 times: {:.0} MB/s, {} MiB in all; gateway peak RSS (VmHWM) {:.1} MiB",
        bytes as f64 / secs / 1e6,
        bytes >> 20,
        hwm as f64 / 1024.0
    );
    drop(gw);
    resilience::run(&bin, &tls, backend.addr(), &storage).await?;
    backend.stop().await;
    Ok(())
}
