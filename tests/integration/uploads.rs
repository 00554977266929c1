//! Uploads from a client at today's defaults: boto3 (1.36 and later) sends every PutObject in
//! `aws-chunked` with a CRC checksum trailer, and adds `aws-chunked` to the request's
//! `Content-Encoding`. `aws-chunked` belongs to the upload, never to the object: MinIO removes
//! it when it stores the object, some stores keep it, and the gateway must never send it to a
//! browser either way.

use std::path::PathBuf;
use std::process::Stdio;

use crate::util::{BUCKET, Backend, Gateway, request_with};

/// `GET url` with `headers`.
async fn get_with(url: &str, headers: &[(&str, &str)]) -> crate::util::Reply {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    request_with("GET", url, &headers).await
}

/// The Python that has boto3: `$BOTO3_PYTHON` (scripts/test.sh makes one in
/// target/test-tools/), else `python3` if it can import boto3.
fn boto3_python() -> PathBuf {
    if let Some(p) = std::env::var_os("BOTO3_PYTHON") {
        return PathBuf::from(p);
    }
    let ok = std::process::Command::new("python3")
        .args(["-c", "import boto3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "boto3 not found: run scripts/test.sh (it installs boto3 into target/test-tools/venv), or `pip install boto3` and set BOTO3_PYTHON"
    );
    PathBuf::from("python3")
}

/// Uploads `body` as `key` with boto3 at its default checksum settings, over the backend's
/// mTLS with SigV4; returns the `Content-Encoding` the request carried.
pub async fn boto3_put(
    backend: &Backend,
    key: &str,
    body: &[u8],
    content_type: &str,
    content_encoding: Option<&str>,
) -> String {
    const SCRIPT: &str = r#"
import os, sys, boto3
from botocore.config import Config
e = os.environ
s3 = boto3.client(
    "s3", endpoint_url=e["ENDPOINT"], region_name="us-east-1", verify=e["CA"],
    aws_access_key_id=e["ACCESS_KEY"], aws_secret_access_key=e["SECRET_KEY"],
    config=Config(client_cert=(e["CERT"], e["KEY"]), s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
sent = {}
s3.meta.events.register("before-send.s3.PutObject", lambda request, **kw: sent.update(request.headers))
extra = {"ContentEncoding": e["CODING"]} if e.get("CODING") else {}
with open(e["BODY"], "rb") as f:
    s3.put_object(Bucket=e["BUCKET"], Key=e["KEY_NAME"], Body=f.read(), ContentType=e["TYPE"], **extra)
print(sent.get("Content-Encoding", ""))
print("boto3", boto3.__version__, file=sys.stderr)
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, body).unwrap();
    let mut cmd = tokio::process::Command::new(boto3_python());
    cmd.args(["-c", SCRIPT])
        .env("ENDPOINT", format!("https://{}", backend.addr))
        .env("CA", backend.tls("ca.pem"))
        .env("CERT", backend.tls("client.pem"))
        .env("KEY", backend.tls("client-key.pem"))
        .env("ACCESS_KEY", crate::util::ACCESS_KEY)
        .env("SECRET_KEY", crate::util::SECRET_KEY)
        .env("BUCKET", BUCKET)
        .env("KEY_NAME", key)
        .env("TYPE", content_type)
        .env("BODY", &file)
        .env("CODING", content_encoding.unwrap_or(""));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let out = tokio::time::timeout(crate::util::TIMEOUT, cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3 upload of {key} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A script worth compressing.
pub fn script() -> String {
    (0..400)
        .map(|i| format!("var line{i} = 'a line of the script, number {i}';\n"))
        .chain(std::iter::once(
            "window.addEventListener('load', () => { document.getElementById('result').textContent = 'script ran: ' + line399; });\n"
                .to_string(),
        ))
        .collect()
}

/// A precompressed script and a plain stylesheet uploaded by boto3 at its defaults, to a store
/// that removes `aws-chunked` as MinIO does and to one that keeps it: each is served with a
/// `Content-Encoding` a browser can decode (`gzip` for the precompressed one, none or the
/// gateway's own coding for the plain one, which is compressed on a hit), never
/// `aws-chunked`; the kept ones are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_chunked_uploads_are_served_decodable() {
    let backend = Backend::start().await;
    let js = script();
    let css: String = (0..300)
        .map(|i| format!(".c{i} {{ color: #{:06x}; }}\n", i * 4099))
        .collect();
    for (prefix, keep) in [("minio/", false), ("keeps/", true)] {
        backend.server.as_ref().unwrap().faults().keep_aws_chunked(keep);
        let sent = boto3_put(
            &backend,
            &format!("{prefix}app.js"),
            &gzip(js.as_bytes()),
            "application/javascript",
            Some("gzip"),
        )
        .await;
        assert!(
            sent.contains("aws-chunked"),
            "boto3 did not upload in aws-chunked (Content-Encoding {sent:?}): not today's defaults"
        );
        boto3_put(&backend, &format!("{prefix}app.css"), css.as_bytes(), "text/css", None).await;
    }
    backend.server.as_ref().unwrap().faults().keep_aws_chunked(false);
    let gw = Gateway::start(backend.args()).await;
    for prefix in ["minio/", "keeps/"] {
        for _ in 0..2 {
            let r = get_with(&gw.url(&format!("/{prefix}app.js")), &[("accept-encoding", "gzip")]).await;
            assert_eq!(
                (r.status, r.header("content-encoding")),
                (200, "gzip"),
                "{prefix}app.js"
            );
            assert_eq!(gzip_decoded(&r.body).unwrap(), js.as_bytes());
        }
        // Plain: none on the miss, the gateway's own coding on the hit, never aws-chunked.
        let plain = get_with(&gw.url(&format!("/{prefix}app.css")), &[]).await;
        assert_eq!(
            (plain.status, plain.header("content-encoding")),
            (200, ""),
            "{prefix}app.css"
        );
        assert_eq!(plain.body.as_ref(), css.as_bytes());
        let coded = get_with(&gw.url(&format!("/{prefix}app.css")), &[("accept-encoding", "gzip")]).await;
        assert_eq!(
            coded.header("content-encoding"),
            "gzip",
            "{prefix}app.css was not compressed on a hit"
        );
        assert_eq!(gzip_decoded(&coded.body).unwrap(), css.as_bytes());
    }
    assert!(gw.metric("gateway_s3_aws_chunked_removed_total").await >= 2.0);
    gw.stop().await;
}

/// `data` gunzipped, if it is gzip.
pub fn gzip_decoded(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).ok()?;
    Some(out)
}
