//! Compressed representations of cached objects: made once per version and coding, off the
//! async threads, and kept beside the object under a key no request path can name.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::backend::storage::Storage;
use crate::cache::store::{CachedObject, Entry, ObjectCache, Slot, cache_name, variant_key};
use crate::http::compression::{Encoding, variant_etag};
use crate::meta::ObjectMeta;

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
        let wanted = Some(version(&obj.meta));
        let current = |entry: &Entry| match &entry.slot {
            Slot::Variant { source, object } if *source == wanted => Some(object.clone()),
            _ => None,
        };
        if let Some(entry) = self.entries.get(&name).await {
            if let Some(found) = current(&entry) {
                return found;
            }
            // Made from an earlier version of the object.
            self.entries.invalidate(&name).await;
        }
        // Compressions run off the async threads, at most one per core at once: when all are
        // busy, this answer goes as stored (and nothing is remembered for it).
        let permit = self.compressing.clone().try_acquire_owned().ok()?;
        let source = obj.clone();
        let metrics = self.metrics.clone();
        let make = async move {
            let made = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                // A coding that fails is no gain, never an empty body.
                let body = encoding.compress(&source.body).unwrap_or_default();
                let smaller = !body.is_empty() && body.len() < source.body.len();
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
                    source: Some(version(&obj.meta)),
                    object: made,
                },
                validated: Instant::now(),
                generation: self.generation.fetch_add(1, Ordering::Relaxed),
                failing: Arc::new(AtomicBool::new(false)),
                ttl: self.config.ttl,
                stale_while_revalidate: false,
            }
        };
        let entry = self.entries.entry(name).or_insert_with(make).await;
        if entry.is_fresh() {
            // A coding was made and kept: the bound holds at once, as for every insert (`keep`).
            self.entries.run_pending_tasks().await;
        }
        current(&entry.into_value()).flatten()
    }
}

/// The version of an object a coding was made from: its ETag, else its Last-Modified and
/// length (a store without ETags still changes those when the object changes).
fn version(meta: &ObjectMeta) -> String {
    match &meta.etag {
        Some(etag) => etag.clone(),
        None => format!(
            "{:?}/{}",
            meta.last_modified
                .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default()),
            meta.content_length.unwrap_or(0)
        ),
    }
}
