//! The real binary as a user runs it: help, configuration errors, the demo, SIGTERM.

use crate::util::{Binary, command, get, seed_gif, wait_for_status};

fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = command(&args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `gateway --help` lists every subcommand.
#[test]
fn help_lists_subcommands() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["serve", "seed", "certs", "demo"] {
        assert!(stdout.contains(sub), "{stdout}");
    }
}

/// `gateway` alone lists the commands on stderr, as a usage error (exit 2).
#[test]
fn no_arguments_lists_the_commands() {
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    for sub in ["serve", "seed", "certs", "demo"] {
        assert!(stderr.contains(sub), "{stderr}");
    }
    assert!(stderr.contains("Usage: gateway"), "{stderr}");
}

/// Bad configuration exits 2 with one line naming the flag, before anything binds.
#[test]
fn config_errors_exit_2_with_one_line() {
    const OK: &str = "--endpoint https://m:9000 --bucket gifs --access-key a --secret-key s";
    let cases = [
        (
            "serve --endpoint https://m:9000 --access-key a --secret-key s".to_string(),
            "--bucket",
        ),
        (
            "serve --bucket gifs --access-key a --secret-key s".to_string(),
            "--endpoint",
        ),
        ("serve --endpoint minio:9000 --bucket gifs".to_string(), "--endpoint"),
        (
            "serve --endpoint https://m:9000 --bucket Bad_Name --access-key a --secret-key s".to_string(),
            "--bucket",
        ),
        (
            "serve --endpoint https://m:9000 --bucket gifs --access-key a".to_string(),
            "--secret-key",
        ),
        (format!("serve {OK} --listen nowhere"), "--listen"),
        (format!("serve {OK} --client-cert /nonexistent.pem"), "--client-key"),
        (format!("serve {OK} --ca-cert /nonexistent.pem"), "--ca-cert"),
        (format!("serve {OK} --backend-timeout 0s"), "--backend-timeout"),
        (format!("serve {OK} --no-such-flag"), "--no-such-flag"),
        ("seed --wait soon".to_string(), "--wait"),
        // The one line keeps clap's hints: the valid values, the flag meant.
        ("--log-format yaml seed".to_string(), "possible values: text, json"),
        ("seed --buckt gifs".to_string(), "did you mean '--bucket'?"),
    ];
    for (args, flag) in &cases {
        let args: Vec<&str> = args.split_whitespace().collect();
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} should name {flag}: {stderr}");
    }
}

