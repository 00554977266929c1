//! The object cache itself: entries in a byte-bounded LRU (moka), the negative cache, and a
//! lookup that answers from memory, revalidates, or starts a fill.
//!
//! What it does on a miss, on a stale entry, for a coding and for a purge lives beside it, in
//! `miss`, `revalidate`, `variants` and `purge` (each an `impl ObjectCache` block over this
//! file's types); `policy` and `status` are the RFCs it follows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use tokio::sync::Semaphore;

use crate::backend::storage::Storage;
use crate::cache::fill::{Fill, FillBody, Joined};
use crate::cache::policy::{Policy, signed_secs};
use crate::cache::status::{CacheStatus, Served};
use crate::error::StorageError;
use crate::http::compression::Encoding;
use crate::meta::ObjectMeta;
use crate::metrics::Metrics;

/// Cache settings, validated.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// Total bytes held; 0 turns the cache off.
    pub max_bytes: u64,
    /// Larger objects are streamed, not cached.
    pub max_object_bytes: u64,
    /// Bytes that fills in progress may hold at once.
    pub fill_budget: u64,
    /// How long an entry is served without asking the backend.
    pub ttl: Duration,
    /// How long past its TTL an entry is served while one background request revalidates it.
    pub stale_while_revalidate: Duration,
    /// How long past its freshness a copy may be served while the backend fails.
    pub stale_if_error: Duration,
    /// How long a 404 is remembered.
    pub negative_ttl: Duration,
    /// Most 404s remembered.
    pub negative_max_entries: u64,
    /// Whether a request's `Cache-Control: no-cache` forces revalidation.
    pub honor_no_cache: bool,
}

/// An object held in memory.
#[derive(Debug)]
pub struct CachedObject {
    /// Its metadata (validators, type, cache policy, length).
    pub meta: ObjectMeta,
    /// The whole body.
    pub body: Bytes,
}

#[derive(Clone, Debug)]
pub(super) enum Slot {
    Object(Arc<CachedObject>),
    /// Not kept: too large, or its `Cache-Control` forbids a shared cache. Stream it.
    Pass,
    /// A coded representation ([`crate::http::compression`]) of the object held under the key it
    /// was made from, with that object's ETag at the time; `None` when the coding does not
    /// make the object smaller. Held under [`variant_key`], which no request path can name.
    Variant {
        source: Option<String>,
        object: Option<Arc<CachedObject>>,
    },
}

/// The name of `key` of `storage`'s bucket in the cache: `bucket/key` (a bucket name holds no
/// `/`), so that sites serving other buckets never share an entry. Every map of the cache is
/// keyed by these names.
pub fn cache_name(storage: &Storage, key: &str) -> String {
    format!("{}/{key}", storage.bucket())
}

/// The object key of a cache name of `storage`'s bucket.
pub(super) fn object_key<'a>(storage: &Storage, name: &'a str) -> &'a str {
    name.get(storage.bucket().len() + 1..).unwrap_or(name)
}

/// The cache key of `key`'s representation in `encoding`: a NUL cannot be in a request's key
/// ([`crate::http::key`] refuses control characters), so it never collides with an object's.
pub(super) fn variant_key(key: &str, encoding: Encoding) -> String {
    format!("\0{}\0{key}", encoding.token())
}

#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) slot: Slot,
    /// When the backend last confirmed this entry.
    pub(super) validated: Instant,
    /// Distinguishes successive versions of an entry, so revalidations coalesce per version.
    pub(super) generation: u64,
    /// Set when a revalidation of this version failed: requests then get the stale copy at
    /// once instead of waiting for the failing backend again.
    pub(super) failing: Arc<AtomicBool>,
    /// How long after `validated` it is fresh: `--cache-ttl`, or less if the object says so.
    pub(super) ttl: Duration,
    /// Whether it may be served stale while a background request revalidates it (not when the
    /// object says `no-cache`).
    pub(super) stale_while_revalidate: bool,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The object, from memory.
    Object(Arc<CachedObject>, Served),
    /// The object, arriving from the backend while it fills the cache.
    Filling(Arc<ObjectMeta>, FillBody, Served),
    /// The key does not exist.
    Missing(CacheStatus),
    /// Stream it from the backend.
    Bypass,
}

