//! `--credentials sts-certificate`: no static key; temporary credentials from the embedded
//! backend's `AssumeRoleWithCertificate` (MinIO's wire format) for the client certificate,
//! renewed ahead of expiry under load, and a certificate without a policy refused clearly.

use std::time::{Duration, Instant};

use gateway::cli::{BackendArgs, CredentialsMode};

use crate::util::{Backend, Binary, Gateway, get, seed_gif};

/// The backend's flags with no key at all: the client certificate is the identity.
fn keyless(backend: &Backend) -> BackendArgs {
    BackendArgs {
        access_key: None,
        secret_key: None,
        credentials: CredentialsMode::StsCertificate,
        ..backend.args()
    }
}

/// The real binary's argv for `command` with no key: TLS flags and `--credentials`.
fn keyless_cli(backend: &Backend, command: &str, flags: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [command].iter().chain(flags).map(|s| s.to_string()).collect();
    v.extend([
        "--endpoint".into(),
        format!("https://{}", backend.addr),
        "--bucket".into(),
        crate::util::BUCKET.into(),
        "--credentials".into(),
        "sts-certificate".into(),
    ]);
    for (flag, name) in [
        ("--ca-cert", "ca.pem"),
        ("--client-cert", "client.pem"),
        ("--client-key", "client-key.pem"),
    ] {
        v.extend([flag.to_string(), backend.tls(name).display().to_string()]);
    }
    v
}

/// Serve and seed with no static key: the seed job writes, the gateway serves, each with
/// credentials the backend issued for the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_seed_hold_no_key() {
    let backend = Backend::start().await;
    let mut seed = Binary::spawn(&keyless_cli(&backend, "seed", &[]));
    assert_eq!(seed.wait().await, 0, "{}", seed.stderr());
    assert!(seed.stdout().contains("created"), "{}", seed.stdout());
    let issued_for_seed = backend.server.as_ref().unwrap().sts().issued();
    assert!(issued_for_seed >= 1);

    let gw = Gateway::start(keyless(&backend)).await;
    gw.ready().await;
    let r = get(&gw.url("/gateway.gif")).await;
    assert_eq!((r.status, r.body.as_ref()), (200, seed_gif().as_slice()));
    assert!(
        gw.metric("gateway_backend_credential_refreshes_total{outcome=\"ok\"}")
            .await
            >= 1.0
    );
    let expiry = gw.metric("gateway_backend_credentials_expiry_timestamp_seconds").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(expiry > now, "expiry {expiry} is not after now {now}");
    gw.stop().await;
}

/// Credentials that last 3 s are renewed ahead of expiry by one task while 8 clients fetch
/// without pause for 8 s: no request fails, and renewals are a handful, not one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_ahead_of_expiry_under_load_fails_nothing() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    backend
        .server
        .as_ref()
        .unwrap()
        .sts()
        .max_duration(Duration::from_secs(3));
    let gw = Gateway::start_with(keyless(&backend), &["--cache-max-bytes", "0", "--bucket-events", "off"]).await;
    gw.ready().await;
    let url = gw.url("/gateway.gif");
    let until = Instant::now() + Duration::from_secs(8);
    let workers = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while Instant::now() < until {
                let r = get(&url).await;
                if r.status == 200 && r.body.len() == seed_gif().len() {
                    ok += 1;
                } else {
                    failed.push(r.status);
                }
            }
            (ok, failed)
        })
    });
    let mut total = 0;
    for w in futures_util::future::join_all(workers).await {
        let (ok, failed) = w.unwrap();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        total += ok;
    }
    let renewals = gw
        .metric("gateway_backend_credential_refreshes_total{outcome=\"ok\"}")
        .await;
    assert!(renewals >= 3.0, "{renewals} renewals in 8 s of 3 s credentials");
    assert!(
        f64::from(total) > renewals * 10.0,
        "{total} requests, {renewals} renewals"
    );
    gw.stop().await;
}

