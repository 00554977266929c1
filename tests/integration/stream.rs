//! A large object streams through the gateway intact.
//!
//! How the body is streamed: the handler hands hyper the SDK's body (`SdkBody`, itself the
//! hyper body of the backend connection) without collecting it; hyper polls it for the next
//! chunk only when the client connection can take more, so at most a few socket and hyper
//! buffers (hundreds of KiB) are in flight whatever the object size. This test checks the
//! bytes (SHA-256 computed while reading, as the client receives them); memory is measured by
//! the benchmark under `bench/`.

use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::util::{Backend, Gateway, TIMEOUT, send};

const SIZE: usize = 64 * 1024 * 1024;

/// A 64 MiB object of pseudo-random bytes arrives with the same length and digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_streams_intact() {
    let backend = Backend::start().await;
    let mut data = vec![0u8; SIZE];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let expected = Sha256::digest(&data);
    backend
        .put("big.bin", Bytes::from(data), "application/octet-stream")
        .await;

    let gw = Gateway::start(backend.args()).await;
    let resp = send("GET", &gw.url("/big.bin")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    let mut body = resp.into_body();
    let mut hasher = Sha256::new();
    let mut received = 0usize;
    let mut chunks = 0usize;
    while let Some(frame) = tokio::time::timeout(TIMEOUT, body.frame()).await.unwrap() {
        if let Ok(data) = frame.unwrap().into_data() {
            received += data.len();
            chunks += 1;
            hasher.update(&data);
        }
    }
    assert_eq!(received, SIZE);
    assert_eq!(hasher.finalize(), expected);
    // Arrived as a stream of many chunks, not one buffered blob.
    assert!(chunks > 64, "only {chunks} chunks");
    gw.stop().await;
}

/// Shutdown while a download is in flight: the listener closes (new connections are refused)
/// and the download still completes intact before the server returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_download() {
    let backend = Backend::start().await;
    let data = Bytes::from(vec![7u8; 16 * 1024 * 1024]);
    backend.put("drain.bin", data.clone(), "application/octet-stream").await;
    let gw = Gateway::start(backend.args()).await;
    let addr = gw.addr;

    let resp = send("GET", &gw.url("/drain.bin")).await;
    let mut body = resp.into_body();
    let mut received = tokio::time::timeout(TIMEOUT, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap()
        .len();

    let stopping = tokio::spawn(gw.stop());
    // New connections are refused once the listener is closed.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "listener still accepting");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!stopping.is_finished(), "server returned before the download finished");

    while let Some(frame) = tokio::time::timeout(TIMEOUT, body.frame()).await.unwrap() {
        let chunk = frame.unwrap().into_data().unwrap();
        assert!(chunk.iter().all(|b| *b == 7));
        received += chunk.len();
    }
    assert_eq!(received, data.len());
    stopping.await.unwrap();
}
