//! `gateway seed` against the mTLS backend: once, twice, with other bytes, late, and refused.

use std::time::Duration;

use bytes::Bytes;
use gateway::seed::{Outcome, SeedPlan, seed};

use crate::util::{Backend, Binary, Gateway, command, get, seed_gif};

/// Running the real `gateway seed` twice leaves one object holding the GIF; the second run says
/// it was already present. The bucket is created by the first run.
#[tokio::test]
async fn seeding_twice_is_idempotent() {
    let backend = Backend::start().await;
    let args = backend.seed_cli(&backend.args(), &[]);

    let mut first = Binary::spawn(&args);
    assert_eq!(first.wait().await, 0, "{}", first.stderr());
    assert!(first.stdout().contains("created"), "{}", first.stdout());
    let mut second = Binary::spawn(&args);
    assert_eq!(second.wait().await, 0, "{}", second.stderr());
    assert!(second.stdout().contains("already present"), "{}", second.stdout());

    assert_eq!(backend.keys(), vec!["gateway.gif".to_string()]);
    let gw = Gateway::start(backend.args()).await;
    assert_eq!(get(&gw.url("/gateway.gif")).await.body.as_ref(), seed_gif().as_slice());
    gw.stop().await;
}

/// Other bytes under the key are replaced by default, and kept with `--no-overwrite`.
#[tokio::test]
async fn other_bytes_are_replaced_unless_no_overwrite() {
    let backend = Backend::start().await;
    let storage = backend.storage();
    let plan = |data: &'static [u8], overwrite| {
        SeedPlan::new(
            "file.txt".into(),
            Bytes::from_static(data),
            overwrite,
            Duration::from_secs(5),
        )
    };
    assert_eq!(seed(&storage, &plan(b"old", true)).await.unwrap(), Outcome::Created);
    assert_eq!(
        seed(&storage, &plan(b"new", false)).await.unwrap(),
        Outcome::KeptExisting
    );
    // No cache: every GET shows what the bucket holds now.
    let gw = Gateway::start_with(backend.args(), &["--cache-max-bytes", "0"]).await;
    assert_eq!(get(&gw.url("/file.txt")).await.body.as_ref(), b"old");
    assert_eq!(seed(&storage, &plan(b"new", true)).await.unwrap(), Outcome::Replaced);
    assert_eq!(get(&gw.url("/file.txt")).await.body.as_ref(), b"new");
    assert_eq!(
        seed(&storage, &plan(b"new", true)).await.unwrap(),
        Outcome::AlreadyPresent
    );
    gw.stop().await;

    // The binary's flag does the same.
    let file = backend.dir.path().join("file.txt");
    std::fs::write(&file, b"newer").unwrap();
    let file = file.display().to_string();
    let args = backend.seed_cli(&backend.args(), &["--file", &file, "--no-overwrite"]);
    let mut bin = Binary::spawn(&args);
    assert_eq!(bin.wait().await, 0, "{}", bin.stderr());
    assert!(bin.stdout().contains("left unchanged"), "{}", bin.stdout());
    assert_eq!(backend.keys(), vec!["file.txt".to_string()]);
}

/// The backend starts two seconds after the seed: the seed retries and succeeds.
#[tokio::test]
async fn seed_waits_for_a_late_backend() {
    let port = crate::util::free_port();
    let mut backend = Backend::prepare(([127, 0, 0, 1], port).into());
    let args = backend.seed_cli(&backend.args(), &["--wait", "60s"]);
    let mut bin = Binary::spawn(&args);

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        bin.child.try_wait().unwrap().is_none(),
        "seed gave up early: {}",
        bin.stderr()
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    backend.serve(listener);

    assert_eq!(bin.wait().await, 0, "{}", bin.stderr());
    assert!(bin.stderr().contains("retrying"), "{}", bin.stderr());
    assert!(bin.stdout().contains("created"), "{}", bin.stdout());
    assert_eq!(backend.keys(), vec!["gateway.gif".to_string()]);
}

