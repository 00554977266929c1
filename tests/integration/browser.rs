//! A real browser (headless Chromium) loads a page from the bucket through the gateway and
//! shows the seeded GIF; the page's script writes the decoded image size into the DOM, which
//! the test reads after scripts ran. A screenshot is kept as a test artifact.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{Backend, Gateway, TIMEOUT};

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>gateway</title></head>
<body style="margin:0;background:#111;color:#eee;font-family:sans-serif">
<p id="result">pending</p>
<img id="gif" src="gateway.gif" alt="gateway"
     onload="document.getElementById('result').textContent = 'decoded ' + this.naturalWidth + 'x' + this.naturalHeight"
     onerror="document.getElementById('result').textContent = 'failed to load'">
</body></html>
"#;

/// The Chromium binary: `$CHROMIUM`, else `chromium` or `chromium-browser` on PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return p.into();
    }
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium not found: install the Debian package `chromium` (scripts/test.sh does) or set CHROMIUM");
}

/// Runs headless Chromium with `extra` arguments on `url` and returns its stdout.
async fn run_chromium(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--virtual-time-budget=5000",
        "--window-size=480,360",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(TIMEOUT + Duration::from_secs(30), cmd.output())
        .await
        .expect("chromium did not finish")
        .expect("chromium could not be started");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page and the GIF load in Chromium through the gateway; the GIF decodes at its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_gif() {
    let backend = Backend::start().await;
    backend.seed_gif().await;
    backend.put("index.html", PAGE, "text/html").await;
    let gw = Gateway::start(backend.args()).await;

    let dom = run_chromium(&gw.url("/"), &["--dump-dom".to_string()]).await;
    assert!(
        dom.contains("decoded 320x240"),
        "the GIF did not decode in the browser:\n{dom}"
    );

    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("gateway.png");
    let _ = std::fs::remove_file(&shot);
    run_chromium(&gw.url("/"), &[format!("--screenshot={}", shot.display())]).await;
    let png = std::fs::read(&shot).expect("no screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    println!("screenshot: {}", shot.display());
    gw.stop().await;
}

/// A newcomer's first look: `gateway demo`, then the page it prints opened in a browser, which
/// shows the GIF from the bucket and links the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_the_demo_page() {
    let args = ["demo", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"].map(String::from);
    let mut demo = crate::util::Binary::spawn(&args);
    let deadline = std::time::Instant::now() + crate::util::TIMEOUT;
    let page = loop {
        if let Some(line) = demo.stdout().lines().find(|l| l.contains("page")) {
            break line.split_whitespace().last().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no page URL printed: {}",
            demo.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    crate::util::wait_for_status(&page, 200).await;
    let dom = run_chromium(&page, &["--dump-dom".to_string()]).await;
    assert!(
        dom.contains("GIF loaded: 320x240"),
        "the demo page did not show the GIF:\n{dom}"
    );
    assert!(dom.contains("/metrics\">"), "{dom}");
    assert_eq!(demo.terminate().await, 0, "{}", demo.stderr());
}

/// A page and its script, both compressed by the gateway, load in Chromium and the script
/// runs: the browser decodes what the gateway codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_runs_a_compressed_script() {
    let backend = Backend::start().await;
    let padding: String = (0..200).map(|i| format!("<!-- line {i} of padding -->\n")).collect();
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><script src=\"app.js\"></script></head>\
         <body><p id=\"result\">pending</p>{padding}</body></html>"
    );
    let script: String = (0..400)
        .map(|i| format!("var line{i} = 'a line of the script, number {i}';\n"))
        .chain(std::iter::once(
            "window.addEventListener('load', () => { document.getElementById('result').textContent = 'script ran: ' + line399; });\n"
                .to_string(),
        ))
        .collect();
    backend.put("site.html", page, "text/html").await;
    backend.put("app.js", script, "application/javascript").await;
    let gw = Gateway::start(backend.args()).await;
    // Cached first: codings are made from the cached copy.
    for path in ["/site.html", "/app.js"] {
        crate::util::get(&gw.url(path)).await;
    }

    let dom = run_chromium(&gw.url("/site.html"), &["--dump-dom".to_string()]).await;
    assert!(
        dom.contains("script ran: a line of the script, number 399"),
        "the compressed script did not run:\n{dom}"
    );
    let mut coded = 0.0;
    for coding in ["br", "zstd", "gzip"] {
        coded += gw
            .metric(&format!("gateway_compressed_responses_total{{encoding=\"{coding}\"}}"))
            .await;
    }
    assert!(
        coded >= 2.0,
        "Chromium got {coded} compressed answers, expected the page and the script"
    );
    gw.stop().await;
}

/// A script uploaded gzip-precompressed by boto3 at its defaults (`Content-Encoding:
/// gzip,aws-chunked` on the upload) to a store that keeps `aws-chunked`: Chromium gets `gzip`
/// alone, decodes it, and the script runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_runs_a_script_uploaded_by_a_default_sdk() {
    let backend = Backend::start().await;
    let page = "<!doctype html><html><head><meta charset=\"utf-8\"><script src=\"app.js\"></script></head>\
                <body><p id=\"result\">pending</p></body></html>";
    backend.put("site.html", page, "text/html").await;
    let script = crate::uploads::script();
    let gzipped = crate::uploads::gzip(script.as_bytes());
    backend.server.as_ref().unwrap().faults().keep_aws_chunked(true);
    crate::uploads::boto3_put(&backend, "app.js", &gzipped, "application/javascript", Some("gzip")).await;
    let gw = Gateway::start(backend.args()).await;
    let dom = run_chromium(&gw.url("/site.html"), &["--dump-dom".to_string()]).await;
    assert!(
        dom.contains("script ran: a line of the script, number 399"),
        "the precompressed script did not run:\n{dom}"
    );
    assert!(gw.metric("gateway_s3_aws_chunked_removed_total").await >= 1.0);
    gw.stop().await;
}

/// A `Content-Security-Policy` deployed in the site's `_headers` file is what the browser
/// enforces: the page's own script runs, an inline one is blocked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_enforces_a_csp_from_the_headers_file() {
    let backend = Backend::start().await;
    backend
        .put(
            "csp.html",
            "<!doctype html><html><head><meta charset=\"utf-8\"><script src=\"own.js\"></script></head>\
             <body><p id=\"own\">own pending</p><p id=\"inline\">inline blocked</p>\
             <script>document.getElementById('inline').textContent = 'inline ran';</script></body></html>",
            "text/html",
        )
        .await;
    backend
        .put(
            "own.js",
            "window.addEventListener('load', () => { document.getElementById('own').textContent = 'own ran'; });\n",
            "application/javascript",
        )
        .await;
    backend
        .put(
            "_headers",
            "/*\n  Content-Security-Policy: script-src 'self'\n",
            "text/plain",
        )
        .await;
    let gw = Gateway::start_with(backend.args(), &["--site-rules", "bucket"]).await;
    assert_eq!(
        crate::util::get(&gw.url("/csp.html"))
            .await
            .header("content-security-policy"),
        "script-src 'self'"
    );
    let dom = run_chromium(&gw.url("/csp.html"), &["--dump-dom".to_string()]).await;
    assert!(dom.contains("own ran"), "the page's own script did not run:\n{dom}");
    assert!(
        dom.contains("inline blocked"),
        "the inline script ran despite the CSP:\n{dom}"
    );
    gw.stop().await;
}
