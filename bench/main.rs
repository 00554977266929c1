//! Benchmark: the gateway against the servers people would use instead, on this machine.
//!
//! Run with `bench/run.sh` (it installs nginx, builds Garage once when missing, builds in
//! release mode and runs this). Against a production S3 store, Garage behind an nginx `stream`
//! TLS front that requires client certificates (`store.rs`), it measures in one run, in
//! alternating rounds so each figure is a ratio taken on the same noisy machine:
//! - the GIF from nginx-static (sendfile from local disk: the practical upper bound), from
//!   nginx `proxy_cache` in front of the store, and from `gateway serve` as a cache hit and with
//!   the cache off: req/s, p50, p99 and server CPU per request (utime + stime from `/proc`, the
//!   steadiest figure on 2 shared cores), each also against nginx-static; the load comes from
//!   `wrk` (installed by run.sh), else from this process;
//! - the time to first byte of a 16 MiB cache miss, against a direct mTLS + SigV4 client
//!   (curl) of the store;
//! - compression of a 300 KiB script: the CPU one compression costs per coding, the size it
//!   gives, and the CPU per hit of each coding against the object sent as stored;
//! - a 256 MiB object streamed through the gateway against that direct client, and the
//!   gateway's peak RSS;
//! - the disk tier (`disk.rs`): a 256 MiB object warm from disk against nginx `proxy_cache`, a
//!   seek into a cold 1 GiB object against a direct ranged GetObject; and small hits with the
//!   access log on and off.
//!
//! Then, against the embedded backend (s3s-fs), which can be made to misbehave: backend calls
//! behind 10,000 hits of one key, and the resilience run (`resilience.rs`).
//!
//! Environment: `BENCH_ONLY` (some of
//! `hits,compression,ttfb,stream,disk,accesslog,hotkey,resilience`; default all; Garage is
//! started only for the first six),
//! `BENCH_SECONDS` (per target, default 10), `BENCH_CONNS` (default 64),
//! `GATEWAY_BIN` (default `target/release/gateway`), `NGINX` (default `nginx`), `GARAGE`
//! (default `garage`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use embedded_s3::{EmbeddedS3, EmbeddedS3Config};
use gateway::BackendConfig;
use gateway::DevPki;
use gateway::Metrics;
use gateway::{PutOptions, Retries, Storage};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

// The integration tests' memory cgroup, for memory as a pod's limit counts it.
#[path = "../tests/integration/cgroup.rs"]
mod cgroup;
// The integration tests' fault proxy; they use the rest of it.
mod disk;
#[allow(dead_code)]
#[path = "../tests/integration/proxy.rs"]
mod proxy;
mod resilience;
mod store;

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
    /// Server CPU time (utime + stime) while this load ran, in seconds.
    cpu: f64,
    /// Per-round (p50, p99) in ms, when `wrk` measured the latencies.
    wrk_percentiles: Vec<(f64, f64)>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.elapsed += other.elapsed;
        self.micros.extend(other.micros);
        self.cpu += other.cpu;
        self.wrk_percentiles.extend(other.wrk_percentiles);
    }
    /// Server CPU milliseconds per request.
    fn cpu_ms(&self) -> f64 {
        self.cpu * 1000.0 / self.requests as f64
    }
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&mut self, p: f64) -> f64 {
        if self.micros.is_empty() {
            // wrk's per-round figures (p50 or p99): their median.
            let rounds = self
                .wrk_percentiles
                .iter()
                .map(|&(p50, p99)| if p < 0.9 { p50 } else { p99 });
            return median(rounds.collect());
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

/// A child process stopped when dropped: SIGTERM first, so that nginx's master stops its
/// workers (a SIGKILLed master leaves them running), then SIGKILL after a second.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// How a gateway reaches a backend.
pub struct BackendRef {
    /// `https://HOST:PORT`.
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// Signing region.
    pub region: String,
}

/// Starts `gateway serve` against the embedded backend with extra flags.
async fn gateway(bin: &Path, tls: &Path, endpoint: &str, extra: &[&str]) -> Result<(Proc, SocketAddr), Error> {
    let backend = BackendRef {
        endpoint: endpoint.to_string(),
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        region: "us-east-1".into(),
    };
    gateway_with(bin, tls, &backend, extra).await
}

/// Starts `gateway serve` against `backend` with extra flags.
async fn gateway_with(
    bin: &Path,
    tls: &Path,
    backend: &BackendRef,
    extra: &[&str],
) -> Result<(Proc, SocketAddr), Error> {
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
            &backend.endpoint,
            "--bucket",
            BUCKET,
            "--region",
            &backend.region,
        ])
        .args(["--access-key", &backend.access_key, "--secret-key", &backend.secret_key])
        // Quiet unless the caller asks for a level (the access log's cost is measured so).
        .args(if extra.contains(&"--log-level") {
            &[][..]
        } else {
            &["--log-level", "warn"][..]
        })
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

/// An nginx `http` block serving `inner`, with its files under `d`.
fn nginx_http(d: &Path, inner: &str) -> String {
    format!(
        "http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 10000000;\n\
         client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
         {inner} }}\n",
        d = d.display()
    )
}

