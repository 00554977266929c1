//! Revalidation of a stale entry (RFC 5861): in the background while it is served, or with the
//! request waiting (coalesced per version), and what a failure leaves (stale-if-error).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::backend::storage::Storage;
use crate::cache::fill::Fill;
use crate::cache::policy::signed_secs;
use crate::cache::status::{CacheStatus, Served};
use crate::cache::store::{CachedObject, Entry, FillError, Lookup, ObjectCache, Slot, object_key};
use crate::error::StorageError;

impl ObjectCache {
    /// One conditional GetObject for `obj` (the current version of `entry`): the entry that
    /// replaces it, or why not, with the failure already applied to the cache.
    async fn refresh(
        &self,
        storage: &Storage,
        key: &str,
        entry: &Entry,
        obj: &Arc<CachedObject>,
    ) -> Result<Entry, FillError> {
        // A purge (or a change event) while this runs may have been meant for the very copy
        // it confirms or reads: then it serves the request that waits but is not kept.
        let epoch = self.purges.load(Ordering::SeqCst);
        let etag = obj.meta.etag.as_deref();
        let outcome = match storage.get_if_none_match(object_key(storage, key), etag).await {
            Err(StorageError::NotModified) => Ok(("not_modified", self.entry(Slot::Object(obj.clone())))),
            Ok(new) => self.read_into(&Fill::default(), new).await.map(|e| ("modified", e)),
            Err(e) => Err(FillError::from(e)),
        };
        let label = match &outcome {
            Ok((l, _)) => l,
            Err(FillError::Missing) => "deleted",
            Err(_) => "error",
        };
        self.metrics.cache_revalidations.with_label_values(&[label]).inc();
        match outcome {
            Ok((_, fresh)) => {
                if self.purges.load(Ordering::SeqCst) == epoch {
                    self.keep(key.to_string(), fresh.clone()).await;
                }
                Ok(fresh)
            }
            Err(e) => {
                if self.purges.load(Ordering::SeqCst) == epoch {
                    self.refresh_failed(key, entry, &e).await;
                }
                Err(e)
            }
        }
    }

    /// What a failed refresh leaves: a deleted key moves to the negative cache, a fill that
    /// found no budget drops the entry (the next request streams); backend trouble marks the
    /// entry as failing.
    async fn refresh_failed(&self, key: &str, entry: &Entry, e: &FillError) {
        match e {
            FillError::Missing => {
                self.entries.invalidate(key).await;
                self.negative.insert(key.to_string(), ()).await;
            }
            FillError::NoBudget => self.entries.invalidate(key).await,
            FillError::Storage(e) => {
                if !entry.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(key = %key.escape_debug(), error = %e, "revalidation failed; serving the stale copy");
                }
            }
        }
    }

    /// Whether a background revalidation of `key` is running.
    pub(super) fn revalidating(&self, key: &str) -> bool {
        self.background.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// Starts one background revalidation of `key`, unless one is running.
    pub(super) fn revalidate_in_background(
        self: &Arc<Self>,
        storage: &Storage,
        key: &str,
        entry: &Entry,
        obj: &Arc<CachedObject>,
    ) {
        {
            let mut running = self.background.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(key.to_string()) {
                return;
            }
        }
        let (cache, storage, key, entry, obj) = (
            self.clone(),
            storage.clone(),
            key.to_string(),
            entry.clone(),
            obj.clone(),
        );
        tokio::spawn(async move {
            /// Takes the key out of the running set however the task ends.
            struct Running<'a>(&'a ObjectCache, &'a str);
            impl Drop for Running<'_> {
                fn drop(&mut self) {
                    self.0
                        .background
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(self.1);
                }
            }
            let _running = Running(&cache, &key);
            let _ = cache.refresh(&storage, &key, &entry, &obj).await;
        });
    }

    /// Asks the backend whether a stale entry is still current, the request waiting for the
    /// answer (coalesced with concurrent requests); serves it stale if the backend fails and
    /// the stale window allows.
    pub(super) async fn revalidate(
        &self,
        storage: &Storage,
        key: &str,
        entry: &Entry,
        obj: &Arc<CachedObject>,
        age: Duration,
    ) -> Result<Lookup, StorageError> {
        let result = self
            .revalidations
            .try_get_with(
                (key.to_string(), entry.generation),
                self.refresh(storage, key, entry, obj),
            )
            .await;
        match result {
            Ok(fresh) => Ok(match fresh.slot {
                Slot::Object(o) => Lookup::Object(
                    o,
                    Served::memory(
                        CacheStatus::Revalidated,
                        Some(signed_secs(fresh.ttl, fresh.validated.elapsed())),
                    ),
                ),
                Slot::Pass | Slot::Variant { .. } => Lookup::Bypass,
            }),
            Err(e) => match &*e {
                FillError::Missing => Ok(Lookup::Missing(CacheStatus::Revalidated)),
                FillError::NoBudget => Ok(Lookup::Bypass),
                FillError::Storage(e) => {
                    let stale_for = age.saturating_sub(entry.ttl);
                    if e.is_transient() && stale_for < self.config.stale_if_error {
                        self.metrics.cache_stale_served.inc();
                        let served = Served::memory(CacheStatus::Stale, Some(signed_secs(entry.ttl, age)));
                        Ok(Lookup::Object(obj.clone(), served))
                    } else {
                        Err(e.clone())
                    }
                }
            },
        }
    }
}
