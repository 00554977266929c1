//! The disk tier: objects over `--cache-max-object-bytes` kept on local disk in slices, fetched
//! by range, read back after a restart, dropped when the object changes or is purged, bounded
//! in bytes, and never the cause of a failed request (an unusable directory, a damaged slice,
//! a backend that breaks off mid-slice). Objects here are a few MiB with 1 MiB slices.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proxy::{Fault, FaultProxy};
use crate::util::{Backend, Gateway, eventually, get, request_with};

const MIB: usize = 1 << 20;

/// Distinct bytes (no two slices alike), so a slice out of place shows.
fn object(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i / 251) as u8 ^ (i % 251) as u8 ^ seed).collect()
}

/// Serve flags: 1 MiB objects in memory at most, the disk tier in `dir` with 1 MiB slices.
fn flags<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut f = vec![
        "--cache-max-bytes",
        "8MiB",
        "--cache-max-object-bytes",
        "1MiB",
        "--disk-cache-dir",
        dir,
        "--disk-cache-slice-bytes",
        "1MiB",
        "--bucket-events",
        "off",
    ];
    f.extend_from_slice(extra);
    f
}

/// A gateway with the disk tier in `dir` that reaches `backend` through a fault proxy
/// (`--backend-timeout 2s`, no background probe), with `extra` flags.
async fn through_proxy(backend: &Backend, dir: &Path, extra: &[&str]) -> (FaultProxy, Gateway) {
    let proxy = FaultProxy::start(backend.addr).await;
    let args = gateway::cli::BackendArgs {
        backend_timeout: Duration::from_secs(2),
        ..backend.args_via(proxy.addr)
    };
    let mut extra = extra.to_vec();
    extra.extend(["--backend-probe-interval", "1h"]);
    let gw = Gateway::start_with(args, &flags(dir.to_str().unwrap(), &extra)).await;
    (proxy, gw)
}

/// Complete slice files under `dir`, and temporary ones.
fn files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut slices, mut tmp) = (Vec::new(), Vec::new());
    for version in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(version.path()).into_iter().flatten().flatten() {
            let p = f.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".slice") {
                slices.push(p);
            } else if name.ends_with(".tmp") {
                tmp.push(p);
            }
        }
    }
    (slices, tmp)
}

async fn fetched(gw: &Gateway) -> f64 {
    gw.metric("gateway_disk_cache_slice_reads_total{outcome=\"fetched\"}")
        .await
}

/// A whole GET keeps the object in slices (one ranged GetObject each); the next GET is served
/// from them without the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_is_kept_in_slices_and_served_from_them() {
    let backend = Backend::start().await;
    let body = object(3 * MIB + 123, 1);
    backend.put("video.bin", body.clone(), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let gw = Gateway::start_with(backend.args(), &flags(d, &[])).await;

    let r = get(&gw.url("/video.bin")).await;
    assert_eq!((r.status, r.header("x-cache")), (200, "DISK-MISS"));
    assert!(r.body.as_ref() == body.as_slice(), "the first download's bytes differ");
    assert_eq!(fetched(&gw).await, 4.0, "one fetch per slice");
    let gets = gw
        .metric("gateway_s3_requests_total{operation=\"GetObject\",outcome=\"ok\"}")
        .await;

    let r = get(&gw.url("/video.bin")).await;
    assert_eq!((r.status, r.header("x-cache")), (200, "DISK-HIT"));
    assert!(
        r.header("cache-status").contains("detail=disk"),
        "{}",
        r.header("cache-status")
    );
    assert!(r.body.as_ref() == body.as_slice(), "the hit's bytes differ");
    assert_eq!(fetched(&gw).await, 4.0);
    assert_eq!(
        gw.metric("gateway_s3_requests_total{operation=\"GetObject\",outcome=\"ok\"}")
            .await,
        gets,
        "a hit asked the bucket"
    );
    assert_eq!(files(dir.path()).0.len(), 4);
    assert_eq!(gw.metric("gateway_disk_cache_bytes").await, body.len() as f64);
    gw.stop().await;
}

/// A `Range` fetches only the slices it covers; the same range again costs the bucket nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_fetches_only_the_slices_it_covers() {
    let backend = Backend::start().await;
    let body = object(6 * MIB, 2);
    backend.put("movie.bin", body.clone(), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(backend.args(), &flags(dir.path().to_str().unwrap(), &[])).await;
    let (start, end) = (2 * MIB + 1000, 3 * MIB + 5000);
    let range = [("range".to_string(), format!("bytes={start}-{end}"))];
    for expected in ["DISK-MISS", "DISK-HIT"] {
        let r = request_with("GET", &gw.url("/movie.bin"), &range).await;
        assert_eq!((r.status, r.header("x-cache")), (206, expected));
        assert_eq!(r.header("content-range"), format!("bytes {start}-{end}/{}", body.len()));
        assert!(r.body.as_ref() == &body[start..=end], "the range's bytes differ");
        assert_eq!(fetched(&gw).await, 2.0, "slices 2 and 3 only");
    }
    gw.stop().await;
}

