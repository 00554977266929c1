//! A miss: one fill per key, run by a task of its own, that streams the object to every request
//! reading along and then keeps it (or remembers it as missing, or as one to stream).

use std::sync::Arc;

use http_body_util::BodyExt;

use crate::backend::storage::{Object, Storage};
use crate::cache::fill::{Fill, FillRefusal};
use crate::cache::policy::Policy;
use crate::cache::store::{CachedObject, Entry, FillError, ObjectCache, Slot, object_key};
use crate::error::StorageError;
use crate::meta::ObjectMeta;

impl ObjectCache {
    /// The fill of `key` in progress, or a new one (`true`) that a task of its own runs, so
    /// that it completes whichever requests leave.
    pub(super) fn fill_for(self: &Arc<Self>, storage: &Storage, key: &str) -> (Arc<Fill>, bool) {
        let mut fills = self.fills.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fill) = fills.get(key) {
            return (fill.clone(), false);
        }
        let fill = Arc::new(Fill::default());
        fills.insert(key.to_string(), fill.clone());
        tokio::spawn(self.clone().run_fill(storage.clone(), key.to_string(), fill.clone()));
        (fill, true)
    }

    /// Fetches `key` into `fill`, then into the cache (or the negative cache).
    async fn run_fill(self: Arc<Self>, storage: Storage, key: String, fill: Arc<Fill>) {
        /// Takes the fill out of the map however the task ends, after the entry is in place.
        /// Readers of a fill whose task is aborted get an error, not a wait.
        struct Filling<'a>(&'a ObjectCache, &'a str, &'a Fill);
        impl Drop for Filling<'_> {
            fn drop(&mut self) {
                self.0.fills.lock().unwrap_or_else(|p| p.into_inner()).remove(self.1);
                self.2.abandon();
            }
        }
        let _filling = Filling(&self, &key, &fill);
        let result = match storage.get(object_key(&storage, &key)).await {
            Ok(obj) => self.read_into(&fill, obj).await,
            Err(e) => {
                let e = FillError::from(e);
                fill.refuse(match &e {
                    FillError::Missing => FillRefusal::Missing,
                    FillError::NoBudget => FillRefusal::Pass,
                    FillError::Storage(e) => FillRefusal::Failed(e.clone()),
                });
                Err(e)
            }
        };
        if fill.discarded() {
            // Purged meanwhile: what was read may be the version the purge was meant to drop.
            return;
        }
        match result {
            Ok(entry) => self.keep(key.clone(), entry).await,
            Err(FillError::Missing) => self.negative.insert(key.clone(), ()).await,
            Err(_) => {}
        }
    }

    /// Reads `obj` into memory through `fill`, whose readers get the bytes as they arrive, if
    /// it is small enough and cacheable and the fill budget allows.
    pub(super) async fn read_into(&self, fill: &Fill, obj: Object) -> Result<Entry, FillError> {
        let len = obj.meta.content_length.unwrap_or(u64::MAX);
        let policy = Policy::of(obj.meta.cache_control.as_deref(), self.config.ttl);
        if len > self.config.max_object_bytes || policy == Policy::DoNotStore {
            // Dropping the body closes that backend connection; the requests stream instead,
            // and the pass marker spares the next requests this wasted start.
            fill.refuse(FillRefusal::Pass);
            return Ok(self.entry(Slot::Pass));
        }
        // An answer to a GET without a range that is a range (a proxy that confused two
        // requests, a backend that lies) is not the object.
        if let Some(range) = &obj.content_range {
            let e = StorageError::BadResponse(format!(
                "a GetObject without Range was answered with Content-Range {range:?}"
            ));
            fill.refuse(FillRefusal::Failed(e.clone()));
            return Err(FillError::Storage(e));
        }
        // Take the bytes from the budget before allocating them, twice: the buffer, returned
        // when the fill ends (it then belongs to the cache, bounded by --cache-max-bytes), and
        // the arrived chunks the readers share, returned when the fill ends too.
        let permits = u32::try_from(len.saturating_mul(2)).unwrap_or(u32::MAX);
        let Ok(mut permit) = self.fill_budget.clone().try_acquire_many_owned(permits) else {
            self.metrics.cache_fills_bypassed.inc();
            fill.refuse(FillRefusal::Pass);
            return Err(FillError::NoBudget);
        };
        let chunks = permit.split(usize::try_from(permits / 2).unwrap_or(0));
        fill.stream(obj.meta.clone(), usize::try_from(len).unwrap_or(0), chunks);
        let mut body = obj.body;
        let read = loop {
            match body.frame().await {
                None => break Ok(()),
                Some(Err(e)) => break Err(StorageError::Unreachable(format!("reading the object body: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if (fill.received() + data.len()) as u64 > len {
                            break Err(StorageError::BadResponse(format!(
                                "object body longer than its Content-Length {len}"
                            )));
                        }
                        if let Err(e) = fill.push(data) {
                            break Err(e);
                        }
                    }
                }
            }
        };
        let read = read.and_then(|()| {
            let got = fill.received() as u64;
            if got == len {
                Ok(())
            } else {
                Err(StorageError::BadResponse(format!(
                    "object body ended after {got} of its Content-Length {len} bytes"
                )))
            }
        });
        match fill.finish(read) {
            Ok(body) => {
                // User metadata (x-amz-meta-*) is never served: not kept in memory either.
                let meta = ObjectMeta {
                    metadata: Vec::new(),
                    ..obj.meta
                };
                Ok(self.entry(Slot::Object(Arc::new(CachedObject { meta, body }))))
            }
            Err(e) => Err(FillError::Storage(e)),
        }
    }
}
