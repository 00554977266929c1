//! `gateway demo`: the whole product on one machine, with nothing installed.
//!
//! It generates a CA and certificates in a temporary directory, starts the embedded S3
//! backend (s3s-fs) that requires client certificates and SigV4, seeds the bundled GIF and a
//! small `index.html` that shows it (so `/` in a browser is the demo) through the same code as
//! `gateway seed`, and serves through the same code as `gateway serve`.
//! With `--backend-only` it stops before serving and writes an environment file instead, so
//! that `gateway serve` and `gateway seed` can be tried by hand against the backend.
//! Ctrl-C stops everything and removes the temporary directory (and the environment file).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};
use tokio::net::TcpListener;

use crate::backend::settings::BackendConfig;
use crate::cli::{BackendArgs, DemoArgs, ServeArgs};
use crate::cmd::certs::DevPki;
use crate::cmd::seed::{self, SeedPlan};
use crate::config::serve::{ServeConfig, parse_listen};
use embedded_s3::{EmbeddedS3, EmbeddedS3Config};

/// Bucket the demo creates.
pub const DEMO_BUCKET: &str = "gateway-demo";

/// Flags that reach an embedded backend at `endpoint` as its client: the CA and client
/// certificate that [`DevPki::write_to`] wrote into `tls_dir`, and the credentials.
fn backend_flags(endpoint: String, bucket: &str, tls_dir: &Path, access_key: &str, secret_key: &str) -> Vec<String> {
    let path = |name: &str| tls_dir.join(name).display().to_string();
    [
        ("--endpoint", endpoint),
        ("--bucket", bucket.to_string()),
        ("--ca-cert", path("ca.pem")),
        ("--client-cert", path("client.pem")),
        ("--client-key", path("client-key.pem")),
        ("--access-key", access_key.to_string()),
        ("--secret-key", secret_key.to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// The flags of `backend_flags` as `serve` and `seed` read them (every other flag at its default).
///
/// # Panics
/// Only if the backend flags' definitions change so that these no longer parse (a programming
/// error the tests catch).
pub fn backend_args(endpoint: String, bucket: &str, tls_dir: &Path, access_key: &str, secret_key: &str) -> BackendArgs {
    crate::cli::parse_flags(&backend_flags(endpoint, bucket, tls_dir, access_key, secret_key))
        .expect("the demo's backend flags parse")
}

/// Runs the demo until `shutdown` completes.
///
/// # Errors
/// A [`crate::error::ConfigError`] for a bad address flag; otherwise why the demo could not start.
pub async fn run(args: &DemoArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let backend_listen = parse_listen("--backend-listen", &args.backend_listen)?;
    // Bind every port first, so a port in use fails before anything else is made.
    let listeners = if args.backend_only {
        None
    } else {
        Some(bind_gateway(args).await?)
    };
    let backend_listener = TcpListener::bind(backend_listen)
        .await
        .with_context(|| format!("cannot listen on {backend_listen} (--backend-listen); is the port in use?"))?;

    let tmp = tempfile::Builder::new().prefix("gateway-demo-").tempdir()?;
    let tls_dir = tmp.path().join("tls");
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    let pki = DevPki::generate(&["localhost".into(), "127.0.0.1".into()], "gateway", 1)?;
    pki.write_to(&tls_dir, false)?;
    let access_key = format!("demo{}", Alphanumeric.sample_string(&mut rand::rng(), 16));
    let secret_key = Alphanumeric.sample_string(&mut rand::rng(), 40);

    let backend = EmbeddedS3::start(
        backend_listener,
        EmbeddedS3Config {
            root: &data_dir,
            client_ca_pem: &pki.ca_cert,
            server_cert_pem: &pki.server_cert,
            server_key_pem: &pki.server_key,
            access_key: &access_key,
            secret_key: &secret_key,
            require_client_cert: true,
        },
    )?;
    let flags = backend_flags(backend.endpoint(), DEMO_BUCKET, &tls_dir, &access_key, &secret_key);
    let client: BackendArgs = crate::cli::parse_flags(&flags)?;
    let backend_cfg = BackendConfig::from_args(&client)?;
    let plan = SeedPlan::new(
        seed::BUNDLED_NAME.to_string(),
        bytes::Bytes::from_static(seed::BUNDLED),
        true,
        Duration::from_secs(30),
    );
    seed::run(&backend_cfg, &plan).await?;
    if let Some((listener, admin)) = &listeners {
        let metrics = shown(admin.as_ref().unwrap_or(listener).local_addr()?);
        let page = SeedPlan::new(
            "index.html".into(),
            index_page(metrics).into(),
            true,
            Duration::from_secs(30),
        );
        seed::run(&backend_cfg, &page).await?;
    }
    println!(
        "gateway demo: embedded mTLS S3 backend at {} (bucket {DEMO_BUCKET})",
        backend.endpoint()
    );
    let env_file = match &args.env_file {
        Some(path) => {
            write_env_file(path, tmp.path(), &client, &access_key, &secret_key)?;
            println!(
                "gateway demo: wrote {p}; try it by hand: set -a; . {p}; set +a; gateway serve",
                p = path.display()
            );
            Some(path.clone())
        }
        None => None,
    };

    match listeners {
        None => {
            println!("gateway demo: backend only; press Ctrl-C to stop");
            shutdown.await;
        }
        Some((listener, admin)) => serve(listener, admin, flags, shutdown).await?,
    }
    backend.stop().await;
    if let Some(path) = env_file {
        let _ = std::fs::remove_file(path);
    }
    drop(tmp);
    println!("gateway demo: stopped");
    Ok(())
}

/// Binds the gateway's data and admin listeners.
async fn bind_gateway(args: &DemoArgs) -> anyhow::Result<(TcpListener, Option<TcpListener>)> {
    let listen = parse_listen("--listen", &args.listen)?;
    let admin_addr = crate::config::serve::admin_address(listen, &args.admin_listen)?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--listen); is the port in use?"))?;
    let admin = match admin_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (--admin-listen); is the port in use?"))?,
        ),
        None => None,
    };
    Ok((listener, admin))
}