/// A certificate whose common name names no policy: MinIO answers 500 InternalError ("specified
/// policy ..., not found"), which is also what it answers for passing trouble, so the seed asks
/// again until `--wait` and then exits with one line saying so; the gateway is not ready, with
/// the reason in /readyz.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_without_a_policy_is_refused_clearly() {
    let backend = Backend::start().await;
    backend.server.as_ref().unwrap().sts().policy("gateway", None);
    let mut seed = Binary::spawn(&keyless_cli(&backend, "seed", &["--wait", "2s"]));
    let code = seed.wait().await;
    assert_ne!(code, 0);
    let err = seed.stderr();
    assert!(err.contains("AssumeRoleWithCertificate failed (500)"), "{err}");
    assert!(err.contains("specified policy gateway, not found"), "{err}");
    assert!(err.contains("common name"), "{err}");

    let gw = Gateway::start(keyless(&backend)).await;
    let deadline = Instant::now() + crate::util::TIMEOUT;
    loop {
        let r = get(&gw.admin_url("/readyz")).await;
        let body = String::from_utf8_lossy(&r.body).to_string();
        if body.contains("AssumeRoleWithCertificate") {
            assert_eq!(r.status, 503, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz never named the refusal: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        gw.metric("gateway_backend_credential_refreshes_total{outcome=\"error\"}")
            .await
            >= 1.0
    );
    gw.stop().await;
}

/// The argv of `command` with `--credentials chain` and no key.
fn chain_cli(backend: &Backend, command: &str, flags: &[&str]) -> Vec<String> {
    let mut v = keyless_cli(backend, command, flags);
    let i = v.iter().position(|a| a == "sts-certificate").unwrap();
    v[i] = "chain".into();
    v
}

/// `--credentials chain`: the keys from the environment, then (with no keys there) a web
/// identity token exchanged at the embedded backend's STS (`AWS_ENDPOINT_URL_STS`), as IRSA
/// does on EKS: seed writes and serve serves with either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_chain_from_environment_and_web_identity() {
    let backend = Backend::start().await;
    let env_keys = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), crate::util::ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), crate::util::SECRET_KEY.to_string()),
    ];
    let mut seed = Binary::spawn_with_env(&chain_cli(&backend, "seed", &[]), &env_keys);
    assert_eq!(seed.wait().await, 0, "{}", seed.stderr());
    assert!(seed.stdout().contains("created"), "{}", seed.stdout());

    backend
        .server
        .as_ref()
        .unwrap()
        .sts()
        .web_identity_token("projected-service-account-token");
    let token = backend.dir.path().join("web-identity-token");
    std::fs::write(&token, "projected-service-account-token").unwrap();
    let home = tempfile::tempdir().unwrap();
    let web_identity = vec![
        ("AWS_WEB_IDENTITY_TOKEN_FILE".to_string(), token.display().to_string()),
        (
            "AWS_ROLE_ARN".to_string(),
            "arn:aws:iam::123456789012:role/gateway".to_string(),
        ),
        ("AWS_ENDPOINT_URL_STS".to_string(), format!("https://{}", backend.addr)),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
        ("HOME".to_string(), home.path().display().to_string()),
    ];
    let before = backend.server.as_ref().unwrap().sts().issued();
    let file = backend.dir.path().join("other.txt");
    std::fs::write(&file, "via web identity").unwrap();
    let mut seed = Binary::spawn_with_env(
        &chain_cli(&backend, "seed", &["--file", file.to_str().unwrap()]),
        &web_identity,
    );
    assert_eq!(seed.wait().await, 0, "{}", seed.stderr());
    assert!(
        backend.server.as_ref().unwrap().sts().issued() > before,
        "no web identity exchange"
    );

    let mut serve = Binary::spawn_with_env(
        &chain_cli(
            &backend,
            "serve",
            &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        ),
        &web_identity,
    );
    let addr = serve.listen_addr().await;
    let r = get(&format!("http://{addr}/other.txt")).await;
    assert_eq!(
        (r.status, r.body.as_ref()),
        (200, b"via web identity".as_ref()),
        "{}",
        serve.stderr()
    );
    assert_eq!(serve.terminate().await, 0);
}

/// Credentials the backend stops taking before the gateway would renew them (it forgot
/// them, as a restarted MinIO does): the refused request renews them and is retried once, and
/// the client gets its object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_renewed_and_the_request_retried() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let gw = Gateway::start_with(keyless(&backend), &["--cache-max-bytes", "0", "--bucket-events", "off"]).await;
    gw.ready().await;
    assert_eq!(get(&gw.url("/ten.txt")).await.status, 200);
    let ok = "gateway_backend_credential_refreshes_total{outcome=\"ok\"}";
    let before = gw.metric(ok).await;
    backend.server.as_ref().unwrap().sts().revoke_all();
    let r = get(&gw.url("/ten.txt")).await;
    assert_eq!((r.status, r.body.as_ref()), (200, b"0123456789".as_ref()));
    assert_eq!(gw.metric(ok).await, before + 1.0);
    gw.stop().await;
}

