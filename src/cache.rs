//! In-memory object cache: a few hot files served to many browsers without touching MinIO,
//! and kept served while MinIO is slow or down.
//!
//! - Bounded in **bytes** (moka weigher); objects over `--cache-max-object-bytes` stream
//!   through uncached and are remembered as such, so they cost no wasted fetch next time.
//! - **LRU**, chosen on purpose: moka's default TinyLFU admission refuses a new entry until it
//!   has been seen often enough, so a freshly uploaded GIF would keep missing while colder
//!   entries stay; for a small set of hot files, recency is the right signal.
//! - **Streaming fills, coalesced**: a miss starts one fill per key ([`crate::fill`]), run by
//!   a task of its own; the request that caused it and every request for the key meanwhile
//!   read along, getting the bytes as they arrive from the backend (time to first byte is the
//!   backend's own). A failure before the body goes to every waiter; one mid-body breaks every
//!   reader's response; neither is cached.
//! - **A fill budget**: bytes being read into the cache are taken from a budget
//!   (`--cache-fill-budget`) before they are allocated, twice the object's size (its buffer,
//!   and the chunks the requests reading along may still hold); when it is spent, a miss
//!   streams instead of filling, so concurrent fills cannot take memory beyond the settings.
//! - **Freshness** (RFC 5861): an entry is served for `--cache-ttl`; for
//!   `--cache-stale-while-revalidate` after that it is still served at once while **one**
//!   background conditional GetObject (`If-None-Match`) per key revalidates it: 304 keeps it,
//!   200 replaces it, 404 removes it. Later than that, the first request revalidates (the
//!   others wait for the same call). When revalidation fails for backend reasons, the failure
//!   is remembered: the stale copy is served at once for up to `--cache-stale-if-error` past
//!   its freshness, never longer, while at most one background retry per key is in flight.
//! - **The object's own policy** (RFC 9111): an object whose `Cache-Control` says `no-store`
//!   or `private` is never kept in memory (it streams, like an oversize one); `s-maxage`, else
//!   `max-age`, shorter than `--cache-ttl` shortens its freshness; `no-cache` makes every request
//!   revalidate it first (no stale-while-revalidate).
//! - **Negative cache**: a 404 is remembered for `--cache-negative-ttl` in a map of its own,
//!   bounded by entry count (`--cache-negative-max-entries`), so a scan of random paths cannot
//!   evict objects.
//!
//! Cached bodies are `Bytes`: a hit, a range of a hit and HEAD share the one buffer.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use tokio::sync::Semaphore;

use crate::compression::{Encoding, variant_etag};
use crate::error::StorageError;
use crate::fill::{Fill, FillBody, FillRefusal, Joined};
use crate::metrics::Metrics;
use crate::storage::{ObjectMeta, Storage};

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

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 20,
            max_object_bytes: 16 << 20,
            fill_budget: 64 << 20,
            ttl: Duration::from_secs(60),
            stale_while_revalidate: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            negative_max_entries: 10_000,
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
    /// Not kept: too large, or its `Cache-Control` forbids a shared cache. Stream it.
    Pass,
    /// A coded representation ([`crate::compression`]) of the object held under the key it
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
fn object_key<'a>(storage: &Storage, name: &'a str) -> &'a str {
    name.get(storage.bucket().len() + 1..).unwrap_or(name)
}

/// The cache key of `key`'s representation in `encoding`: a NUL cannot be in a request's key
/// ([`crate::key`] refuses control characters), so it never collides with an object's.
fn variant_key(key: &str, encoding: Encoding) -> String {
    format!("\0{}\0{key}", encoding.token())
}

#[derive(Clone, Debug)]
struct Entry {
    slot: Slot,
    /// When the backend last confirmed this entry.
    validated: Instant,
    /// Distinguishes successive versions of an entry, so revalidations coalesce per version.
    generation: u64,
    /// Set when a revalidation of this version failed: requests then get the stale copy at
    /// once instead of waiting for the failing backend again.
    failing: Arc<AtomicBool>,
    /// How long after `validated` it is fresh: `--cache-ttl`, or less if the object says so.
    ttl: Duration,
    /// Whether it may be served stale while a background request revalidates it (not when the
    /// object says `no-cache`).
    stale_while_revalidate: bool,
}

/// What the object's own `Cache-Control` allows a shared cache (RFC 9111 §5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// `no-store` or `private`: do not keep it.
    DoNotStore,
    /// Keep it, fresh for this long (`s-maxage`, else `max-age`, capped by `--cache-ttl`),
    /// and whether it may be served while revalidating (`no-cache` says no).
    Store {
        ttl: Duration,
        stale_while_revalidate: bool,
    },
}

