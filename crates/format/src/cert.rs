//! X.509 certificates: lenient PEM reading, certificateId, and the public key a pulse is
//! verified with (spec §4).

use crate::hash::Hash512;
use crate::message::certificate_id;
use base64::Engine;
use der::asn1::UintRef;
use der::Decode;
use ed25519_dalek::VerifyingKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// The subject marker of every certificate of a key that must not be trusted (a software key,
/// a generated chain's): pulses it signs verify, and prove nothing.
pub const TEST_ONLY: &str = "TEST ONLY - NOT FOR SECURITY USE";

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_ED25519: &str = "1.3.101.112";

/// Why bytes are not a usable certificate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertError {
    /// No `-----BEGIN CERTIFICATE-----` block and not DER either.
    #[error("no certificate found (expected PEM with a BEGIN CERTIFICATE line, or DER)")]
    NotACertificate,
    /// A PEM block whose body is not base64.
    #[error("PEM block {index}: body is not base64: {reason}")]
    BadBase64 {
        /// Which block, from 1.
        index: usize,
        /// The decoder's complaint.
        reason: String,
    },
    /// A PEM block with a BEGIN line and no END line.
    #[error("PEM block {index}: no END CERTIFICATE line (truncated file?)")]
    Unterminated {
        /// Which block, from 1.
        index: usize,
    },
    /// DER that is not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    BadDer(String),
    /// A key algorithm no cipher suite uses.
    #[error("unsupported public key algorithm {0} (expected RSA or Ed25519)")]
    UnsupportedKey(String),
    /// An RSA key outside the sizes the suites allow.
    #[error("RSA key of {0} bits: suites 0 and 1 need 2048 to 4096 bits")]
    RsaKeySize(usize),
    /// An Ed25519 key that is not a valid point, or of small order.
    #[error("Ed25519 public key is invalid or weak")]
    BadEd25519Key,
}

/// A public key taken from a certificate's SubjectPublicKeyInfo.
#[derive(Clone)]
pub enum PublicKey {
    /// RSA: the PKCS#1 RSAPublicKey DER, as the verifier consumes it, and the modulus size.
    Rsa {
        /// DER of RSAPublicKey { n, e }.
        pkcs1_der: Vec<u8>,
        /// Modulus length in bits.
        bits: usize,
    },
    /// Ed25519.
    Ed25519(VerifyingKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PublicKey {
    /// e.g. `RSA-4096` or `Ed25519`.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { bits, .. } => format!("RSA-{bits}"),
            PublicKey::Ed25519(_) => "Ed25519".into(),
        }
    }
}

/// A parsed certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The DER bytes, exactly as hashed for the certificateId.
    pub der: Vec<u8>,
    /// SHA-512(DER).
    pub id: Hash512,
    /// The subject public key.
    pub key: PublicKey,
    /// The subject distinguished name, RFC 4514 style.
    pub subject: String,
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

#[derive(der::Sequence)]
struct RsaPublicKeyDer<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

impl Certificate {
    /// Parses one DER-encoded X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        let cert =
            x509_cert::Certificate::from_der(der).map_err(|e| CertError::BadDer(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let oid = spki.algorithm.oid.to_string();
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| CertError::BadDer("public key bit string has unused bits".into()))?;
        let key = match oid.as_str() {
            OID_RSA | OID_RSA_PSS => {
                let k = RsaPublicKeyDer::from_der(key_bytes)
                    .map_err(|e| CertError::BadDer(format!("RSA public key: {e}")))?;
                let n = k.modulus.as_bytes();
                let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
                if !(2048..=4096).contains(&bits) {
                    return Err(CertError::RsaKeySize(bits));
                }
                PublicKey::Rsa {
                    pkcs1_der: key_bytes.to_vec(),
                    bits,
                }
            }
            OID_ED25519 => {
                let bytes: [u8; 32] = key_bytes.try_into().map_err(|_| CertError::BadEd25519Key)?;
                let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| CertError::BadEd25519Key)?;
                if vk.is_weak() {
                    return Err(CertError::BadEd25519Key);
                }
                PublicKey::Ed25519(vk)
            }
            other => return Err(CertError::UnsupportedKey(other.into())),
        };
        Ok(Certificate {
            id: certificate_id(der),
            der: der.to_vec(),
            key,
            subject: tbs.subject.to_string(),
            not_before: tbs.validity.not_before.to_unix_duration().as_secs() as i64,
            not_after: tbs.validity.not_after.to_unix_duration().as_secs() as i64,
        })
    }

    /// The certificate as PEM (LF line ends, 64-column base64, final newline).
    pub fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            s.push('\n');
        }
        s.push_str("-----END CERTIFICATE-----\n");
        s
    }
}

