//! Shared fixtures: a real S3 backend (s3s-fs behind a rustls acceptor that requires client
//! certificates, SigV4 on) on a loopback port, the gateway on a pre-bound port, a plain HTTP
//! client, and helpers to run the real `gateway` binary.
//!
//! Anti-flake rules: every port is bound by the test before use (port 0), readiness is polled
//! rather than slept for, and every wait is bounded by [`TIMEOUT`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use embedded_s3::{EmbeddedS3, EmbeddedS3Config};
use gateway::BackendConfig;
use gateway::DevPki;
use gateway::Metrics;
use gateway::ServeConfig;
use gateway::cli::BackendArgs;
use gateway::{Retries, Storage};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Upper bound on any single wait in a test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials the backend accepts.
pub const ACCESS_KEY: &str = "testaccesskey";
/// The secret the backend accepts; tests grep logs for it.
pub const SECRET_KEY: &str = "test-secret-9f8e7d6c5b4a";
/// Bucket used by the tests.
pub const BUCKET: &str = "gifs";

/// The GIF in `seed/`, read from disk (not from the binary) to compare against.
pub fn seed_gif() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seed/gateway.gif")).unwrap()
}

/// A running embedded backend and the files a gateway needs to reach it.
pub struct Backend {
    /// Temp dir with `tls/` (PKI) and `data/` (buckets).
    pub dir: tempfile::TempDir,
    /// The PKI (CA, server and client certificates).
    pub pki: DevPki,
    /// The server.
    pub server: Option<EmbeddedS3>,
    /// Its address.
    pub addr: SocketAddr,
}

impl Backend {
    /// Starts a backend on a fresh loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut b = Self::prepare(listener.local_addr().unwrap());
        b.serve(listener);
        b
    }

    /// Starts a backend whose certificate names only `names` (from the CA the gateway trusts).
    pub async fn start_named(names: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut b = Self::prepare_named(listener.local_addr().unwrap(), &names);
        b.serve(listener);
        b
    }

    /// Prepares PKI and directories for a backend at `addr` without starting it.
    pub fn prepare(addr: SocketAddr) -> Self {
        Self::prepare_named(addr, &["localhost".into(), "127.0.0.1".into()])
    }

    /// [`Backend::prepare`] with a server certificate for `names`.
    fn prepare_named(addr: SocketAddr, names: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::generate(names, "gateway", 1).unwrap();
        pki.write_to(&dir.path().join("tls"), false).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Self {
            dir,
            pki,
            server: None,
            addr,
        }
    }

    /// Starts serving on `listener` (which must be bound to `self.addr`).
    pub fn serve(&mut self, listener: TcpListener) {
        let data = self.dir.path().join("data");
        self.server = Some(
            EmbeddedS3::start(
                listener,
                EmbeddedS3Config {
                    root: &data,
                    client_ca_pem: &self.pki.ca_cert,
                    server_cert_pem: &self.pki.server_cert,
                    server_key_pem: &self.pki.server_key,
                    access_key: ACCESS_KEY,
                    secret_key: SECRET_KEY,
                    require_client_cert: true,
                },
            )
            .unwrap(),
        );
    }

    /// A path in the PKI directory (`ca.pem`, `client.pem`, `client-key.pem`, ...).
    pub fn tls(&self, name: &str) -> PathBuf {
        self.dir.path().join("tls").join(name)
    }

    /// Flags that reach this backend with the right CA, client certificate and keys.
    pub fn args(&self) -> BackendArgs {
        gateway::demo::backend_args(
            format!("https://{}", self.addr),
            BUCKET,
            &self.dir.path().join("tls"),
            ACCESS_KEY,
            SECRET_KEY,
        )
    }

    /// [`Backend::args`] reaching the backend through the fault proxy at `proxy`.
    pub fn args_via(&self, proxy: SocketAddr) -> BackendArgs {
        BackendArgs {
            endpoint: Some(format!("https://{proxy}")),
            ..self.args()
        }
    }

    /// `gateway serve` on loopback ports (objects and admin) with `flags`, reaching the bucket
    /// with `args`: the argv of the real binary.
    pub fn serve_cli(&self, args: &BackendArgs, flags: &[&str]) -> Vec<String> {
        let mut cli: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
            .iter()
            .chain(flags)
            .map(|s| s.to_string())
            .collect();
        cli.extend(self.cli_args(args));
        cli
    }

    /// `gateway seed` with `flags`, reaching the bucket with `args`: the argv of the real binary.
    pub fn seed_cli(&self, args: &BackendArgs, flags: &[&str]) -> Vec<String> {
        let mut cli: Vec<String> = std::iter::once("seed")
            .chain(flags.iter().copied())
            .map(String::from)
            .collect();
        cli.extend(self.cli_args(args));
        cli
    }

    /// The same flags as command-line arguments for the real binary (secret via a file).
    pub fn cli_args(&self, args: &BackendArgs) -> Vec<String> {
        let mut v = vec![
            "--endpoint".into(),
            args.endpoint.clone().unwrap(),
            "--bucket".into(),
            args.bucket.clone().unwrap(),
            "--access-key".into(),
            args.access_key.clone().unwrap(),
        ];
        let secret_file = self.dir.path().join("secret-key");
        std::fs::write(&secret_file, format!("{}\n", args.secret_key.clone().unwrap())).unwrap();
        v.extend(["--secret-key-file".into(), secret_file.display().to_string()]);
        for (flag, value) in [
            ("--ca-cert", &args.ca_cert),
            ("--client-cert", &args.client_cert),
            ("--client-key", &args.client_key),
        ] {
            if let Some(p) = value {
                v.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        v
    }

    /// A storage handle with the right credentials, for setting up and checking the bucket.
    pub fn storage(&self) -> Storage {
        let cfg = BackendConfig::from_args(&self.args()).unwrap();
        Storage::new(&cfg, Arc::new(Metrics::new()), Retries::CallerManaged)
    }

    /// Seeds the bundled GIF through the production seed code.
    pub async fn seed_gif(&self) {
        let plan = gateway::seed::SeedPlan::new(
            gateway::seed::BUNDLED_NAME.into(),
            Bytes::from_static(gateway::seed::BUNDLED),
            true,
            Duration::from_secs(10),
        );
        gateway::seed::seed(&self.storage(), &plan).await.unwrap();
    }

    /// Puts an object with the given bytes and content type.
    pub async fn put(&self, key: &str, body: impl Into<Bytes>, content_type: &str) {
        self.put_with(key, body, None, content_type).await;
    }

    /// Puts an object with its own Cache-Control.
    pub async fn put_with(&self, key: &str, body: impl Into<Bytes>, cache_control: Option<&str>, content_type: &str) {
        self.put_stored(key, body, cache_control, content_type, Default::default())
            .await;
    }

    /// Puts an object with its own Cache-Control and other stored representation headers.
    pub async fn put_stored(
        &self,
        key: &str,
        body: impl Into<Bytes>,
        cache_control: Option<&str>,
        content_type: &str,
        stored: gateway::StoredHeaders,
    ) {
        let opts = gateway::PutOptions {
            content_type,
            cache_control,
            stored,
            ..Default::default()
        };
        self.storage().put(key, body.into(), &opts).await.unwrap();
    }

    /// Keys in the bucket, read from s3s-fs's directory (every regular file that is an object).
    pub fn keys(&self) -> Vec<String> {
        let root = self.dir.path().join("data").join(BUCKET);
        let mut keys = Vec::new();
        walk(&root, &root, &mut keys);
        keys.sort();
        keys
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue; // s3s-fs keeps metadata and temp files in dot-files
        }
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().to_string());
        }
    }
}