/// `gateway certs` writes the PKI and refuses to overwrite it without --force.
#[test]
fn certs_writes_and_refuses_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().display().to_string();
    let (code, stdout, stderr) = run(&[
        "certs",
        "--out",
        &out,
        "--server-name",
        "minio",
        "--server-name",
        "10.0.0.5",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
    let (code, _, stderr) = run(&["certs", "--out", &out]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--force"), "{stderr}");
    // Extra client certificates of the first CA...
    let (code, _, stderr) = run(&[
        "certs",
        "--out",
        &out,
        "--force",
        "--extra-client",
        "seed",
        "--extra-client",
        "old",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("client-old.pem").exists());
    // ... are replaced or removed with it: none is left that the new CA did not sign.
    let (code, stdout, stderr) = run(&["certs", "--out", &out, "--force", "--extra-client", "seed"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("wrote ") && stdout.contains("client-seed.pem"),
        "{stdout}"
    );
    assert!(
        stdout.contains("removed ") && stdout.contains("client-old.pem"),
        "{stdout}"
    );
    assert!(!dir.path().join("client-old.pem").exists() && !dir.path().join("client-old-key.pem").exists());
    assert!(dir.path().join("client-seed.pem").exists() && dir.path().join("client.pem").exists());
}

/// `gateway demo` on a free port serves the GIF from seed/, a page at `/` that shows it, and
/// Prometheus metrics; SIGTERM
/// stops it with exit code 0.
#[tokio::test]
async fn demo_serves_the_gif() {
    let args = ["demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"].map(String::from);
    let mut bin = Binary::spawn(&args);
    let deadline = std::time::Instant::now() + crate::util::TIMEOUT;
    let url = loop {
        if let Some(line) = bin.stdout().lines().find(|l| l.contains("GIF")) {
            break line.split_whitespace().last().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no URL printed: {}", bin.stderr());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let r = get(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "image/gif");
    assert_eq!(r.body.as_ref(), seed_gif().as_slice());
    // `/` is a page that shows the GIF and links the metrics.
    let page = get(&url.replace("gateway.gif", "")).await;
    assert_eq!(
        (page.status, page.header("content-type")),
        (200, "text/html; charset=utf-8")
    );
    let html = String::from_utf8_lossy(&page.body);
    assert!(
        html.contains(r#"<img src="/gateway.gif""#) && html.contains("/metrics\">"),
        "{html}"
    );
    let metrics_url = bin
        .stdout()
        .lines()
        .find(|l| l.contains("metrics"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    wait_for_status(&metrics_url, 200).await;
    let m = get(&metrics_url).await;
    assert!(String::from_utf8_lossy(&m.body).contains("# TYPE gateway_http_requests_total counter"));
    assert_eq!(bin.terminate().await, 0, "{}", bin.stderr());
}

/// The newcomer's path of the README: `gateway demo --backend-only --env-file PATH` runs only
/// the seeded mTLS backend and writes the variables that reach it; with them, and no other
/// flag, `gateway seed` uploads a file and `gateway serve` serves it and the GIF. Stopping the
/// demo removes the file.
#[tokio::test]
async fn demo_backend_only_env_file_drives_serve_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("gateway.env");
    let args = ["demo", "--backend-only", "--env-file"]
        .map(String::from)
        .into_iter()
        .chain([env_file.display().to_string()])
        .collect::<Vec<_>>();
    let mut demo = Binary::spawn(&args);
    let deadline = std::time::Instant::now() + crate::util::TIMEOUT;
    while !demo.stdout().contains("backend only") {
        assert!(
            std::time::Instant::now() < deadline,
            "demo did not start: {}",
            demo.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // What `set -a; . PATH; set +a` puts in the environment.
    let env: Vec<(String, String)> = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('\'').to_string())
        })
        .collect();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    for name in [
        "GATEWAY_ENDPOINT",
        "GATEWAY_BUCKET",
        "GATEWAY_REGION",
        "GATEWAY_CA_CERT",
        "GATEWAY_CLIENT_CERT",
        "GATEWAY_CLIENT_KEY",
        "GATEWAY_ACCESS_KEY_FILE",
        "GATEWAY_SECRET_KEY_FILE",
    ] {
        assert!(names.contains(&name), "{name} missing: {names:?}");
    }

    let page = dir.path().join("hello.txt");
    std::fs::write(&page, "hello from seed\n").unwrap();
    let mut seed = Binary::spawn_with_env(&["seed".into(), "--file".into(), page.display().to_string()], &env);
    assert_eq!(seed.wait().await, 0, "{}", seed.stderr());
    assert!(seed.stdout().contains("hello.txt: created"), "{}", seed.stdout());

    let serve_args = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"].map(String::from);
    let mut serve = Binary::spawn_with_env(&serve_args, &env);
    let addr = serve.listen_addr().await;
    let gif = get(&format!("http://{addr}/gateway.gif")).await;
    assert_eq!(gif.status, 200, "{}", serve.stderr());
    assert_eq!(gif.body.as_ref(), seed_gif().as_slice());
    let hello = get(&format!("http://{addr}/hello.txt")).await;
    assert_eq!((hello.status, hello.body.as_ref()), (200, &b"hello from seed\n"[..]));
    assert_eq!(serve.terminate().await, 0, "{}", serve.stderr());

    assert_eq!(demo.terminate().await, 0, "{}", demo.stderr());
    assert!(
        !env_file.exists(),
        "the demo removes its environment file when it stops"
    );
}
