//! MinIO's `ListenBucketNotification` in the embedded backend, so that the gateway's change
//! subscription ([`crate::events`]) is tested against the real request and a real stream.
//!
//! Wire format, from MinIO's documentation of the API (its Go client's
//! `ListenBucketNotification`, "a MinIO extension") and its handler
//! (`cmd/listen-notification-handlers.go`):
//! - `GET /{bucket}?events=E&events=E...&prefix=P&suffix=S&ping=N`, signed with SigV4 (s3s
//!   verifies the signature before this route runs); the bucket must exist (`NoSuchBucket`).
//! - 200 with `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
//!   `X-Accel-Buffering: no`, then, for each matching event, the JSON object
//!   `{"Records":[<S3 event record>]}` and a newline; every `ping` seconds `{"Records":null}`
//!   and a newline. The record's object key is query-escaped (Go's `url.QueryEscape`).
//! - A subscriber that falls behind loses events; it is never waited for.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::{broadcast, mpsc};

use crate::faults::Faults;

/// One change in the bucket.
#[derive(Clone, Debug)]
pub struct BucketEvent {
    /// The event name, e.g. `s3:ObjectCreated:Put`.
    pub name: &'static str,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The object's size, for creations.
    pub size: Option<u64>,
    /// The object's ETag (unquoted), for creations.
    pub etag: Option<String>,
}

impl BucketEvent {
    /// The line MinIO sends for it.
    pub fn line(&self) -> Bytes {
        let key: String = url_query_escape(&self.key);
        let mut object = serde_json::json!({ "key": key, "sequencer": format!("{:016X}", rand::random::<u64>()) });
        if let Some(size) = self.size {
            object["size"] = size.into();
        }
        if let Some(etag) = &self.etag {
            object["eTag"] = etag.as_str().into();
        }
        let record = serde_json::json!({
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": crate::sts::rfc3339(std::time::SystemTime::now(), true),
            "eventName": self.name,
            "userIdentity": { "principalId": "gateway-test" },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": { "name": self.bucket, "arn": format!("arn:aws:s3:::{}", self.bucket) },
                "object": object,
            },
        });
        let mut line = serde_json::to_vec(&serde_json::json!({ "Records": [record] })).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// Go's `url.QueryEscape`: unreserved bytes as they are, space as `+`, the rest `%XX`.
fn url_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The custom s3s route answering `ListenBucketNotification`.
pub struct ListenRoute {
    root: PathBuf,
    events: broadcast::Sender<BucketEvent>,
    faults: Arc<Faults>,
    sts: Arc<crate::sts::Sts>,
}

impl ListenRoute {
    /// A route for the buckets under `root`, streaming what `events` carries, to identities
    /// whose policy in `sts` allows `s3:ListenBucketNotification`.
    pub fn new(
        root: PathBuf,
        events: broadcast::Sender<BucketEvent>,
        faults: Arc<Faults>,
        sts: Arc<crate::sts::Sts>,
    ) -> Self {
        Self {
            root,
            events,
            faults,
            sts,
        }
    }
}

/// What a subscription asks for.
struct Filter {
    events: Vec<String>,
    prefix: String,
    suffix: String,
}

impl Filter {
    fn matches(&self, event: &BucketEvent, bucket: &str) -> bool {
        event.bucket == bucket
            && event.key.starts_with(&self.prefix)
            && event.key.ends_with(&self.suffix)
            && self.events.iter().any(|pattern| match pattern.strip_suffix('*') {
                Some(head) => event.name.starts_with(head),
                None => event.name == pattern,
            })
    }
}

#[async_trait::async_trait]
impl s3s::route::S3Route for ListenRoute {
    fn is_match(
        &self,
        method: &hyper::Method,
        uri: &hyper::Uri,
        _headers: &hyper::HeaderMap,
        _extensions: &mut hyper::http::Extensions,
    ) -> bool {
        let one_segment = uri.path().len() > 1 && !uri.path()[1..].trim_end_matches('/').contains('/');
        let listen = uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("events=")));
        *method == hyper::Method::GET && one_segment && listen && !self.faults.refuses_listen()
    }

    async fn check_access(&self, req: &mut s3s::S3Request<s3s::Body>) -> s3s::S3Result<()> {
        let Some(credentials) = &req.credentials else {
            return Err(s3s::s3_error!(AccessDenied, "Signature is required"));
        };
        let bucket = req.uri.path()[1..].trim_end_matches('/');
        self.sts.authorize(
            &credentials.access_key,
            "s3:ListenBucketNotification",
            &crate::policy::resource(Some(bucket), None),
        )
    }

    async fn call(&self, req: s3s::S3Request<s3s::Body>) -> s3s::S3Result<s3s::S3Response<s3s::Body>> {
        if self.faults.denies_listen() {
            return Err(s3s::s3_error!(
                AccessDenied,
                "the policy does not allow s3:ListenBucketNotification"
            ));
        }
        let bucket = req.uri.path()[1..].trim_end_matches('/').to_string();
        let (mut filter, mut ping) = (
            Filter {
                events: Vec::new(),
                prefix: String::new(),
                suffix: String::new(),
            },
            None,
        );
        for pair in req.uri.query().unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8()
                .map_err(|_| s3s::s3_error!(InvalidArgument))?
                .into_owned();
            match name {
                "events" => filter.events.push(value),
                "prefix" => filter.prefix = value,
                "suffix" => filter.suffix = value,
                "ping" => {
                    let secs: u64 = value.parse().map_err(|_| s3s::s3_error!(InvalidArgument))?;
                    if secs < 1 {
                        return Err(s3s::s3_error!(InvalidArgument));
                    }
                    ping = Some(Duration::from_secs(secs));
                }
                _ => {}
            }
        }
        if bucket.contains('.') || !self.root.join(&bucket).is_dir() {
            return Err(s3s::s3_error!(NoSuchBucket));
        }
        let mut events = self.events.subscribe();
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        tokio::spawn(async move {
            // MinIO's keep-alive without `ping` was a space every 500 ms (deprecated).
            let mut ticker = tokio::time::interval(ping.unwrap_or(Duration::from_millis(500)));
            ticker.tick().await;
            loop {
                let line = tokio::select! {
                    event = events.recv() => match event {
                        Ok(e) if filter.matches(&e, &bucket) => e.line(),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = ticker.tick() => if ping.is_some() {
                        Bytes::from_static(b"{\"Records\":null}\n")
                    } else {
                        Bytes::from_static(b" ")
                    },
                    () = tx.closed() => break,
                };
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
        let mut resp = s3s::S3Response::new(s3s::Body::http_body(ChannelBody(rx)));
        for (name, value) in [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
            ("x-accel-buffering", "no"),
        ] {
            resp.headers
                .insert(name, hyper::header::HeaderValue::from_static(value));
        }
        Ok(resp)
    }
}

/// A response body fed by a channel: it ends when the sender does.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_query_escaped() {
        assert_eq!(url_query_escape("dir/a bé.txt"), "dir%2Fa+b%C3%A9.txt");
        let line = BucketEvent {
            name: "s3:ObjectCreated:Put",
            bucket: "b".into(),
            key: "dir/a b.txt".into(),
            size: Some(3),
            etag: Some("abc".into()),
        }
        .line();
        let line = String::from_utf8(line.to_vec()).unwrap();
        assert!(line.contains("\"key\":\"dir%2Fa+b.txt\""), "{line}");
    }
}
