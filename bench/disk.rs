//! The disk tier against nginx `proxy_cache` (its disk cache) on the same store, and the access
//! log's cost on small hits. Figures are ratios taken in one run, alternating rounds.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use gateway::{PutOptions, Storage};

use crate::store::Garage;
use crate::{
    BUCKET, BackendRef, Error, ROUNDS, Stats, cpu_seconds, curl, curl_plain, gateway_with, median, nginx_proxy_cache,
    wait_http, wrk_on,
};

/// The large object, read again and again.
const LARGE_KEY: &str = "disk-large.bin";
const LARGE_SIZE: usize = 256 << 20;
/// Rounds of downloads of it, alternating which target goes first.
const CPU_ROUNDS: u32 = 8;
/// Downloads of it per target and round.
const DOWNLOADS_PER_ROUND: u32 = 2;
/// The object a video player seeks in.
const HUGE_KEY: &str = "disk-huge.bin";
const HUGE_SIZE: usize = 1 << 30;
/// Where the seek lands, and how much it reads.
const SEEK_AT: usize = 200 << 20;
const SEEK_LEN: usize = 1 << 20;

async fn put(storage: &Storage, key: &str, body: Bytes) -> Result<(), Error> {
    let opts = PutOptions {
        content_type: "application/octet-stream",
        ..Default::default()
    };
    storage.put(key, body, &opts).await?;
    Ok(())
}

