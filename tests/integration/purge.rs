//! `POST /purge` on the admin port: off without a token file, 401 without the token, and a
//! key, a prefix or everything dropped from memory so that the next request reads the bucket.

use std::path::PathBuf;

use crate::util::{Backend, Gateway, Reply, get, request_with};

const TOKEN: &str = "4f1c0e9b7a2d43c8b5e6f7a8091a2b3c";

/// A token file in `dir`.
fn token_file(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("admin-token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    path
}

async fn purge(gw: &Gateway, query: &str, token: Option<&str>) -> Reply {
    let headers: Vec<(String, String)> = token
        .map(|t| vec![("authorization".to_string(), format!("Bearer {t}"))])
        .unwrap_or_default();
    request_with("POST", &gw.admin_url(&format!("/purge?{query}")), &headers).await
}

/// Without `--admin-token-file` the endpoint does not exist.
#[tokio::test]
async fn purging_is_off_without_a_token_file() {
    let backend = Backend::start().await;
    let gw = Gateway::start(backend.args()).await;
    let r = purge(&gw, "all", Some(TOKEN)).await;
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("--admin-token-file"));
    // Nor on the data port.
    let r = request_with("POST", &gw.url("/purge?all"), &[]).await;
    assert_eq!(r.status, 405);
    gw.stop().await;
}

/// The token is required and checked; other methods are 405; bad queries are 400.
#[tokio::test]
async fn the_token_is_required() {
    let backend = Backend::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(&dir);
    let gw = Gateway::start_with(backend.args(), &["--admin-token-file", file.to_str().unwrap()]).await;
    let r = purge(&gw, "all", None).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, "Bearer realm=\"gateway admin\"")
    );
    assert_eq!(purge(&gw, "all", Some("not-the-token-at-all")).await.status, 401);
    assert_eq!(request_with("GET", &gw.admin_url("/purge?all"), &[]).await.status, 405);
    for bad in ["", "key=", "key=a&all", "path=/x"] {
        assert_eq!(purge(&gw, bad, Some(TOKEN)).await.status, 400, "{bad:?}");
    }
    assert_eq!(
        gw.metric("gateway_purge_requests_total{outcome=\"unauthorized\"}")
            .await,
        2.0
    );
    // The data port never purges.
    let r = request_with(
        "POST",
        &gw.url("/purge?all"),
        &[("authorization".into(), format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(r.status, 405);
    gw.stop().await;
}

/// A key, a prefix, everything: what was purged is read from the bucket again (new bytes,
/// new codings), what was not stays a hit; a remembered 404 is forgotten.
#[tokio::test]
async fn key_prefix_and_all() {
    let backend = Backend::start().await;
    let page = |v: &str| format!("<p>{v}</p>\n").repeat(200);
    for key in ["a/one.html", "a/two.html", "b/three.html"] {
        backend.put(key, page("v1"), "text/html").await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(&dir);
    let gw = Gateway::start_with(
        backend.args(),
        &[
            "--admin-token-file",
            file.to_str().unwrap(),
            "--cache-ttl",
            "1h",
            "--cache-negative-ttl",
            "1h",
            // Purges alone: change events would drop the changed objects themselves.
            "--bucket-events",
            "off",
        ],
    )
    .await;
    let gzip = [("accept-encoding".to_string(), "gzip".to_string())];
    for path in ["/a/one.html", "/a/two.html", "/b/three.html", "/a/one.html"] {
        get(&gw.url(path)).await;
    }
    assert_eq!(
        request_with("GET", &gw.url("/a/one.html"), &gzip)
            .await
            .header("content-encoding"),
        "gzip"
    );
    assert_eq!(get(&gw.url("/a/new.html")).await.status, 404);

    // One key: the object and its coding go.
    backend.put("a/one.html", page("v2"), "text/html").await;
    assert_eq!(get(&gw.url("/a/one.html")).await.body, page("v1").as_bytes());
    let r = purge(&gw, "key=/a/one.html", Some(TOKEN)).await;
    assert_eq!((r.status, r.header("content-type")), (200, "application/json"));
    assert_eq!(String::from_utf8_lossy(&r.body).trim(), "{\"purged\":2}");
    let again = get(&gw.url("/a/one.html")).await;
    assert_eq!(
        (again.header("x-cache"), again.body.as_ref()),
        ("MISS", page("v2").as_bytes())
    );
    let coded = request_with("GET", &gw.url("/a/one.html"), &gzip).await;
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&coded.body[..]), &mut plain).unwrap();
    assert_eq!(plain, page("v2"));

    // A remembered 404.
    backend.put("a/new.html", page("new"), "text/html").await;
    assert_eq!(get(&gw.url("/a/new.html")).await.status, 404);
    assert_eq!(purge(&gw, "key=a/new.html", Some(TOKEN)).await.status, 200);
    assert_eq!(get(&gw.url("/a/new.html")).await.status, 200);

    // A prefix.
    assert_eq!(purge(&gw, "prefix=a/", Some(TOKEN)).await.status, 200);
    for (path, cache) in [
        ("/a/one.html", "MISS"),
        ("/a/two.html", "MISS"),
        ("/b/three.html", "HIT"),
    ] {
        assert_eq!(get(&gw.url(path)).await.header("x-cache"), cache, "{path}");
    }

    // Everything.
    assert_eq!(purge(&gw, "all", Some(TOKEN)).await.status, 200);
    assert_eq!(get(&gw.url("/b/three.html")).await.header("x-cache"), "MISS");
    for outcome in ["key", "prefix", "all"] {
        let series = format!("gateway_purge_requests_total{{outcome=\"{outcome}\"}}");
        assert!(gw.metric(&series).await >= 1.0, "{series}");
    }
    gw.stop().await;
}

/// A token file that is too short is a configuration error naming the flag.
#[test]
fn a_short_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "short\n").unwrap();
    let err = crate::util::serve_config_error(&["--admin-token-file", path.to_str().unwrap()]);
    assert_eq!(err.flag, "--admin-token-file");
    assert!(!err.message.contains("short"), "the file's content is not shown");
}

/// A purge that arrives while a revalidation of the same key is waiting on a slow backend: the
/// revalidation serves the request that waits, but what it read is not kept (it may be the
/// very version the purge was meant to drop); the next request asks the backend again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_beats_a_revalidation_under_way() {
    let backend = Backend::start().await;
    backend.put("page.txt", "v1", "text/plain").await;
    let proxy = crate::proxy::FaultProxy::start(backend.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(&dir);
    let args = backend.args_via(proxy.addr);
    let gw = Gateway::start_with(
        args,
        &[
            "--admin-token-file",
            file.to_str().unwrap(),
            "--cache-ttl",
            "1s",
            "--cache-stale-while-revalidate",
            "0s",
            "--bucket-events",
            "off",
        ],
    )
    .await;
    assert_eq!(get(&gw.url("/page.txt")).await.body.as_ref(), b"v1");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Stale: the next request revalidates, and the backend is slow to answer.
    proxy.set(crate::proxy::Fault::Delay(std::time::Duration::from_millis(1500)));
    let waiting = tokio::spawn({
        let url = gw.url("/page.txt");
        async move { get(&url).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(purge(&gw, "key=page.txt", Some(TOKEN)).await.status, 200);
    let r = waiting.await.unwrap();
    assert_eq!((r.status, r.body.as_ref()), (200, b"v1".as_ref()));
    proxy.set(crate::proxy::Fault::Pass);
    let after = get(&gw.url("/page.txt")).await;
    assert_eq!(
        after.header("x-cache"),
        "MISS",
        "the revalidation's answer was kept after the purge"
    );
    gw.stop().await;
}
