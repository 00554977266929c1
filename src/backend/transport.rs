//! The HTTP client aws-sdk-s3 uses to talk to the backend, with our own rustls configuration.
//!
//! The SDK's built-in hyper client can trust a custom CA but cannot present a client
//! certificate, and its maintainers recommend bringing your own client for that
//! (awslabs/aws-sdk-rust#169). This module is that client: a pooled hyper-util client over a
//! hyper-rustls connector built from [`crate::backend::tls`], with the SDK's timeouts applied and
//! connection errors classified the way the SDK's retry logic expects. Bodies are never
//! buffered: the response body handed to the SDK is the hyper body itself.
//!
//! Connections have a maximum age: the pool is replaced by a fresh one once it is older than
//! `--backend-connection-max-age`. Busy connections are otherwise reused forever, so a backend
//! scaled out behind a Service (or a DNS name that now points elsewhere) would never see them
//! move. Requests in flight on the old pool finish on their connections, which then close.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{HttpConnector as TcpConnector, capture_connection};
use hyper_util::rt::{TokioExecutor, TokioTimer};

type Inner = Client<hyper_rustls::HttpsConnector<TcpConnector>, SdkBody>;

/// Idle pooled connections are closed after this long, so connections made with an old
/// certificate or to a replaced backend pod age out.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes read ahead from the backend per download (HTTP/1 read buffer, HTTP/2 stream window).
const BACKEND_READ_BUFFER: usize = 64 * 1024;

/// A pooled HTTP(S) client for aws-sdk-s3 that presents the gateway's client certificate.
#[derive(Clone, Debug)]
pub struct MtlsHttpClient {
    pool: Arc<Pool>,
    read_timeout: Duration,
}

/// The current connection pool, replaced when it reaches the maximum age.
#[derive(Debug)]
struct Pool {
    tls: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
    max_age: Duration,
    current: Mutex<(Inner, Instant)>,
}

impl Pool {
    /// The pool to send a request on: the current one, or a fresh one when it has aged out.
    fn get(&self) -> Inner {
        let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.1.elapsed() >= self.max_age {
            tracing::debug!(max_age = ?self.max_age, "backend connections reached their maximum age: opening new ones");
            *current = (pooled_client(&self.tls, self.connect_timeout), Instant::now());
        }
        current.0.clone()
    }
}

impl MtlsHttpClient {
    /// Builds the client. `read_timeout` bounds the wait for response headers; `max_age` how
    /// long a connection is handed out for new requests.
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
        read_timeout: Duration,
        max_age: Duration,
    ) -> Self {
        let current = Mutex::new((pooled_client(&tls, connect_timeout), Instant::now()));
        Self {
            pool: Arc::new(Pool {
                tls,
                connect_timeout,
                max_age,
                current,
            }),
            read_timeout,
        }
    }
}

/// A hyper-util client with its own connection pool.
fn pooled_client(tls: &rustls::ClientConfig, connect_timeout: Duration) -> Inner {
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        // What one streamed download may buffer from the backend while its client is slow:
        // hyper reads ahead up to these sizes, so they bound memory per slow client.
        .http1_max_buf_size(BACKEND_READ_BUFFER)
        .http2_initial_stream_window_size(BACKEND_READ_BUFFER as u32)
        .http2_initial_connection_window_size(4 * BACKEND_READ_BUFFER as u32)
        .build(https)
}

impl HttpClient for MtlsHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        // Called for every attempt: hand out a cheap clone of the current pool.
        SharedHttpConnector::new(Connector {
            inner: self.pool.get(),
            read_timeout: settings.read_timeout().unwrap_or(self.read_timeout),
        })
    }
}

#[derive(Clone, Debug)]
struct Connector {
    inner: Inner,
    read_timeout: Duration,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let mut request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
            expose_connection(&mut request);
            // A timeout is reported as "other", not "timeout": the SDK retries timeouts, and a
            // backend that did not answer within --backend-timeout is not asked twice.
            let response = tokio::time::timeout(read_timeout, inner.request(request))
                .await
                .map_err(|_| {
                    ConnectorError::other(
                        Box::new(BackendTimeout(format!("no response headers within {read_timeout:?}"))),
                        None,
                    )
                })?
                .map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Lets the SDK close ("poison") the pooled connection a request used when the request fails
/// with a transient error, so a broken connection is not handed out again.
fn expose_connection(request: &mut http::Request<SdkBody>) {
    let capture = capture_connection(request);
    if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
        smithy.set_connection_retriever(move || {
            let connected = capture.connection_metadata();
            let connected = connected.as_ref()?;
            let capture = capture.clone();
            Some(
                ConnectionMetadata::builder()
                    .proxied(connected.is_proxied())
                    .poison_fn(move || {
                        if let Some(c) = capture.connection_metadata().as_ref() {
                            c.poison();
                        }
                    })
                    .build(),
            )
        });
    }
}

/// The backend did not connect or answer within its timeout. Reported to the SDK as an error
/// it does not retry, so one call waits at most one timeout.
#[derive(Debug)]
pub struct BackendTimeout(String);

impl std::fmt::Display for BackendTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for BackendTimeout {}

/// Sorts a hyper client error into what the SDK retry policy understands.
///
/// TLS failures (certificate refused, unknown CA) are permanent and a connect timeout has
/// already cost its whole timeout: both are reported as "other" so the SDK does not retry
/// them. Everything else on the way to a response (refused, reset) is I/O, retried once.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    if find_tls_error(&err).is_some() {
        ConnectorError::other(err.into(), None)
    } else if err.is_connect() && has_io_kind(&err, std::io::ErrorKind::TimedOut) {
        ConnectorError::other(Box::new(BackendTimeout(format!("connecting: {err}"))), None)
    } else {
        ConnectorError::io(err.into())
    }
}

/// Whether any error in the chain (the error, its source, and so on) satisfies `found`.
fn in_chain(err: &(dyn StdError + 'static), found: impl Fn(&(dyn StdError + 'static)) -> bool) -> bool {
    std::iter::successors(Some(err), |&e| e.source()).any(found)
}

/// Whether an I/O error of `kind` is somewhere in the chain.
fn has_io_kind(err: &(dyn StdError + 'static), kind: std::io::ErrorKind) -> bool {
    in_chain(err, |e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == kind)
    })
}

/// Whether the chain holds a [`BackendTimeout`].
pub fn is_backend_timeout(err: &(dyn StdError + 'static)) -> bool {
    in_chain(err, |e| e.is::<BackendTimeout>())
}

/// The rustls error somewhere in an error's chain, if any.
///
/// `std::io::Error::source` skips the error it wraps, so each I/O error is unwrapped by hand.
pub fn find_tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = find_tls_error(inner)
        {
            return Some(tls);
        }
        next = e.source();
    }
    None
}