/// One series of the gateway's `/metrics` (on its listener), 0 when absent.
async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let Ok(out) = Command::new("curl")
        .args(["-s", &format!("http://{addr}/metrics")])
        .output()
    else {
        return 0.0;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// `curl -r FROM-TO` of `url` (with `extra` arguments first): (time to first byte, bytes).
fn curl_range(extra: &[String], url: &str, from: usize, to: usize) -> Result<(f64, u64), Error> {
    let mut cmd = Command::new("curl");
    cmd.args(extra).args(["-r", &format!("{from}-{to}")]).arg(url);
    let (first, _, n) = curl(cmd)?;
    Ok((first, n))
}

/// The disk tier's figures: warm throughput and CPU per GiB of a 256 MiB object against nginx
/// `proxy_cache`, and a seek into a cold 1 GiB object against a direct ranged GetObject.
pub async fn run(
    bin: &Path,
    tls: &Path,
    garage: &Garage,
    backend: &BackendRef,
    storage: &Storage,
    nginx: &str,
    dir: &Path,
) -> Result<(), Error> {
    let large: Bytes = (0..LARGE_SIZE).map(|i| (i % 253) as u8).collect::<Vec<u8>>().into();
    put(storage, LARGE_KEY, large).await?;
    let (proxy, proxy_addr) = nginx_proxy_cache(nginx, &dir.join("nginx-disk"), garage)?;
    wait_http(proxy_addr, "/disk-large.bin").await?;
    let cache_dir = dir.join("disk-tier");
    let cache_flag = cache_dir.to_string_lossy().to_string();
    let (gw, addr) = gateway_with(
        bin,
        tls,
        backend,
        &["--disk-cache-dir", &cache_flag, "--disk-cache-max-bytes", "2GiB"],
    )
    .await?;
    // The first downloads fill both disk caches.
    curl_plain(addr, &format!("/{LARGE_KEY}"))?;
    curl_plain(proxy_addr, &format!("/{LARGE_KEY}"))?;
    let fetched = "gateway_disk_cache_slice_reads_total{outcome=\"fetched\"}";
    let fetched_before = metric(addr, fetched).await;
    let (mut via_gw, mut via_nginx) = (Vec::new(), Vec::new());
    let (mut gw_cpu, mut nginx_cpu) = (Vec::new(), Vec::new());
    for round in 0..CPU_ROUNDS {
        // CPU time is read in clock ticks (10 ms), and one download takes about 0.1 s of it;
        // on loopback the sender's CPU also carries the receiver's softirq work, which varies
        // with scheduling. So each round downloads DOWNLOADS_PER_ROUND times per target, and the
        // figure is the median of the rounds, which a burst of noise in one round cannot move.
        let one = |pid: u32, target: SocketAddr, speeds: &mut Vec<f64>, cpu: &mut Vec<f64>| -> Result<(), Error> {
            let c0 = cpu_seconds(pid);
            for _ in 0..DOWNLOADS_PER_ROUND {
                let (_, total, n) = curl_plain(target, &format!("/{LARGE_KEY}"))?;
                if n != LARGE_SIZE as u64 {
                    return Err(format!("{target}: {n} bytes of {LARGE_SIZE}").into());
                }
                speeds.push(n as f64 / total / f64::from(1 << 20));
            }
            let gib = f64::from(DOWNLOADS_PER_ROUND) * LARGE_SIZE as f64 / f64::from(1u32 << 30);
            cpu.push((cpu_seconds(pid) - c0) / gib);
            Ok(())
        };
        if round % 2 == 0 {
            one(gw.0.id(), addr, &mut via_gw, &mut gw_cpu)?;
            one(proxy.0.id(), proxy_addr, &mut via_nginx, &mut nginx_cpu)?;
        } else {
            one(proxy.0.id(), proxy_addr, &mut via_nginx, &mut nginx_cpu)?;
            one(gw.0.id(), addr, &mut via_gw, &mut gw_cpu)?;
        }
    }
    let refetched = metric(addr, fetched).await - fetched_before;
    let (g, n) = (median(via_gw), median(via_nginx));
    let (gw_cpu, nginx_cpu) = (median(gw_cpu), median(nginx_cpu));
    println!("\nDisk tier (Garage behind an mTLS front; nginx proxy_cache with its disk cache on the same store):\n");
    println!("| measurement | gateway | nginx proxy_cache | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| 256 MiB object warm from disk ({CPU_ROUNDS} alternating rounds of {DOWNLOADS_PER_ROUND} downloads, curl; median download): MiB/s | {g:.0} | {n:.0} | {:.2}× |",
        g / n
    );
    println!(
        "| the same: CPU s per GiB served (median round) | {gw_cpu:.2} | {nginx_cpu:.2} | {:.2}× |",
        gw_cpu / nginx_cpu
    );
    println!("| slices fetched from the bucket after the first download | {refetched:.0} | | |");
    drop(proxy);

    // A seek 200 MiB into a cold 1 GiB object: slices fetched, time to first byte against a
    // direct ranged GetObject, then the same range again.
    let huge: Bytes = (0..HUGE_SIZE).map(|i| (i % 241) as u8).collect::<Vec<u8>>().into();
    put(storage, HUGE_KEY, huge).await?;
    let url = format!("http://{addr}/{HUGE_KEY}");
    let (from, to) = (SEEK_AT, SEEK_AT + SEEK_LEN - 1);
    let before = metric(addr, fetched).await;
    let (gw_first, n) = curl_range(&[], &url, from, to)?;
    let cold_slices = metric(addr, fetched).await - before;
    let direct_args: Vec<String> = vec![
        "--cacert".into(),
        tls.join("ca.pem").to_string_lossy().into(),
        "--cert".into(),
        tls.join("client.pem").to_string_lossy().into(),
        "--key".into(),
        tls.join("client-key.pem").to_string_lossy().into(),
        "--aws-sigv4".into(),
        format!("aws:amz:{}:s3", garage.region),
        "--user".into(),
        format!("{}:{}", garage.access_key, garage.secret_key),
        "-H".into(),
        "x-amz-content-sha256: UNSIGNED-PAYLOAD".into(),
    ];
    let direct_url = format!("{}/{BUCKET}/{HUGE_KEY}", garage.endpoint);
    let mut direct = Vec::new();
    for _ in 0..3 {
        direct.push(curl_range(&direct_args, &direct_url, from, to)?.0);
    }
    let direct_first = median(direct);
    let before = metric(addr, fetched).await;
    let (warm_first, warm_n) = curl_range(&[], &url, from, to)?;
    let warm_slices = metric(addr, fetched).await - before;
    if n != SEEK_LEN as u64 || warm_n != SEEK_LEN as u64 {
        return Err(format!("seek: {n} and {warm_n} bytes of {SEEK_LEN}").into());
    }
    println!(
        "| seek 200 MiB into a cold 1 GiB object (1 MiB range): time to first byte | {:.1} ms | {:.1} ms (direct ranged GetObject) | {:.2}× |",
        gw_first * 1e3,
        direct_first * 1e3,
        gw_first / direct_first
    );
    println!(
        "| the same: slices fetched (8 MiB each), cold; again | {cold_slices:.0}; {warm_slices:.0} (first byte {:.1} ms) | | |",
        warm_first * 1e3
    );
    drop(gw);
    Ok(())
}

/// Small hits with the access log on and off, in alternating rounds.
pub async fn access_log(
    bin: &Path,
    tls: &Path,
    backend: &BackendRef,
    storage: &Storage,
    conns: usize,
    secs: u64,
) -> Result<(), Error> {
    let page = Bytes::from_static(
        b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>gateway</title></head>\
          <body><h1>gateway</h1><p>A small page, served from the cache as most hits of a site are.</p>\
          <img src=\"/gateway.gif\" alt=\"GIF\"></body></html>\n",
    );
    let opts = PutOptions {
        content_type: "text/html",
        ..Default::default()
    };
    storage.put("index.html", page.clone(), &opts).await?;
    let on = gateway_with(bin, tls, backend, &["--log-level", "info", "--access-log", "true"]).await?;
    let off = gateway_with(bin, tls, backend, &["--log-level", "info", "--access-log", "false"]).await?;
    let mut stats = [Stats::default(), Stats::default()];
    // Twice the usual rounds, the order swapped each round: the two differ by a few percent,
    // less than this machine's drift over a minute.
    let rounds = 2 * ROUNDS;
    let slice = Duration::from_secs(secs) / rounds;
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for (i, (_, addr)) in order.map(|i| (i, [&on, &off][i])) {
            crate::get_once(*addr, "/index.html")
                .await
                .ok_or("cannot warm the cache")?;
            let s = wrk_on(*addr, "/index.html", &[], conns, slice).ok_or("wrk is needed for this part")?;
            stats[i].merge(s);
        }
    }
    let (a, b) = (stats[0].rps(), stats[1].rps());
    println!(
        "\nSmall hits ({} bytes, {conns} connections, {secs} s each in {rounds} alternating rounds): access log on {a:.0} req/s, off {b:.0} req/s ({:.2}×); errors {} / {}",
        page.len(),
        a / b,
        stats[0].errors,
        stats[1].errors
    );
    Ok(())
}
