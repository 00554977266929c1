//! Several sites by `Host` from a sites file: two hosts on two buckets and prefixes with their
//! own documents, a wildcard, unknown hosts, a cache that keeps sites apart, per-site purges
//! and metrics, and a sites file with mistakes.

use bytes::Bytes;
use gateway::PutOptions;

use crate::util::{Backend, Gateway, Reply, request_with};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

const SITES: &str = r#"
default_site = "www"

[[sites]]
name = "www"
hosts = ["example.com", "www.example.com"]
prefix = "www/"
spa_fallback = "index.html"

[[sites]]
name = "docs"
hosts = ["*.docs.test"]
bucket = "docs"
index = "start.html"
error_document = "404.html"
cache_control = "public, max-age=60"
"#;

async fn put_in(backend: &Backend, bucket: &str, key: &str, body: &'static str, content_type: &str) {
    let opts = PutOptions {
        content_type,
        ..Default::default()
    };
    backend
        .storage()
        .for_bucket(bucket)
        .put(key, Bytes::from_static(body.as_bytes()), &opts)
        .await
        .unwrap();
}

async fn get_as(gw: &Gateway, host: &str, path: &str) -> Reply {
    request_with("GET", &gw.url(path), &[("host".into(), host.into())]).await
}

/// Starts a gateway with `sites` (the text of the file) and `flags`.
async fn gateway_with_sites(backend: &Backend, sites: &str, flags: &[&str]) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sites.toml");
    std::fs::write(&file, sites).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let mut all = vec![
        "--sites",
        file.to_str().unwrap(),
        "--admin-token-file",
        token.to_str().unwrap(),
    ];
    all.extend_from_slice(flags);
    (Gateway::start_with(backend.args(), &all).await, dir)
}

async fn two_sites() -> Backend {
    let backend = Backend::start().await;
    backend.storage().create_bucket().await.unwrap();
    backend.storage().for_bucket("docs").create_bucket().await.unwrap();
    put_in(
        &backend,
        crate::util::BUCKET,
        "www/index.html",
        "<p>www home</p>",
        "text/html",
    )
    .await;
    put_in(&backend, crate::util::BUCKET, "www/same.txt", "www copy", "text/plain").await;
    put_in(&backend, "docs", "start.html", "<p>docs start</p>", "text/html").await;
    put_in(&backend, "docs", "404.html", "<p>docs: no such page</p>", "text/html").await;
    put_in(&backend, "docs", "same.txt", "docs copy", "text/plain").await;
    backend
}

/// Two hosts, two buckets and prefixes, each with its own index, fallback and error document
/// and Cache-Control; a wildcard at any depth; an unknown host gets the default site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_select_their_sites() {
    let backend = two_sites().await;
    let (gw, _dir) = gateway_with_sites(&backend, SITES, &[]).await;

    let home = get_as(&gw, "example.com", "/").await;
    assert_eq!((home.status, home.body.as_ref()), (200, b"<p>www home</p>".as_ref()));
    let deep = get_as(&gw, "WWW.Example.com:8080", "/some/route").await;
    assert_eq!(
        (deep.status, deep.body.as_ref()),
        (200, b"<p>www home</p>".as_ref()),
        "the SPA fallback"
    );

    for host in ["a.docs.test", "deep.a.docs.test"] {
        let start = get_as(&gw, host, "/").await;
        assert_eq!(
            (start.status, start.body.as_ref()),
            (200, b"<p>docs start</p>".as_ref()),
            "{host}"
        );
        assert_eq!(start.header("cache-control"), "public, max-age=60");
    }
    let missing = get_as(&gw, "a.docs.test", "/nope").await;
    assert_eq!(
        (missing.status, missing.body.as_ref()),
        (404, b"<p>docs: no such page</p>".as_ref())
    );
    // The bare suffix is not a subdomain of itself.
    assert_eq!(get_as(&gw, "docs.test", "/").await.body.as_ref(), b"<p>www home</p>");

    let unknown = get_as(&gw, "unknown.test", "/").await;
    assert_eq!(
        (unknown.status, unknown.body.as_ref()),
        (200, b"<p>www home</p>".as_ref())
    );

    assert!(
        gw.metric("gateway_site_requests_total{class=\"2xx\",site=\"www\"}")
            .await
            >= 4.0
    );
    assert!(
        gw.metric("gateway_site_requests_total{class=\"2xx\",site=\"docs\"}")
            .await
            >= 2.0
    );
    assert_eq!(
        gw.metric("gateway_site_requests_total{class=\"4xx\",site=\"docs\"}")
            .await,
        1.0
    );
    gw.stop().await;

    // Without a default site, an unknown host is a 404 that names the reason.
    let (gw, _dir) = gateway_with_sites(&backend, &SITES.replace("default_site = \"www\"", ""), &[]).await;
    let r = get_as(&gw, "unknown.test", "/").await;
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("no site"), "{:?}", r.body);
    assert_eq!(get_as(&gw, "example.com", "/").await.status, 200);
    gw.stop().await;
}

