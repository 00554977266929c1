//! What a client connection is doing: when a request last began or ended, when a response last
//! made progress, and how many of its requests are being answered. The accept loop closes a
//! connection with nothing in flight and no request for too long (idle keep-alive, an HTTP/2
//! preface and nothing after, a socket opened and never used, an HTTP/2 client that only sends
//! PINGs or SETTINGS: frames that are not requests do not count), and one whose responses have
//! made no write progress for too long (a client that stopped reading, or an HTTP/2 client
//! that answers PINGs but grants a response no window), so neither idle nor
//! stalled sockets can hold every connection slot and backend stream.
//!
//! On HTTP/1 it also times the next request's head from its first byte (hyper's own header
//! timer would start with the idle wait, cutting keep-alive connections at
//! `--header-read-timeout` rather than `--idle-timeout`), and gives the answers hyper writes by
//! itself for a request it cannot parse (400, 414, 431) a request id and an access-log line,
//! as every other response has.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The activity of one client connection.
#[derive(Debug)]
pub struct Activity {
    origin: Instant,
    /// Milliseconds since `origin` of the last request's start or end.
    last: AtomicU64,
    /// Milliseconds since `origin` of the last byte written.
    written: AtomicU64,
    /// Requests whose response has not finished.
    in_flight: AtomicUsize,
    /// Whether a request has been received.
    served: AtomicBool,
    /// Whether the connection speaks HTTP/2 (known from its first request).
    http2: AtomicBool,
    /// 1 + milliseconds since `origin` of the first byte read while no request was being
    /// answered (a request head arriving); 0 when none is.
    head_started: AtomicU64,
    /// Woken when a request head starts to arrive or the last response in flight ends: the
    /// connection's loop then sets its next deadline (the head's, or idle's).
    changed: tokio::sync::Notify,
}

