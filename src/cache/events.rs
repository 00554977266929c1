//! Changes seen at once: each gateway subscribes to its bucket's change events and drops an
//! object from its cache within moments of a PUT or DELETE, instead of serving the old copy
//! until `--cache-ttl` runs out.
//!
//! MinIO offers this without server-side setup through its `ListenBucketNotification`
//! extension ([`crate::backend::storage::Storage::listen`]): one long-lived signed GET streams one JSON
//! record per line (`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"object":{"key":
//! ...}}}]}`, the key raw) and a `{"Records":null}` keep-alive every `ping` seconds.
//! Every pod subscribes itself, so every replica hears every change.
//!
//! - The stream is watched: no byte (event or keep-alive) for three keep-alive periods means a
//!   dead connection, which is dropped and made again.
//! - Reconnection backs off (1 s doubling to 30 s). Events sent while no subscription was open
//!   are lost, so once a lost subscription is back every cached entry is marked stale: the
//!   next request for each revalidates it (a conditional GET), served stale meanwhile.
//! - Events can also be lost under load on the backend's side; the TTL and ETag revalidation
//!   stay the backstop.
//! - A backend that does not offer the API (Garage, AWS S3) is expected and said once at INFO;
//!   credentials without `s3:ListenBucketNotification` are said once at WARN; the gateway then
//!   relies on the TTL.
//! - A line is at most [`MAX_LINE`] bytes; a longer one drops the connection, so a broken
//!   stream cannot grow memory.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};

use crate::backend::minio::Listen;
use crate::backend::storage::Storage;
use crate::cache::purge::Purge;
use crate::cache::store::{ObjectCache, cache_name};
use crate::metrics::Metrics;

/// Keep-alive period asked of the backend.
pub const PING: Duration = Duration::from_secs(10);

/// Longest event line accepted.
pub const MAX_LINE: usize = 1 << 20;

/// First and longest pause before subscribing again.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The states of `gateway_bucket_events_state`.
const STATES: [&str; 4] = ["subscribed", "retrying", "unsupported", "denied"];

/// How a subscription ended.
enum Ended {
    /// The backend closed the stream, or it went silent, or it broke.
    Lost(String),
    /// The backend does not offer the API.
    NotOffered(String),
    /// The credentials may not subscribe.
    Denied(String),
}

/// The subscription of one gateway: what to watch and what to invalidate.
#[derive(Debug)]
pub struct Subscription {
    storage: Storage,
    cache: Arc<ObjectCache>,
    /// The site's key prefix: events are asked for keys under it only.
    prefix: String,
    metrics: Arc<Metrics>,
}