/// The same key in two sites is two entries: each host gets its own bytes, from memory the
/// second time; a purge of one site leaves the other's entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_sites_apart() {
    let backend = two_sites().await;
    let (gw, _dir) = gateway_with_sites(&backend, SITES, &["--bucket-events", "off"]).await;
    for _ in 0..2 {
        let www = get_as(&gw, "example.com", "/same.txt").await;
        let docs = get_as(&gw, "x.docs.test", "/same.txt").await;
        assert_eq!(www.body.as_ref(), b"www copy");
        assert_eq!(docs.body.as_ref(), b"docs copy");
    }
    assert_eq!(get_as(&gw, "example.com", "/same.txt").await.header("x-cache"), "HIT");
    assert_eq!(get_as(&gw, "x.docs.test", "/same.txt").await.header("x-cache"), "HIT");

    let purge = |query: &'static str| {
        let url = gw.admin_url(&format!("/purge?{query}"));
        async move { request_with("POST", &url, &[("authorization".into(), format!("Bearer {TOKEN}"))]).await }
    };
    assert_eq!(purge("site=docs&key=same.txt").await.status, 200);
    assert_eq!(get_as(&gw, "x.docs.test", "/same.txt").await.header("x-cache"), "MISS");
    assert_eq!(get_as(&gw, "example.com", "/same.txt").await.header("x-cache"), "HIT");
    // Without a site, the default site's key.
    assert_eq!(purge("key=same.txt").await.status, 200);
    assert_eq!(get_as(&gw, "example.com", "/same.txt").await.header("x-cache"), "MISS");
    // A whole site.
    assert_eq!(purge("site=docs&all").await.status, 200);
    assert_eq!(get_as(&gw, "x.docs.test", "/same.txt").await.header("x-cache"), "MISS");
    assert_eq!(get_as(&gw, "example.com", "/same.txt").await.header("x-cache"), "HIT");
    assert_eq!(purge("site=nope&all").await.status, 400);
    gw.stop().await;
}

/// A change in either bucket is seen at once: one subscription per bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_each_bucket_are_seen() {
    let backend = two_sites().await;
    let (gw, _dir) = gateway_with_sites(&backend, SITES, &["--cache-ttl", "1h"]).await;
    gw.events_state("subscribed").await;
    get_as(&gw, "x.docs.test", "/same.txt").await;
    get_as(&gw, "example.com", "/same.txt").await;
    put_in(&backend, "docs", "same.txt", "docs v2", "text/plain").await;
    put_in(&backend, crate::util::BUCKET, "www/same.txt", "www v2", "text/plain").await;
    for (host, want) in [
        ("x.docs.test", b"docs v2".as_ref()),
        ("example.com", b"www v2".as_ref()),
    ] {
        let start = std::time::Instant::now();
        while get_as(&gw, host, "/same.txt").await.body.as_ref() != want {
            assert!(start.elapsed() < std::time::Duration::from_secs(1), "{host} still old");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    gw.stop().await;
}

/// Mistakes in the sites file are configuration errors naming the site and the field.
#[test]
fn a_wrong_sites_file_names_the_site_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sites.toml");
    let check = |text: &str, expect: &str| {
        std::fs::write(&file, text).unwrap();
        let err = crate::util::serve_config_error(&["--sites", file.to_str().unwrap()]);
        assert_eq!(err.flag, "--sites");
        assert!(err.message.contains(expect), "{expect:?} not in {:?}", err.message);
    };
    check(
        "[[sites]]\nname = \"a\"\nhosts = [\"a.test\"]\nindx = \"x\"\n",
        "unknown field `indx`",
    );
    // A misspelt field names its line and its site, the second of two here.
    check(
        "[[sites]]\nname = \"a\"\nhosts = [\"a.test\"]\n\n[[sites]]\nname = \"docs\"\nhosts = [\"d.test\"]\nindx = \"x\"\n",
        "sites.toml line 8, site \"docs\": unknown field `indx`",
    );
    check(
        "[[sites]]\nname = \"a\"\nhosts = [\"a.test\"]\n[[sites]]\nname = \"b\"\nhosts = [\"A.test\"]\n",
        "site \"b\": hosts: \"a.test\" is also a host of site \"a\"",
    );
    check(
        "default_site = \"c\"\n[[sites]]\nname = \"a\"\nhosts = [\"a.test\"]\n",
        "default_site \"c\"",
    );
    check(
        "[[sites]]\nname = \"a\"\nhosts = [\"a.test\"]\nprefix = \"../x\"\n",
        "site \"a\": prefix:",
    );
    check("[[sites]]\nname = \"a\"\nhosts = [\"a b\"]\n", "is not a host name");
    check("[[sites]]\nname = \"a\"\n", "name at least one host");
    check("", "names no [[sites]]");
}
