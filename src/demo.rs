//! `gateway demo`: the whole product on one machine, with nothing installed.
//!
//! It generates a CA and certificates in a temporary directory, starts the embedded S3
//! backend (s3s-fs) that requires client certificates and SigV4, seeds the bundled GIF through
//! the same code as `gateway seed`, and serves through the same code as `gateway serve`.
//! Ctrl-C stops everything and removes the temporary directory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};
use tokio::net::TcpListener;

use crate::certs::DevPki;
use crate::cli::DemoArgs;
use crate::config::{BackendConfig, ServeConfig, Site, parse_listen};
use crate::embedded::{EmbeddedS3, EmbeddedS3Config};
use crate::seed::{self, SeedPlan};

/// Bucket the demo creates.
pub const DEMO_BUCKET: &str = "gateway-demo";

/// Runs the demo until `shutdown` completes.
///
/// # Errors
/// A [`crate::error::ConfigError`] for a bad `--listen`; otherwise why the demo could not start.
pub async fn run(args: &DemoArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let listen = parse_listen("--listen", &args.listen)?;
    let admin_addr = crate::config::admin_address(listen, &args.admin_listen)?;
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

    let tmp = tempfile::Builder::new().prefix("gateway-demo-").tempdir()?;
    let tls_dir = tmp.path().join("tls");
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    let pki = DevPki::generate(&["localhost".into(), "127.0.0.1".into()], "gateway", 1)?;
    pki.write_to(&tls_dir, false)?;
    let access_key = format!("demo{}", Alphanumeric.sample_string(&mut rand::rng(), 16));
    let secret_key = Alphanumeric.sample_string(&mut rand::rng(), 40);

    let backend = EmbeddedS3::start(
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?,
        EmbeddedS3Config {
            root: &data_dir,
            client_ca_pem: &pki.ca_cert,
            server_cert_pem: &pki.server_cert,
            server_key_pem: &pki.server_key,
            access_key: &access_key,
            secret_key: &secret_key,
        },
    )?;

    let backend_cfg = BackendConfig::from_args(&crate::embedded::client_args(
        backend.endpoint(),
        DEMO_BUCKET,
        &tls_dir,
        &access_key,
        &secret_key,
    ))?;
    let plan = SeedPlan::new(
        seed::BUNDLED_NAME.to_string(),
        bytes::Bytes::from_static(seed::BUNDLED),
        true,
        Duration::from_secs(30),
    );
    seed::run(&backend_cfg, &plan).await?;

    let local = listener.local_addr()?;
    let shown = SocketAddr::new(
        if local.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local.ip()
        },
        local.port(),
    );
    println!(
        "gateway demo: embedded mTLS S3 backend at {} (bucket {DEMO_BUCKET})",
        backend.endpoint()
    );
    println!("gateway demo: GIF     http://{shown}/{}", seed::BUNDLED_NAME);
    let admin_shown = admin.as_ref().and_then(|l| l.local_addr().ok()).map_or(shown, |a| {
        SocketAddr::new(
            if a.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                a.ip()
            },
            a.port(),
        )
    });
    println!("gateway demo: metrics http://{admin_shown}/metrics");
    println!("gateway demo: press Ctrl-C to stop");

    let config = ServeConfig {
        listen: local,
        site: Site::default(),
        cache: crate::cache::CacheConfig::default(),
        admin_listen: admin.as_ref().and_then(|l| l.local_addr().ok()),
        shutdown_delay: Duration::ZERO,
        limits: crate::config::Limits::default(),
        access_log: true,
        tls_reload_interval: Duration::from_secs(10),
        shutdown_grace: Duration::from_secs(5),
        backend: backend_cfg,
    };
    crate::server::serve(listener, admin, config, shutdown).await;
    backend.stop().await;
    drop(tmp);
    println!("gateway demo: stopped");
    Ok(())
}