/// Serves the demo bucket until `shutdown`, printing where to look.
async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    backend_flags: Vec<String>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let admin_addr = admin.as_ref().and_then(|l| l.local_addr().ok());
    println!("gateway demo: page    http://{}/", shown(local));
    println!("gateway demo: GIF     http://{}/{}", shown(local), seed::BUNDLED_NAME);
    println!(
        "gateway demo: metrics http://{}/metrics",
        shown(admin_addr.unwrap_or(local))
    );
    println!("gateway demo: press Ctrl-C to stop");

    // `serve`'s own flags and defaults, on the listeners bound here; a demo stops at once on
    // Ctrl-C (no shutdown delay, a short grace).
    let mut flags: Vec<String> = [
        "--listen",
        &local.to_string(),
        "--admin-listen",
        &admin_addr.unwrap_or(local).to_string(),
        "--shutdown-delay",
        "0s",
        "--shutdown-grace",
        "5s",
    ]
    .map(String::from)
    .into();
    flags.extend(backend_flags);
    let config = ServeConfig::from_args(&crate::cli::parse_flags::<ServeArgs>(&flags)?)?;
    crate::server::serve::serve(listener, admin, config, shutdown).await;
    Ok(())
}

/// Where a browser on this machine reaches a listener bound to `a` (loopback for 0.0.0.0).
fn shown(a: SocketAddr) -> SocketAddr {
    let ip = if a.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        a.ip()
    };
    SocketAddr::new(ip, a.port())
}

/// The demo's `/`: the GIF, served from the bucket, and where the metrics are (`admin`).
fn index_page(admin: SocketAddr) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>gateway demo</title></head>
<body>
<h1>gateway demo</h1>
<p><img src="/{gif}" alt="The bundled GIF, served from the bucket {DEMO_BUCKET}"
  onload="document.getElementById('state').textContent = 'GIF loaded: ' + this.naturalWidth + 'x' + this.naturalHeight"
  onerror="document.getElementById('state').textContent = 'the GIF did not load'"></p>
<p id="state">loading the GIF</p>
<p>This page and the GIF come from the bucket <code>{DEMO_BUCKET}</code> on an embedded S3 backend, through
the gateway over mTLS. Reload to see <code>X-Cache: HIT</code> in the response headers.</p>
<ul>
<li><a href="/{gif}">/{gif}</a>, the object itself</li>
<li><a href="http://{admin}/metrics">http://{admin}/metrics</a>, Prometheus metrics</li>
<li><a href="http://{admin}/readyz">http://{admin}/readyz</a>, readiness, with the backend's state</li>
</ul>
</body>
</html>
"#,
        gif = seed::BUNDLED_NAME
    )
}

/// Writes `path`: the `GATEWAY_*` variables with which `gateway serve` and `gateway seed` reach
/// the demo backend and need no other flag. The keys go into files beside the PKI in `dir`
/// (mode 0600), never into the environment file itself.
fn write_env_file(
    path: &Path,
    dir: &Path,
    client: &BackendArgs,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<()> {
    let access_key_file = dir.join("access-key");
    let secret_key_file = dir.join("secret-key");
    write_private(&access_key_file, access_key)?;
    write_private(&secret_key_file, secret_key)?;
    let path_of = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let vars = [
        ("GATEWAY_ENDPOINT", client.endpoint.clone().unwrap_or_default()),
        ("GATEWAY_BUCKET", client.bucket.clone().unwrap_or_default()),
        ("GATEWAY_REGION", client.region.clone()),
        ("GATEWAY_CA_CERT", path_of(&client.ca_cert)),
        ("GATEWAY_CLIENT_CERT", path_of(&client.client_cert)),
        ("GATEWAY_CLIENT_KEY", path_of(&client.client_key)),
        ("GATEWAY_ACCESS_KEY_FILE", access_key_file.display().to_string()),
        ("GATEWAY_SECRET_KEY_FILE", secret_key_file.display().to_string()),
        // This machine only: the demo bucket is not served to the network the laptop is on.
        ("GATEWAY_LISTEN", "127.0.0.1:8080".to_string()),
        ("GATEWAY_ADMIN_LISTEN", "127.0.0.1:9090".to_string()),
    ];
    let mut text = String::from(
        "# gateway demo --backend-only: the embedded S3 backend, until the demo stops.\n\
         # Load with: set -a; . THIS_FILE; set +a\n",
    );
    for (name, value) in vars {
        anyhow::ensure!(!value.contains('\''), "{name} would need quoting: {value}");
        text.push_str(&format!("{name}='{value}'\n"));
    }
    write_private(path, &text).with_context(|| format!("cannot write {} (--env-file)", path.display()))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its mode on open; tighten it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents.as_bytes())
    }
    #[cfg(not(unix))]
    {
        options.open(path)?.write_all(contents.as_bytes())
    }
}
