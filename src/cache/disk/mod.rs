//! The disk tier: objects too large for memory (`--cache-max-object-bytes`) kept on local disk
//! in slices, so that videos, downloads and large images stop costing the bucket the whole
//! object on every request.
//!
//! - **Slices.** An object version (its cache name and ETag) is kept as files of
//!   `--disk-cache-slice-bytes` in a directory of its own. Each slice is fetched with a ranged
//!   GetObject pinned to the ETag (`If-Match`), written to a temporary file and renamed, with
//!   its CRC-32 in its name, only once complete and of the right length: a crash leaves no
//!   slice that looks complete, and a damaged one fails its check on first use and is fetched
//!   again.
//! - **Only what is asked.** A `Range` fetches the slices it covers; a whole GET reads the
//!   slices in order, fetching the next one while it sends the current one. Concurrent
//!   requests for a slice share its fetch and read the file as it grows ([`slice`]), so the
//!   first bytes go out as soon as they arrive.
//! - **Hits with `sendfile`.** A complete slice is mapped read-only and registered with
//!   [`crate::cache::zerocopy`], whose connection type sends it from the file without copying.
//! - **Bounded.** `--disk-cache-max-bytes`, least recently used slices first ([`index`]); the
//!   index costs tens of bytes per slice. Bytes in flight are one read buffer per request.
//! - **Kept across restarts.** The directory is read back at start-up (each version's
//!   `meta.json`, its slices' names); what was read back is revalidated against the bucket on
//!   first use.
//! - **Never a failed request for the disk's sake.** A full disk, a read-only directory or an
//!   I/O error make the rest of the response stream from the bucket, counted in
//!   `gateway_disk_cache_errors_total` and logged; new slices are not written for a while.
//!
//! The directory is the gateway's own (an `emptyDir` or a volume of its own): files in it are
//! written only by the gateway, and changed by nothing else while it runs.

mod body;
mod index;
mod slice;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use sha2::Digest;

use crate::backend::storage::Storage;
use crate::body::Body;
use crate::cache::policy::{Policy, signed_secs};
use crate::cache::status::{CacheStatus, Served};
use crate::cache::store::{CacheConfig, cache_name};
use crate::error::StorageError;
use crate::meta::{ObjectMeta, StoredHeaders};
use crate::metrics::Metrics;

use index::{Index, SliceId};
use slice::{Progress, SliceFetch};

/// The disk tier's settings, validated.
#[derive(Clone, Debug)]
pub struct DiskConfig {
    /// Where the slices live (created if missing).
    pub dir: PathBuf,
    /// Bytes of slices kept at most.
    pub max_bytes: u64,
    /// Bytes per slice.
    pub slice_bytes: u64,
}

/// After an I/O error, no new slice is written for this long (the bucket serves meanwhile).
const BACKOFF_AFTER_ERROR: Duration = Duration::from_secs(10);

/// One version of an object held by the tier.
#[derive(Debug)]
pub struct Version {
    /// Its metadata, as the bucket last confirmed it.
    pub meta: Arc<ObjectMeta>,
    /// Its ETag.
    etag: String,
    /// Its length.
    pub len: u64,
    /// Its directory, under the tier's.
    dir: Arc<str>,
    /// When the bucket last confirmed it: milliseconds after the tier's start, or 0 when read
    /// back from disk (not confirmed yet).
    validated: AtomicU64,
}

/// How fresh a version is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freshness {
    /// Within its TTL: serve without asking the bucket (seconds left).
    Fresh(i64),
    /// Past it, or never confirmed by this process: ask the bucket first (seconds left,
    /// negative).
    Stale(i64),
}

/// What the disk tier does for a request.
#[derive(Debug)]
pub enum DiskLookup {
    /// Serve this version from the tier.
    Serve(Arc<Version>, Served),
    /// Not the tier's (small enough for memory, `no-store`, no ETag): stream it.
    Decline,
}

