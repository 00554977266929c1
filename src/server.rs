//! The accept loops: HTTP/1.1 and HTTP/2 over pre-bound listeners, with graceful shutdown.
//!
//! The caller owns the listeners and the shutdown signal, so tests and `gateway demo` drive the
//! same code as `gateway serve`. On the signal, `/readyz` fails at once; after the shutdown
//! delay (time for Kubernetes to take the pod out of its endpoints) the listeners close (new
//! connections are refused), in-flight responses may finish within the grace period, and
//! whatever still runs after it is cut.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::app::App;
use crate::config::{Limits, ServeConfig};
use crate::router::{Routes, route};

/// Largest request head (request line and headers) read, in bytes; a larger one is answered
/// 431 by hyper and the connection closed. Browsers send a few KiB, cookies included.
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// Completes when `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.is_ok();
}

/// Serves `listener` until `stop` turns true, then drains for up to `grace`.
async fn run(
    listener: TcpListener,
    app: Arc<App>,
    routes: Routes,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    limits: Limits,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_REQUEST_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));

    loop {
        // At the connection limit, stop accepting until a connection closes; new clients
        // wait in the kernel's backlog instead of being served badly.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            () = stopped(&mut stop) => break,
        };
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
                let app2 = app.clone();
                let service = service_fn(move |req| {
                    let app = app2.clone();
                    async move { Ok::<_, Infallible>(route(app, routes, req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                let open = app.metrics.http_connections_open.clone();
                open.inc();
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    open.dec();
                    drop(permit);
                });
            }
            () = stopped(&mut stop) => break,
        }
    }

    drop(listener);
    tracing::info!(?routes, grace = ?grace, "listener closed; draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!(?routes, "all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!(?routes, "grace period over; closing remaining connections"),
    }
}

/// Runs `gateway serve` on already-bound listeners until `shutdown` completes; `admin` is the
/// listener of the operational endpoints (`None`: they are served on `listener`).
///
/// The readiness probe runs once at startup so the log says at once whether the bucket is
/// reachable; the server starts either way (the backend may come up later).
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let app = App::new(&config);
    let addr = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
    if !config.backend.https {
        tracing::warn!(endpoint = %config.backend.endpoint, "backend endpoint is plain http: objects and signatures travel unencrypted");
    }
    tracing::info!(
        listen = %addr(&listener),
        admin = %admin.as_ref().map_or_else(|| addr(&listener), addr),
        endpoint = %config.backend.endpoint,
        bucket = %config.backend.bucket,
        tls = %config.backend.tls_summary,
        version = env!("CARGO_PKG_VERSION"),
        "gateway serving"
    );
    let _ = app.readiness.probe().await;
    let reloader = tokio::spawn(reload_tls(
        config.backend.tls.clone(),
        app.metrics.clone(),
        config.tls_reload_interval,
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let data_routes = if admin.is_some() { Routes::Objects } else { Routes::All };
    let grace = config.shutdown_grace;
    let mut servers = vec![tokio::spawn(run(
        listener,
        app.clone(),
        data_routes,
        stop_rx.clone(),
        grace,
        config.limits,
    ))];
    if let Some(admin) = admin {
        servers.push(tokio::spawn(run(
            admin,
            app.clone(),
            Routes::Admin,
            stop_rx,
            grace,
            config.limits,
        )));
    }

    shutdown.await;
    app.readiness.start_draining();
    if !config.shutdown_delay.is_zero() {
        tracing::info!(delay = ?config.shutdown_delay, "shutting down: /readyz now fails; still serving until the delay ends");
        tokio::time::sleep(config.shutdown_delay).await;
    }
    let _ = stop_tx.send(true);
    for server in servers {
        let _ = server.await;
    }
    reloader.abort();
}

/// Checks the backend TLS files every `interval` and swaps in what changed; a rejected file is
/// logged and counted, and the current trust and identity stay in use.
async fn reload_tls(tls: Arc<crate::tls::BackendTls>, metrics: Arc<crate::metrics::Metrics>, interval: Duration) {
    loop {
        if let Some(t) = tls.client_cert_not_after() {
            metrics.tls_client_cert_expiry.set(t);
        }
        tokio::time::sleep(interval).await;
        let tls2 = tls.clone();
        let Ok(events) = tokio::task::spawn_blocking(move || tls2.reload()).await else {
            continue;
        };
        for event in events {
            match event.result {
                Ok(()) => {
                    tracing::info!(file = event.what, "backend TLS files changed: new connections use them");
                    metrics.tls_reloads.with_label_values(&[event.what, "ok"]).inc();
                }
                Err(e) => {
                    tracing::warn!(file = event.what, error = %e, "rejected changed backend TLS files; keeping the current ones");
                    metrics.tls_reloads.with_label_values(&[event.what, "rejected"]).inc();
                }
            }
        }
    }
}