/// The client certificate files are replaced by a certificate with another common name: the
/// credentials are renewed at once with it (the old name has lost its policy, so a renewal
/// with the old certificate would be refused), and requests keep succeeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_renews_the_credentials() {
    let backend = Backend::start().await;
    backend.put("ten.txt", "0123456789", "text/plain").await;
    let dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "client.pem", "client-key.pem"] {
        std::fs::copy(backend.tls(f), dir.path().join(f)).unwrap();
    }
    let args = BackendArgs {
        client_cert: Some(dir.path().join("client.pem")),
        client_key: Some(dir.path().join("client-key.pem")),
        ..keyless(&backend)
    };
    let gw = Gateway::start_with(args, &["--cache-max-bytes", "0", "--tls-reload-interval", "200ms"]).await;
    gw.ready().await;
    assert_eq!(get(&gw.url("/ten.txt")).await.status, 200);
    let ok = "gateway_backend_credential_refreshes_total{outcome=\"ok\"}";
    let before = gw.metric(ok).await;

    let sts = backend.server.as_ref().unwrap().sts();
    sts.policy("gateway-rotated", Some("readonly"));
    sts.policy("gateway", None);
    let (cert, key) = backend.pki.issue_client("gateway-rotated", 1).unwrap();
    // Key first, then certificate, each replaced at once (as a Secret volume update does).
    for (name, content) in [("client-key.pem", key), ("client.pem", cert)] {
        let path = dir.path().join(name);
        std::fs::write(path.with_extension("tmp"), content).unwrap();
        std::fs::rename(path.with_extension("tmp"), &path).unwrap();
    }
    let deadline = Instant::now() + crate::util::TIMEOUT;
    while gw.metric(ok).await <= before {
        if Instant::now() >= deadline {
            let text = String::from_utf8_lossy(&get(&gw.admin_url("/metrics")).await.body).to_string();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("tls_reloads") || l.contains("credential"))
                .collect();
            panic!("the credentials were not renewed for the new certificate: {lines:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        gw.metric("gateway_backend_credential_refreshes_total{outcome=\"error\"}")
            .await,
        0.0
    );
    for _ in 0..5 {
        assert_eq!(get(&gw.url("/ten.txt")).await.status, 200);
    }
    gw.stop().await;
}

/// `--credentials sts-certificate` without a client certificate is a usage error naming the
/// flag (exit code 2).
#[tokio::test]
async fn sts_certificate_needs_a_client_certificate() {
    let backend = Backend::start().await;
    let mut args = keyless_cli(&backend, "seed", &[]);
    let i = args.iter().position(|a| a == "--client-cert").unwrap();
    args.drain(i..i + 4);
    let mut run = Binary::spawn(&args);
    assert_eq!(run.wait().await, 2, "{}", run.stderr());
    assert!(run.stderr().contains("--credentials"), "{}", run.stderr());
}

