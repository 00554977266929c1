//! rustls client configuration for the connection to the S3 backend, reloaded when its files
//! change.
//!
//! The gateway trusts exactly the private CA given with `--ca-cert` (or the system roots when
//! none is given) and presents `--client-cert`/`--client-key` when the backend asks for a client
//! certificate (mTLS). cert-manager rotates these files in place (the kubelet swaps a `..data`
//! symlink), so [`BackendTls::reload`] re-reads them: new backend connections use the new
//! trust and identity without a restart, and a half-written or mismatched pair is rejected
//! while the old identity stays in use. Both are swapped behind a resolver and a verifier that
//! rustls consults on every handshake; TLS 1.3 resumption is off, because a resumed session
//! would skip client authentication and keep presenting the old certificate.
//!
//! The crypto provider is always passed explicitly (`ring`), so the process never depends on
//! a process-wide default provider being installed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::ConfigError;

/// The crypto provider used for every TLS connection of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn parse_certs(flag: &'static str, path: &Path, data: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(flag, format!("{} is not a PEM certificate file: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            flag,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

fn parse_key(path: &Path, data: &[u8]) -> Result<PrivateKeyDer<'static>, ConfigError> {
    // The parse error is not shown: it could quote key material.
    PrivateKeyDer::from_pem_slice(data)
        .map_err(|_| ConfigError::new("--client-key", format!("{} holds no PEM private key", path.display())))
}

/// The not-after time of a DER certificate, in seconds since the Unix epoch.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// The client identity, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingIdentity {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents last looked at (accepted or not), to notice the next change.
    seen: RwLock<(Vec<u8>, Vec<u8>)>,
    not_after: AtomicI64,
}

impl ReloadingIdentity {
    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, ConfigError> {
        let cert = std::fs::read(cert_path)
            .map_err(|e| ConfigError::new("--client-cert", format!("cannot read {}: {e}", cert_path.display())))?;
        let key = std::fs::read(key_path)
            .map_err(|e| ConfigError::new("--client-key", format!("cannot read {}: {e}", key_path.display())))?;
        let (certified, expiry) = Self::build(cert_path, &cert, key_path, &key)?;
        Ok(Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(certified)),
            seen: RwLock::new((cert, key)),
            not_after: AtomicI64::new(expiry),
        })
    }

    fn build(cert_path: &Path, cert: &[u8], key_path: &Path, key: &[u8]) -> Result<(CertifiedKey, i64), ConfigError> {
        let chain = parse_certs("--client-cert", cert_path, cert)?;
        let key = parse_key(key_path, key)?;
        let expiry = not_after(&chain[0]).unwrap_or(0);
        let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
            ConfigError::new(
                "--client-key",
                format!("{} does not match {}: {e}", key_path.display(), cert_path.display()),
            )
        })?;
        Ok((certified, expiry))
    }

    /// Re-reads the files; `None` when unchanged, else whether the new pair was accepted.
    fn reload(&self) -> Option<Result<(), ConfigError>> {
        let cert = std::fs::read(&self.cert_path).ok()?;
        let key = std::fs::read(&self.key_path).ok()?;
        {
            let seen = self.seen.read().unwrap_or_else(|p| p.into_inner());
            if seen.0 == cert && seen.1 == key {
                return None;
            }
        }
        let result = Self::build(&self.cert_path, &cert, &self.key_path, &key);
        *self.seen.write().unwrap_or_else(|p| p.into_inner()) = (cert, key);
        Some(result.map(|(certified, expiry)| {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(certified);
            self.not_after.store(expiry, Ordering::Relaxed);
        }))
    }
}

impl rustls::client::ResolvesClientCert for ReloadingIdentity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        // Called on every full handshake: no I/O here, only an Arc clone.
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Trust in the backend's certificate, swapped when the CA file changes.
#[derive(Debug)]
pub struct ReloadingTrust {
    ca_path: PathBuf,
    current: RwLock<Arc<WebPkiServerVerifier>>,
    seen: RwLock<Vec<u8>>,
}

