//! The embedded S3 backend in MinIO's place, configured as the chart configures its MinIO: the
//! root credentials from `MINIO_ROOT_USER` / `MINIO_ROOT_PASSWORD`, TLS from a MinIO certs
//! directory (`public.crt`, `private.key`, `CAs/*.crt` for client certificates, asked for but
//! not required), and AssumeRoleWithCertificate only with `MINIO_IDENTITY_TLS_ENABLE=on`.
//!
//! The end-to-end chart test (`tests/deploy/test_chart_end_to_end.py`) runs it with the
//! StatefulSet's environment and mounted files, then the chart's setup Job, seed Job and
//! Deployment against it.
//!
//! ```text
//! cargo run --example minio_s3 -- DATA_DIR CERTS_DIR
//! ```
//!
//! It prints `listening on 127.0.0.1:PORT` and serves until killed.

use anyhow::Context;
use embedded_s3::{EmbeddedS3, EmbeddedS3Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, certs] = args.as_slice() else {
        anyhow::bail!("usage: minio_s3 DATA_DIR CERTS_DIR");
    };
    let env = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let (user, password) = (env("MINIO_ROOT_USER")?, env("MINIO_ROOT_PASSWORD")?);
    if env("MINIO_IDENTITY_TLS_ENABLE").ok().as_deref() != Some("on") {
        anyhow::bail!("MINIO_IDENTITY_TLS_ENABLE is not on: MinIO would refuse AssumeRoleWithCertificate");
    }
    let certs = std::path::Path::new(certs);
    let read = |p: std::path::PathBuf| std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()));
    let mut client_ca = String::new();
    for entry in std::fs::read_dir(certs.join("CAs")).context("CAs/")? {
        client_ca.push_str(&read(entry?.path())?);
    }
    std::fs::create_dir_all(root)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let _server = EmbeddedS3::start(
        listener,
        EmbeddedS3Config {
            root: std::path::Path::new(root),
            client_ca_pem: &client_ca,
            server_cert_pem: &read(certs.join("public.crt"))?,
            server_key_pem: &read(certs.join("private.key"))?,
            access_key: &user,
            secret_key: &password,
            require_client_cert: false,
        },
    )?;
    println!("listening on {addr}");
    std::future::pending::<()>().await;
    Ok(())
}
