//! Compressed representations of cached objects: made once per version and coding, off the
//! async threads, and kept beside the object under a key no request path can name.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::backend::storage::Storage;
use crate::cache::store::{CachedObject, Entry, ObjectCache, Slot, cache_name, variant_key};
use crate::http::compression::{Encoding, variant_etag};

impl ObjectCache {
    /// `obj` (`key` of `storage`'s bucket) coded with `encoding`, from memory, or compressed
    /// now and kept beside it; `None` when the coding does not make it smaller. Requests for the
    /// same representation meanwhile wait for the one compression, which runs off the async
    /// threads.
    pub async fn variant(
        &self,
        storage: &Storage,
        key: &str,
        obj: &Arc<CachedObject>,
        encoding: Encoding,
    ) -> Option<Arc<CachedObject>> {
        let name = variant_key(&cache_name(storage, key), encoding);
        let current = |entry: &Entry| match &entry.slot {
            Slot::Variant { source, object } if *source == obj.meta.etag => Some(object.clone()),
            _ => None,
        };
        if let Some(entry) = self.entries.get(&name).await {
            if let Some(found) = current(&entry) {
                return found;
            }
            // Made from an earlier version of the object.
            self.entries.invalidate(&name).await;
        }
        let source = obj.clone();
        let metrics = self.metrics.clone();
        let make = async move {
            let made = tokio::task::spawn_blocking(move || {
                let body = encoding.compress(&source.body);
                let smaller = body.len() < source.body.len();
                metrics
                    .compressions
                    .with_label_values(&[encoding.token(), if smaller { "compressed" } else { "no_gain" }])
                    .inc();
                smaller.then(|| {
                    let mut meta = source.meta.clone();
                    meta.etag = meta.etag.as_deref().map(|e| variant_etag(e, encoding));
                    meta.content_length = Some(body.len() as u64);
                    meta.stored.content_encoding = Some(encoding.token().to_string());
                    Arc::new(CachedObject {
                        meta,
                        body: Bytes::from(body),
                    })
                })
            })
            .await
            .ok()
            .flatten();
            Entry {
                slot: Slot::Variant {
                    source: obj.meta.etag.clone(),
                    object: made,
                },
                validated: Instant::now(),
                generation: self.generation.fetch_add(1, Ordering::Relaxed),
                failing: Arc::new(AtomicBool::new(false)),
                ttl: self.config.ttl,
                stale_while_revalidate: false,
            }
        };
        let entry = self.entries.get_with(name, make).await;
        current(&entry).flatten()
    }
}
