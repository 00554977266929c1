//! The accept loop: HTTP/1.1 and HTTP/2 over a pre-bound listener, with graceful shutdown.
//!
//! The caller owns the listener and the shutdown signal, so tests and `gateway demo` drive the
//! same code as `gateway serve`. On shutdown the listener is closed at once (new connections are
//! refused), in-flight responses are allowed to finish, and whatever is still running when the
//! grace period ends is cut.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::App;
use crate::router::{Routes, route};

/// Time a client has to send its request headers (slow-loris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest request head (request line and headers) read, in bytes; a larger one is answered
/// 431 by hyper and the connection closed. Browsers send a few KiB, cookies included.
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// Serves `listener` until `shutdown` completes, then drains for up to `grace`.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    routes: Routes,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_REQUEST_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(route(app, routes, req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }

    drop(listener);
    app.start_draining();
    tracing::info!(grace = ?grace, "stopped accepting; draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
}

/// Runs `gateway serve` on an already-bound listener until `shutdown` completes.
///
/// The readiness probe runs once at startup so the log says at once whether the bucket is
/// reachable; the server starts either way (the backend may come up later).
pub async fn serve(listener: TcpListener, config: crate::config::ServeConfig, shutdown: impl Future<Output = ()>) {
    let app = App::new(&config);
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    if !config.backend.https {
        tracing::warn!(endpoint = %config.backend.endpoint, "backend endpoint is plain http: objects and signatures travel unencrypted");
    }
    tracing::info!(
        listen = %addr,
        endpoint = %config.backend.endpoint,
        bucket = %config.backend.bucket,
        tls = %config.backend.tls_summary,
        version = env!("CARGO_PKG_VERSION"),
        "gateway serving"
    );
    let _ = app.probe().await;
    run(listener, app, Routes::All, shutdown, config.shutdown_grace).await;
}
