//! Backend failures are answered honestly (502/503, never a fake 404) and logged with their
//! cause, never with a secret. These run the real binary so its log output can be read.

use crate::util::{Backend, Binary, SECRET_KEY, get, wait_for_status};
use gateway::cli::BackendArgs;

/// Runs `gateway serve` with `args`, returns (status of GET /gateway.gif, /readyz status, log).
async fn run_gateway(backend: &Backend, args: &BackendArgs) -> (u16, u16, String) {
    let (object, ready, _, log) = run_refused(backend, args).await;
    (object, ready, log)
}

/// As [`run_gateway`], for a backend that refuses this gateway: also checks that `/readyz` and
/// `gateway_backend_up` tell one story, the backend down for it, naming the cause (`class`).
async fn run_refused(backend: &Backend, args: &BackendArgs) -> (u16, u16, String, String) {
    let cli = backend.serve_cli(args, &["--shutdown-delay", "0s"]);
    let mut bin = Binary::spawn(&cli);
    let addr = bin.listen_addr().await;
    let admin = bin.admin_addr().await;
    wait_for_status(&format!("http://{admin}/healthz"), 200).await;
    let object = get(&format!("http://{addr}/gateway.gif")).await.status;
    // The startup probe may still be under way: its finding is what the body names.
    let mut readyz = get(&format!("http://{admin}/readyz")).await;
    let deadline = std::time::Instant::now() + crate::util::TIMEOUT;
    while String::from_utf8_lossy(&readyz.body).contains("(unknown)") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        readyz = get(&format!("http://{admin}/readyz")).await;
    }
    let body = String::from_utf8_lossy(&readyz.body).to_string();
    let metrics = String::from_utf8_lossy(&get(&format!("http://{admin}/metrics")).await.body).to_string();
    let up = metrics
        .lines()
        .find(|l| l.starts_with("gateway_backend_up "))
        .unwrap_or_default()
        .to_string();
    assert_eq!(bin.terminate().await, 0, "{}", bin.stderr());
    if object == 502 {
        assert!(
            body.contains("backend: down ("),
            "/readyz says the backend is usable:\n{body}"
        );
        assert_eq!(up, "gateway_backend_up 0", "{body}");
    }
    (object, readyz.status, body, bin.stderr())
}

/// A wrong secret key is a 502 with the backend's reason in the log, and neither the wrong nor
/// the right secret appears anywhere in the output.
#[tokio::test]
async fn wrong_secret_is_502_and_logged_without_secret() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let wrong = "wrong-secret-0123456789abcdef";
    let args = BackendArgs {
        secret_key: Some(wrong.into()),
        ..backend.args()
    };
    let (object, ready, body, log) = run_refused(&backend, &args).await;
    assert_eq!(object, 502, "{log}");
    assert_eq!(ready, 503, "{log}");
    assert!(body.contains("backend: down (denied"), "{body}");
    assert!(log.contains("SignatureDoesNotMatch"), "log must name the cause:\n{log}");
    assert!(
        !log.contains(wrong) && !log.contains(SECRET_KEY),
        "secret leaked:\n{log}"
    );
}

/// Without a client certificate the backend refuses the TLS handshake: not ready, 502, and the
/// log says the handshake was refused.
#[tokio::test]
async fn missing_client_certificate_is_refused() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let args = BackendArgs {
        client_cert: None,
        client_key: None,
        ..backend.args()
    };
    let (object, ready, body, log) = run_refused(&backend, &args).await;
    assert_eq!((object, ready), (502, 503), "{log}");
    assert!(body.contains("backend: down (tls"), "{body}");
    assert!(log.contains("TLS handshake refused"), "{log}");
}

/// A client certificate from another CA is refused the same way; so is a backend certificate
/// that the configured CA did not sign.
#[tokio::test]
async fn foreign_certificates_are_refused() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    let other = Backend::prepare(backend.addr);

    let foreign_client = BackendArgs {
        client_cert: Some(other.tls("client.pem")),
        client_key: Some(other.tls("client-key.pem")),
        ..backend.args()
    };
    let (object, ready, log) = run_gateway(&backend, &foreign_client).await;
    assert_eq!((object, ready), (502, 503), "{log}");
    assert!(log.contains("TLS handshake refused"), "{log}");

    let foreign_ca = BackendArgs {
        ca_cert: Some(other.tls("ca.pem")),
        ..backend.args()
    };
    let (object, ready, log) = run_gateway(&backend, &foreign_ca).await;
    assert_eq!((object, ready), (502, 503), "{log}");
    assert!(log.contains("TLS handshake refused"), "{log}");
}

/// A backend that is down: not ready, and requests get 503 (retry later), not 404.
#[tokio::test]
async fn unreachable_backend_is_503() {
    let backend = Backend::prepare(std::net::SocketAddr::from(([127, 0, 0, 1], crate::util::free_port())));
    let (object, ready, log) = run_gateway(&backend, &backend.args()).await;
    assert_eq!((object, ready), (503, 503), "{log}");
    assert!(log.contains("backend unreachable"), "{log}");
}

/// Refused connections to a backend known to be down: every 503 says when to try again
/// (`Retry-After`), before the circuit opens too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_503_of_a_down_backend_says_when_to_retry() {
    let backend = Backend::prepare(std::net::SocketAddr::from(([127, 0, 0, 1], crate::util::free_port())));
    let gw = crate::util::Gateway::start_with(backend.args(), &["--circuit-breaker-failures", "100"]).await;
    for i in 0..3 {
        let r = get(&gw.url(&format!("/{i}.gif"))).await;
        assert_eq!(r.status, 503);
        assert!(
            r.header("retry-after").parse::<u64>().is_ok_and(|s| s >= 1),
            "{i}: {:?}",
            r.headers
        );
    }
    gw.stop().await;
}

/// The chart's install order: gateway pods start before the seed job creates the bucket. The
/// backend answers, so the pod is ready (`helm install --wait` can finish); objects are 502
/// naming NoSuchBucket, never 404; once `gateway seed` has run, the same gateway serves the GIF.
#[tokio::test]
async fn missing_bucket_is_ready_502_until_seeded() {
    let backend = Backend::start().await;
    let cli = backend.serve_cli(&backend.args(), &["--shutdown-delay", "0s"]);
    let mut bin = Binary::spawn(&cli);
    let addr = bin.listen_addr().await;
    let admin = bin.admin_addr().await;
    wait_for_status(&format!("http://{admin}/readyz"), 200).await;
    assert_eq!(get(&format!("http://{addr}/gateway.gif")).await.status, 502);

    let mut seeder = Binary::spawn(&backend.seed_cli(&backend.args(), &[]));
    assert_eq!(seeder.wait().await, 0, "{}", seeder.stderr());

    let reply = get(&format!("http://{addr}/gateway.gif")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.as_ref(), crate::util::seed_gif().as_slice());
    assert_eq!(bin.terminate().await, 0);
    let log = bin.stderr();
    assert!(log.contains("bucket does not exist yet"), "{log}");
    assert!(
        log.contains("NoSuchBucket"),
        "the 502 must be logged with its cause:\n{log}"
    );
}