/// Errors that waiting cannot fix end the seed at once with one line naming the cause, and
/// leave the bucket untouched; an unreachable backend ends it when --wait runs out.
#[tokio::test]
async fn seed_fails_fast_on_permanent_errors() {
    let backend = Backend::start().await;
    let bad_secret = gateway::cli::BackendArgs {
        secret_key: Some("not-the-secret".into()),
        ..backend.args()
    };
    let no_cert = gateway::cli::BackendArgs {
        client_cert: None,
        client_key: None,
        ..backend.args()
    };
    for (args, cause) in [
        (bad_secret, "SignatureDoesNotMatch"),
        (no_cert, "TLS handshake refused"),
    ] {
        let cli = backend.seed_cli(&args, &["--wait", "120s"]);
        let out = tokio::task::spawn_blocking(move || command(&cli).output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        // A permanent error ends the seed at once. Under load the first attempt can instead
        // see the connection closed without the TLS alert (a plain I/O error, retried once);
        // what matters is that the refusal itself is never retried.
        let retries = stderr.matches("retrying").count();
        assert!(
            retries <= 2,
            "a permanent error must not be retried ({retries} retries): {stderr}"
        );
        let last = stderr.lines().last().unwrap_or("");
        assert!(last.starts_with("error: ") && last.contains(cause), "{stderr}");
        assert!(!stderr.contains("not-the-secret"), "{stderr}");
    }
    assert!(backend.keys().is_empty());

    let down = Backend::prepare(([127, 0, 0, 1], crate::util::free_port()).into());
    let cli = down.seed_cli(&down.args(), &["--wait", "1s"]);
    let out = tokio::task::spawn_blocking(move || command(&cli).output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gave up after"), "{stderr}");
}

/// `--purge-url`: after replacing the object, the real `gateway seed` purges it from every
/// gateway its host resolves to, so the new bytes are served at once despite a one-hour TTL;
/// a gateway that cannot be reached is a warning, not a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_purges_the_gateways() {
    let backend = Backend::start().await;
    backend.put("page.txt", "old", "text/plain").await;
    let token = backend.dir.path().join("admin-token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    let gw = Gateway::start_with(
        backend.args(),
        &["--admin-token-file", token.to_str().unwrap(), "--cache-ttl", "1h"],
    )
    .await;
    get(&gw.url("/page.txt")).await;
    assert_eq!(get(&gw.url("/page.txt")).await.header("x-cache"), "HIT");

    let file = backend.dir.path().join("page.txt");
    std::fs::write(&file, "new").unwrap();
    let url = format!("http://{}/purge?key=page.txt", gw.admin_addr);
    let args = backend.seed_cli(
        &backend.args(),
        &[
            "--file",
            file.to_str().unwrap(),
            "--purge-url",
            &url,
            "--admin-token-file",
            token.to_str().unwrap(),
        ],
    );
    let mut run = Binary::spawn(&args);
    assert_eq!(run.wait().await, 0, "{}", run.stderr());
    assert!(run.stdout().contains("purged 1 gateway(s)"), "{}", run.stdout());
    let r = get(&gw.url("/page.txt")).await;
    assert_eq!((r.header("x-cache"), r.body.as_ref()), ("MISS", b"new".as_ref()));
    assert!(!run.stderr().contains("0123456789abcdef"), "the token was logged");

    // A gateway that is gone: the object is written, the purge is a warning.
    std::fs::write(&file, "newer").unwrap();
    let args = backend.seed_cli(
        &backend.args(),
        &[
            "--file",
            file.to_str().unwrap(),
            "--purge-url",
            &format!("http://127.0.0.1:{}/purge?key=page.txt", crate::util::free_port()),
            "--admin-token-file",
            token.to_str().unwrap(),
        ],
    );
    let mut run = Binary::spawn(&args);
    assert_eq!(run.wait().await, 0, "{}", run.stderr());
    assert!(run.stderr().contains("did not purge"), "{}", run.stderr());
    assert!(run.stdout().contains("purged 0 gateway(s)"), "{}", run.stdout());
    gw.stop().await;

    // --purge-url without the token file is a usage error.
    let args = backend.seed_cli(&backend.args(), &["--purge-url", &url]);
    let mut run = Binary::spawn(&args);
    assert_eq!(run.wait().await, 2, "{}", run.stderr());
    assert!(run.stderr().contains("--admin-token-file"), "{}", run.stderr());
}
