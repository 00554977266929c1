//! The tasks that live as long as the server: the backend probe, one change-event subscription
//! per bucket, the renewal of temporary credentials and the reload of the backend TLS files.
//!
//! They run in one [`JoinSet`], which the server shuts down after the listeners have drained.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::backend::credentials::CertificateCredentials;
use crate::backend::storage::Storage;
use crate::backend::tls::BackendTls;
use crate::cache::events::Subscription;
use crate::cli::BucketEvents;
use crate::config::app::App;
use crate::config::serve::ServeConfig;
use crate::metrics::Metrics;

/// Starts every background task of a server for `app`.
pub fn start(app: &Arc<App>, config: &ServeConfig) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    // The backend probe runs from the start, so the log says at once whether the bucket is
    // reachable; the listeners serve either way (the backend may come up later, and cached
    // objects need no backend).
    tasks.spawn(app.readiness.clone().run(config.backend_probe_interval));
    // Change events drop changed objects from the cache at once (nothing to drop without one).
    if let (Some(cache), BucketEvents::Auto) = (&app.cache, config.bucket_events) {
        for (storage, prefix) in subscriptions(app) {
            tasks.spawn(Subscription::new(storage, cache.clone(), &prefix, app.metrics.clone()).run());
        }
    }
    // Temporary credentials are renewed ahead of expiry by this one task.
    if let Some(sts) = app.storage.sts().cloned() {
        tasks.spawn(sts.keep_fresh());
    }
    tasks.spawn(reload_tls(
        config.backend.tls.clone(),
        app.metrics.clone(),
        config.tls_reload_interval,
        app.storage.sts().cloned(),
    ));
    tasks
}

/// One change subscription per bucket the sites read, for the keys under the prefix their
/// sites share there (the whole bucket when they share none).
fn subscriptions(app: &App) -> Vec<(Storage, String)> {
    let mut by_bucket: Vec<(Storage, String)> = Vec::new();
    for hosted in app.sites.all() {
        let prefix = &hosted.site.prefix;
        match by_bucket
            .iter_mut()
            .find(|(s, _)| s.bucket() == hosted.storage.bucket())
        {
            Some((_, shared)) => {
                let mut common = shared.bytes().zip(prefix.bytes()).take_while(|(a, b)| a == b).count();
                while !shared.is_char_boundary(common) {
                    common -= 1;
                }
                shared.truncate(common);
            }
            None => by_bucket.push((hosted.storage.clone(), prefix.clone())),
        }
    }
    by_bucket
}

/// Checks the backend TLS files every `interval` and swaps in what changed; a rejected file is
/// logged and counted, and the current trust and identity stay in use.
async fn reload_tls(
    tls: Arc<BackendTls>,
    metrics: Arc<Metrics>,
    interval: Duration,
    sts: Option<CertificateCredentials>,
) {
    loop {
        if let Some(t) = tls.client_cert_not_after() {
            metrics.tls_client_cert_expiry.set(t);
        }
        tokio::time::sleep(interval).await;
        let tls2 = tls.clone();
        let Ok(events) = tokio::task::spawn_blocking(move || tls2.reload()).await else {
            continue;
        };
        for event in events {
            match event.result {
                Ok(()) => {
                    tracing::info!(file = event.what, "backend TLS files changed: new connections use them");
                    metrics.tls_reloads.with_label_values(&[event.what, "ok"]).inc();
                    if let Some(sts) = sts.as_ref().filter(|_| event.what == "identity") {
                        // The credentials belong to the old certificate: ask again with the new.
                        match sts.renew().await {
                            Ok(_) => tracing::info!("temporary S3 credentials renewed for the new client certificate"),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot renew the temporary S3 credentials for the new client certificate")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(file = event.what, error = %e, "rejected changed backend TLS files; keeping the current ones");
                    metrics.tls_reloads.with_label_values(&[event.what, "rejected"]).inc();
                }
            }
        }
    }
}
