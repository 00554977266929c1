//! Site rules: headers and redirects by path from the sites file, and `_headers` and
//! `_redirects` deployed to the bucket (Netlify and Cloudflare Pages syntax), read through the
//! cache so a change takes effect with the next change event or TTL, never served themselves,
//! and a malformed file skipped line by line, never a 5xx.

use std::time::Duration;

use clap::Parser;

use crate::util::{Backend, Gateway, Reply, eventually, get, request_with};

const SITES: &str = r#"
[[sites]]
name = "app"
hosts = ["app.test"]
spa_fallback = "index.html"

[[sites.headers]]
for = "/*"
set = { "X-Frame-Options" = "DENY", "Strict-Transport-Security" = "max-age=63072000" }

[[sites.headers]]
for = "/assets/*"
set = { "Cache-Control" = "public, max-age=31536000, immutable" }

[[sites.redirects]]
from = "/old/*"
to = "/assets/:splat"
status = 301

[[sites.redirects]]
from = "/blog/:year/:slug"
to = "/posts/:year-:slug.html"
status = 302

[[sites.redirects]]
from = "/docs/*"
to = "/index.html"
status = 200

[[sites.redirects]]
from = "/away"
to = "https://example.com/there"
status = 308
keep_query = false
"#;

/// The configuration error of `serve` with `flags` (and a backend that is never reached).
fn config_error(flags: &[&str]) -> String {
    let backend = [
        "--endpoint",
        "https://127.0.0.1:9",
        "--bucket",
        "site-bucket",
        "--access-key",
        "a",
        "--secret-key",
        "s",
    ];
    let argv = ["gateway", "serve"].iter().chain(flags).chain(backend.iter());
    let cli = gateway::cli::Cli::try_parse_from(argv).unwrap();
    let gateway::cli::Command::Serve(args) = cli.command else {
        unreachable!()
    };
    gateway::ServeConfig::from_args(&args).unwrap_err().to_string()
}

async fn get_as(gw: &Gateway, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("host".to_string(), "app.test".to_string())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    request_with("GET", &gw.url(path), &headers).await
}

async fn with_sites(backend: &Backend, sites: &str, flags: &[&str]) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sites.toml");
    std::fs::write(&file, sites).unwrap();
    let mut all = vec!["--sites", file.to_str().unwrap()];
    all.extend_from_slice(flags);
    (Gateway::start_with(backend.args(), &all).await, dir)
}

