//! A production S3 store for the benchmark: Garage (single node) behind an nginx `stream` TLS
//! front that requires client certificates from the benchmark's CA (Garage speaks plain HTTP;
//! the front gives the gateway the TLS and mTLS work it does against MinIO). The embedded s3s-fs backend hashes every object on each GET, so misses
//! and stream-through measured against it would describe s3s-fs, not the gateway.
//!
//! Also started here: nginx `proxy_cache` in front of the same store (through Garage's website
//! endpoint, since nginx cannot sign SigV4 itself), the baseline for cache hits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Error, Proc, free_addr};

/// The running store.
pub struct Garage {
    garage: Proc,
    front: Proc,
    /// `https://127.0.0.1:PORT` of the mTLS front.
    pub endpoint: String,
    /// Garage's website endpoint (plain HTTP, no auth; the bucket is published there).
    pub web: SocketAddr,
    /// The bucket's host name on the website endpoint.
    pub web_host: String,
    /// Access key id with read and write on the bucket.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// The region Garage signs for.
    pub region: &'static str,
}

fn garage_bin() -> String {
    std::env::var("GARAGE").unwrap_or_else(|_| "garage".into())
}

/// Runs one `garage` admin command and returns its standard output.
fn admin(config: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(garage_bin())
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run garage: {e} (bench/run.sh builds it: cargo install garage --locked)"))?;
    if !out.status.success() {
        return Err(format!(
            "garage {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first token after `label` in `text` (e.g. `Key ID:` in `garage key create`'s output).
fn field(text: &str, label: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_string()))
}

impl Garage {
    /// CPU seconds (utime + stime) used so far by Garage and its TLS front (nginx's workers
    /// included).
    pub fn cpu_seconds(&self) -> f64 {
        crate::cpu_seconds(self.garage.0.id()) + crate::cpu_seconds(self.front.0.id())
    }

    /// Starts Garage in `dir`, creates `bucket` and a key for it, publishes it on the website
    /// endpoint, and puts the mTLS front (server certificate and client CA from `tls`) before it.
    pub async fn start(dir: &Path, tls: &Path, nginx: &str, bucket: &str) -> Result<Self, Error> {
        let (s3, rpc, web, admin_api) = (free_addr(), free_addr(), free_addr(), free_addr());
        let root = dir.join("garage");
        std::fs::create_dir_all(&root)?;
        let config = root.join("garage.toml");
        let secret: String = (0..32).map(|i| format!("{:02x}", (i * 37 + 11) % 256)).collect();
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{m}\"\ndata_dir = \"{d}\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"{rpc}\"\nrpc_public_addr = \"{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"{s3}\"\nroot_domain = \".s3.localhost\"\n\n\
                 [s3_web]\nbind_addr = \"{web}\"\nroot_domain = \".web.localhost\"\nindex = \"index.html\"\n\n\
                 [admin]\napi_bind_addr = \"{admin_api}\"\n",
                m = root.join("meta").display(),
                d = root.join("data").display(),
            ),
        )?;
        let garage = Proc(
            Command::new(garage_bin())
                .arg("-c")
                .arg(&config)
                .arg("server")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(root.join("garage.log"))?)
                .spawn()
                .map_err(|e| {
                    format!("cannot start garage: {e} (bench/run.sh builds it: cargo install garage --locked)")
                })?,
        );
        // The node's id, once it answers.
        let mut node = None;
        for _ in 0..100 {
            if let Ok(out) = admin(&config, &["node", "id", "-q"]) {
                node = out.split('@').next().map(|s| s.trim().to_string());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let node = node.ok_or("garage did not start (see garage.log in the bench directory)")?;
        admin(&config, &["layout", "assign", "-z", "dc1", "-c", "10G", &node])?;
        admin(&config, &["layout", "apply", "--version", "1"])?;
        let key = admin(&config, &["key", "create", "bench-key"])?;
        let access_key = field(&key, "Key ID:").ok_or_else(|| format!("no key id in: {key}"))?;
        let secret_key = field(&key, "Secret key:").ok_or_else(|| format!("no secret in: {key}"))?;
        admin(&config, &["bucket", "create", bucket])?;
        admin(
            &config,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                bucket,
                "--key",
                "bench-key",
            ],
        )?;
        admin(&config, &["bucket", "website", "--allow", bucket])?;

        let front_addr = free_addr();
        let front = start_nginx(
            nginx,
            &root.join("front"),
            &format!(
                "stream {{ server {{ listen {front_addr} ssl; ssl_certificate {t}/server.pem; \
                 ssl_certificate_key {t}/server-key.pem; ssl_client_certificate {t}/ca.pem; \
                 ssl_verify_client on; proxy_pass {s3}; }} }}\n",
                t = tls.display()
            ),
        )?;
        let store = Self {
            garage,
            front,
            endpoint: format!("https://{front_addr}"),
            web,
            web_host: format!("{bucket}.web.localhost"),
            access_key,
            secret_key,
            region: "garage",
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(front_addr).await.is_ok() {
                return Ok(store);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the nginx TLS front did not start".into())
    }
}

/// Starts nginx with `body` (top-level blocks) under `prefix`, loading the stream module when
/// the body uses it.
pub fn start_nginx(nginx: &str, prefix: &Path, body: &str) -> Result<Proc, Error> {
    std::fs::create_dir_all(prefix)?;
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    let load = if body.starts_with("stream") && module.exists() {
        format!("load_module {};\n", module.display())
    } else {
        String::new()
    };
    let conf = format!(
        "{load}worker_processes auto;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 4096; }}\n{body}",
        d = prefix.display()
    );
    let path: PathBuf = prefix.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {nginx}: {e} (install the Debian package nginx)"))?;
    Ok(Proc(child))
}