/// nginx `proxy_cache` (its disk cache, up to 2 GiB) in front of the store's web endpoint,
/// with its files under `dir`: the baseline of a caching proxy.
fn nginx_proxy_cache(nginx: &str, dir: &Path, garage: &store::Garage) -> Result<(Proc, SocketAddr), Error> {
    let addr = free_addr();
    let server = format!(
        "proxy_cache_path {c}/cache levels=1:2 keys_zone=s3:10m max_size=2g inactive=60m use_temp_path=off;\n\
         upstream store {{ server {web}; keepalive 16; }}\n\
         server {{ listen {addr}; location / {{ proxy_pass http://store; proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\"; proxy_set_header Host {host}; proxy_cache s3;\n\
         proxy_cache_valid 200 60s; proxy_cache_lock on; add_header X-Cache $upstream_cache_status; }} }}",
        c = dir.display(),
        web = garage.web,
        host = garage.web_host,
    );
    Ok((store::start_nginx(nginx, dir, &nginx_http(dir, &server))?, addr))
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

/// CPU time (utime + stime) of `pid` and its child processes (nginx's workers), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    // Fields after the command name's closing parenthesis: state is 0, ppid 1, utime 11, stime 12.
    fn stat(pid: &str) -> Option<(u32, u64)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some((fields.get(1)?.parse().ok()?, ticks))
    }
    let mut ticks = stat(&pid.to_string()).map_or(0, |(_, t)| t);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.bytes().all(|b| b.is_ascii_digit())
                && let Some((ppid, t)) = stat(&name)
                && ppid == pid
            {
                ticks += t;
            }
        }
    }
    ticks as f64 / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Runs the load against `addr` and charges the server process `pid` (and its children) for
/// the CPU it used meanwhile. The load comes from `wrk` when it is installed (a C load
/// generator, lighter on the shared cores), else from this process.
async fn measured(pid: u32, addr: SocketAddr, conns: usize, slice: Duration) -> Stats {
    let before = cpu_seconds(pid);
    static SAID: std::sync::Once = std::sync::Once::new();
    let mut s = match wrk(addr, conns, slice) {
        Some(s) => {
            SAID.call_once(|| eprintln!("bench: load from wrk"));
            s
        }
        None => {
            SAID.call_once(|| eprintln!("bench: wrk not found or failed; load from this process"));
            load_http(addr, "/gateway.gif", conns, slice).await
        }
    };
    s.cpu = cpu_seconds(pid) - before;
    s
}

/// One `wrk --latency` run: requests, errors, and p50/p99; `None` when wrk is not installed.
fn wrk(addr: SocketAddr, conns: usize, slice: Duration) -> Option<Stats> {
    wrk_on(addr, "/gateway.gif", &[], conns, slice)
}

