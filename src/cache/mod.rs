//! Objects kept close: the in-memory object cache and what keeps it true. A few hot files served to many browsers without touching MinIO,
//! and kept served while MinIO is slow or down.
//!
//! - Bounded in **bytes** (moka weigher); objects over `--cache-max-object-bytes` stream
//!   through uncached and are remembered as such, so they cost no wasted fetch next time.
//! - **LRU**, chosen on purpose: moka's default TinyLFU admission refuses a new entry until it
//!   has been seen often enough, so a freshly uploaded GIF would keep missing while colder
//!   entries stay; for a small set of hot files, recency is the right signal.
//! - **Streaming fills, coalesced**: a miss starts one fill per key ([`crate::cache::fill`]), run by
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
//!
//! # Files
//! - [`store`]: the cache, its entries and the lookup; [`policy`] and [`status`]: RFC 9111 and
//!   RFC 9211; [`miss`] with [`fill`]: streaming fills; [`revalidate`]; [`variants`]:
//!   compressed representations; [`purge`]; [`zerocopy`]: entries in sealed memory files, sent
//!   with sendfile; [`events`]: the bucket's change events, which drop changed objects;
//!   [`disk`]: the disk tier, for objects too large for memory, in slices.
//!
//! Imports the foundation, `http` and `backend`, nothing above.

pub mod disk;
pub mod events;
pub mod fill;
mod miss;
pub mod policy;
pub mod purge;
mod revalidate;
pub mod status;
pub mod store;
mod variants;
pub mod zerocopy;

pub use purge::Purge;
pub use status::{CacheStatus, Served};
pub use store::{CacheConfig, CachedObject, Lookup, ObjectCache, cache_name};
