//! A response body from the disk tier: the bytes of a range, slice after slice, each from its
//! file (mapped: sent with `sendfile`) or read along its fetch; the next slice is fetched
//! while the current one is sent. When the disk cannot serve (I/O trouble), the rest of the
//! range streams from the bucket instead. A task produces the bytes into a channel of two
//! chunks, so a slow client holds at most those (mapped chunks take no memory).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::slice::{Failure, Progress, SliceFetch};
use super::{DiskTier, SliceData, Version};
use crate::backend::storage::Storage;
use crate::body::{Body, BoxError};

/// Bytes read from a slice being written, per chunk.
const READ_CHUNK: u64 = 64 << 10;

/// Starts the task that produces `start..=end` of `version`; returns the body reading it.
pub(super) fn spawn(
    tier: Arc<DiskTier>,
    storage: Storage,
    key: String,
    version: Arc<Version>,
    start: u64,
    end: u64,
) -> Body {
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        produce(&tier, &storage, &key, &version, start, end, &tx).await;
    });
    crate::body::boxed(Receiving {
        rx,
        remaining: end - start + 1,
    })
}

type Sender = mpsc::Sender<Result<Bytes, BoxError>>;

/// Why following a fetch stopped.
enum Stop {
    /// The client went away.
    Gone,
    /// The fetch failed.
    Fetch(Failure),
}

async fn produce(
    tier: &Arc<DiskTier>,
    storage: &Storage,
    key: &str,
    version: &Arc<Version>,
    start: u64,
    end: u64,
    tx: &Sender,
) {
    let mut pos = start;
    while pos <= end {
        let n = u32::try_from(pos / tier.config.slice_bytes).unwrap_or(u32::MAX);
        let (slice_start, slice_end) = tier.bounds(version, n);
        let upto = slice_end.min(end);
        if upto < end {
            tier.prefetch(storage, key, version, n + 1);
        }
        match tier.slice(storage, key, version, n).await {
            Some(SliceData::Mapped(bytes)) => {
                let part = bytes.slice(offset(pos - slice_start)..=offset(upto - slice_start));
                if tx.send(Ok(part)).await.is_err() {
                    return;
                }
                pos = upto + 1;
            }
            Some(SliceData::Growing(fetch)) => match follow(&fetch, slice_start, pos, upto, tx).await {
                Ok(()) => pos = upto + 1,
                Err(Stop::Gone) => return,
                // The disk failed, not the bucket: the bucket serves the rest.
                Err(Stop::Fetch(Failure::Disk(_))) => break,
                Err(Stop::Fetch(failure)) => {
                    tracing::warn!(key = %key.escape_debug(), error = %failure, "backend failed mid-response (disk cache slice)");
                    let _ = tx.send(Err(failure.to_string().into())).await;
                    return;
                }
            },
            None => break,
        }
    }
    if pos <= end {
        direct(storage, key, version, pos, end, tx).await;
    }
}

/// Sends `pos..=upto` of a slice being fetched, as it is written.
async fn follow(fetch: &SliceFetch, slice_start: u64, mut pos: u64, upto: u64, tx: &Sender) -> Result<(), Stop> {
    let mut progress = fetch.subscribe();
    loop {
        let now = progress.borrow_and_update().clone();
        let (written, done) = match now {
            Progress::Writing(w) => (slice_start + w, false),
            Progress::Done(w) => (slice_start + w, true),
            Progress::Failed(f) => return Err(Stop::Fetch(f)),
        };
        while pos < written && pos <= upto {
            let max = (written.min(upto + 1) - pos).min(READ_CHUNK);
            let bytes = fetch
                .read_at(pos - slice_start, offset(max))
                .map_err(|e| Stop::Fetch(Failure::Disk(Arc::new(e))))?;
            if bytes.is_empty() {
                return Err(Stop::Fetch(Failure::Disk(Arc::new(std::io::Error::other(
                    "the slice file is shorter than written",
                )))));
            }
            pos += bytes.len() as u64;
            tx.send(Ok(bytes)).await.map_err(|_| Stop::Gone)?;
        }
        if pos > upto {
            return Ok(());
        }
        if done {
            return Err(Stop::Fetch(Failure::Body("the slice ended early".into())));
        }
        if progress.changed().await.is_err() {
            return Err(Stop::Fetch(Failure::Body("the slice's fetch stopped".into())));
        }
    }
}

/// Streams `pos..=end` of `version` straight from the bucket, pinned to its ETag.
async fn direct(storage: &Storage, key: &str, version: &Version, pos: u64, end: u64, tx: &Sender) {
    let got = storage
        .get_range(key, Some(format!("bytes={pos}-{end}")), Some(&version.etag))
        .await;
    let want = format!("bytes {pos}-{end}/{}", version.len);
    let mut body = match got {
        Ok(obj) if obj.content_range.as_deref() == Some(want.as_str()) => obj.body,
        Ok(obj) => {
            let why = format!(
                "asked for {want}, the backend answered Content-Range {:?}",
                obj.content_range
            );
            let _ = tx.send(Err(why.into())).await;
            return;
        }
        Err(e) => {
            tracing::warn!(key = %key.escape_debug(), error = %e, "backend failed mid-response (disk cache fallback)");
            let _ = tx.send(Err(e.to_string().into())).await;
            return;
        }
    };
    while let Some(frame) = body.frame().await {
        let sent = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => tx.send(Ok(data)).await,
                Err(_) => continue,
            },
            Err(e) => tx.send(Err(e)).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

fn offset(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The body: what the task produces.
struct Receiving {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
    remaining: u64,
}

impl hyper::body::Body for Receiving {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(Some(Err("the disk cache response ended early".into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}