/// [`wrk`] on `path` with extra request `headers` (`Name: value`).
fn wrk_on(addr: SocketAddr, path: &str, headers: &[&str], conns: usize, slice: Duration) -> Option<Stats> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{conns}"),
        // wrk takes whole seconds.
        &format!("-d{}s", slice.as_secs().max(1)),
        "--latency",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(format!("http://{addr}{path}")).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "  50%   40.12ms" / "99%    1.20s"
    let ms = |label: &str| {
        let v = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))?
            .trim()
            .to_string();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "s" => n * 1000.0,
            _ => n,
        })
    };
    let count = |label: &str| -> u64 {
        text.lines()
            .find(|l| l.contains(label))
            .and_then(|l| l.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or(0)
    };
    let seconds = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split("requests in").nth(1))
        .and_then(|r| r.trim().split('s').next()?.parse::<f64>().ok())?;
    let socket_errors: u64 = text
        .lines()
        .find(|l| l.contains("Socket errors"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Some(Stats {
        requests: count("requests in"),
        errors: count("Non-2xx") + socket_errors,
        elapsed: Duration::from_secs_f64(seconds),
        wrk_percentiles: vec![(ms("50%")?, ms("99%")?)],
        ..Stats::default()
    })
}

/// A text asset as sites ship them: about 300 KiB of script, varied enough that it compresses
/// as real code does (several-fold), not as a repeated line would.
fn script_asset(seed: u64) -> Bytes {
    let words = [
        "const", "function", "return", "value", "element", "document", "render", "state", "props", "index",
    ];
    let mut out = String::new();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    while out.len() < 300 << 10 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let (a, b, n) = (
            words[(x >> 33) as usize % 10],
            words[(x >> 40) as usize % 10],
            (x >> 20) % 100_000,
        );
        out.push_str(&format!("  {a} {b}{n} = {b}({n}, \"{a}-{n:x}\");\n"));
    }
    Bytes::from(out)
}

/// Compression: the CPU one compression costs the gateway (per object version and coding,
/// made from the cached copy), the size it gives, and the CPU per hit of each coding against
/// the same object sent as stored, in alternating rounds.
async fn compression(
    bin: &Path,
    tls: &Path,
    store: &BackendRef,
    storage: &Storage,
    conns: usize,
    secs: u64,
) -> Result<(), Error> {
    const OBJECTS: usize = 8;
    let put = |key: String, body: Bytes| async move {
        let opts = PutOptions {
            content_type: "application/javascript",
            ..Default::default()
        };
        storage.put(&key, body, &opts).await
    };
    let (gw, addr) = gateway_with(bin, tls, store, &[]).await?;
    let pid = gw.0.id();
    let codings = ["br", "zstd", "gzip"];
    println!(
        "\nCompression of a {} KiB script (text that compresses as code does), the gateway's own codings:\n",
        script_asset(0).len() >> 10
    );
    println!(
        "| coding | size × stored | CPU ms per compression (once per object version) | hit CPU ms/request | hit req/s | hit CPU × stored |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (c, coding) in codings.iter().enumerate() {
        // Distinct objects, each cached first (as stored), then asked for in the coding: the
        // gateway's CPU meanwhile is the compressions'.
        let mut stored = Vec::new();
        for i in 0..OBJECTS {
            let key = format!("assets/{coding}-{i}.js");
            put(key.clone(), script_asset((c * OBJECTS + i) as u64)).await?;
            stored.push(
                get_once(addr, &format!("/{key}"))
                    .await
                    .ok_or("cannot warm the cache")?,
            );
        }
        let before = cpu_seconds(pid);
        let mut size = 0.0;
        for (i, stored) in stored.iter().enumerate() {
            let coded = coded_size(addr, &format!("/assets/{coding}-{i}.js"), coding).await?;
            size += coded as f64 / *stored as f64;
        }
        let per = (cpu_seconds(pid) - before) * 1000.0 / OBJECTS as f64;
        rows.push((coding, size / OBJECTS as f64, per));
    }
    // Hits: one object, as stored and in each coding, alternating.
    let hot = "/assets/br-0.js";
    let headers: Vec<Vec<String>> = std::iter::once(Vec::new())
        .chain(codings.iter().map(|c| vec![format!("Accept-Encoding: {c}")]))
        .collect();
    let mut stats: Vec<Stats> = (0..headers.len()).map(|_| Stats::default()).collect();
    let slice = Duration::from_secs(secs) / ROUNDS;
    for _ in 0..ROUNDS {
        for (i, h) in headers.iter().enumerate() {
            let h: Vec<&str> = h.iter().map(String::as_str).collect();
            let before = cpu_seconds(pid);
            let mut s = wrk_on(addr, hot, &h, conns, slice).ok_or("wrk is needed for the compression figures")?;
            s.cpu = cpu_seconds(pid) - before;
            stats[i].merge(s);
        }
    }
    let stored_cpu = stats[0].cpu_ms();
    for ((coding, size, per), s) in rows.iter().zip(stats.iter().skip(1)) {
        println!(
            "| {coding} | {size:.3} | {per:.1} | {:.3} | {:.0} | {:.2} |",
            s.cpu_ms(),
            s.rps(),
            s.cpu_ms() / stored_cpu
        );
    }
    println!(
        "| as stored | 1.000 | | {stored_cpu:.3} | {:.0} | 1.00 |",
        stats[0].rps()
    );
    drop(gw);
    Ok(())
}

