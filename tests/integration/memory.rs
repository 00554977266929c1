//! Memory as the pod's limit sees it: the real binary in a memory cgroup of its own, whose
//! usage counts the cache's sealed memory files too (shared memory, not in VmRSS unmapped).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cgroup::MemCgroup;
use crate::proxy::{Fault, FaultProxy};
use crate::util::{Backend, Binary, wait_for_status};

/// A herd on a cold object, at the chart's sizing: 100 slow readers join the slow fill of a
/// 14 MiB object (10 MiB arrived, the rest held by the backend). The readers share the fill's
/// bytes, so the cgroup's peak grows by about the object twice (its buffer and the shared
/// chunks), not once per reader: a generous bound of 64 MiB (each joiner copying what had
/// arrived took +1019 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_on_a_slow_fill_costs_the_object_not_the_readers() {
    let backend = Backend::start().await;
    backend
        .put("herd.bin", vec![7u8; 14 << 20], "application/octet-stream")
        .await;
    let proxy = FaultProxy::start(backend.addr).await;
    let args = backend.args_via(proxy.addr);
    let cli = backend.serve_cli(
        &args,
        &[
            "--cache-max-bytes",
            "128MiB",
            "--cache-max-object-bytes",
            "16MiB",
            "--bucket-events",
            "off",
        ],
    );
    let bin = Binary::spawn(&cli);
    let (addr, admin) = (bin.listen_addr().await, bin.admin_addr().await);
    let cgroup = MemCgroup::enter(bin.child.id()).unwrap_or_else(|why| {
        panic!("{why}: this test measures memory in a cgroup of its own and needs root (CI runs as root)")
    });
    wait_for_status(&format!("http://{admin}/readyz"), 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cgroup.usage();
    cgroup.reset_peak();
    proxy.set(Fault::PauseAfter(10 << 20));
    let mut readers = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /herd.bin HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        readers.push(s);
        if i == 0 {
            // The fill is under way before the others join.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = cgroup.peak().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "100 readers on one fill grew the cgroup by {} MiB",
        grown >> 20
    );
    proxy.set(Fault::Pass);
    drop(readers);
    // The process first, then its cgroup (which can only be removed empty).
    drop(bin);
    drop(cgroup);
}