impl Policy {
    fn of(cache_control: Option<&str>, ttl: Duration) -> Self {
        let (mut max_age, mut s_maxage, mut no_cache) = (None, None, false);
        for directive in cache_control.unwrap_or("").split(',') {
            let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
            let seconds = || {
                value
                    .trim()
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "no-store" | "private" => return Policy::DoNotStore,
                "no-cache" => no_cache = true,
                "max-age" => max_age = seconds(),
                "s-maxage" => s_maxage = seconds(),
                _ => {}
            }
        }
        let own = if no_cache {
            Some(Duration::ZERO)
        } else {
            s_maxage.or(max_age)
        };
        Policy::Store {
            ttl: own.map_or(ttl, |own| own.min(ttl)),
            stale_while_revalidate: !no_cache,
        }
    }
}

/// How the cache answered one request, for `X-Cache` and `Cache-Status` (RFC 9211).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// What happened.
    pub status: CacheStatus,
    /// Seconds of freshness left, negative when stale; `None` when the answer is not stored.
    pub ttl: Option<i64>,
}

impl Served {
    /// An answer that did not come from memory and is not kept there.
    pub fn streamed(status: CacheStatus) -> Self {
        Self { status, ttl: None }
    }

    /// The `Cache-Status` value (RFC 9211), the cache named `gateway`.
    pub fn cache_status(&self) -> String {
        let (what, detail) = match self.status {
            CacheStatus::Hit => ("hit", ""),
            CacheStatus::Updating => ("hit", "; detail=stale-while-revalidate"),
            CacheStatus::Stale => ("hit", "; detail=stale-if-error"),
            CacheStatus::Miss => ("fwd=uri-miss", ""),
            CacheStatus::Revalidated => ("fwd=stale", ""),
            CacheStatus::Bypass => ("fwd=bypass", ""),
        };
        let stored = if matches!(self.status, CacheStatus::Miss | CacheStatus::Revalidated) && self.ttl.is_some() {
            "; stored"
        } else {
            ""
        };
        let ttl = self.ttl.map(|t| format!("; ttl={t}")).unwrap_or_default();
        format!("gateway; {what}{stored}{ttl}{detail}")
    }
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
    /// Served from memory past its TTL while a background request revalidates it
    /// (stale-while-revalidate).
    Updating,
    /// Served from memory because revalidation failed (stale-if-error).
    Stale,
    /// Not cacheable here (cache off, object too large, range on a miss, fill budget spent):
    /// streamed.
    Bypass,
}

impl CacheStatus {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
        }
    }
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
enum FillError {
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

/// What a purge removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purge {
    /// One object key.
    Key(String),
    /// Every key that starts with this.
    Prefix(String),
    /// Everything.
    All,
}

/// The cache of one gateway.
pub struct ObjectCache {
    /// Entries last validated before this instant are stale whatever their TTL (set when change
    /// events may have been missed); `None` until then.
    /// Nanoseconds after `born`; 0 until then. An atomic, since every lookup reads it.
    stale_before: AtomicU64,
    /// When the cache was made: the origin of `stale_before`.
    born: Instant,
    entries: Cache<String, Entry>,
    /// Keys known to be missing, with when that was learnt.
    negative: Cache<String, ()>,
    revalidations: Cache<(String, u64), Entry>,
    /// Keys with a background revalidation running: at most one each.
    background: Mutex<HashSet<String>>,
    /// Fills in progress, one per key: concurrent misses read along the same one.
    fills: Mutex<HashMap<String, Arc<Fill>>>,
    /// Bytes that fills in progress may still take.
    fill_budget: Arc<Semaphore>,
    config: CacheConfig,
    metrics: Arc<Metrics>,
    generation: AtomicU64,
}

impl std::fmt::Debug for ObjectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCache").field("config", &self.config).finish()
    }
}

