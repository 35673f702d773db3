//! HTTPS: the certificate chain and key from PEM files, served through rustls (ring), and
//! reloaded without dropping a connection: every new handshake asks [`Tls`] for the current
//! pair, so [`Tls::reload`] only swaps it. A new pair that does not load, or whose key does not
//! match its certificate, is refused and the old one stays.

use rustls::crypto::ring::default_provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Why a certificate and key could not be used. Never holds key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or held no PEM object of the kind wanted.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The key is of a kind rustls cannot sign with, or does not belong to the certificate.
    #[error("{0}")]
    Mismatch(String),
}

/// The served certificate chain and key, and where they come from.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last loaded, to notice a change.
    loaded: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File {
        path: path.to_path_buf(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no CERTIFICATE in it".into()));
    }
    // The key's own error names the file, never the key.
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error(key, format!("no usable private key: {e}")))?;
    let provider = default_provider();
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::Mismatch(format!("{}: {e}", key.display())))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().map_err(|e| {
        TlsError::Mismatch(format!(
            "{} does not belong to {}: {e}",
            key.display(),
            cert.display()
        ))
    })?;
    Ok(pair)
}

impl Tls {
    /// Loads `cert` (a PEM chain, the server's certificate first) and `key` (PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Tls>, TlsError> {
        let pair = load_pair(cert, key)?;
        Ok(Arc::new(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(pair)),
            loaded: RwLock::new((modified(cert), modified(key))),
        }))
    }

    /// Loads the files again; on success new handshakes get the new pair (open connections
    /// keep theirs), on failure the old pair stays and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = (modified(&self.cert), modified(&self.key));
        let pair = load_pair(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = stamps;
        Ok(())
    }

    /// Whether either file changed since it was last loaded.
    pub fn changed(&self) -> bool {
        let now = (modified(&self.cert), modified(&self.key));
        *self.loaded.read().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// The certificate file's path, for log lines.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// A rustls configuration whose every handshake takes the pair current at that moment.
    pub fn server_config(self: &Arc<Self>) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())))
    }
}

#[derive(Debug)]
struct Resolver(Arc<Tls>);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("cert", &self.cert).finish()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}