/// Why a fill produced no entry.
#[derive(Clone, Debug)]
pub(super) enum FillError {
    /// The key does not exist.
    Missing,
    /// No fill budget left: stream instead.
    NoBudget,
    /// Backend trouble.
    Storage(StorageError),
}

impl From<StorageError> for FillError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => FillError::Missing,
            e => FillError::Storage(e),
        }
    }
}

/// The cache of one gateway.
pub struct ObjectCache {
    /// Entries last validated before this instant are stale whatever their TTL (set when change
    /// events may have been missed); `None` until then.
    /// Nanoseconds after `born`; 0 until then. An atomic, since every lookup reads it.
    pub(super) stale_before: AtomicU64,
    /// When the cache was made: the origin of `stale_before`.
    pub(super) born: Instant,
    pub(super) entries: Cache<String, Entry>,
    /// Keys known to be missing, with when that was learnt.
    pub(super) negative: Cache<String, ()>,
    pub(super) revalidations: Cache<(String, u64), Entry>,
    /// Keys with a background revalidation running: at most one each.
    pub(super) background: Mutex<HashSet<String>>,
    /// Fills in progress, one per key: concurrent misses read along the same one.
    pub(super) fills: Mutex<HashMap<String, Arc<Fill>>>,
    /// Bytes that fills in progress may still take.
    pub(super) fill_budget: Arc<Semaphore>,
    pub(super) config: CacheConfig,
    pub(super) metrics: Arc<Metrics>,
    pub(super) generation: AtomicU64,
    /// Compressions that may run at once (one per core).
    pub(super) compressing: Arc<Semaphore>,
    /// Purges so far: a revalidation that began before the last one does not keep its answer.
    pub(super) purges: AtomicU64,
    /// The disk tier for objects too large for memory, if configured.
    pub(super) disk: Option<Arc<crate::cache::disk::DiskTier>>,
}

impl std::fmt::Debug for ObjectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCache").field("config", &self.config).finish()
    }
}

/// Bytes the metadata of an entry holds: its strings and user metadata.
fn meta_bytes(meta: &ObjectMeta) -> u64 {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let stored = &meta.stored;
    let strings = text(&meta.content_type)
        + text(&meta.etag)
        + text(&meta.cache_control)
        + text(&stored.content_encoding)
        + text(&stored.content_disposition)
        + text(&stored.content_language)
        + text(&stored.expires)
        + meta.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    strings as u64
}

/// Bytes an entry costs besides its body (key, metadata, bookkeeping), an estimate.
const ENTRY_OVERHEAD: u64 = 512;

/// Largest fill budget, in bytes (the semaphore counts in `u32` per acquisition, and a budget
/// beyond this is not a budget).
const MAX_FILL_BUDGET: u64 = u32::MAX as u64;

impl ObjectCache {
    /// A cache per `config`; `None` when `max_bytes` is 0.
    pub fn new(config: CacheConfig, metrics: Arc<Metrics>) -> Option<Self> {
        if config.max_bytes == 0 {
            return None;
        }
        crate::http::compression::start_series(&metrics);
        let evictions = metrics.cache_evictions.clone();
        let entries = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                let body = match &entry.slot {
                    // The body and what is kept with it (type, validators, stored headers).
                    Slot::Object(o) | Slot::Variant { object: Some(o), .. } => {
                        o.body.len() as u64 + meta_bytes(&o.meta)
                    }
                    Slot::Pass | Slot::Variant { object: None, .. } => 0,
                };
                u32::try_from(key.len() as u64 + body + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .eviction_policy(EvictionPolicy::lru())
            // Entries are kept past freshness for the stale windows, then dropped by moka.
            .time_to_live(config.ttl + config.stale_if_error.max(config.stale_while_revalidate))
            .eviction_listener(move |_key, _value, cause| {
                let cause = match cause {
                    moka::notification::RemovalCause::Expired => "expired",
                    moka::notification::RemovalCause::Explicit => "explicit",
                    moka::notification::RemovalCause::Replaced => "replaced",
                    moka::notification::RemovalCause::Size => "size",
                };
                evictions.with_label_values(&[cause]).inc();
            })
            .build();
        let negative = Cache::builder()
            .max_capacity(config.negative_max_entries)
            .time_to_live(config.negative_ttl.max(Duration::from_millis(1)))
            .build();
        let revalidations = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(1))
            .build();
        let budget = usize::try_from(config.fill_budget.min(MAX_FILL_BUDGET)).unwrap_or(usize::MAX);
        Some(Self {
            entries,
            negative,
            revalidations,
            background: Mutex::new(HashSet::new()),
            fills: Mutex::new(HashMap::new()),
            fill_budget: Arc::new(Semaphore::new(budget)),
            config,
            metrics,
            generation: AtomicU64::new(0),
            purges: AtomicU64::new(0),
            compressing: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
            stale_before: AtomicU64::new(0),
            born: Instant::now(),
            disk: None,
        })
    }