/// The disk tier.
pub struct DiskTier {
    config: DiskConfig,
    metrics: Arc<Metrics>,
    index: Mutex<Index>,
    /// Slices being fetched, each shared by every request that needs it meanwhile.
    fetches: Mutex<HashMap<SliceId, Arc<SliceFetch>>>,
    born: Instant,
    /// Milliseconds after `born` until which no slice is written (after an I/O error).
    quiet_until: AtomicU64,
    /// Versions confirmed before this (milliseconds after `born`) are stale (events missed).
    stale_before: AtomicU64,
    /// Names the bucket said are not for the tier (small, `no-store`), so they cost no HEAD
    /// each time; for the memory cache's TTL.
    declined: moka::future::Cache<String, ()>,
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The version's directory name: digests of its cache name and of its ETag.
fn version_dir(name: &str, etag: &str) -> String {
    let digest = |s: &str| hex::encode(&sha2::Sha256::digest(s.as_bytes())[..12]);
    format!("{}-{}", digest(name), digest(etag))
}

impl DiskTier {
    /// Opens the tier in `config.dir`, reading back what an earlier run left there. A
    /// directory that cannot be made or read leaves the tier empty: every request then streams
    /// from the bucket, and the error is logged and counted.
    pub fn open(config: DiskConfig, ttl: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        let declined = moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(ttl)
            .build();
        let tier = Arc::new(Self {
            declined,
            config,
            metrics,
            index: Mutex::new(Index::default()),
            fetches: Mutex::new(HashMap::new()),
            born: Instant::now(),
            quiet_until: AtomicU64::new(0),
            stale_before: AtomicU64::new(0),
        });
        match tier.read_back() {
            Ok((versions, slices)) => tracing::info!(
                dir = %tier.config.dir.display(),
                versions,
                slices,
                bytes = tier.index().bytes,
                max_bytes = tier.config.max_bytes,
                "disk cache ready"
            ),
            Err(e) => tier.io_error("open", &tier.config.dir, &e),
        }
        tier.export_gauges();
        tier
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The version held for `name`, if any.
    pub fn version(&self, name: &str) -> Option<Arc<Version>> {
        self.index().objects.get(name).cloned()
    }

    /// Looks up object `key` of `storage` for a request: a fresh version is served at once; a
    /// stale, unknown or `force`d one is confirmed with a HEAD first (a changed ETag replaces
    /// the version). While the bucket fails, a version whose slices are all held is served
    /// stale within `--cache-stale-if-error`.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] when the object is gone (its version is dropped), and the
    /// bucket's error when nothing can be served without it.
    pub async fn lookup(
        &self,
        storage: &Storage,
        key: &str,
        force: bool,
        config: &CacheConfig,
    ) -> Result<DiskLookup, StorageError> {
        let name = cache_name(storage, key);
        let held = self.version(&name);
        let ttl_of = |meta: &ObjectMeta| match Policy::of(meta.cache_control.as_deref(), config.ttl) {
            Policy::Store { ttl, .. } => Some(ttl),
            Policy::DoNotStore => None,
        };
        let served = |status, ttl| Served {
            status,
            ttl: Some(ttl),
            disk: true,
        };
        if let Some(v) = &held
            && !force
            && let Some(ttl) = ttl_of(&v.meta)
            && let Freshness::Fresh(left) = self.freshness(v, ttl)
        {
            return Ok(DiskLookup::Serve(v.clone(), served(CacheStatus::Hit, left)));
        }
        if held.is_none() && self.declined.contains_key(&name) {
            return Ok(DiskLookup::Decline);
        }
        match storage.head(key).await {
            Ok(meta) => {
                let large = meta.content_length.is_some_and(|n| n > config.max_object_bytes);
                let ttl = ttl_of(&meta).filter(|_| large);
                let version = ttl.and_then(|_| self.admit(&name, meta));
                match (version, ttl) {
                    (Some(v), Some(ttl)) => {
                        let status = if held.as_ref().is_some_and(|h| Arc::ptr_eq(h, &v)) {
                            CacheStatus::Revalidated
                        } else {
                            CacheStatus::Miss
                        };
                        Ok(DiskLookup::Serve(v, served(status, signed_secs(ttl, Duration::ZERO))))
                    }
                    _ => {
                        self.purge(|n| n == name);
                        self.declined.insert(name, ()).await;
                        Ok(DiskLookup::Decline)
                    }
                }
            }
            Err(StorageError::NotFound) => {
                self.purge(|n| n == name);
                Err(StorageError::NotFound)
            }
            Err(e) => {
                if let Some(v) = held
                    && let Some(ttl) = ttl_of(&v.meta)
                    && let Freshness::Stale(left) = self.freshness(&v, ttl)
                    && v.validated.load(Ordering::Acquire) != 0
                    && left.unsigned_abs() < config.stale_if_error.as_secs()
                    && self.holds(&v, 0, v.len - 1)
                {
                    tracing::info!(key = %key.escape_debug(), error = %e, "backend failed: serving the disk copy stale");
                    self.metrics.cache_stale_served.inc();
                    return Ok(DiskLookup::Serve(v, served(CacheStatus::Stale, left)));
                }
                Err(e)
            }
        }
    }

    /// How fresh `version` is for `ttl`.
    fn freshness(&self, version: &Version, ttl: Duration) -> Freshness {
        let validated = version.validated.load(Ordering::Acquire);
        if validated == 0 || validated < self.stale_before.load(Ordering::Acquire) {
            return Freshness::Stale(0);
        }
        let age = Duration::from_millis(self.now_ms().saturating_sub(validated));
        let left = signed_secs(ttl, age);
        if age < ttl {
            Freshness::Fresh(left)
        } else {
            Freshness::Stale(left)
        }
    }

    /// Takes `meta`, just read from the bucket, for `name`: the version it describes, already
    /// held (now confirmed) or new (an older one's slices are dropped). `None` when the object
    /// is not for this tier (no length, no ETag, or empty).
    pub fn admit(&self, name: &str, meta: ObjectMeta) -> Option<Arc<Version>> {
        let len = meta.content_length.filter(|&n| n > 0)?;
        let etag = meta.etag.clone()?;
        let now = self.now_ms();
        let mut index = self.index();
        if let Some(v) = index.objects.get(name)
            && v.etag == etag
            && v.len == len
        {
            v.validated.store(now, Ordering::Release);
            return Some(v.clone());
        }
        let dir: Arc<str> = Arc::from(version_dir(name, &etag));
        let version = Arc::new(Version {
            meta: Arc::new(meta),
            etag,
            len,
            dir: dir.clone(),
            validated: AtomicU64::new(now),
        });
        if let Some(old) = index.objects.insert(name.to_string(), version.clone()) {
            self.drop_version(&mut index, &old);
        }
        drop(index);
        if let Err(e) = self.write_meta(name, &version) {
            self.io_error("write", &self.config.dir.join(&*dir), &e);
        }
        self.export_gauges();
        Some(version)
    }

    /// Forgets `old` and removes its directory.
    fn drop_version(&self, index: &mut Index, old: &Version) {
        index.remove_version(&old.dir);
        let path = self.config.dir.join(&*old.dir);
        // Open slices keep their bytes until their readers are done (unlinked files).
        if let Err(e) = std::fs::remove_dir_all(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            self.io_error("remove", &path, &e);
        }
    }

    /// Drops what `matches` selects by cache name; returns how many versions went.
    pub fn purge(&self, matches: impl Fn(&str) -> bool) -> u64 {
        let mut index = self.index();
        let doomed: Vec<String> = index.objects.keys().filter(|n| matches(n)).cloned().collect();
        for name in &doomed {
            if let Some(old) = index.objects.remove(name) {
                self.drop_version(&mut index, &old);
            }
        }
        drop(index);
        self.export_gauges();
        doomed.len() as u64
    }

    /// Drops `version` if it still is its object's current one.
    fn forget(&self, version: &Version) {
        let mut index = self.index();
        let name = index
            .objects
            .iter()
            .find(|(_, v)| v.dir == version.dir)
            .map(|(name, _)| name.clone());
        if let Some(old) = name.and_then(|name| index.objects.remove(&name)) {
            self.drop_version(&mut index, &old);
        }
        drop(index);
        self.export_gauges();
    }

    /// Every version must be confirmed by the bucket before it is served again.
    pub fn mark_all_stale(&self) {
        self.stale_before.store(self.now_ms() + 1, Ordering::Release);
    }

    /// The bytes `start..=end` of `version` (object `key` of `storage`), from its slices,
    /// fetching those that are missing.
    pub fn body(self: &Arc<Self>, storage: &Storage, key: &str, version: Arc<Version>, start: u64, end: u64) -> Body {
        body::spawn(self.clone(), storage.clone(), key.to_string(), version, start, end)
    }

    /// Whether every slice that `start..=end` of `version` needs is held (a stale copy can be
    /// served without the bucket).
    pub fn holds(&self, version: &Version, start: u64, end: u64) -> bool {
        let index = self.index();
        let s = self.config.slice_bytes;
        (start / s..=end / s).all(|n| index.has(&(version.dir.clone(), n as u32)))
    }

    /// The number of slices of `version` and the bounds of slice `n` (inclusive).
    fn bounds(&self, version: &Version, n: u32) -> (u64, u64) {
        let start = u64::from(n) * self.config.slice_bytes;
        (start, (start + self.config.slice_bytes).min(version.len) - 1)
    }

    /// The file of slice `n`, whose checksum is `crc`, in the version directory `dir`.
    fn slice_path(&self, dir: &str, n: u32, crc: u32) -> PathBuf {
        self.config.dir.join(dir).join(format!("{n}-{crc:08x}.slice"))
    }

    /// Slice `n` of `version`: a complete file (mapped), or the fetch that is writing it (begun
    /// here if none is). `None` when the tier cannot hold it now (I/O trouble): the caller
    /// streams from the bucket.
    async fn slice(
        self: &Arc<Self>,
        storage: &Storage,
        key: &str,
        version: &Arc<Version>,
        n: u32,
    ) -> Option<SliceData> {
        let id: SliceId = (version.dir.clone(), n);
        loop {
            let held = self.index().touch(&id);
            if let Some(held) = held {
                match self.map_slice(version, n, &held).await {
                    Ok(bytes) => {
                        self.metrics.disk_cache_slices.with_label_values(&["hit"]).inc();
                        return Some(SliceData::Mapped(bytes));
                    }
                    Err(e) => {
                        // Gone, damaged or unreadable: forget it and fetch it again.
                        self.io_error("read", &self.slice_path(&version.dir, n, held.crc), &e);
                        self.index().remove(&id);
                        self.export_gauges();
                        continue;
                    }
                }
            }
            return self.fetch(storage, key, version, n).map(SliceData::Growing);
        }
    }

    /// Waits until the byte at `start` of `version` can be sent: its slice is on disk, or the
    /// fetch writing it (begun here, and joined by the body) has its first bytes. A bucket that
    /// fails or refuses before that is the caller's error, answered with its status (502, 503,
    /// 504) and its cause in the log, instead of a response head followed by a broken body.
    /// An object replaced meanwhile is left to the body, which drops the version.
    ///
    /// # Errors
    /// The bucket's failure for that slice.
    pub async fn first_bytes(
        self: &Arc<Self>,
        storage: &Storage,
        key: &str,
        version: &Arc<Version>,
        start: u64,
    ) -> Result<(), StorageError> {
        let n = u32::try_from(start / self.config.slice_bytes).unwrap_or(u32::MAX);
        // A held slice is mapped (and counted as a hit) by the body, once.
        if self.index().has(&(version.dir.clone(), n)) {
            return Ok(());
        }
        let Some(SliceData::Growing(fetch)) = self.slice(storage, key, version, n).await else {
            return Ok(());
        };
        let mut progress = fetch.subscribe();
        loop {
            let failed = match &*progress.borrow_and_update() {
                Progress::Writing(0) => None,
                Progress::Failed(slice::Failure::Backend(e)) if !matches!(e, StorageError::PreconditionFailed) => {
                    Some(e.clone())
                }
                _ => return Ok(()),
            };
            if let Some(e) = failed {
                return Err(e);
            }
            if progress.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    /// Starts fetching slice `n` of `version` unless it is held or being fetched (read-ahead).
    fn prefetch(self: &Arc<Self>, storage: &Storage, key: &str, version: &Arc<Version>, n: u32) {
        let id: SliceId = (version.dir.clone(), n);
        if !self.index().has(&id) {
            let _ = self.fetch(storage, key, version, n);
        }
    }

    /// The fetch of slice `n`: the one running, or a new one. `None` while writes back off.
    fn fetch(
        self: &Arc<Self>,
        storage: &Storage,
        key: &str,
        version: &Arc<Version>,
        n: u32,
    ) -> Option<Arc<SliceFetch>> {
        let id: SliceId = (version.dir.clone(), n);
        let mut fetches = self.fetches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = fetches.get(&id) {
            return Some(f.clone());
        }
        if self.now_ms() < self.quiet_until.load(Ordering::Acquire) {
            return None;
        }
        let dir = self.config.dir.join(&*version.dir);
        let tmp = dir.join(format!("{n}.{}.tmp", rand::random::<u32>()));
        let file = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)
        });
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                drop(fetches);
                self.io_error("write", &tmp, &e);
                return None;
            }
        };
        let fetch = Arc::new(SliceFetch::new(file));
        fetches.insert(id.clone(), fetch.clone());
        drop(fetches);
        self.metrics.disk_cache_slices.with_label_values(&["fetched"]).inc();
        let (tier, storage, key, version) = (self.clone(), storage.clone(), key.to_string(), version.clone());
        let task_fetch = fetch.clone();
        tokio::spawn(async move {
            let outcome = tier.run_fetch(&storage, &key, &version, n, &task_fetch, &tmp).await;
            match outcome {
                Ok((len, crc)) => {
                    let done = tier.slice_path(&version.dir, n, crc);
                    match std::fs::rename(&tmp, &done) {
                        Ok(()) => {
                            if !tier.keep(id.clone(), len, crc) {
                                // Purged or replaced meanwhile: not this tier's any more.
                                let _ = std::fs::remove_file(&done);
                            }
                        }
                        // Purged meanwhile, its directory with it.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => tier.io_error("write", &done, &e),
                    }
                    task_fetch.finish(Progress::Done(len));
                }
                Err(failure) => {
                    let _ = std::fs::remove_file(&tmp);
                    if matches!(failure, slice::Failure::Backend(StorageError::PreconditionFailed)) {
                        // The object changed since its HEAD: this version is no more, and the
                        // next request asks the bucket which one is.
                        tracing::info!(key = %key.escape_debug(), "object changed under the disk cache: dropping its version");
                        tier.forget(&version);
                    }
                    task_fetch.finish(Progress::Failed(failure));
                }
            }
            tier.fetches.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        });
        Some(fetch)
    }

    /// Fetches slice `n` into `fetch`'s file; its length and CRC-32 when complete.
    async fn run_fetch(
        &self,
        storage: &Storage,
        key: &str,
        version: &Version,
        n: u32,
        fetch: &SliceFetch,
        tmp: &Path,
    ) -> Result<(u64, u32), slice::Failure> {
        let (start, end) = self.bounds(version, n);
        let obj = storage
            .get_range(key, Some(format!("bytes={start}-{end}")), Some(&version.etag))
            .await
            .map_err(slice::Failure::Backend)?;
        let want = format!("bytes {start}-{end}/{}", version.len);
        if obj.content_range.as_deref() != Some(want.as_str()) {
            return Err(slice::Failure::Backend(crate::error::StorageError::BadResponse(
                format!(
                    "asked for {want}, the backend answered Content-Range {:?}",
                    obj.content_range
                ),
            )));
        }
        let result = fetch.write_from(obj.body, end - start + 1).await;
        if let Err(slice::Failure::Disk(e)) = &result {
            self.io_error("write", tmp, e);
        }
        result
    }

    /// Records a complete slice and evicts what no longer fits; false when its version was
    /// dropped meanwhile (purged, replaced).
    fn keep(&self, id: SliceId, len: u64, crc: u32) -> bool {
        let mut index = self.index();
        if !index.objects.values().any(|v| v.dir == id.0) {
            return false;
        }
        let gone = index.evict_for(len, self.config.max_bytes);
        index.insert(id, len, crc, true);
        drop(index);
        for ((dir, n), slice) in gone {
            self.metrics.disk_cache_slices.with_label_values(&["evicted"]).inc();
            let path = self.slice_path(&dir, n, slice.crc);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                self.io_error("remove", &path, &e);
            }
        }
        self.export_gauges();
        true
    }

    /// Maps complete slice `n`, checking its bytes first when they were read back from disk.
    async fn map_slice(&self, version: &Version, n: u32, held: &index::Slice) -> std::io::Result<bytes::Bytes> {
        let path = self.slice_path(&version.dir, n, held.crc);
        let (start, end) = self.bounds(version, n);
        let want = end - start + 1;
        let check = !held.verified;
        let crc = held.crc;
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<bytes::Bytes> {
            let file = std::fs::File::open(&path)?;
            if file.metadata()?.len() != want {
                return Err(std::io::Error::other(format!(
                    "{} bytes, not {want}",
                    file.metadata()?.len()
                )));
            }
            if check {
                let mut hasher = crc32fast::Hasher::new();
                let mut reader = std::io::BufReader::with_capacity(256 << 10, &file);
                std::io::copy(&mut reader, &mut HashWriter(&mut hasher))?;
                if hasher.finalize() != crc {
                    return Err(std::io::Error::other("its bytes do not match its checksum"));
                }
            }
            crate::cache::zerocopy::map_file(file)
        })
        .await
        .map_err(std::io::Error::other)??;
        if check {
            self.index().verified(&(version.dir.clone(), n));
        }
        Ok(bytes)
    }

    /// Counts and logs an I/O error, and stops writing new slices for a while.
    fn io_error(&self, op: &'static str, path: &Path, e: &std::io::Error) {
        self.metrics.disk_cache_errors.with_label_values(&[op]).inc();
        tracing::warn!(op, path = %path.display(), error = %e, "disk cache I/O error: streaming from the bucket instead");
        if op == "write" {
            let until = self.now_ms() + u64::try_from(BACKOFF_AFTER_ERROR.as_millis()).unwrap_or(u64::MAX);
            self.quiet_until.store(until, Ordering::Release);
        }
    }

    /// Updates the tier's gauges.
    pub fn export_gauges(&self) {
        let index = self.index();
        self.metrics
            .disk_cache_bytes
            .set(i64::try_from(index.bytes).unwrap_or(i64::MAX));
        self.metrics
            .disk_cache_slices_held
            .set(i64::try_from(index.slice_count()).unwrap_or(i64::MAX));
        self.metrics
            .disk_cache_objects
            .set(i64::try_from(index.objects.len()).unwrap_or(i64::MAX));
    }

    /// Writes `meta.json` of `version` (read back after a restart).
    fn write_meta(&self, name: &str, version: &Version) -> std::io::Result<()> {
        let dir = self.config.dir.join(&*version.dir);
        std::fs::create_dir_all(&dir)?;
        let m = &version.meta;
        let stored = &m.stored;
        let json = serde_json::json!({
            "name": name,
            "etag": version.etag,
            "length": version.len,
            "slice_bytes": self.config.slice_bytes,
            "content_type": m.content_type,
            "last_modified": m.last_modified.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
            "cache_control": m.cache_control,
            "content_encoding": stored.content_encoding,
            "content_disposition": stored.content_disposition,
            "content_language": stored.content_language,
            "expires": stored.expires,
        });
        let tmp = dir.join("meta.json.tmp");
        std::fs::write(&tmp, json.to_string())?;
        std::fs::rename(&tmp, dir.join("meta.json"))
    }

    /// Reads back the directory: versions with their `meta.json` and complete slices of the
    /// right length; temporary files and anything unreadable are removed. Returns the numbers
    /// of versions and slices kept.
    fn read_back(&self) -> std::io::Result<(usize, usize)> {
        std::fs::create_dir_all(&self.config.dir)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.config.dir)? {
            let entry = entry?;
            let path = entry.path();
            match self.read_version(&path) {
                Some(v) => found.push(v),
                None => {
                    tracing::info!(path = %path.display(), "disk cache: removing what it cannot read back");
                    let _ = if path.is_dir() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                }
            }
        }
        // Oldest slices first, so the most recent are the last evicted.
        let mut slices: Vec<(SystemTime, SliceId, u64, u32)> =
            found.iter().flat_map(|(_, _, s)| s.iter().cloned()).collect();
        slices.sort_by_key(|s| s.0);
        let mut index = self.index();
        let versions = found.len();
        for (name, version, _) in found {
            index.objects.insert(name, version);
        }
        for (_, id, len, crc) in slices {
            index.insert(id, len, crc, false);
        }
        let gone = index.evict_for(0, self.config.max_bytes);
        let kept = index.slice_count();
        drop(index);
        for ((dir, n), slice) in gone {
            let _ = std::fs::remove_file(self.slice_path(&dir, n, slice.crc));
        }
        Ok((versions, kept))
    }

    /// One version directory read back: its name, version and complete slices.
    #[allow(clippy::type_complexity)]
    fn read_version(&self, path: &Path) -> Option<(String, Arc<Version>, Vec<(SystemTime, SliceId, u64, u32)>)> {
        let text = std::fs::read_to_string(path.join("meta.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
        let name = s("name")?;
        let etag = s("etag")?;
        let len = v.get("length")?.as_u64().filter(|&n| n > 0)?;
        // Slices of another size are not this run's slices.
        if v.get("slice_bytes")?.as_u64()? != self.config.slice_bytes {
            return None;
        }
        let dir_name = version_dir(&name, &etag);
        if path.file_name()?.to_str()? != dir_name {
            return None;
        }
        let meta = ObjectMeta {
            content_length: Some(len),
            content_type: s("content_type"),
            etag: Some(etag.clone()),
            last_modified: v
                .get("last_modified")
                .and_then(serde_json::Value::as_u64)
                .map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            cache_control: s("cache_control"),
            stored: StoredHeaders {
                content_encoding: s("content_encoding"),
                content_disposition: s("content_disposition"),
                content_language: s("content_language"),
                expires: s("expires"),
            },
            metadata: Vec::new(),
        };
        let dir: Arc<str> = Arc::from(dir_name);
        let version = Arc::new(Version {
            meta: Arc::new(meta),
            etag,
            len,
            dir: dir.clone(),
            validated: AtomicU64::new(0),
        });
        let mut slices = Vec::new();
        for entry in std::fs::read_dir(path).ok()? {
            let Ok(entry) = entry else { continue };
            let file = entry.path();
            let parsed = file.file_name().and_then(|f| f.to_str()).and_then(slice_of_name);
            let keep = parsed.and_then(|(n, crc)| {
                let (start, end) = self.bounds(&version, n);
                let meta = entry.metadata().ok()?;
                (start < len && meta.len() == end - start + 1).then(|| {
                    (
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        (dir.clone(), n),
                        meta.len(),
                        crc,
                    )
                })
            });
            match keep {
                Some(slice) => slices.push(slice),
                // Temporary files of an interrupted fetch, and anything else.
                None if file.file_name().is_some_and(|f| f != "meta.json") => {
                    let _ = std::fs::remove_file(&file);
                }
                None => {}
            }
        }
        Some((name, version, slices))
    }
}

/// A slice as a request reads it.
enum SliceData {
    /// Complete: its bytes, mapped from the file.
    Mapped(bytes::Bytes),
    /// Being written.
    Growing(Arc<SliceFetch>),
}

/// Feeds what is written to a CRC-32.
struct HashWriter<'a>(&'a mut crc32fast::Hasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The slice number and checksum in a slice file's name (the reverse of
/// [`DiskTier::slice_path`]), or `None` for any other file.
fn slice_of_name(name: &str) -> Option<(u32, u32)> {
    let (n, crc) = name.strip_suffix(".slice")?.split_once('-')?;
    Some((n.parse().ok()?, u32::from_str_radix(crc, 16).ok()?))
}