impl ReloadingTrust {
    fn load(ca_path: &Path) -> Result<Self, ConfigError> {
        let data = std::fs::read(ca_path)
            .map_err(|e| ConfigError::new("--ca-cert", format!("cannot read {}: {e}", ca_path.display())))?;
        Ok(Self {
            ca_path: ca_path.to_path_buf(),
            current: RwLock::new(Self::build(ca_path, &data)?),
            seen: RwLock::new(data),
        })
    }

    fn build(ca_path: &Path, data: &[u8]) -> Result<Arc<WebPkiServerVerifier>, ConfigError> {
        let mut roots = RootCertStore::empty();
        for cert in parse_certs("--ca-cert", ca_path, data)? {
            roots.add(cert).map_err(|e| {
                ConfigError::new(
                    "--ca-cert",
                    format!("{}: unusable CA certificate: {e}", ca_path.display()),
                )
            })?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| ConfigError::new("--ca-cert", format!("{}: {e}", ca_path.display())))
    }

    fn reload(&self) -> Option<Result<(), ConfigError>> {
        let data = std::fs::read(&self.ca_path).ok()?;
        if *self.seen.read().unwrap_or_else(|p| p.into_inner()) == data {
            return None;
        }
        let result = Self::build(&self.ca_path, &data);
        *self.seen.write().unwrap_or_else(|p| p.into_inner()) = data;
        Some(result.map(|verifier| *self.current.write().unwrap_or_else(|p| p.into_inner()) = verifier))
    }

    fn verifier(&self) -> Arc<WebPkiServerVerifier> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ServerCertVerifier for ReloadingTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}

/// The TLS setup for the backend: the rustls configuration and what can be reloaded in it.
#[derive(Debug)]
pub struct BackendTls {
    /// The configuration every backend connection is made with.
    pub config: Arc<rustls::ClientConfig>,
    identity: Option<Arc<ReloadingIdentity>>,
    trust: Option<Arc<ReloadingTrust>>,
}

/// What one reload pass found for one of the files.
#[derive(Debug)]
pub struct ReloadEvent {
    /// `identity` (client certificate and key) or `ca`.
    pub what: &'static str,
    /// Accepted, or why not.
    pub result: Result<(), ConfigError>,
}

impl BackendTls {
    /// Loads the trust and identity files and builds the client configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `--ca-cert`, `--client-cert` or `--client-key` when a file cannot
    /// be read or parsed, or the key does not belong to the certificate.
    pub fn load(ca_cert: Option<&Path>, identity: Option<(&Path, &Path)>) -> Result<Self, ConfigError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new("--ca-cert", format!("TLS setup failed: {e}")))?;
        let trust = ca_cert.map(ReloadingTrust::load).transpose()?.map(Arc::new);
        let builder = match &trust {
            Some(trust) => builder.dangerous().with_custom_certificate_verifier(trust.clone()),
            None => {
                // Unreadable entries in the system store are skipped, as every TLS client does.
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                builder.with_root_certificates(roots)
            }
        };
        let identity = identity
            .map(|(c, k)| ReloadingIdentity::load(c, k))
            .transpose()?
            .map(Arc::new);
        let mut config = match &identity {
            Some(identity) => builder.with_client_cert_resolver(identity.clone()),
            None => builder.with_no_client_auth(),
        };
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Self {
            config: Arc::new(config),
            identity,
            trust,
        })
    }

    /// Re-reads the files that changed since the last look; one event per changed file.
    pub fn reload(&self) -> Vec<ReloadEvent> {
        let mut events = Vec::new();
        if let Some(result) = self.trust.as_ref().and_then(|t| t.reload()) {
            events.push(ReloadEvent { what: "ca", result });
        }
        if let Some(result) = self.identity.as_ref().and_then(|i| i.reload()) {
            events.push(ReloadEvent {
                what: "identity",
                result,
            });
        }
        events
    }

    /// Not-after of the client certificate in use, in seconds since the Unix epoch.
    pub fn client_cert_not_after(&self) -> Option<i64> {
        self.identity.as_ref().map(|i| i.not_after.load(Ordering::Relaxed))
    }
}