/// One GET of `path` in `coding`: the bytes sent, checking that it was coded.
async fn coded_size(addr: SocketAddr, path: &str, coding: &str) -> Result<u64, Error> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "bench")
        .header("accept-encoding", coding)
        .body(Empty::<Bytes>::new())?;
    let resp = send.send_request(req).await?;
    let got = resp
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if got != coding {
        return Err(format!("{path}: asked for {coding}, got {got:?}").into());
    }
    Ok(resp.into_body().collect().await?.to_bytes().len() as u64)
}

/// `curl` as the direct mTLS + SigV4 client of `key`: (time to first byte, total time, bytes).
fn curl_direct(tls: &Path, store: &store::Garage, key: &str) -> Result<(f64, f64, u64), Error> {
    let mut cmd = Command::new("curl");
    cmd.arg("--cacert")
        .arg(tls.join("ca.pem"))
        .arg("--cert")
        .arg(tls.join("client.pem"))
        .arg("--key")
        .arg(tls.join("client-key.pem"))
        .args(["--aws-sigv4", &format!("aws:amz:{}:s3", store.region)])
        .args(["--user", &format!("{}:{}", store.access_key, store.secret_key)])
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .arg(format!("{}/{BUCKET}/{key}", store.endpoint));
    curl(cmd)
}

/// `curl` as the client of the gateway: the same program as the direct client, so that the
/// comparison is between the two paths, not between two clients.
fn curl_plain(addr: SocketAddr, path: &str) -> Result<(f64, f64, u64), Error> {
    let mut cmd = Command::new("curl");
    cmd.arg(format!("http://{addr}{path}"));
    curl(cmd)
}

/// Runs `cmd` (curl with its target) to /dev/null: (time to first byte, total time, bytes).
fn curl(mut cmd: Command) -> Result<(f64, f64, u64), Error> {
    let out = cmd
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{time_starttransfer} %{time_total} %{size_download}",
        ])
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    match (v.first(), v.get(1), v.get(2)) {
        (Some(a), Some(b), Some(c)) => Ok((a.parse()?, b.parse()?, c.parse()?)),
        _ => Err(format!("curl: {text} {}", String::from_utf8_lossy(&out.stderr)).into()),
    }
}

