//! Telling every running gateway to drop an object it may hold, after `gateway seed` replaced
//! it: the purge URL's host name resolves to every gateway pod (a headless Service), and each
//! address gets the same `POST /purge` with the bearer token.
//!
//! A gateway that cannot be reached is reported, not fatal: the object is already complete in
//! the bucket, and that gateway's copy ends with its TTL.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::backend::settings::Secret;
use crate::error::ConfigError;

/// Time each gateway has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to purge.
#[derive(Debug)]
pub struct PurgeTarget {
    uri: Uri,
    host: String,
    port: u16,
    token: Secret,
}

/// What a purge round did.
#[derive(Debug, Default)]
pub struct PurgeReport {
    /// Gateways that confirmed.
    pub purged: Vec<SocketAddr>,
    /// Gateways that did not, with why.
    pub failed: Vec<(SocketAddr, String)>,
}

impl PurgeTarget {
    /// The target of `--purge-url` with the token of `--admin-token-file`; `None` without a URL.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the flag when the URL is not `http://HOST[:PORT]/purge?...` or
    /// the token file holds no token.
    pub fn from_args(url: Option<&str>, token_file: Option<&Path>) -> Result<Option<Self>, ConfigError> {
        let Some(url) = url else { return Ok(None) };
        let bad = |why: &str| ConfigError::new("--purge-url", format!("{url:?} {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("must be http://HOST:PORT/purge?... (the gateways' admin port)"));
        }
        let host = uri.host().ok_or_else(|| bad("has no host"))?.to_string();
        if uri.path() != "/purge" || uri.query().is_none() {
            return Err(bad("must name /purge with a query, e.g. /purge?key=gateway.gif"));
        }
        let token_file =
            token_file.ok_or_else(|| ConfigError::new("--admin-token-file", "is required with --purge-url"))?;
        Ok(Some(Self {
            port: uri.port_u16().unwrap_or(80),
            host,
            uri,
            token: crate::config::serve::admin_token(token_file)?,
        }))
    }

    /// Posts the purge to every address the host resolves to. A name that resolves to nothing
    /// (no gateway pod yet) purges nothing and fails nothing.
    pub async fn purge_all(&self) -> PurgeReport {
        let mut report = PurgeReport::default();
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((self.host.as_str(), self.port)).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => {
                tracing::info!(host = %self.host, error = %e, "no gateway to purge (the name does not resolve)");
                return report;
            }
        };
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let target = self.uri.path_and_query().map_or("/purge", |p| p.as_str());
        let host = self.uri.authority().map_or("", |a| a.as_str());
        let calls: Vec<_> = addrs
            .iter()
            .map(|&addr| {
                let req = Request::post(format!("http://{addr}{target}"))
                    .header(header::HOST, host)
                    .header(header::AUTHORIZATION, format!("Bearer {}", self.token.expose()))
                    .body(Empty::new());
                let client = client.clone();
                tokio::spawn(async move {
                    let req = req.map_err(|e| e.to_string())?;
                    match tokio::time::timeout(TIMEOUT, client.request(req)).await {
                        Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
                        Ok(Err(e)) => Err(e.to_string()),
                        Ok(Ok(resp)) if resp.status().is_success() => Ok(()),
                        Ok(Ok(resp)) => Err(format!("answered {}", resp.status())),
                    }
                })
            })
            .collect();
        for (addr, call) in addrs.into_iter().zip(calls) {
            match call.await.unwrap_or_else(|e| Err(e.to_string())) {
                Ok(()) => report.purged.push(addr),
                Err(why) => report.failed.push((addr, why)),
            }
        }
        report
    }
}
