//! In-memory object cache: a few hot files served to many browsers without touching MinIO.
//!
//! - Bounded in **bytes** (moka weigher); objects over `--cache-max-object-bytes` stream
//!   through uncached and are remembered as such, so they cost no wasted fetch next time.
//! - **LRU**, chosen on purpose: moka's default TinyLFU admission refuses a new entry until it
//!   has been seen often enough, so a freshly uploaded GIF would keep missing while colder
//!   entries stay; for a small set of hot files, recency is the right signal.
//! - **Coalescing**: concurrent misses of one key make one GetObject (`try_get_with`); an error
//!   goes to every waiter and is not cached. Revalidations of one entry are coalesced the
//!   same way.
//! - **Freshness**: an entry is served for `--cache-ttl`, then revalidated with a conditional
//!   GetObject (`If-None-Match`): 304 keeps it (no body transferred), 200 replaces it, 404
//!   removes it. When revalidation fails for backend reasons, the stale copy is served for up
//!   to `--cache-stale-if-error` past its freshness, never longer.
//! - **Negative cache**: a 404 is remembered for `--cache-negative-ttl`.
//!
//! Cached bodies are `Bytes`: a hit, a range of a hit and HEAD share the one buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::storage::{ObjectMeta, Storage};

/// Cache settings, validated.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// Total bytes held; 0 turns the cache off.
    pub max_bytes: u64,
    /// Larger objects are streamed, not cached.
    pub max_object_bytes: u64,
    /// How long an entry is served without asking the backend.
    pub ttl: Duration,
    /// How long past its freshness a copy may be served while the backend fails.
    pub stale_if_error: Duration,
    /// How long a 404 is remembered.
    pub negative_ttl: Duration,
    /// Whether a request's `Cache-Control: no-cache` forces revalidation.
    pub honor_no_cache: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_object_bytes: 16 << 20,
            ttl: Duration::from_secs(60),
            stale_if_error: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            honor_no_cache: true,
        }
    }
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
enum Slot {
    Object(Arc<CachedObject>),
    /// The key does not exist.
    Missing,
    /// Too large to cache: stream it.
    Oversize,
}

#[derive(Clone, Debug)]
struct Entry {
    slot: Slot,
    /// When the backend last confirmed this entry.
    validated: Instant,
    /// Distinguishes successive versions of an entry, so revalidations coalesce per version.
    generation: u64,
}

/// The `X-Cache` value of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from memory without asking the backend.
    Hit,
    /// Fetched from the backend (and cached if small enough).
    Miss,
    /// Confirmed or refreshed by the backend before serving.
    Revalidated,
    /// Served from memory because revalidation failed (stale-if-error).
    Stale,
    /// Not cacheable here (cache off, object too large, range on a miss): streamed.
    Bypass,
}

impl CacheStatus {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The object, from memory.
    Object(Arc<CachedObject>, CacheStatus),
    /// The key does not exist.
    Missing(CacheStatus),
    /// Stream it from the backend.
    Bypass,
}

/// The cache of one gateway.
pub struct ObjectCache {
    entries: Cache<String, Entry>,
    revalidations: Cache<(String, u64), Entry>,
    config: CacheConfig,
    metrics: Arc<Metrics>,
    generation: AtomicU64,
}

impl std::fmt::Debug for ObjectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCache").field("config", &self.config).finish()
    }
}

/// Bytes an entry costs besides its body (key, metadata, bookkeeping), an estimate.
const ENTRY_OVERHEAD: u64 = 512;

