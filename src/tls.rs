//! rustls client configuration for the connection to the S3 backend.
//!
//! The gateway trusts exactly the private CA given with `--ca-cert` (or the system roots when
//! none is given) and presents `--client-cert`/`--client-key` when the backend asks for a client
//! certificate (mTLS). The crypto provider is always passed explicitly (`ring`), so the process
//! never depends on a process-wide default provider being installed.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ConfigError;

/// The crypto provider used for every TLS connection of the process.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file.
///
/// # Errors
/// A [`ConfigError`] for `flag` when the file cannot be read or holds no certificate.
pub fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConfigError::new(flag, format!("cannot read {}: {e}", path.display())))?
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

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// A [`ConfigError`] for `--client-key`; the message never includes key material.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let why = match e {
            rustls_pki_types::pem::Error::Io(io) => io.to_string(),
            _ => "no PEM private key found".to_string(),
        };
        ConfigError::new("--client-key", format!("cannot read {}: {why}", path.display()))
    })
}

/// Builds the client configuration for the backend.
///
/// # Errors
/// A [`ConfigError`] naming `--ca-cert`, `--client-cert` or `--client-key` when a file cannot be
/// read, parsed, or the key does not belong to the certificate.
pub fn client_config(
    ca_cert: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, ConfigError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    match ca_cert {
        Some(path) => {
            for cert in read_certs("--ca-cert", path)? {
                roots.add(cert).map_err(|e| {
                    ConfigError::new("--ca-cert", format!("{}: unusable CA certificate: {e}", path.display()))
                })?;
            }
        }
        None => {
            // Unreadable entries in the system store are skipped, as every TLS client does.
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }

    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("--ca-cert", format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);

    let mut config = match identity {
        Some((cert_path, key_path)) => {
            let chain = read_certs("--client-cert", cert_path)?;
            let key = read_key(key_path)?;
            let certified =
                rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).map_err(|e| {
                    ConfigError::new(
                        "--client-key",
                        format!("{} does not match {}: {e}", key_path.display(), cert_path.display()),
                    )
                })?;
            drop(certified);
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConfigError::new("--client-key", format!("{}: {e}", key_path.display())))?
        }
        None => builder.with_no_client_auth(),
    };
    // TLS 1.3 resumption would let a reconnect skip client authentication; every new
    // connection presents the configured identity instead.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}
