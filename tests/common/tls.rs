//! A CA made at test time and a server certificate for 127.0.0.1 and localhost signed by it,
//! as PEM files: what the HTTPS tests and the TLS bench serve with.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use std::path::{Path, PathBuf};

/// The files, and the CA's certificate for clients to trust.
pub struct TlsFiles {
    pub ca_pem: PathBuf,
    pub ca_der: rustls_pki_types::CertificateDer<'static>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes `ca.pem`, `server.crt` and `server.key` in `dir`.
pub fn tls_files(dir: &Path) -> TlsFiles {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "lavabeacon test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();
    let mut s = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    s.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let key = KeyPair::generate().unwrap();
    let cert = s.signed_by(&key, &ca, &ca_key).unwrap();
    let files = TlsFiles {
        ca_pem: dir.join("ca.pem"),
        ca_der: ca.der().clone(),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    std::fs::write(&files.ca_pem, ca.pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}
