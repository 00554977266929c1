//! A plain-HTTP S3 server on loopback: the gateway's embedded S3 service (s3s-fs) without TLS.
//!
//! The chart runs MinIO on 127.0.0.1 behind an nginx that terminates mTLS; the end-to-end chart
//! test (`tests/deploy/test_chart_end_to_end.py`) puts this in MinIO's place, behind the chart's
//! own nginx.conf, and runs the chart's `gateway seed` and `gateway serve` arguments against it.
//!
//! ```text
//! cargo run --example plain_s3 -- DATA_DIR ACCESS_KEY SECRET_KEY
//! ```
//!
//! It prints `listening on 127.0.0.1:PORT` and serves until killed.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, access_key, secret_key] = args.as_slice() else {
        anyhow::bail!("usage: plain_s3 DATA_DIR ACCESS_KEY SECRET_KEY");
    };
    std::fs::create_dir_all(root)?;
    let service = gateway::embedded::s3_service(std::path::Path::new(root), access_key, secret_key)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