/// A gateway running in this process on a loopback port.
pub struct Gateway {
    /// Where it serves objects.
    pub addr: SocketAddr,
    /// Where it serves /metrics, /healthz and /readyz.
    pub admin_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Starts `gateway serve` (the production code path) with these backend flags.
    pub async fn start(backend: BackendArgs) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Starts `gateway serve` with these backend flags and extra `serve` flags as typed.
    pub async fn start_with(backend: BackendArgs, flags: &[&str]) -> Self {
        let argv = [
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--shutdown-delay",
            "0s",
            "--shutdown-grace",
            "10s",
        ];
        let cli = gateway::cli::Cli::try_parse_from(argv.iter().chain(flags)).unwrap();
        let gateway::cli::Command::Serve(mut args) = cli.command else {
            unreachable!()
        };
        args.backend = backend;
        let config = ServeConfig::from_args(&args).unwrap();
        let listener = TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin = TcpListener::bind(config.admin_listen.unwrap()).await.unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway::serve(listener, Some(admin), config, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            admin_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://ADDR` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://ADMIN_ADDR` + path (the operational endpoints).
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// The value of one series of `/metrics` (0 when absent), e.g. `gateway_backend_up`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = String::from_utf8(get(&self.admin_url("/metrics")).await.body.to_vec()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits until the bucket-events subscription is in `state` (`subscribed`, `retrying`,
    /// ...): `gateway_bucket_events_state{state="..."}` is 1.
    pub async fn events_state(&self, state: &str) {
        let series = format!("gateway_bucket_events_state{{state=\"{state}\"}}");
        eventually(&format!("the subscription is {state}"), async || {
            self.metric(&series).await == 1.0
        })
        .await;
    }

    /// Waits until `/readyz` answers 200 (the backend probe has reached the bucket).
    pub async fn ready(&self) {
        wait_for_status(&self.admin_url("/readyz"), 200).await;
    }

    /// Signals shutdown and waits for the server to finish draining.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(TIMEOUT, self.task.take().unwrap())
            .await
            .unwrap()
            .unwrap();
    }
}

/// A collected HTTP response.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Reply {
    /// A header as a string ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// The plain HTTP client tests use to talk to the gateway.
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and returns the streaming response.
pub async fn send(method: &str, url: &str) -> http::Response<hyper::body::Incoming> {
    send_with(method, url, &[]).await
}

/// Sends a request with extra headers and returns the streaming response.
pub async fn send_with(method: &str, url: &str, headers: &[(String, String)]) -> http::Response<hyper::body::Incoming> {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req.body(Empty::<Bytes>::new()).unwrap();
    tokio::time::timeout(TIMEOUT, client().request(req))
        .await
        .unwrap()
        .unwrap()
}

/// Sends a request and collects the whole response.
pub async fn request(method: &str, url: &str) -> Reply {
    request_with(method, url, &[]).await
}

/// Sends a request with extra headers and collects the whole response.
pub async fn request_with(method: &str, url: &str, headers: &[(String, String)]) -> Reply {
    let resp = send_with(method, url, headers).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    Reply { status, headers, body }
}

/// `GET url`.
pub async fn get(url: &str) -> Reply {
    request("GET", url).await
}

/// Polls `url` until it answers `status`, or panics after [`TIMEOUT`].
pub async fn wait_for_status(url: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let req = http::Request::get(url).body(Empty::<Bytes>::new()).unwrap();
        if let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(5), client().request(req)).await
            && resp.status().as_u16() == status
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} never answered {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `gateway` binary, with a clean environment and logs captured to a file.
pub struct Binary {
    /// The child process.
    pub child: Child,
    /// Where its stderr goes.
    pub stderr: PathBuf,
    /// Where its stdout goes.
    pub stdout: PathBuf,
    _dir: tempfile::TempDir,
}

/// A `Command` for the binary with no inherited `GATEWAY_*`/`AWS_*` variables.
pub fn command(args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEWAY_") || k.starts_with("AWS_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd
}

impl Binary {
    /// Spawns the binary.
    pub fn spawn(args: &[String]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// Spawns the binary with these environment variables (and no other `GATEWAY_*`).
    pub fn spawn_with_env(args: &[String], env: &[(String, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr.log");
        let stdout = dir.path().join("stdout.log");
        let child = command(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self {
            child,
            stderr,
            stdout,
            _dir: dir,
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Everything it wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until the gateway logs the address it serves objects on, and returns it.
    pub async fn listen_addr(&self) -> SocketAddr {
        self.logged_addr("listen=").await
    }

    /// As [`Binary::listen_addr`], for JSON logs (`"listen":"ADDR"`).
    pub async fn listen_addr_json(&self) -> SocketAddr {
        self.logged_addr("\"listen\":").await
    }

    /// Waits until the gateway logs the address of its admin endpoints, and returns it.
    pub async fn admin_addr(&self) -> SocketAddr {
        self.logged_addr("admin=").await
    }

    /// As [`Binary::admin_addr`], for JSON logs (`"admin":"ADDR"`).
    pub async fn admin_addr_json(&self) -> SocketAddr {
        self.logged_addr("\"admin\":").await
    }

    async fn logged_addr(&self, field: &str) -> SocketAddr {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let log = self.stderr();
            if let Some(rest) = log.split(field).nth(1) {
                let addr: String = rest
                    .trim_start_matches('"')
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',')
                    .collect();
                return addr.trim_matches('"').parse().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "no listen address logged:\n{log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends SIGTERM and waits for the exit code.
    pub async fn terminate(&mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait().await
    }

    /// Waits (bounded) for the process to exit and returns its exit code.
    pub async fn wait(&mut self) -> i32 {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("gateway did not exit; stderr:\n{}", self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration error of `gateway serve` with a valid backend and `flags`, as validated
/// before anything binds; panics when the flags are valid.
pub fn serve_config_error(flags: &[&str]) -> gateway::error::ConfigError {
    let argv = [
        "gateway",
        "serve",
        "--endpoint",
        "https://127.0.0.1:9000",
        "--bucket",
        "bucket",
        "--access-key",
        "a",
        "--secret-key",
        "s",
    ];
    let cli = gateway::cli::Cli::try_parse_from(argv.iter().chain(flags)).unwrap();
    let gateway::cli::Command::Serve(args) = cli.command else {
        unreachable!()
    };
    ServeConfig::from_args(&args).unwrap_err()
}

/// Polls `check` every 100 ms until it holds; fails naming `what` after [`TIMEOUT`].
pub async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
