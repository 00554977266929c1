//! A cache fill that streams: the object flows to every request that wants it while it is
//! read into memory.
//!
//! Without this, the first request for a cacheable object would wait until the whole object
//! had come from the backend, and so would every request that arrived meanwhile: for a 16 MiB
//! object, the whole backend transfer added to the time to first byte. A [`Fill`] is shared by
//! the task reading the object and every request for it: every reader walks the same list of
//! chunks, as they came from the backend, and is handed references to them, never a copy.
//!
//! - The bytes are bounded, whatever the number of readers: the fill holds the object twice
//!   at most, once in the buffer that becomes the cache entry and once as the list of arrived
//!   chunks that readers share; a reader holds a position in that list and the chunk it is
//!   sending, so a herd of N readers on one fill costs N small states, not N copies. The cache
//!   takes twice the object's size from its fill budget; the chunks' half goes back when the
//!   fill ends (readers then read the finished entry).
//! - A reader joins the chunks on its first read: a HEAD or a 304 that never reads the body
//!   costs the fill nothing.
//! - A failure mid-fill reaches every reader as a body error (the client sees a broken
//!   response, never a short one that looks complete), and nothing is cached.
//! - A body that ends before its `Content-Length` is an error too, whatever the cause.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use hyper::body::Frame;
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::body::BoxError;
use crate::error::StorageError;
use crate::http::range::RangeDecision;
use crate::meta::ObjectMeta;

/// How far a fill has got.
#[derive(Clone, Debug)]
enum Phase {
    /// Waiting for the backend's answer.
    Starting,
    /// The body is arriving; readers may join.
    Streaming(Arc<ObjectMeta>),
    /// The key does not exist.
    Missing,
    /// Not filled (too large, not cacheable, no budget): each request streams on its own.
    Pass,
    /// The backend failed before the body.
    Failed(StorageError),
}

/// What a request that wants the object gets from a fill.
#[derive(Debug)]
pub enum Joined {
    /// The object: its metadata and its body, arriving.
    Body(Arc<ObjectMeta>, FillBody),
    /// The key does not exist.
    Missing,
    /// Not filled: stream it from the backend.
    Pass,
    /// Backend trouble.
    Failed(StorageError),
}

/// One object being read into memory, shared with the requests reading along.
#[derive(Debug)]
pub struct Fill {
    phase: watch::Sender<Phase>,
    inner: Mutex<Inner>,
    /// Set by a purge of its key while it runs: its readers get what it reads, the cache does
    /// not keep it (it may be the version the purge was meant to drop).
    discard: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    /// What has arrived so far, becoming the cache entry.
    buf: Buffer,
    /// The same bytes as they arrived, shared by every reader until the fill ends.
    chunks: Vec<Bytes>,
    /// The whole body, once complete.
    complete: Option<Bytes>,
    /// The failure that ended the fill, if any.
    failed: Option<StorageError>,
    /// Readers waiting for the next chunk.
    waiting: Vec<Waker>,
    /// The fill budget `chunks` holds, given back when the fill ends.
    chunks_budget: Option<OwnedSemaphorePermit>,
}