impl Subscription {
    /// A subscription for keys under `prefix` that invalidates entries of `cache`.
    pub fn new(storage: Storage, cache: Arc<ObjectCache>, prefix: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            storage,
            cache,
            prefix: prefix.to_string(),
            metrics,
        }
    }

    fn state(&self, now: &str) {
        for state in STATES {
            self.metrics
                .bucket_events_state
                .with_label_values(&[state])
                .set(i64::from(state == now));
        }
    }

    /// Subscribes, and subscribes again whenever the stream is lost, until the backend turns
    /// out not to offer the API (then it returns) or the task is aborted.
    pub async fn run(self) {
        let mut backoff = BACKOFF_START;
        let mut lost_before = false;
        loop {
            match self.subscribe_once(&mut lost_before, &mut backoff).await {
                Ended::NotOffered(why) => {
                    self.state("unsupported");
                    // Expected of AWS S3, Garage and every S3 store but MinIO, so not a warning
                    // (operators alert on those): said once, at INFO.
                    tracing::info!(
                        reason = %why,
                        "the backend does not offer change events (ListenBucketNotification is MinIO's): cached objects follow changes through --cache-ttl"
                    );
                    return;
                }
                Ended::Denied(why) => {
                    self.state("denied");
                    tracing::warn!(
                        reason = %why,
                        "change events refused: grant s3:ListenBucketNotification on the bucket; cached objects follow changes through --cache-ttl only"
                    );
                    return;
                }
                Ended::Lost(why) => {
                    self.state("retrying");
                    tracing::warn!(reason = %why, retry_in = ?backoff, "change events: subscription lost");
                    lost_before = true;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One subscription, until it ends.
    async fn subscribe_once(&self, lost_before: &mut bool, backoff: &mut Duration) -> Ended {
        let mut body = match self.storage.listen(&self.prefix, PING).await {
            Ok(Listen::Stream(body)) => body,
            Ok(Listen::NotOffered(why)) => return Ended::NotOffered(why),
            // The STS refused the certificate (e.g. its policy is not made yet): the gateway
            // has no credentials at all, which the next attempt may have.
            Err(e @ crate::error::StorageError::Denied { .. }) if e.is_sts_refusal() => {
                return Ended::Lost(e.to_string());
            }
            // A policy without s3:ListenBucketNotification: asking again will not help.
            Err(e @ crate::error::StorageError::Denied { .. }) => {
                return Ended::Denied(e.to_string());
            }
            Err(e) => return Ended::Lost(e.to_string()),
        };
        self.state("subscribed");
        *backoff = BACKOFF_START;
        if *lost_before {
            // Changes made while no subscription was open went unseen.
            self.cache.mark_all_stale();
            tracing::info!("change events: subscribed again; cached entries revalidate on their next request");
        } else {
            tracing::info!(prefix = %self.prefix, "change events: subscribed");
        }
        let mut pending = BytesMut::new();
        loop {
            let chunk = match tokio::time::timeout(PING * 3, body.next()).await {
                Err(_) => return Ended::Lost(format!("no keep-alive for {:?}", PING * 3)),
                Ok(None) => return Ended::Lost("the backend closed the stream".into()),
                Ok(Some(Err(e))) => return Ended::Lost(format!("the stream broke: {e}")),
                Ok(Some(Ok(chunk))) => chunk,
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line = pending.split_to(end + 1);
                self.handle_line(&line).await;
            }
            if pending.len() > MAX_LINE {
                return Ended::Lost(format!("a line longer than {MAX_LINE} bytes"));
            }
            if pending.iter().all(u8::is_ascii_whitespace) {
                // Older MinIO keep-alives are single spaces.
                pending.advance(pending.len());
            }
        }
    }

    /// Acts on one line of the stream.
    async fn handle_line(&self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let Some(events) = parse_line(line) else {
            tracing::debug!(line = %String::from_utf8_lossy(line).escape_debug(), "change events: unreadable record");
            return;
        };
        for (kind, key) in events {
            self.metrics.bucket_events.with_label_values(&[kind]).inc();
            let purged = self.cache.purge(&Purge::Key(cache_name(&self.storage, &key))).await;
            self.metrics.bucket_event_invalidations.inc_by(purged);
            tracing::debug!(kind, key = %key.escape_debug(), purged, "change event");
        }
    }
}

/// The events of one record line: (`created`, `removed` or `other`, object key). A keep-alive
/// (`{"Records":null}`) has none; `None` when the line is not a record.
///
/// The key is used as it comes: MinIO's listen API publishes `eventArgs.ToEvent(false)`
/// (cmd/event-notification.go, `sendEvent`), whose `s3.object.key` is the raw key, not
/// URL-escaped, since RELEASE.2020-04-28 (only webhook-style targets escape it). Unescaping it
/// would drop the wrong entry for `a+b.txt` or `100%25.txt`.
pub fn parse_line(line: &[u8]) -> Option<Vec<(&'static str, String)>> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let records = value.get("Records")?;
    let Some(records) = records.as_array() else {
        return records.is_null().then(Vec::new);
    };
    Some(
        records
            .iter()
            .filter_map(|r| {
                let name = r.get("eventName")?.as_str()?;
                let key = r.get("s3")?.get("object")?.get("key")?.as_str()?;
                let kind = if name.starts_with("s3:ObjectCreated:") {
                    "created"
                } else if name.starts_with("s3:ObjectRemoved:") {
                    "removed"
                } else {
                    "other"
                };
                Some((kind, key.to_string()))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let put = r#"{"Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"dir/a+b 100%25 bé.txt","size":3}}}]}"#;
        assert_eq!(
            parse_line(put.as_bytes()),
            Some(vec![("created", "dir/a+b 100%25 bé.txt".to_string())])
        );
        let del = br#"{"Records":[{"eventName":"s3:ObjectRemoved:Delete","s3":{"object":{"key":"x"}}}]}"#;
        assert_eq!(parse_line(del), Some(vec![("removed", "x".to_string())]));
        let other = br#"{"Records":[{"eventName":"s3:ObjectAccessed:Get","s3":{"object":{"key":"x"}}}]}"#;
        assert_eq!(parse_line(other), Some(vec![("other", "x".to_string())]));
        assert_eq!(parse_line(br#"{"Records":null}"#), Some(vec![]));
        assert_eq!(parse_line(b"<ListBucketResult/>"), None);
        assert_eq!(parse_line(br#"{"other":1}"#), None);
    }

    #[test]
    fn reads_the_embedded_backends_lines() {
        let line = embedded_s3::events::BucketEvent {
            name: "s3:ObjectCreated:Put",
            bucket: "b".into(),
            key: "dir/a+b %41.txt".into(),
            size: Some(3),
            etag: Some("abc".into()),
        }
        .line();
        assert_eq!(
            parse_line(&line).unwrap(),
            vec![("created", "dir/a+b %41.txt".to_string())]
        );
    }
}
