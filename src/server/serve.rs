//! The accept loops: HTTP/1.1 and HTTP/2 over pre-bound listeners, with graceful shutdown.
//!
//! The caller owns the listeners and the shutdown signal, so tests and `gateway demo` drive the
//! same code as `gateway serve`. On the signal, `/readyz` fails at once and clients are told
//! to go (HTTP/1 `Connection: close`, HTTP/2 GOAWAY); after the shutdown delay (time for
//! Kubernetes to take the pod out of its endpoints) the listeners close (new connections are
//! refused), in-flight responses may finish within the grace period, and whatever still runs
//! after it is cut. Connections that stay silent with nothing in flight are closed
//! (`conn.rs`), so idle sockets cannot take every slot of `--max-connections`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::cache::zerocopy::SendfileStream;
use crate::config::app::App;
use crate::config::serve::{Limits, ServeConfig};
use crate::server::conn::{Activity, Tracked};
use crate::server::router::{Routes, route};

/// Largest request head (request line and headers) read, in bytes; a larger one is answered
/// 431 by hyper and the connection closed. Browsers send a few KiB, cookies included.
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// Where shutdown stands, as every connection task sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Normal operation.
    Serving,
    /// The shutdown delay: still accepting, but HTTP/1 responses say `Connection: close` and
    /// HTTP/2 connections get GOAWAY, so clients move to other pods before the listener closes.
    Draining,
    /// The listeners are closed; open connections finish their requests within the grace.
    Closing,
}

/// Completes when `phase` reaches `at_least` (or its sender is gone).
async fn reached(phase: &mut watch::Receiver<Phase>, at_least: Phase) {
    let _ = phase.wait_for(|p| *p >= at_least).await.is_ok();
}

/// Serves `listener` until the phase is `Closing`, then drains for up to `grace`.
async fn run(
    listener: TcpListener,
    app: Arc<App>,
    routes: Routes,
    mut phase: watch::Receiver<Phase>,
    grace: Duration,
    limits: Limits,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection loop below times request heads (from their first byte) and idle
        // keep-alive (`--idle-timeout`): hyper's timer would start with the idle wait.
        .header_read_timeout(None)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_interval)
        .max_header_list_size(MAX_REQUEST_HEAD_BYTES as u32);
    let builder = Arc::new(builder);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();

    loop {
        // At the connection limit, stop accepting until a connection closes; new clients
        // wait in the kernel's backlog instead of being served badly.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            () = reached(&mut phase, Phase::Closing) => break,
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
                let open = app.metrics.http_connections_open.clone();
                open.inc();
                let conn = connection(stream, app.clone(), routes, builder.clone(), phase.clone(), limits);
                connections.spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    open.dec();
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = reached(&mut phase, Phase::Closing) => break,
        }
    }

    drop(listener);
    tracing::info!(?routes, grace = ?grace, "listener closed; draining in-flight requests");
    let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    match drained {
        Ok(()) => tracing::info!(?routes, "all connections drained"),
        Err(_) => {
            tracing::warn!(?routes, "grace period over; closing remaining connections");
            connections.shutdown().await;
        }
    }
}

