//! What a client connection is doing: when a request last began or ended, when a response last
//! made progress, and how many of its requests are being answered. The accept loop closes a
//! connection with nothing in flight and no request for too long (idle keep-alive, an HTTP/2
//! preface and nothing after, a socket opened and never used, an HTTP/2 client that only sends
//! PINGs or SETTINGS: frames that are not requests do not count), and one whose responses have
//! made no write progress for too long (a client that stopped reading, or an HTTP/2 client
//! that answers PINGs but grants a response no window), so neither idle nor
//! stalled sockets can hold every connection slot and backend stream.

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

    /// Counts a request of `version` until the returned guard is dropped (when its response
    /// ends).
    pub fn request(self: &Arc<Self>, version: http::Version) -> InFlight {
        if version == http::Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
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
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A stream that records its write progress in an [`Activity`] (HTTP/1; HTTP/2 responses
/// record theirs through [`InFlight::progressed`]).
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        // What a client sends is not activity by itself (PINGs, SETTINGS, a trickle of bytes):
        // requests are, and hyper's header read timeout bounds a request head.
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) && !self.activity.is_http2() {
            self.activity.wrote();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) && !self.activity.is_http2() {
            self.activity.wrote();
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