impl Activity {
    /// A connection opened now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            written: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            head_started: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
    }

    /// When a request last began or ended on the connection.
    pub fn last_active(&self) -> Instant {
        self.origin + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    /// When the connection's responses last made progress: a byte written, or a request begun.
    pub fn last_progress(&self) -> Instant {
        let ms = self
            .written
            .load(Ordering::Relaxed)
            .max(self.last.load(Ordering::Relaxed));
        self.origin + Duration::from_millis(ms)
    }

    /// Whether a request is being answered.
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// Whether any request has arrived on this connection.
    pub fn served(&self) -> bool {
        self.served.load(Ordering::Relaxed)
    }

    fn wrote(&self) {
        self.written.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether the connection's requests came over HTTP/2.
    pub fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    /// When the first byte of a request head not yet answered arrived, on an HTTP/1
    /// connection that has served a request (before the first one the connection's age bounds
    /// the head; HTTP/2 frames are not heads).
    pub fn head_started(&self) -> Option<Instant> {
        if !self.served() || self.is_http2() {
            return None;
        }
        match self.head_started.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.origin + Duration::from_millis(ms - 1)),
        }
    }

    fn read_some(&self) {
        if !self.busy() && self.head_started.load(Ordering::Relaxed) == 0 {
            self.head_started.store(self.now_ms() + 1, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// Completes once a request head starts to arrive (see [`Activity::head_started`]) or
    /// the last response in flight ends.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Counts a request of `version` until the returned guard is dropped (when its response
    /// ends).
    pub fn request(self: &Arc<Self>, version: http::Version) -> InFlight {
        if version == http::Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }
}

/// One request being answered on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl InFlight {
    /// The response handed a frame of its body to the connection. On HTTP/2 this is what
    /// progress means: the socket also carries PINGs and SETTINGS, which a client answers while
    /// it grants the response no flow-control window, so socket writes would keep a stalled
    /// response alive forever. (HTTP/1 counts its socket writes, which are only responses.)
    pub fn progressed(&self) {
        if self.0.is_http2() {
            self.0.wrote();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let was = self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
        if was == 1 {
            self.0.changed.notify_one();
        }
    }
}

/// A stream that records its write progress in an [`Activity`] (HTTP/1; HTTP/2 responses
/// record theirs through [`InFlight::progressed`]), notes when a request head starts to
/// arrive, and rewrites hyper's own answers to unparsable requests (see [`Rejection`]).
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    /// Whether answers hyper writes by itself get an access-log line.
    access_log: bool,
    /// Where hyper's own answers are counted, as the handlers' are.
    metrics: Arc<crate::metrics::Metrics>,
    /// Such an answer being written.
    rejection: Option<Rejection>,
}

/// An answer hyper wrote by itself (400, 414, 431: a request head it could not parse or that
/// was too large), being written with an `x-request-id` header added.
#[derive(Debug)]
struct Rejection {
    /// The answer with its header.
    bytes: Vec<u8>,
    /// Bytes of it written.
    written: usize,
    /// The length hyper handed over, reported once all of `bytes` is written.
    handed: usize,
}

impl<S> Tracked<S> {
    /// Wraps `inner`; `access_log`: log hyper's own answers as the access log does others;
    /// `metrics`: count them in `gateway_http_requests_total`.
    pub fn new(inner: S, activity: Arc<Activity>, access_log: bool, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            inner,
            activity,
            access_log,
            metrics,
            rejection: None,
        }
    }

    /// Whether `bufs` are hyper's own answer: an HTTP/1 head with an empty body written while
    /// a request head was arriving and no request was dispatched (every response of the
    /// gateway's handlers is written while its request is counted, and carries
    /// `x-request-id`).
    fn is_rejection(&self, bufs: &[io::IoSlice<'_>]) -> bool {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        !self.activity.is_http2()
            && !self.activity.busy()
            && self.activity.head_started.load(Ordering::Relaxed) != 0
            && first.len() >= 13
            && first.starts_with(b"HTTP/1.")
            && !first.windows(14).any(|w| w.eq_ignore_ascii_case(b"\r\nx-request-id"))
            // hyper's answers have no body.
            && first.windows(19).any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0"))
    }

    /// Takes hyper's answer in `bufs`: adds a request id and logs it.
    fn reject(&mut self, bufs: &[io::IoSlice<'_>]) {
        let handed: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let status = std::str::from_utf8(&handed[9..12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(400);
        let id = crate::server::accounting::new_request_id();
        let line_end = handed
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(handed.len(), |i| i + 2);
        let mut bytes = Vec::with_capacity(handed.len() + 64);
        bytes.extend_from_slice(&handed[..line_end]);
        bytes.extend_from_slice(b"x-request-id: ");
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&handed[line_end..]);
        tracing::info!(request_id = %id, status, "request head rejected by the HTTP layer");
        self.metrics.observe_rejected_head(status);
        if self.access_log {
            crate::telemetry::access(crate::telemetry::AccessLine {
                at: std::time::SystemTime::now(),
                request_id: id.into(),
                method: None,
                path: "-".into(),
                status,
                bytes: 0,
                duration_ms: 0.0,
                cache: None,
                outcome: "complete",
            });
        }
        self.rejection = Some(Rejection {
            bytes,
            written: 0,
            handed: handed.len(),
        });
    }
}

impl<S: AsyncWrite + Unpin> Tracked<S> {
    /// Writes the rejection under way, if any: `Some` with what to answer hyper until it is
    /// all written.
    fn poll_rejection(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<usize>>> {
        let rejection = self.rejection.as_mut()?;
        while rejection.written < rejection.bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &rejection.bytes[rejection.written..]) {
                Poll::Ready(Ok(0)) => return Some(Poll::Ready(Err(io::ErrorKind::WriteZero.into()))),
                Poll::Ready(Ok(n)) => rejection.written += n,
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => return Some(Poll::Pending),
            }
        }
        let handed = rejection.handed;
        self.rejection = None;
        Some(Poll::Ready(Ok(handed)))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // What a client sends is not activity by itself (PINGs, SETTINGS, a trickle of bytes):
        // requests are. A byte while none is answered starts the next head's clock.
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rejection.is_none() && this.is_rejection(bufs) {
            this.reject(bufs);
        }
        if let Some(r) = this.poll_rejection(cx) {
            return r;
        }
        let r = if let [one] = bufs {
            Pin::new(&mut this.inner).poll_write(cx, one)
        } else {
            Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
        };
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) && !this.activity.is_http2() {
            this.activity.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