/// After a restart the tier is read back: the first request confirms the object with the
/// bucket (`DISK-REVALIDATED`) and fetches nothing. A slice whose bytes were damaged while the
/// gateway was down fails its checksum and is fetched again; the client gets the right bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_tier_and_a_damaged_slice_is_fetched_again() {
    let backend = Backend::start().await;
    let body = object(3 * MIB, 3);
    backend.put("big.bin", body.clone(), "application/octet-stream").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let gw = Gateway::start_with(backend.args(), &flags(d, &[])).await;
    assert_eq!(get(&gw.url("/big.bin")).await.status, 200);
    gw.stop().await;

    let gw = Gateway::start_with(backend.args(), &flags(d, &[])).await;
    let r = get(&gw.url("/big.bin")).await;
    assert_eq!((r.status, r.header("x-cache")), (200, "DISK-REVALIDATED"));
    assert!(r.body.as_ref() == body.as_slice());
    assert_eq!(fetched(&gw).await, 0.0, "the restart emptied the tier");
    gw.stop().await;

    // Same length, other bytes: only the checksum can tell.
    let (slices, _) = files(dir.path());
    let victim = slices
        .iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("1-"))
        .unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(victim, bytes).unwrap();
    let gw = Gateway::start_with(backend.args(), &flags(d, &[])).await;
    let r = get(&gw.url("/big.bin")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.as_ref() == body.as_slice(), "a damaged slice was served");
    assert_eq!(fetched(&gw).await, 1.0, "only the damaged slice is fetched again");
    assert!(gw.metric("gateway_disk_cache_errors_total{op=\"read\"}").await >= 1.0);
    gw.stop().await;
}

/// A changed object (new ETag, seen when its TTL is over) drops every slice of the old
/// version; a purge drops the object from the tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_or_purged_object_leaves_the_tier() {
    let backend = Backend::start().await;
    let old = object(2 * MIB + 10, 4);
    backend.put("clip.bin", old.clone(), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    let cache_dir = dir.path().join("cache");
    let d = cache_dir.to_str().unwrap();
    let t = token.to_str().unwrap();
    let gw = Gateway::start_with(
        backend.args(),
        &flags(d, &["--cache-ttl", "1s", "--admin-token-file", t]),
    )
    .await;
    assert!(get(&gw.url("/clip.bin")).await.body.as_ref() == old.as_slice());
    assert_eq!(files(&cache_dir).0.len(), 3);

    let new = object(MIB + 2 * MIB / 3, 5);
    backend.put("clip.bin", new.clone(), "video/mp4").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get(&gw.url("/clip.bin")).await;
    assert_eq!(r.header("x-cache"), "DISK-MISS");
    assert!(r.body.as_ref() == new.as_slice(), "the old version was served");
    assert_eq!(files(&cache_dir).0.len(), 2, "the old version's slices are gone");

    let auth = [(
        "authorization".to_string(),
        "Bearer 0123456789abcdef0123456789abcdef".to_string(),
    )];
    let r = request_with("POST", &gw.admin_url("/purge?key=clip.bin"), &auth).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(files(&cache_dir).0.len(), 0, "a purge leaves slices behind");
    assert_eq!(get(&gw.url("/clip.bin")).await.header("x-cache"), "DISK-MISS");
    gw.stop().await;
}

/// The tier holds at most `--disk-cache-max-bytes`, least recently used slices going first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_bound_holds_under_churn() {
    let backend = Backend::start().await;
    for i in 0..6u8 {
        backend
            .put(&format!("o{i}.bin"), object(2 * MIB, i), "application/octet-stream")
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(
        backend.args(),
        &flags(dir.path().to_str().unwrap(), &["--disk-cache-max-bytes", "5MiB"]),
    )
    .await;
    for round in 0..2 {
        for i in 0..6u8 {
            let r = get(&gw.url(&format!("/o{i}.bin"))).await;
            assert!(
                r.body.as_ref() == object(2 * MIB, i).as_slice(),
                "round {round}, object {i}"
            );
            let on_disk: u64 = files(dir.path()).0.iter().map(|p| p.metadata().unwrap().len()).sum();
            assert!(on_disk <= 5 * MIB as u64, "{on_disk} bytes on disk");
        }
    }
    assert!(gw.metric("gateway_disk_cache_bytes").await <= (5 * MIB) as f64);
    assert!(
        gw.metric("gateway_disk_cache_slice_reads_total{outcome=\"evicted\"}")
            .await
            > 0.0
    );
    gw.stop().await;
}