impl ObjectCache {
    /// A cache per `config`; `None` when `max_bytes` is 0.
    pub fn new(config: CacheConfig, metrics: Arc<Metrics>) -> Option<Self> {
        if config.max_bytes == 0 {
            return None;
        }
        let evictions = metrics.cache_evictions.clone();
        let entries = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                let body = match &entry.slot {
                    Slot::Object(o) => o.body.len() as u64,
                    _ => 0,
                };
                u32::try_from(key.len() as u64 + body + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .eviction_policy(EvictionPolicy::lru())
            // Entries are kept past freshness for stale-if-error, then dropped by moka.
            .time_to_live(config.ttl + config.stale_if_error.max(config.negative_ttl))
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
        let revalidations = Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(1))
            .build();
        Some(Self {
            entries,
            revalidations,
            config,
            metrics,
            generation: AtomicU64::new(0),
        })
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn entry(&self, slot: Slot) -> Entry {
        Entry {
            slot,
            validated: Instant::now(),
            generation: self.generation.fetch_add(1, Ordering::Relaxed),
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
        &self,
        storage: &Storage,
        key: &str,
        force_revalidate: bool,
        fill: bool,
    ) -> Result<Lookup, StorageError> {
        let result = self.lookup_inner(storage, key, force_revalidate, fill).await;
        let label = match &result {
            Ok(Lookup::Object(_, s) | Lookup::Missing(s)) => s.as_str(),
            Ok(Lookup::Bypass) => "BYPASS",
            Err(_) => "ERROR",
        };
        self.metrics.cache_requests.with_label_values(&[label]).inc();
        result
    }

    async fn lookup_inner(
        &self,
        storage: &Storage,
        key: &str,
        force: bool,
        fill: bool,
    ) -> Result<Lookup, StorageError> {
        if let Some(entry) = self.entries.get(key).await {
            let age = entry.validated.elapsed();
            match &entry.slot {
                Slot::Object(obj) if age < self.config.ttl && !force => {
                    return Ok(Lookup::Object(obj.clone(), CacheStatus::Hit));
                }
                Slot::Missing if age < self.config.negative_ttl && !force => {
                    return Ok(Lookup::Missing(CacheStatus::Hit));
                }
                Slot::Oversize if age < self.config.ttl && !force => return Ok(Lookup::Bypass),
                Slot::Object(obj) => return self.revalidate(storage, key, &entry, obj, age).await,
                Slot::Missing | Slot::Oversize => self.entries.invalidate(key).await,
            }
        }
        if !fill {
            return Ok(Lookup::Bypass);
        }
        let ran = AtomicBool::new(false);
        let entry = self
            .entries
            .try_get_with(key.to_string(), async {
                ran.store(true, Ordering::Relaxed);
                self.fetch(storage, key).await
            })
            .await
            .map_err(unshare)?;
        let status = if ran.load(Ordering::Relaxed) {
            CacheStatus::Miss
        } else {
            CacheStatus::Hit
        };
        Ok(match entry.slot {
            Slot::Object(obj) => Lookup::Object(obj, status),
            Slot::Missing => Lookup::Missing(status),
            Slot::Oversize => Lookup::Bypass,
        })
    }

    /// Fetches a key whole, if it is small enough to cache.
    async fn fetch(&self, storage: &Storage, key: &str) -> Result<Entry, StorageError> {
        match storage.get(key).await {
            Ok(obj) => self.read_body(obj).await,
            Err(StorageError::NotFound) => Ok(self.entry(Slot::Missing)),
            Err(e) => Err(e),
        }
    }

    async fn read_body(&self, obj: crate::storage::Object) -> Result<Entry, StorageError> {
        let len = obj.meta.content_length.unwrap_or(u64::MAX);
        if len > self.config.max_object_bytes {
            // Dropping the body closes that backend connection; the caller streams instead,
            // and the oversize marker spares the next requests this wasted start.
            return Ok(self.entry(Slot::Oversize));
        }
        let mut buf = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut body = obj.body;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| StorageError::Unreachable(format!("reading the object body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        if buf.len() as u64 != len {
            return Err(StorageError::BadResponse(format!(
                "object body was {} bytes, Content-Length said {len}",
                buf.len()
            )));
        }
        Ok(self.entry(Slot::Object(Arc::new(CachedObject {
            meta: obj.meta,
            body: buf.freeze(),
        }))))
    }

    /// Asks the backend whether a stale entry is still current; serves it stale if the backend
    /// fails and the stale window allows.
    async fn revalidate(
        &self,
        storage: &Storage,
        key: &str,
        entry: &Entry,
        obj: &Arc<CachedObject>,
        age: Duration,
    ) -> Result<Lookup, StorageError> {
        let result = self
            .revalidations
            .try_get_with((key.to_string(), entry.generation), async {
                let etag = obj.meta.etag.as_deref();
                let outcome = match storage.get_if_none_match(key, etag).await {
                    Err(StorageError::NotModified) => Ok(("not_modified", self.entry(Slot::Object(obj.clone())))),
                    Ok(new) => self.read_body(new).await.map(|e| ("modified", e)),
                    Err(StorageError::NotFound) => Ok(("deleted", self.entry(Slot::Missing))),
                    Err(e) => Err(e),
                };
                let label = outcome.as_ref().map_or("error", |(l, _)| *l);
                self.metrics.cache_revalidations.with_label_values(&[label]).inc();
                let (_, fresh) = outcome?;
                self.entries.insert(key.to_string(), fresh.clone()).await;
                Ok::<_, StorageError>(fresh)
            })
            .await;
        match result {
            Ok(fresh) => Ok(match fresh.slot {
                Slot::Object(o) => Lookup::Object(o, CacheStatus::Revalidated),
                Slot::Missing => Lookup::Missing(CacheStatus::Revalidated),
                Slot::Oversize => Lookup::Bypass,
            }),
            Err(e) => {
                let stale_for = age.saturating_sub(self.config.ttl);
                if e.is_transient() && stale_for < self.config.stale_if_error {
                    tracing::warn!(%key, error = %e, stale_for = ?stale_for, "revalidation failed; serving the stale copy");
                    self.metrics.cache_stale_served.inc();
                    Ok(Lookup::Object(obj.clone(), CacheStatus::Stale))
                } else {
                    Err(unshare(e))
                }
            }
        }
    }

    /// Updates the size gauges (moka counts lazily) before `/metrics` is rendered.
    pub async fn export_gauges(&self) {
        self.entries.run_pending_tasks().await;
        self.metrics
            .cache_entries
            .set(i64::try_from(self.entries.entry_count()).unwrap_or(i64::MAX));
        self.metrics
            .cache_bytes
            .set(i64::try_from(self.entries.weighted_size()).unwrap_or(i64::MAX));
    }
}

/// moka hands every waiter the same `Arc` of the error; give each its own copy.
fn unshare(e: Arc<StorageError>) -> StorageError {
    Arc::try_unwrap(e).unwrap_or_else(|shared| (*shared).clone())
}