/// Header rules apply to objects, the SPA fallback and 304s; the more specific rule adds to
/// the general one.
#[tokio::test]
async fn header_rules_apply_by_path_to_every_answer() {
    let backend = Backend::start().await;
    backend.put("index.html", "<p>app</p>", "text/html").await;
    backend.put("assets/app.js", "let a = 1;", "text/javascript").await;
    let (gw, _dir) = with_sites(&backend, SITES, &[]).await;

    let r = get_as(&gw, "/assets/app.js", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(r.header("x-frame-options"), "DENY");
    assert_eq!(r.header("strict-transport-security"), "max-age=63072000");

    // The SPA fallback for a deep link, and a 304.
    let r = get_as(&gw, "/settings/profile", &[]).await;
    assert_eq!((r.status, r.header("x-frame-options")), (200, "DENY"));
    let etag = get_as(&gw, "/assets/app.js", &[]).await.header("etag").to_string();
    let r = get_as(&gw, "/assets/app.js", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(r.header("x-frame-options"), "DENY");
    gw.stop().await;
}

/// Redirects with a splat and placeholders keep the query string (unless the rule says not);
/// a 200 rule serves its target in place.
#[tokio::test]
async fn redirects_and_rewrites_by_pattern() {
    let backend = Backend::start().await;
    backend.put("index.html", "<p>app</p>", "text/html").await;
    let (gw, _dir) = with_sites(&backend, SITES, &[]).await;

    let r = get_as(&gw, "/old/css/site.css?v=3", &[]).await;
    assert_eq!((r.status, r.header("location")), (301, "/assets/css/site.css?v=3"));
    let r = get_as(&gw, "/blog/2024/hello", &[]).await;
    assert_eq!((r.status, r.header("location")), (302, "/posts/2024-hello.html"));
    let r = get_as(&gw, "/away?x=1", &[]).await;
    assert_eq!((r.status, r.header("location")), (308, "https://example.com/there"));
    let r = get_as(&gw, "/docs/guide/install", &[]).await;
    assert_eq!((r.status, r.body.as_ref()), (200, &b"<p>app</p>"[..]));
    assert_eq!(r.header("x-frame-options"), "DENY");
    gw.stop().await;
}

/// A sites file whose rule is wrong names the site, the table and the rule.
#[tokio::test]
async fn a_wrong_rule_in_the_sites_file_names_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sites.toml");
    std::fs::write(
        &file,
        "[[sites]]\nname = \"app\"\nhosts = [\"a.test\"]\n[[sites.redirects]]\nfrom = \"/a\"\nto = \"/b\"\nstatus = 404\n",
    )
    .unwrap();
    let text = config_error(&["--sites", file.to_str().unwrap()]);
    assert!(
        text.contains("site \"app\"") && text.contains("redirects: [0] (/a): status 404"),
        "{text}"
    );
}

/// `_headers` and `_redirects` deployed with the site: in force on the next request, replaced
/// when the bucket says they changed (TTL here, events off), never served themselves; a bad
/// line is skipped and the rest applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_files_in_the_bucket_apply_and_follow_changes() {
    let backend = Backend::start().await;
    backend.put("index.html", "<p>home</p>", "text/html").await;
    backend
        .put(
            "_headers",
            "/*\n  Content-Security-Policy: default-src 'self'\n  this line is wrong\n/index.html\n  X-Page: home\n",
            "text/plain",
        )
        .await;
    backend
        .put("_redirects", "/old /index.html 301\n/bad\n", "text/plain")
        .await;
    let gw = Gateway::start_with(
        backend.args(),
        &["--site-rules", "bucket", "--cache-ttl", "1s", "--bucket-events", "off"],
    )
    .await;
    let r = get(&gw.url("/index.html")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-security-policy"), "default-src 'self'");
    assert_eq!(r.header("x-page"), "home");
    let r = get(&gw.url("/old")).await;
    assert_eq!((r.status, r.header("location")), (301, "/index.html"));
    for file in ["/_headers", "/_redirects"] {
        assert_eq!(get(&gw.url(file)).await.status, 404, "{file} was served");
    }

    backend.put("_redirects", "/old /new 302\n", "text/plain").await;
    backend
        .put(
            "_headers",
            "/*\n  Content-Security-Policy: default-src 'none'\n",
            "text/plain",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    eventually("the new _redirects applies", async || {
        get(&gw.url("/old")).await.status == 302
    })
    .await;
    assert_eq!(get(&gw.url("/old")).await.header("location"), "/new");
    let r = get(&gw.url("/index.html")).await;
    assert_eq!(r.header("content-security-policy"), "default-src 'none'");
    assert_eq!(r.header("x-page"), "", "a rule of the old file stayed");
    gw.stop().await;
}

/// Thousands of rules and a huge file are bounded, and answers stay correct (never a 5xx).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_rule_file_is_bounded() {
    let backend = Backend::start().await;
    backend.put("index.html", "<p>home</p>", "text/html").await;
    let many: String = (0..5000).map(|i| format!("/r{i} /index.html 302\n")).collect();
    backend.put("_redirects", many, "text/plain").await;
    let gw = Gateway::start_with(backend.args(), &["--site-rules", "bucket", "--bucket-events", "off"]).await;
    let r = get(&gw.url("/r10")).await;
    assert_eq!((r.status, r.header("location")), (302, "/index.html"));
    // Past the limit of rules: not a rule, so a plain 404.
    assert_eq!(get(&gw.url("/r4999")).await.status, 404);
    assert_eq!(get(&gw.url("/index.html")).await.status, 200);
    gw.stop().await;
}

/// A protected path: 401 with `WWW-Authenticate` without credentials or with wrong ones
/// (counted), the object with the right ones (marked `private`), and never from the cache
/// without the check, even right after an authorized request filled it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_paths_need_the_password_every_time() {
    use base64::Engine;
    let backend = Backend::start().await;
    backend.put("staging/index.html", "<p>secret</p>", "text/html").await;
    backend.put("public.html", "<p>public</p>", "text/html").await;
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("ann:{}\n", bcrypt::hash("open sesame", 4).unwrap())).unwrap();
    let sites = format!(
        "[[sites]]\nname = \"app\"\nhosts = [\"app.test\"]\n[[sites.protect]]\nfor = \"/staging/*\"\nhtpasswd = \"{}\"\nrealm = \"Staging\"\n[[sites.redirects]]\nfrom = \"/peek\"\nto = \"/staging/index.html\"\nstatus = 200\n",
        htpasswd.display()
    );
    let (gw, _dir) = with_sites(&backend, &sites, &[]).await;
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let right = basic("ann", "open sesame");
    let wrong = basic("ann", "guess");

    let r = get_as(&gw, "/staging/index.html", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        "Basic realm=\"Staging\", charset=\"UTF-8\""
    );
    let r = get_as(&gw, "/staging/index.html", &[("authorization", &right)]).await;
    assert_eq!((r.status, r.body.as_ref()), (200, &b"<p>secret</p>"[..]));
    assert_eq!(r.header("cache-control"), "private, no-cache");
    // Cached now: still no object without the password.
    assert_eq!(get_as(&gw, "/staging/index.html", &[]).await.status, 401);
    assert_eq!(
        get_as(&gw, "/staging/index.html", &[("authorization", &wrong)])
            .await
            .status,
        401
    );
    assert_eq!(
        get_as(
            &gw,
            "/staging/index.html",
            &[("authorization", &basic("bob", "open sesame"))]
        )
        .await
        .status,
        401
    );
    assert_eq!(get_as(&gw, "/public.html", &[]).await.status, 200);
    // Neither an encoded path nor a rewrite to it gets around the check.
    assert_eq!(get_as(&gw, "/%73taging/index.html", &[]).await.status, 401);
    assert_eq!(get_as(&gw, "/peek", &[]).await.status, 401);
    let r = get_as(&gw, "/peek", &[("authorization", &right)]).await;
    assert_eq!((r.status, r.header("cache-control")), (200, "private, no-cache"));
    assert_eq!(
        gw.metric("gateway_auth_failures_total{reason=\"missing\",site=\"app\"}")
            .await,
        4.0
    );
    assert_eq!(
        gw.metric("gateway_auth_failures_total{reason=\"wrong\",site=\"app\"}")
            .await,
        2.0
    );
    gw.stop().await;
}