    /// Adds the disk tier, for objects over `--cache-max-object-bytes`.
    #[must_use]
    pub fn with_disk(mut self, disk: Option<Arc<crate::cache::disk::DiskTier>>) -> Self {
        self.disk = disk;
        self
    }

    /// The disk tier, if any.
    pub fn disk(&self) -> Option<&Arc<crate::cache::disk::DiskTier>> {
        self.disk.as_ref()
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// A new entry, just validated; its freshness from the object's own policy.
    pub(super) fn entry(&self, slot: Slot) -> Entry {
        let policy = match &slot {
            Slot::Object(o) => Policy::of(o.meta.cache_control.as_deref(), self.config.ttl),
            Slot::Pass | Slot::Variant { .. } => Policy::DoNotStore,
        };
        let (ttl, stale_while_revalidate) = match policy {
            Policy::Store {
                ttl,
                stale_while_revalidate,
            } => (ttl, stale_while_revalidate),
            Policy::DoNotStore => (self.config.ttl, false),
        };
        Entry {
            slot,
            validated: Instant::now(),
            generation: self.generation.fetch_add(1, Ordering::Relaxed),
            failing: Arc::new(AtomicBool::new(false)),
            ttl,
            stale_while_revalidate,
        }
    }

    /// Finds `key`, from memory when fresh, revalidating or fetching it otherwise.
    ///
    /// `force_revalidate` (a client's `no-cache`) skips freshness; `fill` is false for requests
    /// that must not download a whole object on a miss (a `Range` request), which then bypass.
    ///
    /// # Errors
    /// Backend trouble, when no stale copy may be served instead.
    pub async fn lookup(
        self: &Arc<Self>,
        storage: &Storage,
        key: &str,
        force_revalidate: bool,
        fill: bool,
    ) -> Result<Lookup, StorageError> {
        let name = cache_name(storage, key);
        let result = self.lookup_inner(storage, &name, force_revalidate, fill).await;
        let label = match &result {
            Ok(Lookup::Object(_, served) | Lookup::Filling(_, _, served)) => served.status.as_str(),
            Ok(Lookup::Missing(s)) => s.as_str(),
            Ok(Lookup::Bypass) => "BYPASS",
            Err(_) => "ERROR",
        };
        self.metrics.cache_requests.with_label_values(&[label]).inc();
        result
    }

    /// [`ObjectCache::lookup`] for the gateway's own reads (the site's rule files): filled and
    /// kept as any object, not counted as a request.
    ///
    /// # Errors
    /// As [`ObjectCache::lookup`].
    pub async fn lookup_internal(self: &Arc<Self>, storage: &Storage, key: &str) -> Result<Lookup, StorageError> {
        self.lookup_inner(storage, &cache_name(storage, key), false, true).await
    }

    async fn lookup_inner(
        self: &Arc<Self>,
        storage: &Storage,
        key: &str,
        force: bool,
        fill: bool,
    ) -> Result<Lookup, StorageError> {
        if !force && self.negative.contains_key(key) {
            return Ok(Lookup::Missing(CacheStatus::Hit));
        }
        if let Some(entry) = self.entries.get(key).await {
            let age = entry.validated.elapsed();
            let fresh = age < entry.ttl && !force && !self.marked_stale(&entry);
            let served = |status| Served::memory(status, Some(signed_secs(entry.ttl, age)));
            match &entry.slot {
                Slot::Object(obj) if fresh => return Ok(Lookup::Object(obj.clone(), served(CacheStatus::Hit))),
                Slot::Pass if fresh => return Ok(Lookup::Bypass),
                Slot::Object(obj) if !force => {
                    // Stale by its age, or marked stale before its TTL ran out (then "past" is 0).
                    let past = age.saturating_sub(entry.ttl);
                    if entry.failing.load(Ordering::Relaxed) && past < self.config.stale_if_error {
                        // The last revalidation failed: do not wait for the backend again.
                        self.revalidate_in_background(storage, key, &entry, obj);
                        self.metrics.cache_stale_served.inc();
                        return Ok(Lookup::Object(obj.clone(), served(CacheStatus::Stale)));
                    }
                    // Once a revalidation has failed, stale-while-revalidate no longer applies: the
                    // copy is served as STALE within --cache-stale-if-error (above), and after it
                    // the request asks the backend and gets its error. UPDATING only while a
                    // revalidation is expected to succeed.
                    if entry.stale_while_revalidate
                        && !entry.failing.load(Ordering::Relaxed)
                        && (past < self.config.stale_while_revalidate
                            || (past < self.config.stale_if_error && self.revalidating(key)))
                    {
                        // Within the window, or a background revalidation is still out: do
                        // not start a second call and wait for it.
                        self.revalidate_in_background(storage, key, &entry, obj);
                        return Ok(Lookup::Object(obj.clone(), served(CacheStatus::Updating)));
                    }
                    return self.revalidate(storage, key, &entry, obj, age).await;
                }
                Slot::Object(obj) => return self.revalidate(storage, key, &entry, obj, age).await,
                Slot::Pass | Slot::Variant { .. } => self.entries.invalidate(key).await,
            }
        }
        if !fill {
            return Ok(Lookup::Bypass);
        }
        let (fill, started) = self.fill_for(storage, key);
        let status = if started { CacheStatus::Miss } else { CacheStatus::Hit };
        match fill.join().await {
            Joined::Body(meta, body) => {
                let ttl = match Policy::of(meta.cache_control.as_deref(), self.config.ttl) {
                    Policy::Store { ttl, .. } => ttl,
                    Policy::DoNotStore => Duration::ZERO,
                };
                let served = Served::memory(status, Some(signed_secs(ttl, Duration::ZERO)));
                Ok(Lookup::Filling(meta, body, served))
            }
            Joined::Missing => Ok(Lookup::Missing(status)),
            Joined::Pass => Ok(Lookup::Bypass),
            Joined::Failed(e) => Err(e),
        }
    }

    /// Makes every entry held now stale: the next request for each revalidates it with the
    /// backend (a conditional GET, served stale meanwhile within the stale-while-revalidate
    /// window). For when changes may have gone unseen, e.g. while the change subscription was
    /// down.
    pub fn mark_all_stale(&self) {
        let now = u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stale_before.store(now.max(1), Ordering::Release);
        if let Some(disk) = &self.disk {
            disk.mark_all_stale();
        }
    }

    /// Whether `entry` was validated before the last [`ObjectCache::mark_all_stale`].
    fn marked_stale(&self, entry: &Entry) -> bool {
        let at = self.stale_before.load(Ordering::Acquire);
        at != 0 && entry.validated < self.born + std::time::Duration::from_nanos(at)
    }

    /// Keeps `entry` under `key`, and applies the byte bound at once. moka queues its writes
    /// and evicts when it next runs its housekeeping, so a burst of fills could otherwise hold
    /// twice the bound for a while (300 fills of 1 MiB into 64 MiB peaked at 2.1 x in the
    /// pod's memory cgroup). An insert follows a backend fetch: the housekeeping is cheap next
    /// to it.
    pub(super) async fn keep(&self, key: String, entry: Entry) {
        self.entries.insert(key, entry).await;
        self.entries.run_pending_tasks().await;
    }

    /// Updates the size gauges (moka counts lazily) before `/metrics` is rendered.
    pub async fn export_gauges(&self) {
        self.entries.run_pending_tasks().await;
        self.negative.run_pending_tasks().await;
        self.metrics
            .cache_entries
            .set(i64::try_from(self.entries.entry_count()).unwrap_or(i64::MAX));
        self.metrics
            .cache_bytes
            .set(i64::try_from(self.entries.weighted_size()).unwrap_or(i64::MAX));
        self.metrics
            .cache_negative_entries
            .set(i64::try_from(self.negative.entry_count()).unwrap_or(i64::MAX));
        self.metrics
            .cache_sealed_entries
            .set(i64::try_from(crate::cache::zerocopy::regions()).unwrap_or(i64::MAX));
    }
}
