//! `gateway certs`: a development PKI made with rcgen.
//!
//! One CA signs a server certificate for the S3 backend (SANs from `--server-name`: DNS names or
//! IP addresses) and a client certificate for the gateway (extended key usage `clientAuth`),
//! which is everything an mTLS setup between MinIO and the gateway needs. The same code makes
//! the in-memory PKI of `gateway demo` and of the tests.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A CA and the two leaf certificates it signed, as PEM.
#[derive(Clone)]
pub struct DevPki {
    /// CA certificate.
    pub ca_cert: String,
    /// CA private key.
    pub ca_key: String,
    /// Backend (server) certificate.
    pub server_cert: String,
    /// Backend private key.
    pub server_key: String,
    /// Gateway (client) certificate.
    pub client_cert: String,
    /// Gateway private key.
    pub client_key: String,
}

impl std::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevPki { .. }")
    }
}

/// The files `gateway certs` writes, in order: (name, is a private key).
pub const FILES: [(&str, bool); 6] = [
    ("ca.pem", false),
    ("ca-key.pem", true),
    ("server.pem", false),
    ("server-key.pem", true),
    ("client.pem", false),
    ("client-key.pem", true),
];

/// Errors making or writing certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// rcgen refused the parameters (e.g. an unusable server name).
    #[error("cannot generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file exists and `--force` was not given.
    #[error("{0} already exists; pass --force to overwrite")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

impl DevPki {
    /// Generates a CA, a server certificate for `server_names` and a client certificate named
    /// `client_name`, valid from an hour ago for `days` days. Keys are ECDSA P-256.
    ///
    /// # Errors
    /// When a server name cannot be a SAN.
    pub fn generate(server_names: &[String], client_name: &str, days: u32) -> Result<Self, CertsError> {
        let not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        let not_after = OffsetDateTime::now_utc() + Duration::days(i64::from(days));

        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name = name("gateway dev CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = not_before;
        ca.not_after = not_after;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::from_params(&ca, &ca_key);

        let leaf =
            |sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| -> Result<(String, String), CertsError> {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(sans)?;
                params.distinguished_name = name(cn);
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![usage];
                params.not_before = not_before;
                params.not_after = not_after;
                Ok((params.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
            };
        let server_cn = server_names.first().map_or("s3", String::as_str);
        let (server_cert, server_key) = leaf(server_names.to_vec(), server_cn, ExtendedKeyUsagePurpose::ServerAuth)?;
        let (client_cert, client_key) = leaf(Vec::new(), client_name, ExtendedKeyUsagePurpose::ClientAuth)?;
        Ok(Self {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key.serialize_pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        })
    }

    /// Another client certificate from this PKI's CA, named `client_name` (its common name is
    /// what MinIO maps to a policy), valid from an hour ago for `days` days: (certificate, key)
    /// as PEM.
    ///
    /// # Errors
    /// When the CA key cannot be read back.
    pub fn issue_client(&self, client_name: &str, days: u32) -> Result<(String, String), CertsError> {
        let ca_key = KeyPair::from_pem(&self.ca_key)?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name = name("gateway dev CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = Issuer::from_params(&ca, &ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(client_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(i64::from(days));
        Ok((params.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
    }

    /// Writes another client certificate ([`DevPki::issue_client`]) into `dir` as
    /// `client-NAME.pem` and `client-NAME-key.pem` (mode 0600), e.g. one identity per MinIO
    /// policy.
    ///
    /// # Errors
    /// As [`DevPki::write_to`].
    pub fn write_client(
        &self,
        dir: &Path,
        client_name: &str,
        days: u32,
        force: bool,
    ) -> Result<Vec<PathBuf>, CertsError> {
        let (cert, key) = self.issue_client(client_name, days)?;
        write_files(
            &[
                (dir.join(format!("client-{client_name}.pem")), &cert, false),
                (dir.join(format!("client-{client_name}-key.pem")), &key, true),
            ],
            force,
        )
    }

    fn contents(&self) -> [&str; 6] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ]
    }

    /// Writes the six PEM files into `dir` (see `FILES`); private keys get mode 0600.
    ///
    /// Nothing is written unless every file can be: existing files are detected first.
    ///
    /// # Errors
    /// `CertsError::Exists` when a file exists and `force` is false; I/O errors otherwise.
    pub fn write_to(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, CertsError> {
        std::fs::create_dir_all(dir).map_err(|cause| CertsError::Write {
            path: dir.to_path_buf(),
            cause,
        })?;
        let files: Vec<(PathBuf, &str, bool)> = FILES
            .iter()
            .zip(self.contents())
            .map(|((name, private), pem)| (dir.join(name), pem, *private))
            .collect();
        write_files(&files, force)
    }
}

/// Removes the `client-NAME.pem` and `client-NAME-key.pem` files of `dir` that `written` does
/// not name: after `--force` made a new CA, they are signed by the one it replaced and would
/// no longer verify. Returns the paths removed.
///
/// # Errors
/// A file that cannot be listed or removed.
pub fn remove_stale_clients(dir: &Path, written: &[PathBuf]) -> Result<Vec<PathBuf>, CertsError> {
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| CertsError::Write { path, cause }
    };
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(write_error(dir))? {
        let path = entry.map_err(write_error(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let client = name.starts_with("client-") && name.ends_with(".pem");
        if client && !written.contains(&path) {
            std::fs::remove_file(&path).map_err(write_error(&path))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Writes `(path, PEM, is a private key)` files, none unless every one can be written: an
/// existing file stops it first, unless `force`. Returns the paths.
fn write_files(files: &[(PathBuf, &str, bool)], force: bool) -> Result<Vec<PathBuf>, CertsError> {
    if !force && let Some((p, ..)) = files.iter().find(|(p, ..)| p.exists()) {
        return Err(CertsError::Exists(p.clone()));
    }
    for (path, pem, private) in files {
        write_file(path, pem.as_bytes(), *private).map_err(|cause| CertsError::Write {
            path: path.clone(),
            cause,
        })?;
    }
    Ok(files.iter().map(|(p, ..)| p.clone()).collect())
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Writes a file; private keys are created with mode 0600 so they are never readable by others,
/// not even for an instant.
fn write_file(path: &Path, data: &[u8], private: bool) -> std::io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    if private {
        // An existing file (with --force) keeps its mode on open: tighten it.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_six_files_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::generate(&["localhost".into(), "127.0.0.1".into()], "gateway", 30).unwrap();
        let paths = pki.write_to(dir.path(), false).unwrap();
        assert_eq!(paths.len(), 6);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("client-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(pki.write_to(dir.path(), false), Err(CertsError::Exists(_))));
        pki.write_to(dir.path(), true).unwrap();
    }
}