/// `ttl - age` in seconds, rounded, negative once stale (RFC 9211's `ttl`).
fn signed_secs(ttl: Duration, age: Duration) -> i64 {
    // Exact for any TTL a cache holds (f64 counts whole seconds exactly up to 2^53).
    (ttl.as_secs_f64() - age.as_secs_f64()).round() as i64
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
        // The compression series start at zero (this module is where codings are counted).
        for encoding in Encoding::ALL {
            metrics.compressed_responses.with_label_values(&[encoding.token()]);
            for outcome in ["compressed", "no_gain"] {
                metrics.compressions.with_label_values(&[encoding.token(), outcome]);
            }
        }
        let evictions = metrics.cache_evictions.clone();
        let entries = Cache::builder()
            .max_capacity(config.max_bytes)
            .weigher(|key: &String, entry: &Entry| {
                let body = match &entry.slot {
                    Slot::Object(o) | Slot::Variant { object: Some(o), .. } => o.body.len() as u64,
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
            stale_before: AtomicU64::new(0),
            born: Instant::now(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// A new entry, just validated; its freshness from the object's own policy.
    fn entry(&self, slot: Slot) -> Entry {
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
            let served = |status| Served {
                status,
                ttl: Some(signed_secs(entry.ttl, age)),
            };
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
                    if entry.stale_while_revalidate
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
                let served = Served {
                    status,
                    ttl: Some(signed_secs(ttl, Duration::ZERO)),
                };
                Ok(Lookup::Filling(meta, body, served))
            }
            Joined::Missing => Ok(Lookup::Missing(status)),
            Joined::Pass => Ok(Lookup::Bypass),
            Joined::Failed(e) => Err(e),
        }
    }

    /// The fill of `key` in progress, or a new one (`true`) that a task of its own runs, so
    /// that it completes whichever requests leave.
    fn fill_for(self: &Arc<Self>, storage: &Storage, key: &str) -> (Arc<Fill>, bool) {
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
        struct Filling<'a>(&'a ObjectCache, &'a str);
        impl Drop for Filling<'_> {
            fn drop(&mut self) {
                self.0.fills.lock().unwrap_or_else(|p| p.into_inner()).remove(self.1);
            }
        }
        let _filling = Filling(&self, &key);
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
            Ok(entry) => self.entries.insert(key.clone(), entry).await,
            Err(FillError::Missing) => self.negative.insert(key.clone(), ()).await,
            Err(_) => {}
        }
    }

    /// Reads `obj` into memory through `fill`, whose readers get the bytes as they arrive, if
    /// it is small enough and cacheable and the fill budget allows.
    async fn read_into(&self, fill: &Fill, obj: crate::storage::Object) -> Result<Entry, FillError> {
        let len = obj.meta.content_length.unwrap_or(u64::MAX);
        let policy = Policy::of(obj.meta.cache_control.as_deref(), self.config.ttl);
        if len > self.config.max_object_bytes || policy == Policy::DoNotStore {
            // Dropping the body closes that backend connection; the requests stream instead,
            // and the pass marker spares the next requests this wasted start.
            fill.refuse(FillRefusal::Pass);
            return Ok(self.entry(Slot::Pass));
        }
        // Take the bytes from the budget before allocating them, twice: the buffer, returned
        // when the fill ends (it then belongs to the cache, bounded by --cache-max-bytes), and
        // what the readers' queues may hold, returned when the last reader is done.
        let permits = u32::try_from(len.saturating_mul(2)).unwrap_or(u32::MAX);
        let Ok(mut permit) = self.fill_budget.clone().try_acquire_many_owned(permits) else {
            self.metrics.cache_fills_bypassed.inc();
            fill.refuse(FillRefusal::Pass);
            return Err(FillError::NoBudget);
        };
        let readers = permit.split(usize::try_from(permits / 2).unwrap_or(0));
        fill.stream(obj.meta.clone(), usize::try_from(len).unwrap_or(0), readers);
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
            Ok(body) => Ok(self.entry(Slot::Object(Arc::new(CachedObject { meta: obj.meta, body })))),
            Err(e) => Err(FillError::Storage(e)),
        }
    }

    /// One conditional GetObject for `obj` (the current version of `entry`): the entry that
    /// replaces it, or why not, with the failure already applied to the cache.
    async fn refresh(
        &self,
        storage: &Storage,
        key: &str,
        entry: &Entry,
        obj: &Arc<CachedObject>,
    ) -> Result<Entry, FillError> {
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
                self.entries.insert(key.to_string(), fresh.clone()).await;
                Ok(fresh)
            }
            Err(e) => {
                self.refresh_failed(key, entry, &e).await;
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
    fn revalidating(&self, key: &str) -> bool {
        self.background.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// Starts one background revalidation of `key`, unless one is running.
    fn revalidate_in_background(
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
            .try_get_with(
                (key.to_string(), entry.generation),
                self.refresh(storage, key, entry, obj),
            )
            .await;
        match result {
            Ok(fresh) => Ok(match fresh.slot {
                Slot::Object(o) => Lookup::Object(
                    o,
                    Served {
                        status: CacheStatus::Revalidated,
                        ttl: Some(signed_secs(fresh.ttl, fresh.validated.elapsed())),
                    },
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
                        let served = Served {
                            status: CacheStatus::Stale,
                            ttl: Some(signed_secs(entry.ttl, age)),
                        };
                        Ok(Lookup::Object(obj.clone(), served))
                    } else {
                        Err(e.clone())
                    }
                }
            },
        }
    }

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

    /// Removes what `scope` names from memory (objects, their codings, remembered 404s), so
    /// that the next request asks the backend; returns how many entries went. Fills in
    /// progress when the purge happens serve their readers but are not kept. Keys and
    /// prefixes are cache names ([`cache_name`]: `bucket/key`).
    pub async fn purge(&self, scope: &Purge) -> u64 {
        for (key, fill) in self.fills.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let hit = match scope {
                Purge::Key(k) => k == key,
                Purge::Prefix(p) => key.starts_with(p.as_str()),
                Purge::All => true,
            };
            if hit {
                fill.discard();
            }
        }
        let names = |key: &str| {
            std::iter::once(key.to_string())
                .chain(Encoding::ALL.into_iter().map(|e| variant_key(key, e)))
                .collect::<Vec<_>>()
        };
        let mut gone = 0;
        match scope {
            Purge::Key(key) => {
                for name in names(key) {
                    gone += u64::from(self.entries.remove(&name).await.is_some());
                }
                gone += u64::from(self.negative.remove(key).await.is_some());
            }
            Purge::Prefix(prefix) => {
                // The object key of an entry: a coding's entry names its object after the
                // second NUL.
                let object_key = |name: &str| -> String {
                    match name.strip_prefix('\0') {
                        Some(rest) => rest.split_once('\0').map_or(rest, |(_, k)| k).to_string(),
                        None => name.to_string(),
                    }
                };
                let doomed: Vec<String> = self
                    .entries
                    .iter()
                    .map(|(name, _)| name.to_string())
                    .filter(|name| object_key(name).starts_with(prefix.as_str()))
                    .collect();
                for name in doomed {
                    gone += u64::from(self.entries.remove(&name).await.is_some());
                }
                let doomed: Vec<String> = self
                    .negative
                    .iter()
                    .map(|(key, _)| key.to_string())
                    .filter(|key| key.starts_with(prefix.as_str()))
                    .collect();
                for key in doomed {
                    gone += u64::from(self.negative.remove(&key).await.is_some());
                }
            }
            Purge::All => {
                self.entries.run_pending_tasks().await;
                self.negative.run_pending_tasks().await;
                gone = self.entries.entry_count() + self.negative.entry_count();
                self.entries.invalidate_all();
                self.negative.invalidate_all();
                self.entries.run_pending_tasks().await;
                self.negative.run_pending_tasks().await;
            }
        }
        gone
    }

    /// Makes every entry held now stale: the next request for each revalidates it with the
    /// backend (a conditional GET, served stale meanwhile within the stale-while-revalidate
    /// window). For when changes may have gone unseen, e.g. while the change subscription was
    /// down.
    pub fn mark_all_stale(&self) {
        let now = u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stale_before.store(now.max(1), Ordering::Release);
    }

    /// Whether `entry` was validated before the last [`ObjectCache::mark_all_stale`].
    fn marked_stale(&self, entry: &Entry) -> bool {
        let at = self.stale_before.load(Ordering::Acquire);
        at != 0 && entry.validated < self.born + std::time::Duration::from_nanos(at)
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
            .set(i64::try_from(crate::zerocopy::regions()).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn the_objects_own_policy() {
        let store = |secs, swr| Policy::Store {
            ttl: Duration::from_secs(secs),
            stale_while_revalidate: swr,
        };
        assert_eq!(Policy::of(None, TTL), store(60, true));
        assert_eq!(Policy::of(Some("public, max-age=300"), TTL), store(60, true));
        assert_eq!(Policy::of(Some("public, max-age=10"), TTL), store(10, true));
        assert_eq!(Policy::of(Some("max-age=300, s-maxage=5"), TTL), store(5, true));
        assert_eq!(Policy::of(Some("no-cache"), TTL), store(0, false));
        assert_eq!(Policy::of(Some("No-Store"), TTL), Policy::DoNotStore);
        assert_eq!(Policy::of(Some("private, max-age=600"), TTL), Policy::DoNotStore);
        assert_eq!(Policy::of(Some("max-age=junk"), TTL), store(60, true));
    }

    #[test]
    fn cache_status_values() {
        let s = |status, ttl| Served { status, ttl }.cache_status();
        assert_eq!(s(CacheStatus::Hit, Some(42)), "gateway; hit; ttl=42");
        assert_eq!(s(CacheStatus::Miss, Some(60)), "gateway; fwd=uri-miss; stored; ttl=60");
        assert_eq!(s(CacheStatus::Miss, None), "gateway; fwd=uri-miss");
        assert_eq!(
            s(CacheStatus::Revalidated, Some(60)),
            "gateway; fwd=stale; stored; ttl=60"
        );
        assert_eq!(
            s(CacheStatus::Stale, Some(-5)),
            "gateway; hit; ttl=-5; detail=stale-if-error"
        );
        assert_eq!(s(CacheStatus::Bypass, None), "gateway; fwd=bypass");
        assert_eq!(signed_secs(TTL, Duration::from_secs(70)), -10);
    }
}