/// Serves one client connection: HTTP/1.1 or HTTP/2, closed when it stays silent with no
/// request in flight (`--header-read-timeout` before its first request, `--idle-timeout`
/// after), told to go away when shutdown begins, and finished when the listener closes.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Arc<App>,
    routes: Routes,
    builder: Arc<auto::Builder<TokioExecutor>>,
    mut phase: watch::Receiver<Phase>,
    limits: Limits,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let activity = Activity::new();
    let access_log = app.access_log;
    let metrics = app.metrics.clone();
    let opened_while = *phase.borrow();
    let service = {
        let activity = activity.clone();
        service_fn(move |req| {
            let (app, activity) = (app.clone(), activity.clone());
            async move { Ok::<_, Infallible>(route(app, routes, req, &activity).await) }
        })
    };
    let io = TokioIo::new(Tracked::new(
        SendfileStream::new(stream),
        activity.clone(),
        access_log,
        metrics,
    ));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    // The phase this connection has been told about.
    let mut told = opened_while;
    loop {
        let limit = if activity.served() {
            limits.idle_timeout
        } else {
            limits.header_read_timeout
        };
        // Idle: nothing in flight and no request for `limit`. Stalled: responses in flight
        // that have written nothing for `--send-timeout` (the client stopped reading).
        // Heading: an HTTP/1 request head has begun to arrive; it has
        // `--header-read-timeout` from its first byte.
        let heading = activity.head_started().filter(|_| !activity.busy());
        let idle_deadline = if activity.busy() {
            tokio::time::Instant::from_std(activity.last_progress() + limits.send_timeout)
        } else if let Some(started) = heading {
            tokio::time::Instant::from_std(started + limits.header_read_timeout)
        } else {
            tokio::time::Instant::from_std(activity.last_active() + limit)
        };
        tokio::select! {
            result = conn.as_mut() => return result,
            changed = phase.changed(), if told < Phase::Closing => {
                // The sender gone means the server is finishing: treat it as closing.
                let now = if changed.is_ok() { *phase.borrow() } else { Phase::Closing };
                // During the delay no connection is closed by the gateway: an idle HTTP/1
                // keep-alive connection closed now races the client's next request on it (a
                // failed request for every such client on every rollout), so HTTP/1 responses
                // say `Connection: close` instead and the client leaves after its next answer;
                // HTTP/2 gets GOAWAY, which lets its streams finish. Whatever is still open when
                // the listener closes is closed then.
                let go_away = match now {
                    Phase::Closing => true,
                    Phase::Draining => opened_while == Phase::Serving && activity.is_http2(),
                    Phase::Serving => false,
                };
                if now > told && go_away {
                    conn.as_mut().graceful_shutdown();
                }
                told = now;
            }
            // A head began, or the last response ended: the deadline changes.
            () = activity.changed() => {}
            () = tokio::time::sleep_until(idle_deadline) => {
                if let Some(started) = activity.head_started().filter(|_| !activity.busy())
                    && started.elapsed() >= limits.header_read_timeout
                {
                    tracing::debug!(header_read_timeout = ?limits.header_read_timeout, "closing a connection whose request head did not arrive in time");
                    return Ok(());
                }
                if !activity.busy() && activity.head_started().is_none() && activity.last_active().elapsed() >= limit {
                    tracing::debug!(idle = ?limit, "closing an idle client connection");
                    return Ok(());
                }
                if activity.busy() && activity.last_progress().elapsed() >= limits.send_timeout {
                    tracing::info!(
                        send_timeout = ?limits.send_timeout,
                        "closing a connection whose client stopped reading its response"
                    );
                    return Ok(());
                }
            }
        }
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
    let sealed_entries = crate::cache::zerocopy::prepare();
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
        sealed_entries,
        "gateway serving"
    );
    // The backend probe, change events, credential renewal and TLS reloads: tasks that live
    // as long as the server, in one set.
    let mut tasks = crate::server::tasks::start(&app, &config);

    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let data_routes = if admin.is_some() { Routes::Objects } else { Routes::All };
    let grace = config.shutdown_grace;
    let mut servers = vec![tokio::spawn(run(
        listener,
        app.clone(),
        data_routes,
        phase_rx.clone(),
        grace,
        config.limits,
    ))];
    if let Some(admin) = admin {
        servers.push(tokio::spawn(run(
            admin,
            app.clone(),
            Routes::Admin,
            phase_rx,
            grace,
            config.limits,
        )));
    }

    shutdown.await;
    app.readiness.start_draining();
    let _ = phase_tx.send(Phase::Draining);
    if !config.shutdown_delay.is_zero() {
        tracing::info!(delay = ?config.shutdown_delay, "shutting down: /readyz now fails; still serving until the delay ends");
        tokio::time::sleep(config.shutdown_delay).await;
    }
    let _ = phase_tx.send(Phase::Closing);
    for server in servers {
        let _ = server.await;
    }
    tasks.shutdown().await;
}