/// A directory that cannot be made (its parent is a file) fails no request: everything
/// streams from the bucket, and the errors are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_directory_streams_from_the_bucket() {
    let backend = Backend::start().await;
    let body = object(3 * MIB, 6);
    backend.put("big.bin", body.clone(), "application/octet-stream").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let d = file.join("cache");
    let gw = Gateway::start_with(backend.args(), &flags(d.to_str().unwrap(), &[])).await;
    for _ in 0..3 {
        let r = get(&gw.url("/big.bin")).await;
        assert_eq!(r.status, 200);
        assert!(r.body.as_ref() == body.as_slice());
    }
    let range = [("range".to_string(), "bytes=100-2000000".to_string())];
    let r = request_with("GET", &gw.url("/big.bin"), &range).await;
    assert_eq!(r.status, 206);
    assert!(r.body.as_ref() == &body[100..=2_000_000]);
    assert!(gw.metric("gateway_disk_cache_errors_total{op=\"open\"}").await >= 1.0);
    assert!(gw.metric("gateway_disk_cache_errors_total{op=\"write\"}").await >= 1.0);
    gw.stop().await;
}

/// A backend that breaks off in the middle of a slice: the response fails (as a stream from
/// the bucket would), no slice that looks complete is left, and once the backend is well the
/// object is fetched and kept whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_interrupted_mid_slice_leaves_no_slice() {
    let backend = Backend::start().await;
    let body = object(2 * MIB, 7);
    backend.put("cut.bin", body.clone(), "application/octet-stream").await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, gw) = through_proxy(&backend, dir.path(), &[]).await;
    // Learn the object (a HEAD and its first slice), then cut the next fetch mid-slice.
    let range = [("range".to_string(), "bytes=0-10".to_string())];
    assert_eq!(request_with("GET", &gw.url("/cut.bin"), &range).await.status, 206);
    // The first slice's fetch goes on after those 11 bytes: let it end first.
    eventually("the first slice is kept", async || {
        gw.metric("gateway_disk_cache_slices").await >= 1.0
    })
    .await;
    proxy.set(Fault::StallAfter(300_000));
    let range = [("range".to_string(), format!("bytes={}-{}", MIB, 2 * MIB - 1))];
    let resp = crate::util::send_with("GET", &gw.url("/cut.bin"), &range).await;
    assert_eq!(resp.status(), 206);
    let got = tokio::time::timeout(crate::util::TIMEOUT, http_body_util::BodyExt::collect(resp.into_body())).await;
    assert!(!matches!(got, Ok(Ok(_))), "a cut-off slice was delivered whole");
    let (slices, tmp) = files(dir.path());
    assert_eq!(slices.len(), 1, "{slices:?}");
    assert!(tmp.is_empty(), "{tmp:?}");

    proxy.set(Fault::Pass);
    let r = get(&gw.url("/cut.bin")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.as_ref() == body.as_slice());
    assert_eq!(files(dir.path()).0.len(), 2);
    gw.stop().await;
}

/// A slice the bucket will not give (its connections reset after the object was learnt): the
/// client gets the gateway's error status, not a 206 whose body breaks off after its head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_the_bucket_fails_is_an_error_status_not_a_broken_answer() {
    a_slice_the_bucket_will_not_give(Fault::Reset, 502..=504).await;
}

/// A slice whose bucket hangs (accepts, answers nothing): the response head waits no longer
/// than the backend's timeouts (`--backend-timeout 2s` here), then 504.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_the_bucket_hangs_on_is_a_timeout_not_a_wait() {
    a_slice_the_bucket_will_not_give(Fault::BlackHole, 504..=504).await;
}

/// Learns a 3-slice object, puts `fault` between the gateway and the bucket, asks for a range
/// in the last slice (expecting `status`, well within the test's timeout), then lifts the fault
/// and gets the right bytes.
async fn a_slice_the_bucket_will_not_give(fault: Fault, status: std::ops::RangeInclusive<u16>) {
    let backend = Backend::start().await;
    backend.put("far.bin", object(3 * MIB, 14), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, gw) = through_proxy(&backend, dir.path(), &["--circuit-breaker-failures", "0"]).await;
    let first = [("range".to_string(), "bytes=0-10".to_string())];
    assert_eq!(request_with("GET", &gw.url("/far.bin"), &first).await.status, 206);
    proxy.set(fault);
    let far = [("range".to_string(), format!("bytes={}-{}", 2 * MIB, 2 * MIB + 10))];
    let resp = tokio::time::timeout(crate::util::TIMEOUT, request_with("GET", &gw.url("/far.bin"), &far))
        .await
        .expect("no answer");
    assert!(status.contains(&resp.status), "answered {}", resp.status);
    proxy.set(Fault::Pass);
    let resp = request_with("GET", &gw.url("/far.bin"), &far).await;
    assert_eq!(resp.status, 206);
    assert!(resp.body.as_ref() == &object(3 * MIB, 14)[2 * MIB..=2 * MIB + 10]);
    gw.stop().await;
}

