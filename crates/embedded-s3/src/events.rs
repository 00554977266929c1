//! MinIO's `ListenBucketNotification` in the embedded backend, so that the gateway's change
//! subscription ([`crate::events`]) is tested against the real request and a real stream.
//!
//! Wire format, read from MinIO's source (minio/minio 7aac2a2, 2026-02-12):
//! `ListenNotificationHandler` in cmd/listen-notification-handlers.go, `ToEvent` and
//! `sendEvent` in cmd/event-notification.go, `event.Event` in internal/event/event.go:
//! - `GET /{bucket}?events=E&events=E...&prefix=P&suffix=S&ping=N`, signed with SigV4 (s3s
//!   verifies the signature before this route runs); the bucket must exist (`NoSuchBucket`).
//! - 200 with `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
//!   `X-Accel-Buffering: no`, then, for each matching event, the JSON object
//!   `{"Records":[<S3 event record>]}` and a newline; every `ping` seconds `{"Records":null}`
//!   and a newline. The record's object key is raw (`ToEvent(false)`). The head is sent with
//!   the first line, not before.
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
    /// The line MinIO sends for it: `{"Records":[EVENT]}` and a newline, as
    /// `ListenNotificationHandler` (cmd/listen-notification-handlers.go) encodes it with Go's
    /// `json.Encoder` (fields in the order of `event.Event`, internal/event/event.go; maps with
    /// sorted keys). The record is `eventArgs.ToEvent(false)` (cmd/event-notification.go:
    /// `sendEvent` publishes it to listeners unescaped), so **the key is raw**, as MinIO has
    /// sent it since RELEASE.2020-04-28; only webhook-style targets get `ToEvent(true)`.
    pub fn line(&self) -> Bytes {
        let removed = self.name.starts_with("s3:ObjectRemoved:");
        let now = std::time::SystemTime::now();
        // `uniqueID`: the event time in nanoseconds, upper-case hex.
        let sequencer = format!(
            "{:X}",
            now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        );
        let record = wire::Event {
            event_version: "2.0",
            event_source: "minio:s3",
            aws_region: "",
            // event.AMZTimeFormat: "2006-01-02T15:04:05.000Z".
            event_time: crate::sts::rfc3339(now, true),
            event_name: self.name,
            user_identity: wire::Identity {
                principal_id: "gateway",
            },
            request_parameters: [
                ("principalId", "gateway"),
                ("region", ""),
                ("sourceIPAddress", "127.0.0.1"),
            ]
            .into_iter()
            .collect(),
            response_elements: [
                ("x-amz-id-2", "embedded"),
                ("x-amz-request-id", "0"),
                ("x-minio-deployment-id", "embedded"),
                ("x-minio-origin-endpoint", "https://127.0.0.1"),
            ]
            .into_iter()
            .collect(),
            s3: wire::Metadata {
                s3_schema_version: "1.0",
                configuration_id: "Config",
                bucket: wire::Bucket {
                    name: &self.bucket,
                    owner_identity: wire::Identity {
                        principal_id: "gateway",
                    },
                    arn: format!("arn:aws:s3:::{}", self.bucket),
                },
                object: wire::Object {
                    key: &self.key,
                    size: if removed { None } else { self.size },
                    e_tag: if removed { None } else { self.etag.as_deref() },
                    sequencer,
                },
            },
            source: wire::Source {
                host: "127.0.0.1",
                port: "",
                user_agent: "",
            },
        };
        let mut line = serde_json::to_vec(&wire::Records { records: [record] }).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// MinIO's event record, field for field in the order of `event.Event` and its parts
/// (internal/event/event.go), with their JSON names and `omitempty`s.
mod wire {
    use std::collections::BTreeMap;

    use serde::Serialize;

    #[derive(Serialize)]
    pub(super) struct Records<'a> {
        #[serde(rename = "Records")]
        pub records: [Event<'a>; 1],
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Event<'a> {
        pub event_version: &'static str,
        pub event_source: &'static str,
        pub aws_region: &'static str,
        pub event_time: String,
        pub event_name: &'static str,
        pub user_identity: Identity,
        pub request_parameters: BTreeMap<&'static str, &'static str>,
        pub response_elements: BTreeMap<&'static str, &'static str>,
        pub s3: Metadata<'a>,
        pub source: Source,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Identity {
        pub principal_id: &'static str,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Metadata<'a> {
        pub s3_schema_version: &'static str,
        pub configuration_id: &'static str,
        pub bucket: Bucket<'a>,
        pub object: Object<'a>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Bucket<'a> {
        pub name: &'a str,
        pub owner_identity: Identity,
        pub arn: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Object<'a> {
        pub key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub size: Option<u64>,
        #[serde(rename = "eTag", skip_serializing_if = "Option::is_none")]
        pub e_tag: Option<&'a str>,
        pub sequencer: String,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Source {
        pub host: &'static str,
        pub port: &'static str,
        pub user_agent: &'static str,
    }
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
        // MinIO writes the response head only with the first event or keep-alive: there is no
        // flush before its loop (`ListenNotificationHandler` sets the headers, then blocks in
        // `select`), so a client sees nothing until then.
        let mut rx = rx;
        let first = rx.recv().await;
        let mut resp = s3s::S3Response::new(s3s::Body::http_body(ChannelBody { first, rx }));
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

/// A response body fed by a channel, after the line that was waited for before the head: it
/// ends when the sender does.
struct ChannelBody {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &'static str, key: &str) -> String {
        let event = BucketEvent {
            name,
            bucket: "b".into(),
            key: key.into(),
            size: Some(3),
            etag: Some("abc".into()),
        };
        String::from_utf8(event.line().to_vec()).unwrap()
    }

    /// The golden shape: `event.Event`'s fields in order, the key raw.
    #[test]
    fn keys_are_raw_and_fields_in_minios_order() {
        let line = line("s3:ObjectCreated:Put", "dir/a+b 100%25 é.txt");
        assert!(line.starts_with("{\"Records\":[{\"eventVersion\":\"2.0\",\"eventSource\":\"minio:s3\",\"awsRegion\":\"\",\"eventTime\":\""), "{line}");
        assert!(
            line.ends_with("\"source\":{\"host\":\"127.0.0.1\",\"port\":\"\",\"userAgent\":\"\"}}]}\n"),
            "{line}"
        );
        assert!(
            line.contains("\"s3\":{\"s3SchemaVersion\":\"1.0\",\"configurationId\":\"Config\",\"bucket\":{\"name\":\"b\",\"ownerIdentity\":{\"principalId\":\"gateway\"},\"arn\":\"arn:aws:s3:::b\"},\"object\":{\"key\":\"dir/a+b 100%25 é.txt\",\"size\":3,\"eTag\":\"abc\",\"sequencer\":\""),
            "{line}"
        );
        let order = [
            "eventName",
            "userIdentity",
            "requestParameters",
            "responseElements",
            "\"s3\"",
        ];
        let at: Vec<usize> = order.iter().map(|k| line.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
    }

    /// Removals carry no size or ETag (`ToEvent` sets them only for other events).
    #[test]
    fn removals_have_no_size() {
        let line = line("s3:ObjectRemoved:Delete", "k");
        assert!(line.contains("\"object\":{\"key\":\"k\",\"sequencer\":\""), "{line}");
    }
}