/// Every certificate in `bytes`: PEM blocks (read leniently: CRLF, no line break after the
/// BEGIN line, no final newline, text around the blocks) or a single DER certificate.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, CertError> {
    pem_blocks(bytes)?
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect()
}

/// The DER bodies of the certificate PEM blocks in `bytes`, or `bytes` itself if it is DER.
pub fn pem_blocks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let text = bytes;
    if !contains(text, BEGIN) {
        // A DER certificate starts with a SEQUENCE tag.
        return if text.first() == Some(&0x30) {
            Ok(vec![text.to_vec()])
        } else {
            Err(CertError::NotACertificate)
        };
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = find(rest, BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        // The label ends at the next "-----"; skip it whatever the label says.
        let label_end = find(after, b"-----").ok_or(CertError::Unterminated {
            index: out.len() + 1,
        })?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end = find(body_start, b"-----END ").ok_or(CertError::Unterminated {
            index: out.len() + 1,
        })?;
        let body: Vec<u8> = body_start[..end]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        rest = &body_start[end + 9..];
        if !ends_with(label, b"CERTIFICATE") {
            continue; // a private key or other block in a bundle: not ours to read
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map_err(|e| CertError::BadBase64 {
                index: out.len() + 1,
                reason: e.to_string(),
            })?;
        out.push(der);
    }
    if out.is_empty() {
        return Err(CertError::NotACertificate);
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}
fn ends_with(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && &hay[hay.len() - needle.len()..] == needle
}

/// Known certificates by certificateId.
#[derive(Debug, Clone, Default)]
pub struct CertificateSet {
    by_id: HashMap<Hash512, Arc<Certificate>>,
}

/// A certificate file or directory that could not be loaded.
#[derive(Debug, Error)]
pub enum CertLoadError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but holds no usable certificate.
    #[error("{path}: {source}")]
    Cert {
        /// The path.
        path: String,
        /// Why.
        source: CertError,
    },
}

impl CertificateSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a certificate; returns its id.
    pub fn add(&mut self, c: Certificate) -> Hash512 {
        let id = c.id;
        self.by_id.insert(id, Arc::new(c));
        id
    }

    /// The certificate with this id.
    pub fn get(&self, id: &Hash512) -> Option<&Arc<Certificate>> {
        self.by_id.get(id)
    }

    /// How many certificates are known.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// All known certificates.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Certificate>> {
        self.by_id.values()
    }

    /// Loads every certificate in a PEM or DER file.
    pub fn load_file(&mut self, path: &Path) -> Result<usize, CertLoadError> {
        let bytes = std::fs::read(path).map_err(|source| CertLoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let certs = parse_certificates(&bytes).map_err(|source| CertLoadError::Cert {
            path: path.display().to_string(),
            source,
        })?;
        let n = certs.len();
        for c in certs {
            self.add(c);
        }
        Ok(n)
    }

    /// Loads every `*.pem`, `*.crt`, `*.cer` and `*.der` file in a directory (not recursive).
    pub fn load_dir(&mut self, dir: &Path) -> Result<usize, CertLoadError> {
        let io = |source| CertLoadError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pem" | "crt" | "cer" | "der")
                )
            })
            .collect();
        paths.sort();
        let mut n = 0;
        for p in paths {
            n += self.load_file(&p)?;
        }
        Ok(n)
    }
}
