//! Certificate rotation without a restart: the files behind --ca-cert, --client-cert and
//! --client-key are rewritten in place (as cert-manager and the kubelet do) and the backend
//! switches to the new CA; the gateway follows, and a half-written pair is rejected while the
//! old identity stays in use.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gateway::DevPki;
use gateway::cli::BackendArgs;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::util::{Backend, Gateway, TIMEOUT, get};

const EXPIRY: &str = "gateway_tls_client_cert_expiry_timestamp_seconds";

async fn metric(gw: &Gateway, series: &str) -> f64 {
    let text = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn expiry_of(pem: &str) -> f64 {
    gateway::not_after(&CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()).unwrap() as f64
}

/// GET returning the status, or 0 when the exchange failed (a response cut off while the
/// backend restarts counts as a failure, not a test crash).
async fn try_get(url: &str) -> u16 {
    let req = http::Request::get(url)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    match tokio::time::timeout(TIMEOUT, crate::util::client().request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            match http_body_util::BodyExt::collect(resp.into_body()).await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        _ => 0,
    }
}

/// Replaces a file the way a Secret volume update does: the new content appears at once.
fn replace(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The gateway's own copy of its TLS files (its "mounted Secret"), and flags pointing at it.
fn secret_dir(backend: &Backend) -> (tempfile::TempDir, BackendArgs) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "client.pem", "client-key.pem"] {
        std::fs::copy(backend.tls(f), dir.path().join(f)).unwrap();
    }
    let args = BackendArgs {
        ca_cert: Some(dir.path().join("ca.pem")),
        client_cert: Some(dir.path().join("client.pem")),
        client_key: Some(dir.path().join("client-key.pem")),
        ..backend.args()
    };
    (dir, args)
}

/// A new CA and client certificate are written in place during steady traffic and the backend
/// switches to trust only the new CA: once the rotation settles no request fails, and the
/// expiry metric shows the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_during_traffic() {
    let mut backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let (dir, args) = secret_dir(&backend);
    let gw = Arc::new(Gateway::start_with(args, &["--cache-max-bytes", "0", "--tls-reload-interval", "200ms"]).await);
    assert_eq!(get(&gw.url("/ten.txt")).await.status, 200);
    assert_eq!(metric(&gw, EXPIRY).await, expiry_of(&backend.pki.client_cert));

    // Steady traffic, each result recorded with whether the rotation had settled before it began.
    let settled = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(true));
    let counted = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (gw, settled, running, counted) = (gw.clone(), settled.clone(), running.clone(), counted.clone());
        tokio::spawn(async move {
            let mut after_settle = Vec::new();
            while running.load(Ordering::Relaxed) {
                let was_settled = settled.load(Ordering::Relaxed);
                let status = try_get(&gw.url("/ten.txt")).await;
                if was_settled {
                    after_settle.push(status);
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            after_settle
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Rotate: new CA, server and client certificates; the backend trusts only the new CA.
    let pki2 = DevPki::generate(&["localhost".into(), "127.0.0.1".into()], "gateway", 2).unwrap();
    replace(&dir.path().join("ca.pem"), &pki2.ca_cert);
    replace(&dir.path().join("client-key.pem"), &pki2.client_key);
    replace(&dir.path().join("client.pem"), &pki2.client_cert);
    backend.server.take().unwrap().stop().await;
    backend.pki = pki2.clone();
    backend.serve(tokio::net::TcpListener::bind(backend.addr).await.unwrap());

    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while metric(&gw, EXPIRY).await != expiry_of(&pki2.client_cert) || try_get(&gw.url("/ten.txt")).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway never picked up the new certificates"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settled.store(true, Ordering::Relaxed);
    // Let 20 requests run after the rotation settled, however long the machine takes.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while counted.load(Ordering::Relaxed) < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "traffic stalled after the rotation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(false, Ordering::Relaxed);
    let after = traffic.await.unwrap();
    assert!(
        after.iter().all(|s| *s == 200),
        "failed requests after the rotation settled: {after:?}"
    );
    assert!(metric(&gw, "gateway_tls_reloads_total{file=\"identity\",outcome=\"ok\"}").await >= 1.0);
    Arc::try_unwrap(gw).ok().unwrap().stop().await;
}

/// A key that does not match the certificate (a half-written pair) is rejected and counted;
/// the old identity stays in use and requests keep succeeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_pair_is_rejected() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let (dir, args) = secret_dir(&backend);
    let gw = Gateway::start_with(args, &["--cache-max-bytes", "0", "--tls-reload-interval", "200ms"]).await;
    let other = DevPki::generate(&["localhost".into()], "gateway", 1).unwrap();
    replace(&dir.path().join("client-key.pem"), &other.client_key);

    let rejected = "gateway_tls_reloads_total{file=\"identity\",outcome=\"rejected\"}";
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while metric(&gw, rejected).await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mismatched pair was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        assert_eq!(get(&gw.url("/ten.txt")).await.status, 200);
    }
    assert_eq!(metric(&gw, EXPIRY).await, expiry_of(&backend.pki.client_cert));
    gw.stop().await;
}

/// A CA file replaced by garbage, then emptied, is rejected and counted each time, and the
/// trust in use stays: with every backend connection cut after each change, the new
/// connections still verify the backend and requests keep succeeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_ca_file_keeps_the_trust_in_use() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let mut proxy = crate::proxy::FaultProxy::start(backend.addr).await;
    let (dir, args) = secret_dir(&backend);
    let args = BackendArgs {
        endpoint: Some(format!("https://{}", proxy.addr)),
        ..args
    };
    let gw = Gateway::start_with(args, &["--cache-max-bytes", "0", "--tls-reload-interval", "200ms"]).await;
    assert_eq!(get(&gw.url("/ten.txt")).await.status, 200);

    let rejected = "gateway_tls_reloads_total{file=\"ca\",outcome=\"rejected\"}";
    for (count, content) in [(1.0, "not a certificate\n"), (2.0, "")] {
        replace(&dir.path().join("ca.pem"), content);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while metric(&gw, rejected).await < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "CA file {content:?} never rejected"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let before = proxy.accepted();
        proxy.kill();
        proxy.revive().await;
        for _ in 0..3 {
            assert_eq!(get(&gw.url("/ten.txt")).await.status, 200, "after CA {content:?}");
        }
        assert!(proxy.accepted() > before, "no new backend connection was made");
    }
    gw.stop().await;
}