/// With change events on, a new `_redirects` is in force as soon as its event arrives, long
/// before the TTL (an hour here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_rule_file_applies_with_its_change_event() {
    let backend = Backend::start().await;
    backend.put("index.html", "<p>home</p>", "text/html").await;
    backend.put("_redirects", "/go /index.html 302\n", "text/plain").await;
    let gw = Gateway::start_with(backend.args(), &["--site-rules", "bucket", "--cache-ttl", "1h"]).await;
    gw.events_state("subscribed").await;
    assert_eq!(get(&gw.url("/go")).await.header("location"), "/index.html");
    backend
        .put("_redirects", "/go /elsewhere.html 302\n", "text/plain")
        .await;
    eventually("the change event reaches the rules", async || {
        get(&gw.url("/go")).await.header("location") == "/elsewhere.html"
    })
    .await;
    gw.stop().await;
}

/// The one-site case: `--header-rule` and `--redirect` in the files' syntax; a wrong one is
/// a configuration error naming the flag.
#[tokio::test]
async fn rules_as_flags_for_one_site() {
    let backend = Backend::start().await;
    backend.put("index.html", "<p>home</p>", "text/html").await;
    let gw = Gateway::start_with(
        backend.args(),
        &[
            "--header-rule",
            "/* X-Frame-Options: DENY",
            "--header-rule",
            "/index.html Cache-Control: no-cache",
            "--redirect",
            "/blog/* /posts/:splat 308",
        ],
    )
    .await;
    let r = get(&gw.url("/index.html")).await;
    assert_eq!(
        (r.header("x-frame-options"), r.header("cache-control")),
        ("DENY", "no-cache")
    );
    let r = get(&gw.url("/blog/a/b")).await;
    assert_eq!((r.status, r.header("location")), (308, "/posts/a/b"));
    gw.stop().await;

    for (flag, value) in [("--redirect", "/a /b 404"), ("--header-rule", "/a NoColon")] {
        let e = config_error(&[flag, value]);
        assert!(e.starts_with(flag), "{e}");
    }
}

/// `--protect` for the one-site case, and header rules on the error document's 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_as_a_flag_and_headers_on_the_error_document() {
    use base64::Engine;
    let backend = Backend::start().await;
    backend.put("admin/index.html", "<p>admin</p>", "text/html").await;
    backend.put("404.html", "<p>gone</p>", "text/html").await;
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("root:{}\n", bcrypt::hash("pw", 4).unwrap())).unwrap();
    let protect = format!("/admin/* {} Admin area", htpasswd.display());
    let gw = Gateway::start_with(
        backend.args(),
        &[
            "--protect",
            &protect,
            "--error-document",
            "404.html",
            "--header-rule",
            "/* X-Robots-Tag: noindex",
        ],
    )
    .await;
    let r = get(&gw.url("/admin/index.html")).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, "Basic realm=\"Admin area\", charset=\"UTF-8\"")
    );
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("root:pw"));
    let r = request_with("GET", &gw.url("/admin/index.html"), &[("authorization".into(), auth)]).await;
    assert_eq!(r.status, 200);
    let r = get(&gw.url("/missing.html")).await;
    assert_eq!((r.status, r.body.as_ref()), (404, &b"<p>gone</p>"[..]));
    assert_eq!(r.header("x-robots-tag"), "noindex");
    gw.stop().await;
}
