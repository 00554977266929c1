//! The state shared by every request of one running gateway.
//!
//! Built once from a validated [`ServeConfig`]; handlers get it behind an `Arc`.

use std::sync::Arc;

use crate::backend::circuit::Circuit;
use crate::backend::missing::MissingKeys;
use crate::backend::readiness::Readiness;
use crate::backend::storage::{Retries, Storage};
use crate::cache::ObjectCache;
use crate::config::serve::ServeConfig;
use crate::config::sites::Sites;
use crate::metrics::Metrics;

/// A running gateway's shared state.
#[derive(Debug)]
pub struct App {
    /// The bucket.
    pub storage: Storage,
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// The sites, by host: how paths map to objects and what responses look like.
    pub sites: Sites,
    /// The object cache; `None` when turned off.
    pub cache: Option<Arc<ObjectCache>>,
    /// Whether each request is logged.
    pub access_log: bool,
    /// The bearer token of `POST /purge`; `None` turns purging off.
    pub admin_token: Option<crate::backend::settings::Secret>,
    /// Content codings offered for text assets.
    pub compression: crate::http::compression::CompressionConfig,
    /// Whether this gateway should receive traffic.
    pub readiness: Arc<Readiness>,
}

impl App {
    /// Builds the state; no connection is made yet.
    pub fn new(config: &ServeConfig) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        let circuit = Arc::new(Circuit::new(config.circuit, metrics.clone()));
        let storage = Storage::new(&config.backend, metrics.clone(), Retries::Serve)
            .with_circuit(circuit)
            .with_missing(Arc::new(MissingKeys::new(config.missing_object_status)));
        Arc::new(Self {
            readiness: Arc::new(Readiness::new(storage.clone(), metrics.clone(), probe_prefix(config))),
            sites: Sites::new(&config.sites, &storage),
            storage,
            metrics: metrics.clone(),
            cache: ObjectCache::new(config.cache, metrics.clone()).map(|cache| {
                let disk = config
                    .disk_cache
                    .clone()
                    .map(|disk| crate::cache::disk::DiskTier::open(disk, config.cache.ttl, metrics));
                Arc::new(cache.with_disk(disk))
            }),
            access_log: config.access_log,
            admin_token: config.admin_token.clone(),
            compression: config.compression.clone(),
        })
    }
}

/// The key prefix the readiness probe uses in `--bucket`: the first site's there (a key that
/// cannot exist is probed under it, so a prefix-scoped policy allows the probe).
fn probe_prefix(config: &ServeConfig) -> &str {
    config
        .sites
        .sites
        .iter()
        .find(|s| s.bucket == config.backend.bucket)
        .map_or("", |s| s.site.prefix.as_str())
}