async fn ttfb(addr: SocketAddr, path: &str) -> Result<(f64, u64), Error> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "bench")
        .body(Empty::<Bytes>::new())?;
    let start = Instant::now();
    let resp = send.send_request(req).await?;
    let mut body = resp.into_body();
    let (mut first, mut n) = (None, 0u64);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            first.get_or_insert_with(|| start.elapsed().as_secs_f64());
            n += data.len() as u64;
        }
    }
    Ok((first.unwrap_or(f64::NAN), n))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
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
    let only = std::env::var("BENCH_ONLY").ok();
    let wants = |part: &str| only.as_deref().is_none_or(|o| o.split(',').any(|p| p == part));

    let dir = tempfile::tempdir()?;
    let tls = dir.path().join("tls");
    let pki = DevPki::generate(&["127.0.0.1".into()], "gateway", 1)?;
    pki.write_to(&tls, false)?;

    // The production store, only for the parts measured against it: Garage behind an mTLS
    // front, holding the GIF.
    if ["hits", "compression", "ttfb", "stream", "disk", "accesslog"]
        .iter()
        .any(|p| wants(p))
    {
        // The production store: Garage behind an mTLS front, holding the GIF.
        let garage = store::Garage::start(dir.path(), &tls, &nginx, BUCKET).await?;
        let mut garage_args = gateway::demo::backend_args(
            garage.endpoint.clone(),
            BUCKET,
            &tls,
            &garage.access_key,
            &garage.secret_key,
        );
        garage_args.region = garage.region.into();
        let garage_storage = Storage::new(
            &BackendConfig::from_args(&garage_args)?,
            Arc::new(Metrics::new()),
            Retries::Serve,
        );
        let put = |key: &'static str, body: Bytes, ct: &'static str| {
            let storage = garage_storage.clone();
            async move {
                let opts = PutOptions {
                    content_type: ct,
                    ..Default::default()
                };
                storage.put(key, body, &opts).await
            }
        };
        put(GIF_KEY, gif.clone(), "image/gif").await?;
        let garage_ref = BackendRef {
            endpoint: garage.endpoint.clone(),
            access_key: garage.access_key.clone(),
            secret_key: garage.secret_key.clone(),
            region: garage.region.into(),
        };

        if wants("hits") {
            // nginx with the same file on local disk, and nginx proxy_cache in front of the store.
            let www = dir.path().join("www");
            std::fs::create_dir_all(&www)?;
            std::fs::write(www.join(GIF_KEY), &gif)?;
            let static_addr = free_addr();
            let static_dir = dir.path().join("nginx-static");
            let static_server = format!("server {{ listen {static_addr}; root {}; }}", www.display());
            let nginx_static = store::start_nginx(&nginx, &static_dir, &nginx_http(&static_dir, &static_server))?;
            let (nginx_cache, cache_addr) = nginx_proxy_cache(&nginx, &dir.path().join("nginx-cache"), &garage)?;
            wait_http(static_addr, "/gateway.gif").await?;
            wait_http(cache_addr, "/gateway.gif").await?;

            let (hit_gw, hit_addr) = gateway_with(&bin, &tls, &garage_ref, &[]).await?;
            let (miss_gw, miss_addr) = gateway_with(&bin, &tls, &garage_ref, &["--cache-max-bytes", "0"]).await?;
            get_once(hit_addr, "/gateway.gif")
                .await
                .ok_or("cannot warm the cache")?;

            let names = [
                "nginx-static (sendfile, local disk)",
                "nginx proxy_cache in front of the store",
                "gateway, cache hit",
                "gateway, cache off (streamed from the store)",
            ];
            let targets = [
                (nginx_static.0.id(), static_addr),
                (nginx_cache.0.id(), cache_addr),
                (hit_gw.0.id(), hit_addr),
                (miss_gw.0.id(), miss_addr),
            ];
            let mut stats: Vec<Stats> = (0..names.len()).map(|_| Stats::default()).collect();
            let slice = Duration::from_secs(secs) / ROUNDS;
            for round in 0..ROUNDS {
                eprintln!(
                    "bench: round {}/{ROUNDS} ({conns} connections, {slice:?} per target)",
                    round + 1
                );
                for (i, (pid, addr)) in targets.iter().enumerate() {
                    stats[i].merge(measured(*pid, *addr, conns, slice).await);
                }
            }

            let (base_rps, base_p99, base_cpu) = (stats[0].rps(), stats[0].percentile(0.99), stats[0].cpu_ms());
            println!(
                "\nGIF ({} bytes) from Garage behind an mTLS front, {conns} connections, {secs} s per target in {ROUNDS} alternating rounds:\n",
                gif.len()
            );
            println!(
                "| target | req/s | p50 ms | p99 ms | CPU ms/request | req/s × nginx-static | p99 × nginx-static | CPU × nginx-static | errors |"
            );
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (name, s) in names.iter().zip(stats.iter_mut()) {
                let (rps, cpu) = (s.rps(), s.cpu_ms());
                let (p50, p99) = (s.percentile(0.50), s.percentile(0.99));
                println!(
                    "| {name} | {rps:.0} | {p50:.2} | {p99:.2} | {cpu:.3} | {:.2} | {:.2} | {:.2} | {} |",
                    rps / base_rps,
                    p99 / base_p99,
                    cpu / base_cpu,
                    s.errors
                );
            }
            drop((hit_gw, miss_gw, nginx_static, nginx_cache));
        }

        if wants("compression") {
            compression(&bin, &tls, &garage_ref, &garage_storage, conns, secs).await?;
        }

        if wants("ttfb") {
            // Time to first byte of a 16 MiB miss: the gateway streams while it fills, so it should be
            // close to the store's own (a direct mTLS client), not the whole transfer.
            let ttfb_keys = ["ttfb-0.bin", "ttfb-1.bin", "ttfb-2.bin", "ttfb-3.bin", "ttfb-4.bin"];
            let sixteen: Bytes = (0..16usize << 20).map(|i| (i % 249) as u8).collect::<Vec<u8>>().into();
            for key in ttfb_keys {
                put(key, sixteen.clone(), "application/octet-stream").await?;
            }
            let (gw, addr) = gateway_with(&bin, &tls, &garage_ref, &[]).await?;
            let (mut gw_ttfb, mut direct_ttfb, mut direct_total) = (Vec::new(), Vec::new(), Vec::new());
            for (i, key) in ttfb_keys.iter().enumerate() {
                let path = format!("/{key}");
                let direct = || curl_direct(&tls, &garage, key);
                let (d, g) = if i % 2 == 0 {
                    let d = direct()?;
                    (d, ttfb(addr, &path).await?)
                } else {
                    let g = ttfb(addr, &path).await?;
                    (direct()?, g)
                };
                if g.1 != sixteen.len() as u64 || d.2 != sixteen.len() as u64 {
                    return Err(format!("{key}: short body (gateway {} bytes, direct {} bytes)", g.1, d.2).into());
                }
                gw_ttfb.push(g.0 * 1000.0);
                direct_ttfb.push(d.0 * 1000.0);
                direct_total.push(d.1 * 1000.0);
            }
            drop(gw);
            let (g, d, t) = (median(gw_ttfb), median(direct_ttfb), median(direct_total));
            println!(
                "\n16 MiB cache miss, time to first byte (median of {}): gateway {g:.1} ms, direct mTLS client {d:.1} ms ({:.2}×); the direct client's whole transfer takes {t:.1} ms",
                ttfb_keys.len(),
                g / d
            );
        }

        if wants("stream") {
            // Stream-through: 256 MiB (over --cache-max-object-bytes) through the gateway against the
            // direct client, alternating.
            let big: Bytes = (0..BIG_SIZE).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
            put(BIG_KEY, big, "application/octet-stream").await?;
            let (gw, addr) = gateway_with(&bin, &tls, &garage_ref, &[]).await?;
            let (mut via, mut direct) = (Vec::new(), Vec::new());
            let (mut gw_cpu, mut store_via, mut store_direct) = (0.0, 0.0, 0.0);
            for _ in 0..4 {
                let (g0, s0) = (cpu_seconds(gw.0.id()), garage.cpu_seconds());
                let (_, total, n) = curl_plain(addr, &format!("/{BIG_KEY}"))?;
                via.push(n as f64 / total / f64::from(1 << 20));
                let (g1, s1) = (cpu_seconds(gw.0.id()), garage.cpu_seconds());
                let (_, total, n) = curl_direct(&tls, &garage, BIG_KEY)?;
                direct.push(n as f64 / total / f64::from(1 << 20));
                gw_cpu += g1 - g0;
                store_via += s1 - s0;
                store_direct += garage.cpu_seconds() - s1;
            }
            let hwm = vm_hwm_kib(gw.0.id());
            drop(gw);
            let (v, d) = (median(via), median(direct));
            // CPU seconds per GiB moved, over the four rounds (each round moves 1/4 GiB).
            println!(
                "256 MiB streamed through (median of 4, alternating, curl as the client of both): gateway {v:.0} MiB/s, direct mTLS client {d:.0} MiB/s ({:.2}×); gateway peak RSS (VmHWM) {:.1} MiB",
                v / d,
                hwm as f64 / 1024.0
            );
            println!(
                "  CPU s per GiB: gateway {gw_cpu:.2}; store (Garage + TLS front) {store_via:.2} behind the gateway, {store_direct:.2} behind the direct client"
            );
        }

        if wants("disk") {
            disk::run(&bin, &tls, &garage, &garage_ref, &garage_storage, &nginx, dir.path()).await?;
        }

        if wants("accesslog") {
            disk::access_log(&bin, &tls, &garage_ref, &garage_storage, conns, secs).await?;
        }

        drop(garage);
    }

    // The embedded backend, for what needs a controllable backend: backend calls behind hot
    // hits, and the resilience run (faults injected through a proxy).
    std::fs::create_dir_all(dir.path().join("data"))?;
    let backend = EmbeddedS3::start(
        TcpListener::bind("127.0.0.1:0").await?,
        EmbeddedS3Config {
            root: &dir.path().join("data"),
            client_ca_pem: &pki.ca_cert,
            server_cert_pem: &pki.server_cert,
            server_key_pem: &pki.server_key,
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
            require_client_cert: true,
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

    if wants("hotkey") {
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
    }

    if wants("resilience") {
        resilience::run(&bin, &tls, backend.addr(), &storage).await?;
    }
    backend.stop().await;
    Ok(())
}
