//! Change events: the gateway subscribes to the embedded backend's `ListenBucketNotification`
//! (MinIO's wire format, over mTLS with SigV4) and drops changed objects at once, with a TTL of
//! an hour; it subscribes again after losing the stream, and a backend without the API leaves
//! the TTL in charge.

use std::time::{Duration, Instant};

use crate::proxy::FaultProxy;
use crate::util::{Backend, Gateway, get};

const STATE: &str = "gateway_bucket_events_state{state=";

/// Polls `path` until its body is `want` (or its status 404 when `want` is `None`), and
/// returns how long that took; panics after `limit`.
async fn served_within(gw: &Gateway, path: &str, want: Option<&[u8]>, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = get(&gw.url(path)).await;
        let done = match want {
            Some(body) => r.status == 200 && r.body.as_ref() == body,
            None => r.status == 404,
        };
        if done {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{path} still served as {} {:?}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A replaced object is served new, and a deleted one is 404, within a second, although the
/// TTL is an hour; the events and invalidations are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_served_within_a_second() {
    let backend = Backend::start().await;
    backend.put("site/page.txt", "v1", "text/plain").await;
    backend.put("other/page.txt", "o1", "text/plain").await;
    let gw = Gateway::start_with(backend.args(), &["--cache-ttl", "1h", "--prefix", "site/"]).await;
    gw.events_state("subscribed").await;
    get(&gw.url("/page.txt")).await;
    assert_eq!(get(&gw.url("/page.txt")).await.header("x-cache"), "HIT");

    backend.put("site/page.txt", "v2", "text/plain").await;
    served_within(&gw, "/page.txt", Some(b"v2"), Duration::from_secs(1)).await;

    backend.storage().delete("site/page.txt").await.unwrap();
    served_within(&gw, "/page.txt", None, Duration::from_secs(1)).await;

    // A key that was remembered as missing appears.
    backend.put("site/page.txt", "v3", "text/plain").await;
    served_within(&gw, "/page.txt", Some(b"v3"), Duration::from_secs(1)).await;

    // Keys outside the prefix are not asked for.
    backend.put("other/page.txt", "o2", "text/plain").await;
    assert!(gw.metric("gateway_bucket_events_total{kind=\"created\"}").await >= 2.0);
    assert!(gw.metric("gateway_bucket_events_total{kind=\"removed\"}").await >= 1.0);
    assert!(gw.metric("gateway_bucket_event_invalidations_total").await >= 2.0);
    gw.stop().await;
}

/// Keys arrive raw in MinIO's events (`ToEvent(false)`): a replaced key with `+`, `%`, a space
/// and non-ASCII is served new within seconds, not after the hour of its TTL. The backend
/// timeout is below the keep-alive interval, and MinIO sends the stream's head only with the
/// first keep-alive: the subscription must not time out waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_arrive_raw_and_the_head_is_waited_for() {
    let backend = Backend::start().await;
    let key = "site/a+b 100%25 é.txt";
    backend.put(key, "v1", "text/plain").await;
    let gw = Gateway::start_with(
        gateway::cli::BackendArgs {
            backend_timeout: Duration::from_secs(3),
            ..backend.args()
        },
        &["--cache-ttl", "1h", "--prefix", "site/"],
    )
    .await;
    gw.events_state("subscribed").await;
    let path = "/a+b%20100%2525%20%C3%A9.txt";
    assert_eq!(get(&gw.url(path)).await.body.as_ref(), b"v1");
    assert_eq!(get(&gw.url(path)).await.header("x-cache"), "HIT");
    backend.put(key, "v2", "text/plain").await;
    served_within(&gw, path, Some(b"v2"), Duration::from_secs(5)).await;
    assert!(gw.metric("gateway_bucket_event_invalidations_total").await >= 1.0);
    gw.stop().await;
}

/// The stream is cut: the gateway says so, subscribes again when the backend is back, and
/// revalidates what it holds (a change made meanwhile was never announced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_is_restored() {
    let backend = Backend::start().await;
    backend.put("page.txt", "v1", "text/plain").await;
    let mut proxy = FaultProxy::start(backend.addr).await;
    let args = backend.args_via(proxy.addr);
    let gw = Gateway::start_with(args, &["--cache-ttl", "1h", "--cache-stale-while-revalidate", "0s"]).await;
    gw.events_state("subscribed").await;
    get(&gw.url("/page.txt")).await;

    proxy.kill();
    gw.events_state("retrying").await;
    // Unseen by the gateway: no subscription is open.
    backend.put("page.txt", "v2", "text/plain").await;
    assert_eq!(
        get(&gw.url("/page.txt")).await.body.as_ref(),
        b"v1",
        "served from memory meanwhile"
    );
    proxy.revive().await;
    gw.events_state("subscribed").await;
    // Marked stale on the new subscription: the next request revalidates.
    let r = get(&gw.url("/page.txt")).await;
    assert_eq!((r.header("x-cache"), r.body.as_ref()), ("REVALIDATED", b"v2".as_ref()));
    // And events flow again.
    backend.put("page.txt", "v3", "text/plain").await;
    served_within(&gw, "/page.txt", Some(b"v3"), Duration::from_secs(1)).await;
    gw.stop().await;
}

/// A backend without the API (it takes the request for a ListObjects, as Garage and AWS S3
/// do), or credentials that may not subscribe: the gateway says once that it relies on the
/// TTL, and serves as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_without_the_api_leaves_the_ttl() {
    let backend = Backend::start().await;
    backend.server.as_ref().unwrap().faults().without_listen(true);
    backend.put("page.txt", "v1", "text/plain").await;
    let gw = Gateway::start_with(backend.args(), &["--cache-ttl", "1h"]).await;
    gw.events_state("unsupported").await;
    get(&gw.url("/page.txt")).await;
    backend.put("page.txt", "v2", "text/plain").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = get(&gw.url("/page.txt")).await;
    assert_eq!((r.header("x-cache"), r.body.as_ref()), ("HIT", b"v1".as_ref()));
    assert_eq!(gw.metric("gateway_bucket_events_total{kind=\"created\"}").await, 0.0);
    gw.stop().await;

    // Credentials whose policy does not allow the subscription: said once, the TTL in charge.
    backend.server.as_ref().unwrap().faults().without_listen(false);
    backend.server.as_ref().unwrap().faults().deny_listen(true);
    let gw = Gateway::start_with(backend.args(), &["--cache-ttl", "1h"]).await;
    gw.events_state("denied").await;
    assert_eq!(get(&gw.url("/page.txt")).await.status, 200);
    gw.stop().await;
    backend.server.as_ref().unwrap().faults().deny_listen(false);

    // Off: no subscription at all.
    backend.server.as_ref().unwrap().faults().without_listen(false);
    let gw = Gateway::start_with(backend.args(), &["--bucket-events", "off"]).await;
    gw.ready().await;
    for state in ["subscribed", "retrying", "unsupported", "denied"] {
        assert_eq!(gw.metric(&format!("{STATE}\"{state}\"}}")).await, 0.0, "{state}");
    }
    gw.stop().await;
}