/// Clients arriving together on a cold object share one fetch per slice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_each_slice_fetch() {
    let backend = Backend::start().await;
    let body = object(3 * MIB, 8);
    backend.put("herd.bin", body.clone(), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(backend.args(), &flags(dir.path().to_str().unwrap(), &[])).await;
    // The tier learns the object (one HEAD) before the herd, so all of it is the tier's.
    let range = [("range".to_string(), "bytes=0-0".to_string())];
    assert_eq!(request_with("GET", &gw.url("/herd.bin"), &range).await.status, 206);
    let url = gw.url("/herd.bin");
    let replies = futures_util::future::join_all((0..8).map(|_| get(&url))).await;
    for r in &replies {
        assert_eq!(r.status, 200);
        assert!(r.body.as_ref() == body.as_slice());
    }
    assert_eq!(fetched(&gw).await, 3.0, "each slice fetched once");
    gw.stop().await;
}

/// The bucket's change event for an object drops it from the tier at once (before its TTL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_event_reaches_the_tier() {
    let backend = Backend::start().await;
    let old = object(2 * MIB, 9);
    backend.put("live.bin", old.clone(), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut f = flags(d, &["--cache-ttl", "1h"]);
    // Follow the bucket's events this time.
    let at = f.iter().position(|a| *a == "--bucket-events").unwrap();
    f.drain(at..at + 2);
    let gw = Gateway::start_with(backend.args(), &f).await;
    gw.events_state("subscribed").await;
    assert!(get(&gw.url("/live.bin")).await.body.as_ref() == old.as_slice());
    let new = object(2 * MIB, 10);
    backend.put("live.bin", new.clone(), "video/mp4").await;
    eventually("the change reaches the disk tier", async || {
        get(&gw.url("/live.bin")).await.body.as_ref() == new.as_slice()
    })
    .await;
    gw.stop().await;
}

/// An object replaced while its version is still fresh in the tier: the next slice's fetch is
/// refused (`If-Match`), that response breaks off rather than mix two versions, and the
/// version is dropped, so the next request learns the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_of_a_replaced_object_is_never_mixed_with_the_old() {
    let backend = Backend::start().await;
    let old = object(3 * MIB, 11);
    backend.put("swap.bin", old.clone(), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with(
        backend.args(),
        &flags(dir.path().to_str().unwrap(), &["--cache-ttl", "1h"]),
    )
    .await;
    let first = [("range".to_string(), "bytes=0-99".to_string())];
    assert!(request_with("GET", &gw.url("/swap.bin"), &first).await.body.as_ref() == &old[..100]);

    let new = object(3 * MIB, 12);
    backend.put("swap.bin", new.clone(), "video/mp4").await;
    let later = [("range".to_string(), format!("bytes={}-{}", 2 * MIB, 2 * MIB + 99))];
    let resp = crate::util::send_with("GET", &gw.url("/swap.bin"), &later).await;
    let got = tokio::time::timeout(crate::util::TIMEOUT, http_body_util::BodyExt::collect(resp.into_body())).await;
    if let Ok(Ok(body)) = got {
        assert!(
            body.to_bytes().as_ref() != &old[2 * MIB..2 * MIB + 100],
            "bytes of the old version were served"
        );
    }
    let r = get(&gw.url("/swap.bin")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.as_ref() == new.as_slice(), "the new version was not learnt");
    gw.stop().await;
}

/// While the bucket is down, a disk version past its TTL whose slices are all held is served
/// stale within `--cache-stale-if-error`, and a request is refused once that window is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_version_is_served_stale_while_the_bucket_fails() {
    let backend = Backend::start().await;
    let body = object(2 * MIB + 7, 13);
    backend.put("keep.bin", body.clone(), "video/mp4").await;
    let dir = tempfile::tempdir().unwrap();
    let (mut proxy, gw) = through_proxy(
        &backend,
        dir.path(),
        &[
            "--cache-ttl",
            "1s",
            "--cache-stale-if-error",
            "4s",
            "--circuit-breaker-failures",
            "0",
        ],
    )
    .await;
    assert!(get(&gw.url("/keep.bin")).await.body.as_ref() == body.as_slice());
    proxy.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = get(&gw.url("/keep.bin")).await;
    assert_eq!((r.status, r.header("x-cache")), (200, "DISK-STALE"));
    assert!(r.body.as_ref() == body.as_slice());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = get(&gw.url("/keep.bin")).await;
    assert!(r.status >= 500, "served {} past the stale-if-error window", r.status);
    gw.stop().await;
}