impl Default for Fill {
    fn default() -> Self {
        Self {
            phase: watch::Sender::new(Phase::Starting),
            inner: Mutex::default(),
            discard: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Fill {
    /// Marks the fill as not to be kept (its key was purged while it ran).
    pub fn discard(&self) {
        self.discard.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the fill was purged while it ran.
    pub fn discarded(&self) -> bool {
        self.discard.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the backend has answered, then reads along.
    pub async fn join(self: &Arc<Self>) -> Joined {
        let mut rx = self.phase.subscribe();
        let phase = match rx.wait_for(|p| !matches!(p, Phase::Starting)).await {
            Ok(p) => p.clone(),
            Err(_) => return Joined::Failed(StorageError::Internal("the cache fill was abandoned".into())),
        };
        match phase {
            Phase::Streaming(meta) => {
                let len = meta.content_length.unwrap_or(0);
                let body = FillBody {
                    fill: self.clone(),
                    next: 0,
                    len,
                    received: 0,
                    window: (0, len),
                };
                Joined::Body(meta, body)
            }
            Phase::Missing => Joined::Missing,
            Phase::Pass | Phase::Starting => Joined::Pass,
            Phase::Failed(e) => Joined::Failed(e),
        }
    }

    /// There is no body to fill: readers get `Missing`, `Pass` or the failure.
    pub fn refuse(&self, why: FillRefusal) {
        let phase = match why {
            FillRefusal::Pass => Phase::Pass,
            FillRefusal::Missing => Phase::Missing,
            FillRefusal::Failed(e) => Phase::Failed(e),
        };
        self.phase.send_replace(phase);
    }

    /// The body starts arriving: requests may read along. `chunks_budget` is the fill budget
    /// the shared chunks hold until the fill ends (`None`: not counted).
    pub fn stream(&self, meta: ObjectMeta, capacity: usize, chunks_budget: Option<OwnedSemaphorePermit>) {
        let mut inner = self.inner();
        inner.buf = Buffer::for_object(capacity);
        inner.chunks_budget = chunks_budget;
        drop(inner);
        self.phase.send_replace(Phase::Streaming(Arc::new(meta)));
    }

    /// Bytes arrived.
    ///
    /// # Errors
    /// They could not be kept (the fill then fails).
    pub fn push(&self, chunk: Bytes) -> Result<(), StorageError> {
        let mut inner = self.inner();
        inner.buf.push(&chunk)?;
        inner.chunks.push(chunk);
        for waker in inner.waiting.drain(..) {
            waker.wake();
        }
        Ok(())
    }

    /// Bytes received so far.
    pub fn received(&self) -> usize {
        self.inner().buf.len()
    }

    /// The body ended: complete (the whole body, for the cache entry) or failed. The shared
    /// chunks go, and their budget with them: readers read the finished entry from where they
    /// are.
    pub fn finish(&self, result: Result<(), StorageError>) -> Result<Bytes, StorageError> {
        let mut inner = self.inner();
        let buf = std::mem::take(&mut inner.buf);
        inner.chunks = Vec::new();
        inner.chunks_budget = None;
        let outcome = match result.and_then(|()| buf.finish()) {
            Ok(body) => {
                inner.complete = Some(body.clone());
                Ok(body)
            }
            Err(e) => {
                inner.failed = Some(e.clone());
                Err(e)
            }
        };
        for waker in inner.waiting.drain(..) {
            waker.wake();
        }
        outcome
    }

    /// The task filling it is gone without finishing (aborted): readers get an error, never a
    /// short body that looks complete.
    pub fn abandon(&self) {
        let unfinished = {
            let inner = self.inner();
            inner.complete.is_none() && inner.failed.is_none()
        };
        if unfinished {
            let _ = self.finish(Err(StorageError::Internal("the cache fill was abandoned".into())));
        }
    }
}

/// Where a fill keeps its bytes: on the heap, or, for a large object, in the memory file that
/// becomes the sealed cache entry (so the bytes are copied once either way).
#[derive(Debug)]
enum Buffer {
    Heap(BytesMut),
    File(crate::cache::zerocopy::Unsealed),
}

impl Default for Buffer {
    fn default() -> Self {
        Buffer::Heap(BytesMut::new())
    }
}

impl Buffer {
    fn for_object(capacity: usize) -> Self {
        match crate::cache::zerocopy::Unsealed::create(capacity) {
            Some(file) => Buffer::File(file),
            None => Buffer::Heap(BytesMut::with_capacity(capacity)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Buffer::Heap(b) => b.len(),
            Buffer::File(f) => f.len(),
        }
    }

    /// Appends `data`; a file that refuses it moves to the heap with what it held.
    fn push(&mut self, data: &[u8]) -> Result<(), StorageError> {
        if let Buffer::File(file) = self
            && let Err(e) = file.write(data)
        {
            tracing::debug!(error = %e, "memory file refused a cache fill; keeping it on the heap");
            let held = file
                .copy()
                .map_err(|e| StorageError::Internal(format!("reading back a cache fill: {e}")))?;
            *self = Buffer::Heap(BytesMut::from(&held[..]));
        }
        match self {
            Buffer::Heap(b) => b.extend_from_slice(data),
            Buffer::File(_) => {}
        }
        Ok(())
    }

    /// The whole body, sealed when it is in a file.
    fn finish(self) -> Result<Bytes, StorageError> {
        match self {
            Buffer::Heap(b) => Ok(b.freeze()),
            Buffer::File(f) => f
                .seal()
                .map_err(|e| StorageError::Internal(format!("sealing a cache entry: {e}"))),
        }
    }
}

/// Why a fill has no body to share.
#[derive(Clone, Debug)]
pub enum FillRefusal {
    /// The key does not exist.
    Missing,
    /// Not filled: stream instead.
    Pass,
    /// Backend trouble.
    Failed(StorageError),
}

/// The body of a request reading along a fill; `window` limits it to a range. It holds its
/// place in the fill's chunks, not the bytes.
#[derive(Debug)]
pub struct FillBody {
    fill: Arc<Fill>,
    /// The next chunk to send.
    next: usize,
    /// The object's length: ending before it is an error.
    len: u64,
    /// Bytes of the object received so far (inside the window or not).
    received: u64,
    /// `start..end` (exclusive) of the object sent.
    window: (u64, u64),
}

impl FillBody {
    /// Only the bytes of `range`.
    pub fn range(mut self, range: RangeDecision) -> Self {
        if let RangeDecision::Partial { start, end } = range {
            self.window = (start, end + 1);
        }
        self
    }

    /// The part of `chunk` (which starts at `at` in the object) inside the window, if any.
    fn windowed(&self, at: u64, chunk: &Bytes) -> Option<Bytes> {
        let end = at + chunk.len() as u64;
        let (from, to) = (self.window.0.max(at), self.window.1.min(end));
        (from < to).then(|| chunk.slice(usize::try_from(from - at).unwrap_or(0)..usize::try_from(to - at).unwrap_or(0)))
    }
}

impl hyper::body::Body for FillBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.received >= this.window.1 {
                return Poll::Ready(None);
            }
            let next = {
                let mut inner = this.fill.inner();
                if let Some(chunk) = inner.chunks.get(this.next) {
                    Ok(chunk.clone())
                } else if let Some(body) = &inner.complete {
                    // The fill ended: the rest from the finished entry.
                    let from = usize::try_from(this.received).unwrap_or(usize::MAX).min(body.len());
                    Ok(body.slice(from..))
                } else if let Some(e) = &inner.failed {
                    Err(e.clone())
                } else {
                    inner.waiting.push(cx.waker().clone());
                    return Poll::Pending;
                }
            };
            match next {
                Err(e) => return Poll::Ready(Some(Err(Box::new(e)))),
                Ok(chunk) if chunk.is_empty() => {
                    return Poll::Ready(Some(Err(Box::new(StorageError::BadResponse(format!(
                        "the cache fill ended after {} of {} bytes",
                        this.received, this.len
                    ))))));
                }
                Ok(chunk) => {
                    let at = this.received;
                    this.received += chunk.len() as u64;
                    this.next += 1;
                    if let Some(slice) = this.windowed(at, &chunk) {
                        return Poll::Ready(Some(Ok(Frame::data(slice))));
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.window.1.saturating_sub(self.window.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::body::Body as _;

    fn meta(len: u64) -> ObjectMeta {
        ObjectMeta {
            content_length: Some(len),
            ..Default::default()
        }
    }

    async fn body(j: Joined) -> FillBody {
        match j {
            Joined::Body(_, b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn readers_joining_early_late_and_after_get_every_byte() {
        let fill = Arc::new(Fill::default());
        fill.stream(meta(6), 6, None);
        let early = body(fill.join().await).await;
        fill.push(Bytes::from_static(b"abc")).unwrap();
        let late = body(fill.join().await)
            .await
            .range(RangeDecision::Partial { start: 2, end: 4 });
        fill.push(Bytes::from_static(b"def")).unwrap();
        assert_eq!(fill.finish(Ok(())).unwrap(), &b"abcdef"[..]);
        let after = body(fill.join().await).await;
        assert_eq!(early.collect().await.unwrap().to_bytes(), "abcdef");
        assert_eq!(late.collect().await.unwrap().to_bytes(), "cde");
        assert_eq!(after.collect().await.unwrap().to_bytes(), "abcdef");
    }

    #[tokio::test]
    async fn a_large_fill_goes_into_a_sealed_file_with_readers_joining_mid_way() {
        let data: Vec<u8> = (0..crate::cache::zerocopy::MIN_BYTES * 2)
            .map(|i| (i % 241) as u8)
            .collect();
        let half = data.len() / 2;
        let fill = Arc::new(Fill::default());
        fill.stream(meta(data.len() as u64), data.len(), None);
        fill.push(Bytes::copy_from_slice(&data[..half])).unwrap();
        let late = body(fill.join().await).await;
        fill.push(Bytes::copy_from_slice(&data[half..])).unwrap();
        let whole = fill.finish(Ok(())).unwrap();
        assert_eq!(&whole[..], &data[..]);
        assert!(
            crate::cache::zerocopy::regions() >= 1,
            "the entry should be a sealed file"
        );
        assert_eq!(late.collect().await.unwrap().to_bytes(), &data[..]);
    }

    #[tokio::test]
    async fn a_failure_mid_fill_breaks_every_reader() {
        let fill = Arc::new(Fill::default());
        fill.stream(meta(6), 6, None);
        let early = body(fill.join().await).await;
        fill.push(Bytes::from_static(b"abc")).unwrap();
        assert!(fill.finish(Err(StorageError::Timeout("stalled".into()))).is_err());
        let after = body(fill.join().await).await;
        assert!(early.collect().await.is_err());
        assert!(after.collect().await.is_err());
    }

    #[tokio::test]
    async fn the_chunks_budget_returns_when_the_fill_ends() {
        let budget = Arc::new(tokio::sync::Semaphore::new(10));
        let fill = Arc::new(Fill::default());
        fill.stream(meta(3), 3, Some(budget.clone().try_acquire_many_owned(3).unwrap()));
        let reader = body(fill.join().await).await;
        fill.push(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(budget.available_permits(), 7, "the chunks are held");
        fill.finish(Ok(())).unwrap();
        assert_eq!(budget.available_permits(), 10, "readers now read the entry");
        let late = body(fill.join().await).await;
        assert_eq!(reader.collect().await.unwrap().to_bytes(), "abc");
        assert_eq!(late.collect().await.unwrap().to_bytes(), "abc");
    }

    /// A herd joining mid-way shares the arrived chunks: every reader is handed the very
    /// allocation that arrived, none a copy.
    #[tokio::test]
    async fn a_herd_shares_the_chunks() {
        let fill = Arc::new(Fill::default());
        fill.stream(meta(8), 8, None);
        let first = Bytes::from(vec![7u8; 4]);
        fill.push(first.clone()).unwrap();
        let mut readers = Vec::new();
        for _ in 0..100 {
            readers.push(body(fill.join().await).await);
        }
        for r in &mut readers {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut *r).poll_frame(cx))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(frame.into_data().unwrap().as_ptr(), first.as_ptr());
        }
        fill.push(Bytes::from_static(b"tail")).unwrap();
        fill.finish(Ok(())).unwrap();
        for r in readers {
            assert_eq!(r.collect().await.unwrap().to_bytes(), "tail");
        }
    }

    #[tokio::test]
    async fn an_abandoned_fill_is_an_error_not_a_short_body() {
        let fill = Arc::new(Fill::default());
        fill.stream(meta(6), 6, None);
        let reader = body(fill.join().await).await;
        fill.push(Bytes::from_static(b"abc")).unwrap();
        fill.abandon();
        drop(fill);
        assert!(reader.collect().await.is_err());
    }
}