/// An identity of its own for the gateway and for the seed job, as the chart sets them up:
/// `gateway policies` adds two canned policies through the admin API with the root keys, and
/// certificates whose common names are those policies get only what their policy allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_from_the_admin_api_give_each_certificate_least_privilege() {
    let backend = Backend::start().await;
    let bucket = crate::util::BUCKET;
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let read = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [format!("arn:aws:s3:::{bucket}/*")]},
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListenBucketNotification"], "Resource": [format!("arn:aws:s3:::{bucket}")]},
    ]});
    let write = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": [format!("arn:aws:s3:::{bucket}/*")]},
        {"Effect": "Allow", "Action": ["s3:CreateBucket", "s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{bucket}")]},
    ]});
    std::fs::write(policies.join("gateway-read.json"), read.to_string()).unwrap();
    std::fs::write(policies.join("gateway-seed.json"), write.to_string()).unwrap();
    // A mounted ConfigMap's hidden entries are not policies.
    std::fs::create_dir(policies.join("..data")).unwrap();

    let with_cert = |name: &str| -> Vec<String> {
        let (cert, key) = backend.pki.issue_client(name, 1).unwrap();
        let (c, k) = (
            dir.path().join(format!("{name}.pem")),
            dir.path().join(format!("{name}-key.pem")),
        );
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        vec![
            "--client-cert".into(),
            c.display().to_string(),
            "--client-key".into(),
            k.display().to_string(),
        ]
    };
    let as_identity = |command: &str, name: &str| -> Vec<String> {
        let flags: &[&str] = match command {
            "serve" => &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
            _ => &["--wait", "2s"],
        };
        let mut argv = keyless_cli(&backend, command, flags);
        let i = argv.iter().position(|a| a == "--client-cert").unwrap();
        argv.drain(i..i + 4);
        argv.extend(with_cert(name));
        argv
    };

    // Before the policies exist, the certificates get nothing.
    let mut early = Binary::spawn(&as_identity("seed", "gateway-seed"));
    assert_ne!(early.wait().await, 0);
    assert!(early.stderr().contains("common name"), "{}", early.stderr());

    let mut add = Binary::spawn(&{
        let mut argv = vec!["policies".to_string(), "--from".into(), policies.display().to_string()];
        argv.extend(backend.cli_args(&backend.args()));
        argv
    });
    assert_eq!(add.wait().await, 0, "{}", add.stderr());
    assert_eq!(
        add.stdout(),
        "policies: gateway-read: added\npolicies: gateway-seed: added\n"
    );

    // The gateway's identity cannot write.
    let mut denied = Binary::spawn(&as_identity("seed", "gateway-read"));
    assert_ne!(denied.wait().await, 0);
    assert!(denied.stderr().contains("AccessDenied"), "{}", denied.stderr());
    assert!(backend.keys().is_empty(), "{:?}", backend.keys());
    // The seed's identity can, and cannot manage policies.
    let mut seed = Binary::spawn(&as_identity("seed", "gateway-seed"));
    assert_eq!(seed.wait().await, 0, "{}", seed.stderr());
    let mut escalate = Binary::spawn(&{
        let mut argv = as_identity("policies", "gateway-seed");
        argv.extend(["--from".into(), policies.display().to_string()]);
        argv
    });
    assert_ne!(escalate.wait().await, 0);
    assert!(escalate.stderr().contains("AccessDenied"), "{}", escalate.stderr());

    // The gateway serves with its read-only identity: the object, an honest 404 (ListBucket),
    // and a change seen at once (ListenBucketNotification).
    let mut serve = Binary::spawn(&as_identity("serve", "gateway-read"));
    let (addr, admin) = (serve.listen_addr().await, serve.admin_addr().await);
    crate::util::wait_for_status(&format!("http://{admin}/readyz"), 200).await;
    let r = get(&format!("http://{addr}/gateway.gif")).await;
    assert_eq!((r.status, r.body.as_ref()), (200, seed_gif().as_slice()));
    assert_eq!(get(&format!("http://{addr}/missing.gif")).await.status, 404);
    // MinIO sends the event stream's head with its first keep-alive (10 s), so the subscription
    // counts as made only then.
    let deadline = Instant::now() + crate::util::TIMEOUT;
    let mut metrics = String::new();
    while Instant::now() < deadline && !metrics.contains("gateway_bucket_events_state{state=\"subscribed\"} 1") {
        tokio::time::sleep(Duration::from_millis(200)).await;
        metrics = String::from_utf8_lossy(&get(&format!("http://{admin}/metrics")).await.body).to_string();
    }
    assert!(
        metrics.contains("gateway_bucket_events_state{state=\"subscribed\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("bucket_events"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(serve.terminate().await, 0, "{}", serve.stderr());
}

/// A policy the backend refuses is a one-line error naming it; nothing after it is added.
#[tokio::test]
async fn a_refused_policy_is_named() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"x":{}}}]}"#,
    )
    .unwrap();
    let mut argv = vec![
        "policies".to_string(),
        "--from".into(),
        dir.path().display().to_string(),
    ];
    argv.extend(backend.cli_args(&backend.args()));
    let mut run = Binary::spawn(&argv);
    assert_eq!(run.wait().await, 1, "{}", run.stderr());
    assert!(run.stderr().contains("add-canned-policy"), "{}", run.stderr());

    std::fs::write(dir.path().join("bad.json"), "{}").unwrap();
    let mut run = Binary::spawn(&argv);
    assert_eq!(run.wait().await, 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("--from") && run.stderr().contains("no Statement"),
        "{}",
        run.stderr()
    );

    // MinIO refuses a document without "Version" (400 MalformedPolicy) and one over 20 KiB:
    // both are found before anything is sent, naming the file.
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    )
    .unwrap();
    let mut run = Binary::spawn(&argv);
    assert_eq!(run.wait().await, 2, "{}", run.stderr());
    assert_eq!(run.stderr().trim().lines().count(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("bad.json") && run.stderr().contains("no Version"),
        "{}",
        run.stderr()
    );
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Sid":"{}"}}]}}"#,
        "x".repeat(21 << 10)
    );
    std::fs::write(dir.path().join("bad.json"), big).unwrap();
    let mut run = Binary::spawn(&argv);
    assert_eq!(run.wait().await, 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("bad.json") && run.stderr().contains("20 KiB"),
        "{}",
        run.stderr()
    );
}

/// `--sts-duration` outside MinIO's 15 min .. 365 days is a start-up error naming the flag and
/// the range (MinIO would refuse every request for credentials).
#[tokio::test]
async fn sts_duration_outside_minios_range_is_a_usage_error() {
    let backend = Backend::start().await;
    for duration in ["5m", "366d"] {
        let mut run = Binary::spawn(&keyless_cli(&backend, "serve", &["--sts-duration", duration]));
        assert_eq!(run.wait().await, 2, "{}", run.stderr());
        let err = run.stderr();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("--sts-duration") && err.contains("15m to 365d"), "{err}");
    }
}

/// An STS that answers 503 STSIAMNotInitialized for its first seconds, as MinIO does while its
/// IAM loads, is waited for: the seed retries and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_sts_is_waited_for() {
    let backend = Backend::start().await;
    let sts = backend.server.as_ref().unwrap().sts();
    sts.starting(true);
    let mut seed = Binary::spawn(&keyless_cli(&backend, "seed", &["--wait", "60s"]));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        seed.child.try_wait().unwrap().is_none(),
        "the seed gave up on a starting STS: {}",
        seed.stderr()
    );
    sts.starting(false);
    assert_eq!(seed.wait().await, 0, "{}", seed.stderr());
    assert!(seed.stderr().contains("STSIAMNotInitialized"), "{}", seed.stderr());
}

/// An STS whose answers say an `Expiration` in the past, or centuries ahead (a clock far off):
/// no panic and no renewal loop that spins; the gateway stays up, not ready, asking again with
/// backoff, and is ready as soon as the answers make sense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sts_with_a_clock_far_off_is_asked_again_with_backoff() {
    let backend = Backend::start().await;
    backend.put("page.txt", "here", "text/plain").await;
    let sts = backend.server.as_ref().unwrap().sts();
    for said in [
        std::time::SystemTime::now() - Duration::from_secs(3600),
        std::time::SystemTime::now() + Duration::from_secs(400 * 365 * 24 * 3600),
    ] {
        sts.say_expiration(Some(said));
        let gw = Gateway::start(keyless(&backend)).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(get(&gw.admin_url("/readyz")).await.status, 503);
        let errors = gw
            .metric("gateway_backend_credential_refreshes_total{outcome=\"error\"}")
            .await;
        assert!((1.0..50.0).contains(&errors), "{errors} failed renewals in 3 s");
        sts.say_expiration(None);
        gw.ready().await;
        assert_eq!(get(&gw.url("/page.txt")).await.body.as_ref(), b"here");
        gw.stop().await;
    }
}

/// A HEAD refused with a bare 403 (a HEAD answer has no body to name its code) where a 403 may
/// mean "missing" (`--missing-object-status 403`): the credentials the backend no longer takes
/// are not mistaken for a missing key. A one-byte GET names the code, the credentials are
/// renewed, and the object is there; a key that is really missing is still 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_403_to_a_head_is_not_taken_for_missing_without_a_get() {
    let backend = Backend::start().await;
    backend.put("page.txt", "here", "text/plain").await;
    let gw = Gateway::start_with(
        keyless(&backend),
        &[
            "--missing-object-status",
            "403",
            "--cache-max-bytes",
            "0",
            "--bucket-events",
            "off",
        ],
    )
    .await;
    gw.ready().await;
    let head = async |path: &str| crate::util::request_with("HEAD", &gw.url(path), &[]).await;
    assert_eq!(head("/page.txt").await.status, 200);
    // The backend forgets every temporary key, as a restarted MinIO does.
    backend.server.as_ref().unwrap().sts().revoke_all();
    assert_eq!(
        head("/page.txt").await.status,
        200,
        "an expired credential was taken for a missing key"
    );
    assert_eq!(head("/missing.txt").await.status, 404);
    gw.stop().await;
}
